import CancelWatch
import Foundation
import TestServers
import Testing

/// An HTTPS receiver with a throwaway self-signed certificate for 127.0.0.1 (Python's
/// `http.server` and `ssl`), answering every POST with 200 `ok`. It exits when the test
/// lets go of it (stdin closes) or after two minutes.
final class HTTPSTestReceiver: @unchecked Sendable {
    let port: Int
    let certificatePath: String
    private let stdin = Pipe.closeOnExec()
    private var process: ChildProcess?

    init() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cw-https-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        certificatePath = directory.appendingPathComponent("cert.pem").path
        let keyPath = directory.appendingPathComponent("key.pem").path
        let openssl = try ChildProcess(
            executable: "/usr/bin/openssl",
            arguments: [
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", keyPath, "-out", certificatePath, "-days", "1",
                "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            ], environment: ProcessInfo.processInfo.environment)
        openssl.waitUntilExit()

        let script = """
            import http.server, ssl, sys, threading
            class Handler(http.server.BaseHTTPRequestHandler):
                def do_POST(self):
                    self.rfile.read(int(self.headers.get("Content-Length", "0")))
                    self.send_response(200); self.send_header("Content-Length", "2"); self.end_headers(); self.wfile.write(b"ok")
                def log_message(self, *args): pass
            server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH); ctx.load_cert_chain(sys.argv[1], sys.argv[2])
            server.socket = ctx.wrap_socket(server.socket, server_side=True)
            print(server.server_address[1], flush=True)
            threading.Thread(target=server.serve_forever, daemon=True).start()
            done = threading.Event()
            threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
            done.wait(120)
            """
        let stdout = Pipe.closeOnExec()
        process = try ChildProcess(
            executable: "/usr/bin/python3", arguments: ["-c", script, certificatePath, keyPath],
            environment: ProcessInfo.processInfo.environment, standardInput: stdin.fileHandleForReading.fileDescriptor,
            standardOutput: stdout.fileHandleForWriting.fileDescriptor)
        try? stdin.fileHandleForReading.close()
        try? stdout.fileHandleForWriting.close()
        var line = Data()
        while !line.contains(UInt8(ascii: "\n")) {
            let chunk = stdout.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            line.append(chunk)
        }
        guard let port = Int(String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw CocoaError(.fileReadCorruptFile, userInfo: [NSLocalizedDescriptionKey: "the HTTPS receiver did not start"])
        }
        self.port = port
    }

    deinit { try? stdin.fileHandleForWriting.close() }

    var url: String { "https://127.0.0.1:\(port)/hook" }
}

@Suite struct WebhookTLSTests {
    let transport = CurlHTTPTransport(threads: 2)

    func sink(_ url: String, caFile: String? = nil, insecure: Bool = false) -> WebhookSink {
        WebhookSink(
            name: "hook", config: WebhookSinkConfig(url: .url(url), caFile: caFile, insecure: insecure), transport: transport,
            clock: ManualClock())
    }

    @Test func aPrivateCAGivenAsCAFileIsTrusted() async throws {
        let receiver = try await offPool { try HTTPSTestReceiver() }
        try await sink(receiver.url, caFile: receiver.certificatePath).deliver(SinkTestEvents.firing())
    }

    @Test func verificationIsOnByDefault() async throws {
        let receiver = try await offPool { try HTTPSTestReceiver() }
        do {
            try await sink(receiver.url).deliver(SinkTestEvents.firing())
            Issue.record("an unverifiable certificate must not be accepted")
        } catch {
            #expect(error.message.contains("tls") || error.message.contains("certificate"))
        }
    }

    @Test func insecureTurnsVerificationOffOnlyWhenWrittenOut() async throws {
        let receiver = try await offPool { try HTTPSTestReceiver() }
        try await sink(receiver.url, insecure: true).deliver(SinkTestEvents.firing())
    }
}
