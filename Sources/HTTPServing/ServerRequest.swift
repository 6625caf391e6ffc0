import Foundation

/// One HTTP request as the server received it: a complete head and a complete body.
public struct ServerRequest: Sendable {
    /// The method as sent, e.g. `GET` (methods are case-sensitive in HTTP).
    public var method: String
    /// The request target exactly as sent, e.g. `/a/b?x=1%202`.
    public var target: String
    /// The target's path, without the query, not percent-decoded (`/a/b`).
    public var path: String
    /// The query's items in order, `+` and percent-escapes decoded. An item without `=` has an empty value.
    public var query: [(name: String, value: String)]
    /// `HTTP/1.1` as served (the parsed request does not keep the version it came with).
    public var version: String
    public var headers: HTTPHeaderFields
    public var body: Data
    /// The peer as `address:port`, e.g. `127.0.0.1:51234`.
    public var remoteAddress: String

    public init(
        method: String, target: String, version: String = "HTTP/1.1", headers: HTTPHeaderFields = HTTPHeaderFields(),
        body: Data = Data(), remoteAddress: String = "127.0.0.1:0"
    ) {
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
        self.body = body
        self.remoteAddress = remoteAddress
        let (path, query) = Self.split(target: target)
        self.path = path
        self.query = query
    }

    /// The first value of the header `name`, case-insensitively.
    public func header(_ name: String) -> String? { headers[name] }

    /// The first value of the query item `name`.
    public func queryValue(_ name: String) -> String? {
        query.first { $0.name == name }?.value
    }

    /// The body as UTF-8 text (invalid bytes replaced).
    public var bodyText: String { String(decoding: body, as: UTF8.self) }

    /// The fields of an `application/x-www-form-urlencoded` body, decoded as the query's are.
    public var formFields: [(name: String, value: String)] { Self.split(target: "?" + bodyText).query }

    /// Splits a target into its path and its decoded query items.
    public static func split(target: String) -> (path: String, query: [(name: String, value: String)]) {
        var rest = Substring(target)
        if let hash = rest.firstIndex(of: "#") { rest = rest[..<hash] }
        // Absolute form (`http://host/path`), as sent to proxies: keep the path.
        if rest.hasPrefix("http://") || rest.hasPrefix("https://"), let scheme = rest.range(of: "://") {
            let authority = rest[scheme.upperBound...]
            rest = authority.firstIndex(where: { $0 == "/" || $0 == "?" }).map { authority[$0...] } ?? "/"
            if rest.hasPrefix("?") { rest = "/" + rest }
        }
        guard let mark = rest.firstIndex(of: "?") else { return (String(rest), []) }
        let path = String(rest[..<mark])
        let queryText = rest[rest.index(after: mark)...]
        var items: [(name: String, value: String)] = []
        for part in queryText.split(separator: "&", omittingEmptySubsequences: true) {
            if let equals = part.firstIndex(of: "=") {
                items.append((percentDecode(part[..<equals]), percentDecode(part[part.index(after: equals)...])))
            } else {
                items.append((percentDecode(part), ""))
            }
        }
        return (path, items)
    }

    /// Decodes `+` as space and `%XX` escapes; a malformed escape is kept as written.
    public static func percentDecode<S: StringProtocol>(_ text: S) -> String {
        let bytes = Array(text.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = 0
        func hex(_ c: UInt8) -> UInt8? {
            switch c {
            case 48...57: return c - 48
            case 65...70: return c - 55
            case 97...102: return c - 87
            default: return nil
            }
        }
        while i < bytes.count {
            let c = bytes[i]
            if c == UInt8(ascii: "+") {
                out.append(0x20)
                i += 1
            } else if c == UInt8(ascii: "%"), i + 2 < bytes.count, let high = hex(bytes[i + 1]), let low = hex(bytes[i + 2]) {
                out.append(high << 4 | low)
                i += 3
            } else {
                out.append(c)
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
