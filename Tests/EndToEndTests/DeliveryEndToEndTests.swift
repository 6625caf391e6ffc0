import Foundation
import TestServers
import Testing

/// The real binary, the simulator, one rule notifying a signed webhook and a mailbox
/// behind STARTTLS and AUTH: both deliveries arrive, and the README's verification code
/// accepts the webhook's signature.
@Suite(.serialized) struct DeliveryEndToEndTests {
    @Test func aRuleNotifyingAWebhookAndAnEmailSinkIsDeliveredToBoth() async throws {
        let directory = try temporaryDirectory()
        let scenario = directory.appendingPathComponent("scenario.json")
        try """
            {"seed": 3,
             "ozon_accounts": [{"name": "shop-ozon", "client_id": "100001", "api_key": "k-ozon"}],
             "red_accounts": [{"name": "shop-red", "app_key": "ak", "app_secret": "s-red"}],
             "requests": [
               {"marketplace": "ozon", "account": "100001", "created": "-10m", "deadline": "+40m", "initiator": "CLIENT",
                "reason": "Покупатель передумал\\r\\nBcc: thief@example.com"},
               {"marketplace": "red", "account": "ak", "created": "-5m", "deadline": "+50m", "reason": "用户不想要了"}
             ]}
            """.write(to: scenario, atomically: true, encoding: .utf8)
        let simulator = try await SimulatorProcess(scenario: scenario.path, directory: directory)
        let receiver = try WebhookReceiver()
        let smtp = try await SMTPTestServer.start(security: .starttls, credentials: ("watch", "smtp-pass-123"))
        defer { smtp.stop() }

        try FileManager.default.createDirectory(at: directory.appendingPathComponent("rules"), withIntermediateDirectories: true)
        try """
            rule "within-the-hour" {
              when     remaining <= 1h
              severity critical
              notify   hook, mail
              message  "{{marketplace}} {{order}} auto-approves in {{remaining}}: {{reason}}"
            }
            """.write(to: directory.appendingPathComponent("rules/hour.rules"), atomically: true, encoding: .utf8)
        try """
            state: ./state.sqlite
            rules: [./rules]
            timezone: Europe/Moscow
            sources:
              - {name: ozon, kind: ozon, client_id: "100001", api_key: "k-ozon", base_url: "\(simulator.baseURL)"}
              - {name: red, kind: red, app_key: "ak", app_secret: "s-red", base_url: "\(simulator.baseURL)"}
            sinks:
              - {name: hook, kind: webhook, url: "\(receiver.url)", secret: "${HOOK_SECRET}"}
              - name: mail
                kind: email
                url: "smtp://127.0.0.1:\(smtp.port)"
                ca_file: "\(smtp.certificatePath)"
                username: watch
                password: "${SMTP_PASSWORD}"
                from: "cancelwatch <watch@example.com>"
                to: ["Продавец <owner@example.com>"]
                subject: "[cancelwatch] {{severity}}: {{order}} ({{reason}})"
            """.write(to: directory.appendingPathComponent("cancelwatch.yaml"), atomically: true, encoding: .utf8)

        let once = try await RunningCommand.run(
            ["once", "--config", "cancelwatch.yaml"], directory: directory,
            environment: ["HOOK_SECRET": "hook-secret-xyz", "SMTP_PASSWORD": "smtp-pass-123"])
        #expect(once.status == 0, "once failed: \(once.stderr)")
        #expect(!once.stderr.contains("hook-secret-xyz") && !once.stderr.contains("smtp-pass-123"))

        // The webhook: one signed firing per request.
        let hooks = receiver.acknowledgedReceipts
        #expect(hooks.count == 2)
        #expect(Set(hooks.compactMap(\.order)).count == 2)
        for hook in hooks {
            #expect(hook.event == "firing")
            #expect(hook.headers["idempotency-key"] == hook.id)
            let signature = try #require(hook.headers["x-cancelwatch-signature"])
            let body = hook.body
            // Python runs off the cooperative pool (two threads on this machine).
            #expect(try await offPool { try verifyWithReadmeCode(secret: "hook-secret-xyz", header: signature, body: body) })
            #expect(try await !offPool { try verifyWithReadmeCode(secret: "wrong-secret", header: signature, body: body) })
        }

        // The mailbox: one message per event, subjects in Russian and Chinese decoded exactly,
        // and the CR LF smuggled into the reason never became a header.
        let messages = try smtp.messages()
        #expect(messages.count == 2)
        let raws = messages.map(\.raw)
        let parsed = try await offPool { try raws.map { try parseEmail($0) } }
        let subjects = parsed.map { $0["subject"] ?? "" }
        #expect(subjects.contains { $0.contains("Покупатель передумал") && $0.hasPrefix("[cancelwatch] critical: ") })
        #expect(subjects.contains { $0.contains("用户不想要了") })
        for (message, headers) in zip(messages, parsed) {
            #expect(message.recipients == ["owner@example.com"])
            #expect(headers["bcc"] == nil)
            #expect(headers["to"]?.contains("Продавец") == true)
            #expect(headers["message-id"]?.isEmpty == false)
            #expect(!message.text.replacingOccurrences(of: "\r\n", with: "").contains("\n"), "every line ends in CRLF")
        }
        #expect(!messages.contains { $0.recipients.contains("thief@example.com") })

        // The outbox recorded both deliveries for both sinks: a second run sends nothing again.
        let again = try await RunningCommand.run(
            ["once", "--config", "cancelwatch.yaml"], directory: directory,
            environment: ["HOOK_SECRET": "hook-secret-xyz", "SMTP_PASSWORD": "smtp-pass-123"])
        #expect(again.status == 0)
        #expect(receiver.acknowledgedReceipts.count == 2)
        #expect(try smtp.messages().count == 2)
    }
}

/// Runs the Python verification snippet from README.md, as a receiver would.
func verifyWithReadmeCode(secret: String, header: String, body: String) throws -> Bool {
    let readme = try String(contentsOf: packageRoot().appendingPathComponent("README.md"), encoding: .utf8)
    let section = try #require(readme.range(of: "### Verifying a webhook's signature"))
    let rest = readme[section.upperBound...]
    let start = try #require(rest.range(of: "```python\n"))
    let end = try #require(rest[start.upperBound...].range(of: "```"))
    let code = String(rest[start.upperBound..<end.lowerBound])
    let program = code + """

        import sys
        ok = verify(sys.argv[1].encode(), sys.argv[2], sys.stdin.buffer.read())
        sys.exit(0 if ok else 3)
        """
    let input = Pipe.closeOnExec()
    let process = try ChildProcess(
        executable: "/usr/bin/python3", arguments: ["-c", program, secret, header], environment: ProcessInfo.processInfo.environment,
        standardInput: input.fileHandleForReading.fileDescriptor, standardOutput: 1, standardError: 2)
    try input.fileHandleForReading.close()
    input.fileHandleForWriting.write(Data(body.utf8))
    try input.fileHandleForWriting.close()
    process.waitUntilExit()
    guard process.terminationStatus == 0 || process.terminationStatus == 3 else {
        throw CommandFailure("the README's verification code failed to run (exit \(process.terminationStatus))")
    }
    return process.terminationStatus == 0
}

/// Parses a delivered message with Python's email package (RFC 2047 words decoded).
func parseEmail(_ raw: Data) throws -> [String: String] {
    let script = """
        import email, email.policy, json, sys
        m = email.message_from_bytes(sys.stdin.buffer.read(), policy=email.policy.default)
        print(json.dumps({k.lower(): str(v) for k, v in m.items()}))
        """
    let input = Pipe.closeOnExec()
    let output = Pipe.closeOnExec()
    let process = try ChildProcess(
        executable: "/usr/bin/python3", arguments: ["-c", script], environment: ProcessInfo.processInfo.environment,
        standardInput: input.fileHandleForReading.fileDescriptor, standardOutput: output.fileHandleForWriting.fileDescriptor,
        standardError: 2)
    try input.fileHandleForReading.close()
    try output.fileHandleForWriting.close()
    input.fileHandleForWriting.write(raw)
    try input.fileHandleForWriting.close()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return try #require(try JSONSerialization.jsonObject(with: data) as? [String: String])
}

/// The package's root directory (where README.md is), from this source file's path.
func packageRoot() -> URL {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
}
