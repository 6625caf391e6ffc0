import Foundation
import TestServers

/// Headless Chromium driven through the DevTools protocol over `--remote-debugging-pipe`
/// (commands on its descriptor 3, answers and events on 4, each a JSON text ending in NUL),
/// for tests that must sign in, follow links and press buttons as a user would. Its calls
/// block: call them off the cooperative pool (`offPool`).
final class DevToolsPipe: @unchecked Sendable {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    private let child: ChildProcess
    private let commands: FileHandle
    private let condition = NSCondition()
    private var answers: [Int: [String: Any]] = [:]
    private var events: [[String: Any]] = []
    private var ended = false
    private var nextID = 1
    /// The page's session, once ``openPage()`` has attached to it.
    private var session: String?

    init(chromium: String, directory: URL) throws {
        var toChromium: [Int32] = [0, 0]
        var fromChromium: [Int32] = [0, 0]
        guard pipe(&toChromium) == 0, pipe(&fromChromium) == 0 else { throw Failure(description: "pipe: \(errno)") }
        // Above 4, as the child's own 3 and 4 are made from them.
        let childReads = fcntl(toChromium[0], F_DUPFD_CLOEXEC, 10)
        let childWrites = fcntl(fromChromium[1], F_DUPFD_CLOEXEC, 10)
        close(toChromium[0])
        close(fromChromium[1])
        child = try ChildProcess(
            executable: chromium,
            arguments: [
                "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-dev-shm-usage",
                "--remote-debugging-pipe", "--user-data-dir=\(directory.appendingPathComponent("profile-\(UUID().uuidString)").path)",
                "about:blank",
            ], environment: ProcessInfo.processInfo.environment, inherited: [childReads, childWrites])
        close(childReads)
        close(childWrites)
        commands = FileHandle(fileDescriptor: toChromium[1], closeOnDealloc: true)
        let answersFrom = FileHandle(fileDescriptor: fromChromium[0], closeOnDealloc: true)
        Thread.detachNewThread { [self] in read(answersFrom) }
    }

    deinit { stop() }

    /// Ends Chromium.
    func stop() {
        if child.isRunning { child.terminate() }
        child.waitUntilExit()
    }

    private func read(_ handle: FileHandle) {
        var buffer = Data()
        while true {
            let chunk = handle.availableData
            if chunk.isEmpty { break }
            buffer.append(chunk)
            while let end = buffer.firstIndex(of: 0) {
                let message = buffer[buffer.startIndex..<end]
                buffer = Data(buffer[buffer.index(after: end)...])
                guard let object = try? JSONSerialization.jsonObject(with: message) as? [String: Any] else { continue }
                condition.lock()
                if let id = object["id"] as? Int { answers[id] = object } else { events.append(object) }
                condition.broadcast()
                condition.unlock()
            }
        }
        condition.lock()
        ended = true
        condition.broadcast()
        condition.unlock()
    }

    /// Sends one command (to the page's session once there is one) and waits for its answer's `result`.
    @discardableResult
    func call(_ method: String, _ params: [String: Any] = [:], toBrowser: Bool = false, timeout: TimeInterval = 30) throws -> [String: Any] {
        condition.lock()
        let id = nextID
        nextID += 1
        let target = toBrowser ? nil : session
        condition.unlock()
        var message: [String: Any] = ["id": id, "method": method, "params": params]
        if let target { message["sessionId"] = target }
        var data = try JSONSerialization.data(withJSONObject: message)
        data.append(0)
        try commands.write(contentsOf: data)
        let limit = Date().addingTimeInterval(timeout)
        condition.lock()
        defer { condition.unlock() }
        while answers[id] == nil {
            if ended { throw Failure(description: "chromium ended before answering \(method)") }
            guard condition.wait(until: limit) else { throw Failure(description: "no answer to \(method) within \(Int(timeout)) s") }
        }
        let answer = answers.removeValue(forKey: id)!
        if let error = answer["error"] { throw Failure(description: "\(method): \(error)") }
        return answer["result"] as? [String: Any] ?? [:]
    }

    /// How many events have come so far (to wait for one after an action).
    var eventCount: Int {
        condition.lock()
        defer { condition.unlock() }
        return events.count
    }

    /// Waits for an event `method` among those after the first `after`.
    @discardableResult
    func waitForEvent(_ method: String, after: Int, timeout: TimeInterval = 30) throws -> [String: Any] {
        let limit = Date().addingTimeInterval(timeout)
        condition.lock()
        defer { condition.unlock() }
        while true {
            if let found = events.dropFirst(after).first(where: { $0["method"] as? String == method }) { return found }
            if ended { throw Failure(description: "chromium ended before \(method)") }
            guard condition.wait(until: limit) else { throw Failure(description: "no \(method) within \(Int(timeout)) s") }
        }
    }

    /// Opens a page of its own and attaches to it; later calls go to it.
    func openPage() throws {
        let target = try call("Target.createTarget", ["url": "about:blank"], toBrowser: true)
        guard let targetID = target["targetId"] as? String else { throw Failure(description: "no target: \(target)") }
        let attached = try call("Target.attachToTarget", ["targetId": targetID, "flatten": true], toBrowser: true)
        guard let id = attached["sessionId"] as? String else { throw Failure(description: "not attached: \(attached)") }
        condition.lock()
        session = id
        condition.unlock()
        try call("Page.enable")
        try call("Runtime.enable")
    }

    /// Does `action` and waits until the page it leads to has loaded.
    func loading(_ action: () throws -> Void) throws {
        let before = eventCount
        try action()
        try waitForEvent("Page.loadEventFired", after: before)
    }

    func navigate(_ url: String) throws {
        try loading { try call("Page.navigate", ["url": url]) }
    }

    /// The value of `expression` evaluated in the page (as DevTools' console does).
    func evaluate(_ expression: String) throws -> Any? {
        let result = try call("Runtime.evaluate", ["expression": expression, "returnByValue": true])
        if let exception = result["exceptionDetails"] { throw Failure(description: "\(expression): \(exception)") }
        return (result["result"] as? [String: Any])?["value"]
    }

    /// The page's DOM as HTML.
    func html() throws -> String {
        try evaluate("document.documentElement.outerHTML") as? String ?? ""
    }
}
