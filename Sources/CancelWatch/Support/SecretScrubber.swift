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

    /// The longest error text kept or logged, in bytes: what came from outside (a reply, a
    /// marketplace's message) is cut to this, after scrubbing.
    static let textLimit = 1024

    /// `text` with every secret taken out, then cut to `limit` bytes on a character's
    /// boundary (ending in `…` when cut). A secret that starts before the cut is taken out
    /// whole, never left as a readable prefix; what lies past the cut is never read.
    func scrub(_ text: String, limit: Int = SecretScrubber.textLimit) -> String {
        var text = text
        return text.withUTF8 { scrubbed($0, limit: limit) }
    }

    /// `text` cut as ``scrub(_:limit:)`` cuts, for text already scrubbed where it was made:
    /// what is stored or logged stays bounded whoever built it.
    static func bounded(_ text: String, limit: Int = SecretScrubber.textLimit) -> String {
        SecretScrubber([]).scrub(text, limit: limit)
    }

    /// The body's first `limit` bytes as text, credentials taken out first (as ``scrub(_:limit:)``).
    func excerpt(of body: Data, limit: Int = 160) -> String {
        body.withUnsafeBytes { raw in scrubbed(raw.bindMemory(to: UInt8.self), limit: limit) }
    }

    private func scrubbed(_ bytes: UnsafeBufferPointer<UInt8>, limit: Int) -> String {
        var end = min(bytes.count, max(0, limit))
        // Never inside a UTF-8 sequence: back to the start of the character the cut falls in.
        while end < bytes.count, end > 0, bytes[end] & 0xC0 == 0x80 { end -= 1 }
        let cutSecrets = secretsCutShort(in: bytes, before: end)
        var out: [UInt8] = []
        out.reserveCapacity(end)
        var i = 0
        scan: while i < end {
            for value in values where matches(value, in: bytes, at: i) {
                out.append(contentsOf: Secret.placeholder.utf8)
                i += value.count
                continue scan
            }
            if let cutEnd = cutSecrets[i] {
                out.append(contentsOf: Secret.placeholder.utf8)
                i = cutEnd
                continue scan
            }
            out.append(bytes[i])
            i += 1
        }
        let text = String(decoding: out, as: UTF8.self)
        return bytes.count > i ? text + "…" : text
    }

    /// The start of a secret that someone else cut (curl's error buffer, a reply quoted
    /// elsewhere): at least `partialShortest` of its first bytes right before a `…`. Start to end.
    private func secretsCutShort(in bytes: UnsafeBufferPointer<UInt8>, before end: Int) -> [Int: Int] {
        var found: [Int: Int] = [:]
        let ellipsis = Array("…".utf8)
        guard !values.isEmpty, end >= ellipsis.count else { return found }
        for e in 0..<min(end, bytes.count - ellipsis.count + 1) where bytes[e] == ellipsis[0] {
            guard bytes[e + 1] == ellipsis[1], bytes[e + 2] == ellipsis[2] else { continue }
            for value in values {
                let longest = min(value.count - 1, e)
                guard longest >= Self.partialShortest else { continue }
                for length in stride(from: longest, through: Self.partialShortest, by: -1)
                where matches(Array(value.prefix(length)), in: bytes, at: e - length) {
                    found[e - length] = max(found[e - length] ?? e, e)
                    break
                }
            }
        }
        return found
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
