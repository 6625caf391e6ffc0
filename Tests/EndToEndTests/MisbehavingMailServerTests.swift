import Foundation
import Testing

/// The real binary against SMTP servers that misbehave on purpose: one that accepts a
/// connection and never says a word, and one whose refusal carries a credential, terminal
/// escapes, a forged log line and a megabyte of text. A mail server must never hold back
/// another sink's alerts, stop the watcher, or write what it likes into the logs and the
/// state file.
@Suite(.serialized) struct MisbehavingMailServerTests {
    private static let password = "smtp-pass-5e7a91"

    /// `notify hook, mail` and an email sink pointing at `port`.
    private func setup(mailPort: Int) throws -> WatchSetup {
        var options = WatchOptions()
        options.rules = pendingRule.replacingOccurrences(of: "notify   hook", with: "notify   hook, mail")
        options.extraSinks = """
              - {name: mail, kind: email, url: "smtp://127.0.0.1:\(mailPort)", tls: none, timeout: 2s,
                 username: watch, password: "${SMTP_PASSWORD}", from: "cw <watch@example.com>", to: [owner@example.com],
                 retry: {initial_delay: 300ms, max_delay: 2s}}
            """
        return try WatchSetup(ozon: 2, red: 1, options: options)
    }

    @Test func aMailServerThatNeverAnswersHoldsBackNoWebhookAlertAndIsRetried() async throws {
        let smtp = try FakeMailServer(.silent)
        defer { smtp.stop() }
        let setup = try setup(mailPort: smtp.port)
        defer { setup.shutdown() }
        let run = try setup.startRun(environment: ["SMTP_PASSWORD": Self.password])

        let due = try setup.dueFirings()
        try await eventually("every firing at the webhook while the mail server is silent") {
            due.isSubset(of: Set(setup.receiver.acknowledgedReceipts.map(\.id)))
        }
        // Each mail attempt ends at the sink's timeout and is tried again (a new connection):
        // the sink is not stuck on the first one.
        try await eventually("a second connection to the silent mail server") { smtp.connections >= 2 }
        #expect(run.process.isRunning)
        let mail = try setup.outbox().filter { $0.sink == "mail" }
        #expect(!mail.isEmpty && mail.allSatisfy { $0.status == "pending" }, "\(mail)")
        #expect(!run.stderr.contains(Self.password))
    }

    @Test func aRefusalCarryingEscapesAndAForgedLineIsStoredScrubbedAndLoggedClean() async throws {
        let smtp = try FakeMailServer(.hostileRefusal(echo: Self.password))
        defer { smtp.stop() }
        let setup = try setup(mailPort: smtp.port)
        defer { setup.shutdown() }
        let run = try setup.startRun(environment: ["SMTP_PASSWORD": Self.password])

        var errors: [String] = []
        try await eventually("the mail sink's deliveries recorded as failed, with their error") {
            errors = try StateFileReader.rows(
                setup.statePath, "SELECT last_error FROM outbox WHERE sink = 'mail' AND last_error IS NOT NULL"
            ).map { $0[0] }
            return !errors.isEmpty
        }
        for error in errors {
            #expect(error.utf8.count <= 4096, "last_error holds \(error.utf8.count) bytes")
            #expect(!error.contains(Self.password))
        }
        // Logged too, as lines of their own making only.
        try await eventually("the refusal in the log") { run.stderr.contains("5.7.1") }
        let stderr = run.stderr
        #expect(!stderr.contains(Self.password))
        #expect(!stderr.contains("\u{1B}") && !stderr.contains("\u{202E}"))
        #expect(!stderr.split(separator: "\n").contains { $0.hasPrefix("all sources healthy") })
        #expect(stderr.utf8.count < 1_000_000, "stderr holds \(stderr.utf8.count) bytes")
        #expect(run.process.isRunning)
    }
}

/// A fake SMTP server in Python (`/usr/bin/python3`), on 127.0.0.1 with an ephemeral port;
/// it counts connections and exits when the test lets go of it (stdin closes).
final class FakeMailServer: @unchecked Sendable {
    enum Behaviour {
        /// Accepts connections and never sends a byte.
        case silent
        /// Greets and accepts everything up to RCPT, which it refuses with `echo`, an ESC
        /// sequence, a CR LF and a forged log line, U+202E, and a megabyte of text.
        case hostileRefusal(echo: String)
    }

    let port: Int
    private let process = Process()
    private let stdin = Pipe()
    private let directory: URL

    init(_ behaviour: Behaviour) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("cw-fake-smtp-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let script = directory.appendingPathComponent("smtp.py")
        let mode: String
        switch behaviour {
        case .silent: mode = "silent"
        case .hostileRefusal(let echo): mode = "hostile:" + echo
        }
        try Self.script.write(to: script, atomically: true, encoding: .utf8)
        let portFile = directory.appendingPathComponent("port")
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = [script.path, mode, portFile.path, directory.appendingPathComponent("connections").path]
        process.standardInput = stdin
        try process.run()
        var port = 0
        for _ in 0..<200 {
            if let text = try? String(contentsOf: portFile, encoding: .utf8), let value = Int(text) {
                port = value
                break
            }
            Thread.sleep(forTimeInterval: 0.05)
        }
        guard port > 0 else {
            process.terminate()
            throw CommandFailure("the fake mail server did not start")
        }
        self.port = port
    }

    /// Connections accepted so far.
    var connections: Int {
        let text = (try? String(contentsOf: directory.appendingPathComponent("connections"), encoding: .utf8)) ?? ""
        return text.count
    }

    func stop() {
        try? stdin.fileHandleForWriting.close()
        process.waitUntilExit()
        try? FileManager.default.removeItem(at: directory)
    }

    private static let script = #"""
        import os, socket, sys, threading
        mode, port_file, count_file = sys.argv[1], sys.argv[2], sys.argv[3]
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        lock = threading.Lock()

        def serve(conn):
            with lock:
                with open(count_file, "a") as f:
                    f.write("x")
            if mode == "silent":
                try:
                    conn.recv(1)  # until the client gives up
                except OSError:
                    pass
                conn.close()
                return
            echo = mode.split(":", 1)[1]
            f = conn.makefile("rb")
            def send(line):
                conn.sendall(line.encode() + b"\r\n")
            try:
                send("220 fake ESMTP")
                while True:
                    line = f.readline()
                    if not line:
                        break
                    verb = line[:4].upper()
                    if verb in (b"EHLO", b"HELO"):
                        send("250-fake")
                        send("250 AUTH PLAIN")
                    elif verb == b"AUTH":
                        if len(line.split()) < 3:
                            send("334 ")
                            f.readline()
                        send("235 2.7.0 ok")
                    elif verb == b"MAIL":
                        send("250 2.1.0 ok")
                    elif verb == b"RCPT":
                        hostile = ("550 5.7.1 refused " + echo + " \x1b[2J\x1b[31m\u202e"
                                   + "\r\nall sources healthy\n" + "x" * (1 << 20))
                        conn.sendall(hostile.encode() + b"\r\n")
                    elif verb == b"QUIT":
                        send("221 bye")
                        break
                    else:
                        send("250 ok")
            except OSError:
                pass
            conn.close()

        def accept():
            while True:
                conn, _ = server.accept()
                threading.Thread(target=serve, args=(conn,), daemon=True).start()

        threading.Thread(target=accept, daemon=True).start()
        with open(port_file + ".tmp", "w") as f:
            f.write(str(server.getsockname()[1]))
        os.rename(port_file + ".tmp", port_file)
        sys.stdin.read()
        """#
}
