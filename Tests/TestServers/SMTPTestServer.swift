import Foundation

/// A real SMTP server for tests: Debian's aiosmtpd under `/usr/bin/python3`, on
/// 127.0.0.1 with an ephemeral port. It writes each accepted message's raw bytes and
/// envelope to a temporary directory, and exits when the test lets go of it (stdin
/// closes) or after two minutes, whichever comes first.
public final class SMTPTestServer: @unchecked Sendable {
    public enum Security: Sendable {
        /// No TLS at all.
        case plain
        /// STARTTLS offered and required before MAIL; AUTH (only after TLS) when credentials are given.
        case starttls
        /// TLS from the first byte (`smtps://`).
        case implicitTLS
    }

    /// One accepted message.
    public struct Delivered: Sendable {
        public var mailFrom: String
        public var recipients: [String]
        /// Exactly the bytes after DATA (dot-stuffing undone by the server).
        public var raw: Data
        public var text: String { String(decoding: raw, as: UTF8.self) }
    }

    public let port: Int
    public let directory: URL
    /// The throwaway self-signed certificate (for 127.0.0.1), a PEM file usable as `ca_file`.
    public let certificatePath: String
    private let process: ChildProcess
    private let stdin: Pipe

    /// - Parameters:
    ///   - credentials: user and password AUTH accepts; when set, AUTH is required.
    ///   - refuse: recipients answered with `550 5.1.1`.
    ///   - refusal: the text of that `550` reply instead of the usual "user unknown" (`%s` is the
    ///     address), sent as its UTF-8 bytes whatever they are (controls, CR LF, U+202E included).
    ///   - silent: accept connections and never send a byte (no greeting, no reply).
    public init(
        security: Security = .plain, credentials: (String, String)? = nil, refuse: [String] = [],
        refusal: String = "5.1.1 <%s>: Recipient address rejected: User unknown", silent: Bool = false
    ) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("cw-smtp-\(UUID().uuidString)")
        let mail = directory.appendingPathComponent("mail")
        try FileManager.default.createDirectory(at: mail, withIntermediateDirectories: true)
        certificatePath = directory.appendingPathComponent("cert.pem").path
        let keyPath = directory.appendingPathComponent("key.pem").path
        if security != .plain {
            try Self.run(
                "/usr/bin/openssl",
                ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", keyPath, "-out", certificatePath, "-days", "1",
                 "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
        }
        let script = directory.appendingPathComponent("smtpd.py")
        try Self.script.write(to: script, atomically: true, encoding: .utf8)

        let configuration: [String: Any] = [
            "mail": mail.path, "security": "\(security)", "cert": certificatePath, "key": keyPath,
            "user": credentials?.0 ?? "", "password": credentials?.1 ?? "", "refuse": refuse,
            "refusal": refusal, "silent": silent, "connections": directory.appendingPathComponent("connections").path,
        ]
        let configPath = directory.appendingPathComponent("config.json")
        try JSONSerialization.data(withJSONObject: configuration).write(to: configPath)

        stdin = Pipe.closeOnExec()
        let stdout = Pipe.closeOnExec()
        // The server's own log (a client that aborts a TLS handshake makes it print a traceback).
        let logPath = directory.appendingPathComponent("smtpd.log").path
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        guard let log = FileHandle(forWritingAtPath: logPath) else { throw CocoaError(.fileNoSuchFile) }
        process = try ChildProcess(
            executable: "/usr/bin/python3", arguments: [script.path, configPath.path], environment: ProcessInfo.processInfo.environment,
            standardInput: stdin.fileHandleForReading.fileDescriptor, standardOutput: stdout.fileHandleForWriting.fileDescriptor,
            standardError: log.fileDescriptor)
        try? stdin.fileHandleForReading.close()
        try? stdout.fileHandleForWriting.close()
        try? log.close()
        // The first line is the port it listens on.
        var line = Data()
        while !line.contains(UInt8(ascii: "\n")) {
            let chunk = stdout.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            line.append(chunk)
        }
        guard let port = Int(String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) else {
            process.terminate()
            throw CocoaError(.fileReadCorruptFile, userInfo: [NSLocalizedDescriptionKey: "aiosmtpd did not start"])
        }
        self.port = port
    }

    deinit { stop() }

    /// Connections accepted so far.
    public var connections: Int {
        ((try? Data(contentsOf: directory.appendingPathComponent("connections"))) ?? Data()).count
    }

    /// Closes stdin: the server exits by itself.
    public func stop() {
        try? stdin.fileHandleForWriting.close()
    }

    /// Messages accepted so far, in order.
    public func messages() throws -> [Delivered] {
        let mail = directory.appendingPathComponent("mail")
        let names = try FileManager.default.contentsOfDirectory(atPath: mail.path).filter { $0.hasSuffix(".json") }.sorted()
        return try names.map { name in
            let envelope = try JSONSerialization.jsonObject(with: Data(contentsOf: mail.appendingPathComponent(name))) as? [String: Any]
            let raw = try Data(contentsOf: mail.appendingPathComponent(name.replacingOccurrences(of: ".json", with: ".eml")))
            return Delivered(
                mailFrom: envelope?["mail_from"] as? String ?? "", recipients: envelope?["rcpt_tos"] as? [String] ?? [], raw: raw)
        }
    }

    private static func run(_ executable: String, _ arguments: [String]) throws {
        let process = try ChildProcess(executable: executable, arguments: arguments, environment: ProcessInfo.processInfo.environment)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw CocoaError(.executableLoad, userInfo: [NSLocalizedDescriptionKey: "\(executable) failed"])
        }
    }

    private static let script = #"""
        import asyncio, json, os, ssl, sys, threading
        from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

        config = json.load(open(sys.argv[1]))
        count = 0

        class Handler:
            async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
                if address in config["refuse"]:
                    # Bytes: sent as they are, whatever the refusal holds.
                    return ("550 " + config["refusal"].replace("%s", address)).encode()
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, server, session, envelope):
                global count
                count += 1
                base = os.path.join(config["mail"], "%04d" % count)
                with open(base + ".eml", "wb") as f:
                    f.write(envelope.original_content or envelope.content)
                with open(base + ".json", "w") as f:
                    json.dump({"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos}, f)
                return "250 2.0.0 Ok: queued"

        def authenticator(server, session, envelope, mechanism, auth_data):
            if isinstance(auth_data, LoginPassword) and auth_data.login.decode() == config["user"] \
                    and auth_data.password.decode() == config["password"]:
                return AuthResult(success=True)
            return AuthResult(success=False, handled=False)

        def context():
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(config["cert"], config["key"])
            return ctx

        def counted(protocol):
            with open(config["connections"], "ab") as f:
                f.write(b"x")
            return protocol

        class Silent(asyncio.Protocol):
            """Accepts and never says a word."""

        async def main():
            loop = asyncio.get_running_loop()
            security = config["security"]
            options = {"hostname": "cw-test.local"}
            if config["user"]:
                options.update(authenticator=authenticator, auth_required=True, auth_require_tls=security != "plain")
            if security == "starttls":
                options.update(tls_context=context(), require_starttls=True)
            factory = Silent if config["silent"] else (lambda: SMTP(Handler(), **options))
            server = await loop.create_server(
                lambda: counted(factory()), host="127.0.0.1", port=0,
                ssl=context() if security == "implicitTLS" else None)
            print(server.sockets[0].getsockname()[1], flush=True)
            done = asyncio.Event()
            # Stop when the test closes stdin, or after two minutes at the latest.
            threading.Thread(target=lambda: (sys.stdin.read(), loop.call_soon_threadsafe(done.set)), daemon=True).start()
            try:
                await asyncio.wait_for(done.wait(), timeout=120)
            except asyncio.TimeoutError:
                pass
            server.close()

        asyncio.run(main())
        """#
}
