@testable import CancelWatch
import Foundation
import Testing

/// A log line is one line whatever text it carries (the end-to-end attack is in
/// EndToEndTests/LogForgeryTests.swift): controls and bidirectional controls never pass
/// raw, JSON stays valid, and a huge text is cut.
@Suite struct LogLineForgeryTests {
    static let date = Date(timeIntervalSince1970: 1_796_000_000)
    static let forged = "bad\u{1B}[2K\r\n2026-12-04T00:00:00Z info all sources healthy \u{202E}txt\u{9B}31m\u{2028}end"

    static func raw(_ text: String) -> [UInt32] {
        text.unicodeScalars.dropLast().map(\.value).filter {
            $0 < 0x20 || (0x7F..<0xA0).contains($0) || $0 == 0x2028 || [0x202E, 0x2066, 0x200F, 0x061C].contains($0)
        }
    }

    @Test func aTextLineEscapesControlsInTheMessageAndInMetadataKeysAndValues() {
        let line = LogLine.text(at: Self.date, level: "warning", message: Self.forged, metadata: ["error\u{202E}": Self.forged, "source": "ozon"])
        #expect(line.hasSuffix("\n"))
        #expect(Self.raw(line).isEmpty, "\(Self.raw(line))")
        #expect(line.contains(#"bad\u{1B}[2K\r\n2026-12-04T00:00:00Z info all sources healthy \u{202E}txt\u{9B}31m\u{2028}end"#))
        #expect(line.contains(#"error\u{202E}=bad\u{1B}"#))
        #expect(line.contains(" source=ozon]"))
    }

    @Test func aJSONLineIsOneValidObjectThatKeepsTheTextWithNoRawControls() throws {
        let line = LogLine.json(
            at: Self.date, level: "warning", label: "cancelwatch", message: Self.forged, metadata: ["error": Self.forged, "msg": "forged"])
        #expect(line.hasSuffix("\n") && line.dropLast().allSatisfy { $0 != "\n" })
        #expect(Self.raw(line).isEmpty, "\(Self.raw(line))")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(object["msg"] as? String == Self.forged, "a metadata key cannot replace the message")
        #expect(object["error"] as? String == Self.forged)
        #expect(object["level"] as? String == "warning")
    }

    @Test(arguments: ["text", "json"])
    func aFiveMegabyteTextIsCut(_ format: String) throws {
        let huge = String(repeating: "é", count: 2_500_000) + "\u{1B}"
        let line =
            format == "text"
            ? LogLine.text(at: Self.date, level: "error", message: huge, metadata: ["error": huge])
            : LogLine.json(at: Self.date, level: "error", label: "cancelwatch", message: huge, metadata: ["error": huge])
        #expect(line.utf8.count < LogLine.messageLimit + LogLine.valueLimit + 200, "\(line.utf8.count) bytes")
        #expect(line.contains("é…"))
        if format == "json" { #expect(try JSONSerialization.jsonObject(with: Data(line.utf8)) is [String: Any]) }
    }

    @Test func anEscapeIsNeverCutInHalf() {
        let text = String(repeating: "a", count: 9) + "\u{1B}" + "tail"
        let cut = TerminalText.escaped(text, limit: 12)
        #expect(cut == "aaaaaaaaa…")
    }

    @Test func singleLineRemovesBidirectionalControlsAndFlattensTheRest() {
        #expect(TerminalText.singleLine("a\u{202E}b\u{2066}c\u{200F}d\u{061C}e\r\n\u{1B}f\u{9B}g") == "abcde f g")
    }

    @Test func stdoutJSONLinesCarryBidirectionalAndC1ControlsAsEscapes() async throws {
        let captured = CapturedLines()
        let sink = StdoutSink(name: "console", format: .json, output: captured.output)
        try await sink.deliver(SinkTestEvents.firing(message: "pay \u{202E}txt\u{9B}31m"))
        #expect(Self.raw(captured.text).isEmpty, "\(Self.raw(captured.text))")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(captured.text.utf8)) as? [String: Any])
        #expect(object["message"] as? String == "pay \u{202E}txt\u{9B}31m")
    }
}
