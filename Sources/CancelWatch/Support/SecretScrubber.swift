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

    func scrub(_ text: String) -> String {
        guard !values.isEmpty else { return text }
        return Array(text.utf8).withUnsafeBufferPointer { scrubbed($0, limit: nil) }
    }

    /// The body's first `limit` bytes as text, credentials taken out first: a credential that
    /// starts within the excerpt is replaced whole, never cut into a readable prefix.
    func excerpt(of body: Data, limit: Int = 160) -> String {
        body.withUnsafeBytes { raw in scrubbed(raw.bindMemory(to: UInt8.self), limit: limit) }
    }

    private func scrubbed(_ bytes: UnsafeBufferPointer<UInt8>, limit: Int?) -> String {
        let end = min(bytes.count, limit ?? bytes.count)
        var out: [UInt8] = []
        out.reserveCapacity(end)
        var i = 0
        scan: while i < end {
            for value in values where matches(value, in: bytes, at: i) {
                out.append(contentsOf: Secret.placeholder.utf8)
                i += value.count
                continue scan
            }
            out.append(bytes[i])
            i += 1
        }
        let text = String(decoding: out, as: UTF8.self)
        return limit != nil && bytes.count > i ? text + "…" : text
    }

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
