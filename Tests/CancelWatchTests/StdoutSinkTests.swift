import CancelWatch
import Foundation
import Testing

/// Collects what a stdout sink writes.
final class CapturedLines: @unchecked Sendable {
    private let lock = NSLock()
    private var chunks: [String] = []
    var text: String { lock.withLock { chunks.joined() } }
    var writes: [String] { lock.withLock { chunks } }
    var output: StdoutSink.Output { .lines { [self] chunk in lock.withLock { chunks.append(chunk) } } }
}

@Suite struct StdoutSinkTests {
    @Test func textFormatPrintsOneReadableLinePerEvent() async throws {
        let captured = CapturedLines()
        let sink = StdoutSink(name: "console", format: .text, output: captured.output)
        try await sink.deliver(SinkTestEvents.firing())
        #expect(
            captured.text
                == "2026-11-23T19:01:00Z CRITICAL firing final-hour ozon-main 0123-0001-1 (1h 05m left): ozon 0123-0001-1 auto-approves in 1h 05m\n"
        )
    }

    @Test func textFormatShowsTimesInTheConfiguredZone() async throws {
        let captured = CapturedLines()
        let sink = StdoutSink(name: "console", timeZone: TimeZone(identifier: "Europe/Moscow")!, output: captured.output)
        try await sink.deliver(SinkTestEvents.firing())
        #expect(captured.text.hasPrefix("2026-11-23T22:01:00+03:00 CRITICAL firing"))
    }

    @Test func textFormatNamesTheOutcomeAndSourceEvents() async throws {
        let captured = CapturedLines()
        let sink = StdoutSink(name: "console", output: captured.output)
        var resolved = SinkTestEvents.firing(severity: .info, message: "approved by the seller", kind: .resolved)
        resolved.outcome = .approved
        try await sink.deliver(resolved)
        try await sink.deliver(SinkTestEvents.sourceDown())
        #expect(
            captured.writes == [
                "2026-11-23T19:01:00Z INFO resolved final-hour ozon-main 0123-0001-1 (approved): approved by the seller\n",
                "2026-11-23T19:01:00Z CRITICAL source_down red-shop: 5 polls failed\n",
            ])
    }

    @Test func marketplaceTextCannotBreakTheLineOrSendEscapes() async throws {
        let captured = CapturedLines()
        let sink = StdoutSink(name: "console", output: captured.output)
        try await sink.deliver(SinkTestEvents.firing(message: "line one\r\nline two \u{1B}[31mred", order: "A\nB"))
        let text = captured.text
        #expect(text.filter { $0 == "\n" || $0 == "\r\n" }.count == 1)
        #expect(text.hasSuffix("\n"))
        #expect(!text.contains("\u{1B}"))
        #expect(text.contains("A B (1h 05m left): line one line two [31mred"))
    }

    @Test func noColourUnlessTheOutputIsATerminal() async throws {
        let captured = CapturedLines()
        #expect(StdoutSink(name: "console", output: captured.output).colour == false)
        // A pipe is not a terminal.
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        defer {
            close(fds[0])
            close(fds[1])
        }
        let piped = StdoutSink(name: "console", output: .fileDescriptor(fds[1]))
        #expect(piped.colour == false)
        try await piped.deliver(SinkTestEvents.firing())
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = read(fds[0], &buffer, buffer.count)
        let line = String(decoding: buffer.prefix(max(0, count)), as: UTF8.self)
        #expect(line.hasPrefix("2026-11-23T19:01:00Z CRITICAL firing final-hour"))
        #expect(!line.contains("\u{1B}"))
    }

    @Test func colourMarksTheSeverityWhenAskedFor() async throws {
        let captured = CapturedLines()
        let sink = StdoutSink(name: "console", output: captured.output, colour: true)
        try await sink.deliver(SinkTestEvents.firing())
        #expect(captured.text.hasPrefix("2026-11-23T19:01:00Z \u{1B}[1;31mCRITICAL\u{1B}[0m firing"))
    }

    @Test func jsonFormatPrintsTheWebhookBodyOnePerLine() async throws {
        let captured = CapturedLines()
        let sink = StdoutSink(name: "console", format: .json, output: captured.output)
        let first = SinkTestEvents.firing(message: "two\nlines")
        try await sink.deliver(first)
        try await sink.deliver(SinkTestEvents.sourceDown())
        let lines = captured.text.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.count == 3 && lines[2].isEmpty)
        #expect(String(lines[0]) == first.webhookBody.serialized())
        let parsed = try JSONParser.parse(Data(lines[0].utf8))
        #expect(parsed["id"]?.stringValue == first.id)
        #expect(parsed["message"]?.stringValue == "two\nlines")
        #expect(parsed["remaining_seconds"] == .integer(3900))
        #expect(try JSONParser.parse(Data(lines[1].utf8))["event"]?.stringValue == "source_down")
    }

    @Test func concurrentEventsNeverInterleaveWithinALine() async throws {
        let captured = CapturedLines()
        let sink = StdoutSink(name: "console", format: .json, output: captured.output)
        await withTaskGroup(of: Void.self) { group in
            for i in 0..<50 {
                group.addTask { try? await sink.deliver(SinkTestEvents.firing(id: "event-\(i)")) }
            }
        }
        let writes = captured.writes
        #expect(writes.count == 50)
        #expect(writes.allSatisfy { $0.hasSuffix("}\n") && $0.dropLast().firstIndex(of: "\n") == nil })
        #expect(Set(writes.compactMap { try? JSONParser.parse(Data($0.utf8))["id"]?.stringValue }).count == 50)
    }

    @Test func theFactoryBuildsAStdoutSinkWithTheStandardRetryPolicy() async throws {
        let captured = CapturedLines()
        let config = SinkConfig(name: "console", kind: .stdout(StdoutSinkConfig(format: .json)))
        let factory = SinkFactory(
            transport: CurlHTTPTransport(threads: 1), smtp: CurlSMTPTransport(), stdout: captured.output)
        let route = factory.makeRoute(config)
        #expect(route.sink.name == "console")
        #expect(route.retry == .standard)
        try await route.sink.deliver(SinkTestEvents.firing())
        #expect(captured.text.hasPrefix("{\"actor\":null,\"deadline\":"))
    }
}
