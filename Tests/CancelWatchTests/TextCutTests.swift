import Foundation
import Testing

@testable import CancelWatch

/// Every text cancelwatch bounds is cut one way: to a number of UTF-8 bytes, never inside
/// a scalar, ending in `…` and no longer than the limit.
@Suite struct TextCutTests {
    @Test func textWithinTheLimitIsLeftAsItIs() {
        #expect(TextCut.cut("abc", limit: 3) == "abc")
        #expect(TextCut.cut("", limit: 0) == "")
    }

    @Test(arguments: [0, 1, 3, 4, 5, 10, 64])
    func aCutKeepsWholeScalarsEndsInTheMarkerAndFitsTheLimit(_ limit: Int) {
        for filler in ["a", "Ж", "€", "😀"] {
            for shift in 0..<4 {
                let text = String(repeating: "a", count: shift) + String(repeating: filler, count: 100)
                let cut = TextCut.cut(text, limit: limit)
                #expect(cut.utf8.count <= max(limit, TextCut.marker.utf8.count), "\(filler) shifted \(shift)")
                #expect(cut.hasSuffix(TextCut.marker))
                #expect(text.hasPrefix(String(cut.dropLast())))
                // Nothing more would have fit beside the marker.
                #expect(cut.utf8.count + filler.utf8.count > limit || limit < TextCut.marker.utf8.count)
            }
        }
    }

    /// The status view, log lines, the scrubber and chat messages end a cut text alike.
    @Test func everyCutTextEndsTheSameWay() {
        let text = String(repeating: "é", count: 100)
        let expected = TextCut.cut(text, limit: 20)
        #expect(expected == String(repeating: "é", count: 8) + "…")
        #expect(TerminalText.escaped(text, limit: 20) == expected)
        #expect(SecretScrubber(["secret"]).scrub(text, limit: 20) == expected)
        let long = String(repeating: "é", count: LogLine.messageLimit)
        #expect(LogLine.json(at: Date(), level: "info", label: "l", message: long, metadata: [:]).contains(
            String(repeating: "é", count: LogLine.messageLimit / 2 - 2) + "…\""))
    }

    @Test func anEscapeIsKeptWholeOrNotAtAll() {
        #expect(TerminalText.escaped("ab\u{1B}", limit: 8) == "ab\\u{1B}")
        #expect(TerminalText.escaped("ab\u{1B}c", limit: 8) == "ab…")
    }
}
