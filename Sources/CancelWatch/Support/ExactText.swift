import Foundation

/// A string compared and hashed by its bytes: interning must give back exactly the
/// bytes the marketplace sent (Swift's `==` takes canonically equivalent strings as equal),
/// and ids are told apart by their bytes too.
struct ExactText: Hashable, Sendable {
    let text: String
    init(_ text: String) { self.text = text }

    static func == (a: ExactText, b: ExactText) -> Bool { sameBytes(a.text, b.text) }

    func hash(into hasher: inout Hasher) {
        // The fast digest of the bytes, then one word for the seeded hasher (cheaper than
        // feeding it every byte; the texts are the marketplaces' ids and values).
        hasher.combine(FastDigest.of(text))
    }
}

/// Whether two strings have the same UTF-8 bytes.
@inline(__always)
func sameBytes(_ a: String, _ b: String) -> Bool {
    let a8 = a.utf8
    let b8 = b.utf8
    guard a8.count == b8.count else { return false }
    let fast: Bool? = a8.withContiguousStorageIfAvailable { x in
        b8.withContiguousStorageIfAvailable { y in
            x.count == 0 || x.baseAddress == y.baseAddress || memcmp(x.baseAddress!, y.baseAddress!, x.count) == 0
        }
    } ?? nil
    return fast ?? a8.elementsEqual(b8)
}

/// A fast 64-bit digest of words and bytes (multiply-rotate mixing, a splitmix finish).
struct FastDigest {
    private var state: UInt64 = 0x243F_6A88_85A3_08D3

    @inline(__always)
    mutating func add(_ word: UInt64) { state = Self.mix(state, word) }

    @inline(__always)
    private static func mix(_ state: UInt64, _ word: UInt64) -> UInt64 {
        let x = state ^ (word &* 0x9E37_79B9_7F4A_7C15)
        return ((x << 27) | (x >> 37)) &* 0xBF58_476D_1CE4_E5B9 &+ 0x94D0_49BB_1331_11EB
    }

    /// The string's UTF-8 bytes and its length.
    mutating func add(_ text: String) {
        let done: Void? = text.utf8.withContiguousStorageIfAvailable { add(bytes: UnsafeRawBufferPointer($0)) }
        if done == nil {
            var copy = text
            copy.withUTF8 { add(bytes: UnsafeRawBufferPointer($0)) }
        }
    }

    @inline(__always)
    mutating func add(bytes: UnsafeRawBufferPointer) {
        let n = bytes.count
        var i = 0
        if n >= 64 {
            // Four independent lanes: the mixing is a chain of multiplies, and four chains run
            // side by side (every listed object's text is hashed on every poll).
            var b = state ^ 0x9E37_79B9_7F4A_7C15
            var c = state ^ 0xBF58_476D_1CE4_E5B9
            var d = state ^ 0x94D0_49BB_1331_11EB
            while i + 32 <= n {
                add(bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self))
                b = Self.mix(b, bytes.loadUnaligned(fromByteOffset: i + 8, as: UInt64.self))
                c = Self.mix(c, bytes.loadUnaligned(fromByteOffset: i + 16, as: UInt64.self))
                d = Self.mix(d, bytes.loadUnaligned(fromByteOffset: i + 24, as: UInt64.self))
                i += 32
            }
            add(b)
            add(c)
            add(d)
        }
        while i + 8 <= n {
            add(bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self))
            i += 8
        }
        var tail: UInt64 = UInt64(n) << 56
        let rest = n - i
        if rest > 0 {
            if n >= 8 {
                // The last 8 bytes in one load; the ones already added shifted out.
                tail |= bytes.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self) >> UInt64(8 * (8 - rest))
            } else {
                var shift: UInt64 = 0
                while i < n {
                    tail |= UInt64(bytes[i]) << shift
                    shift += 8
                    i += 1
                }
            }
        }
        add(tail)
    }

    /// The digest of `text`'s bytes and length.
    @inline(__always)
    static func of(_ text: String) -> UInt64 {
        var digest = FastDigest()
        digest.add(text)
        return digest.value
    }

    /// The digest of two texts, one after the other (a request's source and id).
    @inline(__always)
    static func of(_ first: String, _ second: String) -> UInt64 {
        var digest = FastDigest()
        digest.add(first)
        digest.add(second)
        return digest.value
    }

    var value: UInt64 {
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// A set of strings told apart by their bytes (as `ExactText`), for the ids one listing
/// has seen: open addressing over the fast digest, no seeded hasher per lookup (a poll
/// checks every listed id once). Only grows: a listing's set lives for one poll. The
/// digest is not seeded: ids made to collide would slow it (they come from the
/// marketplace's own authenticated answers).
struct TextSet {
    private var texts: [String] = []
    private var digests: [UInt64] = []
    /// 0: empty; otherwise the high 32 bits of the digest and the text's index + 1.
    private var slots: [UInt64]

    init() {
        slots = [UInt64](repeating: 0, count: 16)
    }

    var count: Int { texts.count }

    func contains(_ text: String) -> Bool {
        find(text, digest: FastDigest.of(text)).found
    }

    /// Adds `text`; false when it was there already.
    @discardableResult
    mutating func insert(_ text: String) -> Bool {
        let digest = FastDigest.of(text)
        let (found, at) = find(text, digest: digest)
        if found { return false }
        texts.append(text)
        digests.append(digest)
        slots[at] = (digest & Self.tagMask) | UInt64(texts.count)
        if texts.count * 2 > slots.count { grow() }
        return true
    }

    private static let tagMask: UInt64 = 0xFFFF_FFFF_0000_0000

    private func find(_ text: String, digest: UInt64) -> (found: Bool, at: Int) {
        let mask = slots.count - 1
        let tag = digest & Self.tagMask
        var i = Int(truncatingIfNeeded: digest) & mask
        while true {
            let slot = slots[i]
            if slot == 0 { return (false, i) }
            if slot & Self.tagMask == tag && sameBytes(texts[Int(truncatingIfNeeded: slot & 0xFFFF_FFFF) - 1], text) {
                return (true, i)
            }
            i = (i + 1) & mask
        }
    }

    private mutating func grow() {
        slots = [UInt64](repeating: 0, count: slots.count * 2)
        let mask = slots.count - 1
        for (index, digest) in digests.enumerated() {
            var i = Int(truncatingIfNeeded: digest) & mask
            while slots[i] != 0 { i = (i + 1) & mask }
            slots[i] = (digest & Self.tagMask) | UInt64(index + 1)
        }
    }
}
