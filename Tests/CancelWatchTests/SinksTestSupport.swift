import CancelWatch
import Foundation
import TestServers

/// Events for sink tests: a fixed instant, an Ozon request with an hour and five minutes left.
enum SinkTestEvents {
    /// 2026-11-23T19:01:00Z
    static let occurredAt = Date(timeIntervalSince1970: 1_795_460_460)

    static func request(reason: String = "Передумал покупать", order: String = "0123-0001-1") -> CancellationRequest {
        CancellationRequest(
            marketplace: .ozon, source: "ozon-main", id: "91001", order: order, state: .pending, rawState: "ON_APPROVAL",
            initiator: "CLIENT", reason: reason, reasonID: "501", createdAt: occurredAt.addingTimeInterval(-7200),
            deadline: occurredAt.addingTimeInterval(3900), raw: ["cancellation_id": 91001, "state": ["state": "ON_APPROVAL"]])
    }

    static func firing(
        id: String = "3f2a9c0d1e4b5a6978c1d2e3f4a5b6c7", severity: Severity = .critical, message: String = "ozon 0123-0001-1 auto-approves in 1h 05m",
        reason: String = "Передумал покупать", order: String = "0123-0001-1", kind: AlertEvent.Kind = .firing
    ) -> AlertEvent {
        AlertEvent(
            id: id, kind: kind, rule: "final-hour", severity: severity, source: "ozon-main", marketplace: .ozon,
            request: request(reason: reason, order: order), occurredAt: occurredAt, message: message, sinks: ["test"])
    }

    static func sourceDown() -> AlertEvent {
        AlertEvent(
            id: "aa00", kind: .sourceDown, rule: "", severity: .critical, source: "red-shop", marketplace: .xiaohongshu,
            request: nil, occurredAt: occurredAt, message: "5 polls failed", sinks: ["test"])
    }
}

/// HMAC-SHA256 computed outside cancelwatch (Python's `hmac`), so signature tests do
/// not check the code against itself.
enum IndependentHMAC {
    static func sha256(key: Data, message: Data) throws -> Data {
        let script = """
            import base64, hashlib, hmac, sys
            key = base64.b64decode(sys.argv[1]); msg = base64.b64decode(sys.argv[2])
            sys.stdout.write(base64.b64encode(hmac.new(key, msg, hashlib.sha256).digest()).decode())
            """
        let output = try runPython(script, arguments: [key.base64EncodedString(), message.base64EncodedString()])
        guard let digest = Data(base64Encoded: output) else { throw CocoaError(.coderInvalidValue) }
        return digest
    }

    static func sha256Hex(key: String, message: String) throws -> String {
        try sha256(key: Data(key.utf8), message: Data(message.utf8)).map { String(format: "%02x", $0) }.joined()
    }
}

/// Runs `/usr/bin/python3 -c script args…` and returns its standard output.
func runPython(_ script: String, arguments: [String] = [], input: Data? = nil) throws -> String {
    try runToEnd("/usr/bin/python3", ["-c", script] + arguments, input: input)
}

/// Runs `executable` with `arguments` and this process's environment, feeds it `input`,
/// and returns its standard output; throws unless it exits 0 (its stderr goes to ours).
func runToEnd(_ executable: String, _ arguments: [String], input: Data? = nil) throws -> String {
    let output = Pipe.closeOnExec()
    let stdin = Pipe.closeOnExec()
    let process = try ChildProcess(
        executable: executable, arguments: arguments, environment: ProcessInfo.processInfo.environment,
        standardInput: stdin.fileHandleForReading.fileDescriptor, standardOutput: output.fileHandleForWriting.fileDescriptor,
        standardError: 2)
    try stdin.fileHandleForReading.close()
    try output.fileHandleForWriting.close()
    if let input { stdin.fileHandleForWriting.write(input) }
    try stdin.fileHandleForWriting.close()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
        throw CocoaError(.executableLoad, userInfo: [NSLocalizedDescriptionKey: "\(executable) exited \(process.terminationStatus)"])
    }
    return String(decoding: data, as: UTF8.self)
}


/// A fresh state file in a temporary directory.
func temporaryStatePath(_ prefix: String) throws -> String {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    return directory.appendingPathComponent("state.sqlite").path
}
