import Testing

@testable import CancelWatch

/// What a marketplace sends reaches the status page as text: nothing in it can open a tag,
/// end an attribute, or reorder what a reader sees.
@Suite struct HTMLTextTests {
    @Test func aScriptTagIsShownAsText() {
        #expect(HTMLText.escaped("<script>alert(1)</script>") == "&lt;script&gt;alert(1)&lt;/script&gt;")
    }

    @Test func aQuoteCannotEndTheAttributeItIsIn() {
        #expect(HTMLText.escaped(#""><img src=x onerror=alert(1)>"#) == "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;")
        #expect(HTMLText.escaped("it's") == "it&#39;s")
    }

    @Test func anAmpersandIsWrittenAsItsReferenceSoNoEntityIsFormed() {
        #expect(HTMLText.escaped("AT&T &lt; &#60;") == "AT&amp;T &amp;lt; &amp;#60;")
    }

    @Test func controlsBecomeReplacementCharactersAndLineBreaksSpaces() {
        #expect(HTMLText.escaped("a\u{0}b\u{1B}[31mc\u{7F}d\u{85}e") == "a\u{FFFD}b\u{FFFD}[31mc\u{FFFD}d\u{FFFD}e")
        #expect(HTMLText.escaped("one\r\ntwo\tthree") == "one  two three")
        #expect(HTMLText.escaped("gpj\u{202E}.exe") == "gpj\u{FFFD}.exe")
    }

    @Test func invalidUTF8FromTheWireArrivesAsReplacementCharactersAndStaysSo() {
        let fromTheWire = String(decoding: [0x3C, 0xFF, 0xFE, 0x3E] as [UInt8], as: UTF8.self)
        #expect(HTMLText.escaped(fromTheWire) == "&lt;\u{FFFD}\u{FFFD}&gt;")
    }

    @Test func plainTextAndOtherScriptsPassUnchanged() {
        for text in ["Передумал покупать", "不想要了", "order 1-2-3 (x2)", ""] { #expect(HTMLText.escaped(text) == text) }
    }
}
