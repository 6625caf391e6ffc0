import Foundation

/// Which parts of a request's raw object something reads: the `raw.a.b` paths of the
/// rules, known when they are compiled. What is kept in memory for every tracked request
/// is the raw object pruned to these paths (usually none); the whole object lives in the
/// state file, where events read it.
public struct RawPaths: Sendable, Hashable, CustomStringConvertible {
    /// Sorted, without duplicates and without a path that another path is a prefix of
    /// (the shorter one keeps the whole subtree). Nil: the whole object.
    let paths: [[String]]?

    /// The whole object (what something that does not say what it reads gets).
    public static let everything = RawPaths(paths: nil)
    /// Nothing of it.
    public static let none = RawPaths(paths: [])

    private init(paths: [[String]]?) { self.paths = paths }

    /// These paths (`["a", "b"]` for `raw.a.b`). An empty path means the whole object.
    public init(_ paths: some Sequence<[String]>) {
        let all = Set(paths)
        if all.contains([]) {
            self.paths = nil
            return
        }
        // A path under another one is already kept by it.
        let sorted = all.sorted { $0.count != $1.count ? $0.count < $1.count : $0.lexicographicallyPrecedes($1) }
        var kept: [[String]] = []
        for path in sorted where !kept.contains(where: { path.starts(with: $0) }) { kept.append(path) }
        self.paths = kept.sorted { $0.lexicographicallyPrecedes($1) }
    }

    public var isEverything: Bool { paths == nil }
    public var isEmpty: Bool { paths?.isEmpty == true }

    /// Both sets of paths.
    public func union(_ other: RawPaths) -> RawPaths {
        guard let mine = paths, let theirs = other.paths else { return .everything }
        return RawPaths(mine + theirs)
    }

    /// Whether an object pruned to these paths answers every path of `other` as the whole object would.
    public func covers(_ other: RawPaths) -> Bool {
        guard let mine = paths else { return true }
        guard let theirs = other.paths else { return false }
        return theirs.allSatisfy { path in mine.contains { path.starts(with: $0) } }
    }

    /// `raw` reduced to these paths: for each of them `value(atPath:)` gives what it gives
    /// on `raw` (nil where `raw` has nothing), and nothing else is kept. Arrays on the way
    /// keep their indexes (earlier elements become null).
    public func prune(_ raw: JSONValue) -> JSONValue {
        guard let paths else { return raw }
        switch raw {
        case .object, .array: break
        default: return raw  // a scalar has no paths to prune
        }
        var result: JSONValue = raw.isArray ? .array([]) : .object([:])
        for path in paths {
            guard let value = raw.value(atPath: path) else { continue }
            Self.insert(value, at: path[...], into: &result, from: raw)
        }
        return result
    }

    /// Puts `value` at `path` in `node`, making the containers `source` has on the way.
    private static func insert(_ value: JSONValue, at path: ArraySlice<String>, into node: inout JSONValue, from source: JSONValue) {
        guard let component = path.first else {
            node = value
            return
        }
        let rest = path.dropFirst()
        switch source {
        case .object(let members):
            guard let child = members[component] else { return }
            var own: [String: JSONValue]
            if case .object(let existing) = node { own = existing } else { own = [:] }
            node = .null  // drop the reference so that `own` is not copied
            var next = own[component] ?? (rest.isEmpty ? .null : (child.isArray ? .array([]) : .object([:])))
            insert(value, at: rest, into: &next, from: child)
            own[component] = next
            node = .object(own)
        case .array(let items):
            guard let index = Int(component), items.indices.contains(index) else { return }
            let child = items[index]
            var own: [JSONValue]
            if case .array(let existing) = node { own = existing } else { own = [] }
            node = .null
            while own.count <= index { own.append(.null) }
            var next = own[index]
            if !rest.isEmpty, !next.isContainer { next = child.isArray ? .array([]) : .object([:]) }
            insert(value, at: rest, into: &next, from: child)
            own[index] = next
            node = .array(own)
        default:
            return
        }
    }

    public var description: String {
        guard let paths else { return "raw" }
        return paths.isEmpty ? "nothing" : paths.map { "raw." + $0.joined(separator: ".") }.joined(separator: ", ")
    }
}

extension JSONValue {
    var isArray: Bool {
        if case .array = self { return true }
        return false
    }

    var isContainer: Bool {
        switch self {
        case .array, .object: return true
        default: return false
        }
    }
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

    var value: UInt64 {
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
