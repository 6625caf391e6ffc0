import Foundation

/// Takes secrets out of text that may reach a log: error messages and warnings built from
/// what a marketplace or a webhook receiver answered, which may echo a request's
/// credentials, URL token or headers. Matching is on bytes, ASCII case-insensitive;
/// values shorter than `shortest` bytes are left alone (they would blank out ordinary text
/// and protect nothing).
struct SecretScrubber: Sendable {
    let shortest: Int
    /// Longest first, so that a value containing another is taken out whole.
    private(set) var values: [[UInt8]]

    init(_ values: [String], shortest: Int = 3) {
        self.shortest = shortest
        self.values = []
        add(values)
    }

    /// This scrubber, plus the values of `request`'s headers named in `names` (lowercase).
    func including(headersOf request: HTTPRequest, named names: Set<String>) -> SecretScrubber {
        var copy = self
        copy.add(request.headers.filter { names.contains($0.name.lowercased()) }.map(\.value))
        return copy
    }

    private mutating func add(_ more: [String]) {
        var all = Set(values)
        for value in more where value.utf8.count >= shortest { all.insert(Array(value.utf8)) }
        values = all.sorted { $0.count != $1.count ? $0.count > $1.count : $0.lexicographicallyPrecedes($1) }
    }

    /// `text` with every secret taken out, then cut to `limit` bytes (``TextCut``). A secret
    /// that starts before the cut is taken out whole, never left as a readable prefix; what
    /// lies past the cut is never read.
    func scrub(_ text: String, limit: Int = TextCut.errorTextLimit) -> String {
        var text = text
        return text.withUTF8 { scrubbed($0, limit: limit) }
    }

    /// The body's first `limit` bytes as text, credentials taken out first (as ``scrub(_:limit:)``).
    func excerpt(of body: Data, limit: Int = 160) -> String {
        body.withUnsafeBytes { raw in scrubbed(raw.bindMemory(to: UInt8.self), limit: limit) }
    }

    /// Scrubs from the start until the scrubbed text is longer than `limit` (or all is read),
    /// then cuts it with ``TextCut``. A placeholder that starts before the cut is kept whole,
    /// so the text may be longer than `limit` by up to a placeholder.
    private func scrubbed(_ bytes: UnsafeBufferPointer<UInt8>, limit: Int) -> String {
        var pieces: [String] = []
        var raw: [UInt8] = []
        var size = 0
        var keep = limit
        let room = limit - TextCut.marker.utf8.count
        func placeholder() {
            flush()
            pieces.append(Secret.placeholder)
            if size < room { keep = max(keep, size + Secret.placeholder.utf8.count + TextCut.marker.utf8.count) }
            size += Secret.placeholder.utf8.count
        }
        func flush() {
            pieces += String(decoding: raw, as: UTF8.self).unicodeScalars.map(String.init)
            raw.removeAll()
        }
        var i = 0
        scan: while i < bytes.count, size <= keep {
            for value in values where matches(value, in: bytes, at: i) {
                placeholder()
                i += value.count
                continue scan
            }
            if let cutEnd = secretCutShort(in: bytes, at: i) {
                placeholder()
                i = cutEnd
                continue scan
            }
            raw.append(bytes[i])
            size += 1
            i += 1
        }
        flush()
        // Past `limit` the cut falls before the end; a scalar split there is cut off with it.
        return TextCut.joined(pieces, limit: keep)
    }

    /// Where a secret that someone else cut (curl's error buffer, a reply quoted elsewhere)
    /// ends, if one starts at `start`: at least `partialShortest` of its first bytes right
    /// before a `…`, the furthest such `…` taken.
    private func secretCutShort(in bytes: UnsafeBufferPointer<UInt8>, at start: Int) -> Int? {
        let ellipsis = Array(TextCut.marker.utf8)
        var end: Int?
        for value in values {
            var length = 0
            while length < value.count - 1, start + length < bytes.count,
                Self.folded(bytes[start + length]) == Self.folded(value[length])
            {
                length += 1
                if length >= Self.partialShortest, start + length + ellipsis.count <= bytes.count,
                    bytes[start + length] == ellipsis[0], bytes[start + length + 1] == ellipsis[1],
                    bytes[start + length + 2] == ellipsis[2]
                {
                    end = max(end ?? 0, start + length)
                }
            }
        }
        return end
    }

    /// The shortest start of a secret taken out before a `…`.
    static let partialShortest = 4

    private func matches(_ value: [UInt8], in bytes: UnsafeBufferPointer<UInt8>, at start: Int) -> Bool {
        guard start + value.count <= bytes.count else { return false }
        for (offset, byte) in value.enumerated() where Self.folded(bytes[start + offset]) != Self.folded(byte) {
            return false
        }
        return true
    }

    private static func folded(_ byte: UInt8) -> UInt8 {
        byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte
    }
}
