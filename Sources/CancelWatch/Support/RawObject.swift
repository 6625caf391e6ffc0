import Foundation

/// A marketplace's own object for a request: the JSON text it sent (as a list page's
/// bytes held it, checked when the page was read), or a value built in code (tests,
/// `cancelwatch test`, a state file's row read whole).
///
/// Kept as text, the object costs no tree of dictionaries: a rule's `raw.a.b` is found
/// by walking the text, the change fingerprint is taken from the text, and the state file
/// stores the bytes as they came. The value is built only when something needs all of it
/// (an event's body).
public struct RawObject: Sendable, CustomStringConvertible {
    enum Storage: Sendable {
        case value(JSONValue)
        /// Exactly one JSON value that `JSONParser` reads (checked before it was stored).
        case text([UInt8])
        /// One JSON object, checked as `text` is, as a stretch of the answer it came in (a
        /// list page's items share their page's bytes instead of each copying its own).
        case slice(AnswerBytes, start: UInt32, count: UInt32)
    }

    let storage: Storage
    /// The change fingerprint with the marketplace's own changing members left out
    /// (`Marketplace.volatileRawKeys`), when the client that read the text took it.
    let changeFingerprint: UInt64?

    public init(_ value: JSONValue) {
        storage = .value(value)
        changeFingerprint = nil
    }

    /// `text`, which the caller has read as one JSON value with `JSONParser.Reader`, and
    /// its fingerprint if the caller took it.
    init(checkedText text: [UInt8], changeFingerprint: UInt64? = nil) {
        storage = .text(text)
        self.changeFingerprint = changeFingerprint
    }

    /// `range` of `answer`, which the caller has read as one JSON object, and its fingerprint
    /// if the caller took it.
    init(checkedText answer: AnswerBytes, _ range: Range<Int>, changeFingerprint: UInt64? = nil) {
        assert(answer.withBytes { $0[range.lowerBound] } == UInt8(ascii: "{"), "a stretch of an answer is an object")
        storage = .slice(answer, start: UInt32(range.lowerBound), count: UInt32(range.count))
        self.changeFingerprint = changeFingerprint
    }

    /// The same object holding its own bytes: a stretch of an answer is copied out, so that
    /// a value kept long (an event waiting for its sink) does not keep its whole page.
    func owningItsBytes() -> RawObject {
        guard case .slice = storage else { return self }
        return RawObject(checkedText: jsonBytes, changeFingerprint: changeFingerprint)
    }

    /// Whether the bytes are a stretch of an answer (shared with the page's other items).
    var isSharedText: Bool {
        if case .slice = storage { return true }
        return false
    }

    /// Runs `body` on the text, when the object is kept as text.
    @inline(__always)
    func withText<T>(_ body: (UnsafeBufferPointer<UInt8>) throws -> T) rethrows -> T? {
        switch storage {
        case .value: return nil
        case .text(let text): return try text.withUnsafeBufferPointer(body)
        case .slice(let answer, let start, let count):
            return try answer.withBytes { bytes in
                try body(UnsafeBufferPointer(rebasing: bytes[Int(start)..<Int(start) + Int(count)]))
            }
        }
    }

    /// `text` if it is one JSON value.
    public init(json text: [UInt8]) throws(JSONParseError) {
        let checked: Result<Void, JSONParseError> = text.withUnsafeBufferPointer { buffer in
            Result { () throws(JSONParseError) in try JSONParser.validate(buffer) }
        }
        try checked.get()
        storage = .text(text)
        changeFingerprint = nil
    }

    /// The whole value (built from the text each time it is asked for).
    public var value: JSONValue {
        if case .value(let value) = storage { return value }
        // (Unwrapped by pattern, not `?? nil`: `JSONValue` takes a `nil` literal as `.null`.)
        let parsed: JSONValue?? = withText { text in try? JSONParser.parse(buffer: text) }
        guard case .some(.some(let value)) = parsed else { return .null }
        return value
    }

    /// What `value.value(atPath:)` gives, without building the rest of the value.
    public func value(atPath path: [String]) -> JSONValue? {
        if case .value(let value) = storage { return value.value(atPath: path) }
        let found: JSONValue?? = withText { buffer in
            // The text was checked whole when it was stored: the walk stops where the path ends.
            var reader = JSONParser.Reader(bytes: buffer)
            reader.skipWhitespace()
            guard case .some(.some(let value)) = try? reader.value(atPath: path[...], depth: 0) else { return nil }
            return value
        }
        guard case .some(.some(let value)) = found else { return nil }
        return value
    }

    /// The compact JSON text: the bytes as the marketplace sent them, or the value serialized.
    public var jsonBytes: [UInt8] {
        switch storage {
        case .value(let value): return value.serializedBytes()
        case .text(let text): return text
        case .slice: return withText { [UInt8]($0) } ?? []
        }
    }

    public var description: String { String(decoding: jsonBytes, as: UTF8.self) }

    /// Whether it is a JSON object.
    var isObject: Bool {
        switch storage {
        case .value(.object): return true
        case .value: return false
        case .slice: return true
        case .text: break
        }
        return withText { buffer in
            var reader = JSONParser.Reader(bytes: buffer)
            reader.skipWhitespace()
            return reader.next == UInt8(ascii: "{")
        } ?? false
    }

    /// The text's `ObjectFingerprint` (a value's: of its compact text), leaving out the top-level
    /// members named in `ignoring`.
    func fingerprint(ignoring ignored: [String]) -> UInt64 {
        if case .value(let value) = storage {
            return value.serializedBytes().withUnsafeBufferPointer { ObjectFingerprint.of($0, ignoring: ignored) }
        }
        return withText { ObjectFingerprint.of($0, ignoring: ignored) } ?? 0
    }

    /// The value pruned to `paths` (`RawPaths.prune`); nothing is built when no path is kept.
    func pruned(to paths: RawPaths) -> JSONValue {
        if paths.isEmpty, isObject { return .object([:]) }
        return paths.prune(value)
    }
}

extension RawObject: Hashable {
    /// Equal when the values are: equal texts need no parsing.
    public static func == (a: RawObject, b: RawObject) -> Bool {
        switch (a.storage, b.storage) {
        case (.value(let x), .value(let y)): return x == y
        case (.value, _), (_, .value): return a.value == b.value
        default:
            let same = a.withText { x in b.withText { y in x.elementsEqual(y) } }
            return same == true || a.value == b.value
        }
    }

    public func hash(into hasher: inout Hasher) {
        // By the value (not the text's bytes), so that equal values hash equally.
        hasher.combine(value)
    }
}

extension RawObject: ExpressibleByDictionaryLiteral {
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self.init(.object(Dictionary(elements, uniquingKeysWith: { _, last in last })))
    }
}

/// A marketplace's answer, shared by the raw objects of the items read from it (each keeps
/// its stretch of the bytes: one reference instead of a copy per item). The answer stays
/// in memory while one of them does: for one poll. The ledger's table
/// keeps a raw object as a value (what the rules read of it), and an alert event copies its
/// request's text out (`CancellationRequest.owningItsRaw`).
final class AnswerBytes: Sendable {
    let data: Data
    init(_ data: Data) { self.data = data }

    @inline(__always)
    func withBytes<T>(_ body: (UnsafeBufferPointer<UInt8>) throws -> T) rethrows -> T {
        try data.withUnsafeBytes { try body($0.bindMemory(to: UInt8.self)) }
    }
}
