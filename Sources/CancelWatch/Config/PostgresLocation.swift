import Foundation

/// A PostgreSQL database holding the state, shared by replicas:
/// `state: postgres://USER[:${PASSWORD_VARIABLE}]@HOST[:PORT]/DATABASE[?sslmode=MODE]`.
/// The password comes only from an environment variable, and nothing that prints a
/// location shows it.
public struct PostgresLocation: Sendable, Hashable, CustomStringConvertible {
    /// How TLS is used, as libpq's `sslmode` means it.
    public enum SSLMode: String, Sendable, CaseIterable {
        /// No TLS.
        case disable
        /// TLS when the server offers it, without checking its certificate; plain otherwise.
        case prefer
        /// TLS always, without checking the server's certificate.
        case require
        /// TLS always, the certificate checked against the system's roots and the host name.
        case verifyFull = "verify-full"
    }

    public var user: String
    public var password: Secret?
    public var host: String
    public var port: Int
    public var database: String
    public var sslMode: SSLMode

    public static let defaultPort = 5432
    /// libpq's default.
    public static let defaultSSLMode = SSLMode.prefer

    public init(
        user: String, password: Secret? = nil, host: String, port: Int = PostgresLocation.defaultPort, database: String,
        sslMode: SSLMode = PostgresLocation.defaultSSLMode
    ) {
        self.user = user
        self.password = password
        self.host = host
        self.port = port
        self.database = database
        self.sslMode = sslMode
    }

    /// Whether a `state:` value names a PostgreSQL database rather than a file.
    public static func isURL(_ text: String) -> Bool {
        let lowered = text.trimmingCharacters(in: .whitespaces).lowercased()
        return lowered.hasPrefix("postgres://") || lowered.hasPrefix("postgresql://")
    }

    /// `host:port` (an IPv6 host in brackets), for messages.
    public var server: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// The location as a URL without its password: `postgres://cw@db.example.com:5432/cancelwatch?sslmode=require`.
    public var description: String {
        "postgres://\(Self.encoded(user))@\(server)/\(Self.encoded(database))?sslmode=\(sslMode.rawValue)"
    }

    /// Why a `state:` URL was refused; `message` says what to write.
    public struct ParseError: Error, Sendable, Hashable {
        public var message: String
    }

    /// Reads the URL as written in the file (`written`, before `${VAR}` expansion), so that
    /// the password can be required to be exactly one variable and its value may hold any
    /// character. Every other part is expanded from `environment`, then percent-decoded.
    public static func parse(written: String, environment: [String: String]) -> Result<PostgresLocation, ParseError> {
        func failure(_ message: String) -> Result<PostgresLocation, ParseError> { .failure(ParseError(message: message)) }
        func expanded(_ part: Substring) -> String? {
            let expansion = ConfigEnvironment.expand(String(part), environment: environment)
            guard expansion.problems.isEmpty else { return nil }
            return expansion.text.removingPercentEncoding
        }
        let text = written.trimmingCharacters(in: .whitespaces)
        guard let schemeEnd = text.range(of: "://") else { return failure("write postgres://USER@HOST:PORT/DATABASE") }
        var rest = text[schemeEnd.upperBound...]
        var query: Substring = ""
        if let mark = rest.firstIndex(of: "?") {
            query = rest[rest.index(after: mark)...]
            rest = rest[..<mark]
        }
        guard let slash = rest.firstIndex(of: "/") else {
            return failure("the database is missing: write postgres://USER@HOST:PORT/DATABASE")
        }
        let authority = rest[..<slash]
        guard let databaseName = expanded(rest[rest.index(after: slash)...]), !databaseName.isEmpty, !databaseName.contains("/") else {
            return failure("the database is missing or not one name: write postgres://USER@HOST:PORT/DATABASE")
        }
        guard let at = authority.lastIndex(of: "@") else {
            return failure("the user is missing: write postgres://USER@HOST:PORT/DATABASE")
        }
        let userInfo = authority[..<at]
        var hostPort = authority[authority.index(after: at)...]

        var password: Secret?
        var userPart = userInfo
        if let colon = userInfo.firstIndex(of: ":") {
            userPart = userInfo[..<colon]
            let written = userInfo[userInfo.index(after: colon)...]
            let expansion = ConfigEnvironment.expand(String(written), environment: environment)
            guard expansion.variables.count == 1, written == "${\(expansion.variables[0])}" else {
                return failure(
                    "the password must come from the environment: write postgres://USER:${VARIABLE}@HOST:PORT/DATABASE "
                        + "and set VARIABLE to the password")
            }
            guard expansion.problems.isEmpty else { return failure("the password's variable is not set") }
            password = Secret(expansion.text)
        }
        guard let user = expanded(userPart), !user.isEmpty else {
            return failure("the user is missing: write postgres://USER@HOST:PORT/DATABASE")
        }

        var portText: Substring?
        var host: String
        if hostPort.hasPrefix("[") {
            guard let close = hostPort.firstIndex(of: "]") else { return failure("write an IPv6 host in brackets, e.g. [::1]:5432") }
            host = String(hostPort[hostPort.index(after: hostPort.startIndex)..<close])
            let after = hostPort[hostPort.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { return failure("write an IPv6 host in brackets, then :PORT") }
                portText = after.dropFirst()
            }
        } else {
            if let colon = hostPort.lastIndex(of: ":") {
                portText = hostPort[hostPort.index(after: colon)...]
                hostPort = hostPort[..<colon]
            }
            guard let name = expanded(hostPort) else { return failure("the host does not read") }
            host = name
        }
        guard !host.isEmpty, !host.contains(where: { $0 == "/" || $0 == "@" || $0.isWhitespace }) else {
            return failure("the host is missing: write postgres://USER@HOST:PORT/DATABASE")
        }
        var port = defaultPort
        if let portText {
            guard let value = expanded(portText), !value.isEmpty, value.count <= 5, value.allSatisfy(\.isASCII),
                let number = Int(value), (1...65535).contains(number)
            else { return failure("the port must be a number from 1 to 65535") }
            port = number
        }

        var sslMode = defaultSSLMode
        for parameter in query.split(separator: "&") where !parameter.isEmpty {
            let pair = parameter.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = String(pair[0])
            guard name == "sslmode" else {
                return failure("unknown parameter '\(name.prefix(40))': the only one is sslmode")
            }
            guard pair.count == 2, let value = expanded(pair[1]), let mode = SSLMode(rawValue: value) else {
                return failure("sslmode must be one of \(SSLMode.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            sslMode = mode
        }
        return .success(
            PostgresLocation(user: user, password: password, host: host, port: port, database: databaseName, sslMode: sslMode))
    }

    private static func encoded(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .urlUserAllowed.subtracting(CharacterSet(charactersIn: ":@/?#"))) ?? text
    }
}
