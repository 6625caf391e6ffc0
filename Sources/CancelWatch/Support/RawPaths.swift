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
