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
        switch storage {
        case .value(let value): return value
        case .text(let text): return (try? JSONParser.parse(text)) ?? .null
        }
    }

    /// What `value.value(atPath:)` gives, without building the rest of the value.
    public func value(atPath path: [String]) -> JSONValue? {
        switch storage {
        case .value(let value): return value.value(atPath: path)
        case .text(let text):
            return text.withUnsafeBufferPointer { buffer in
                // The text was checked whole when it was stored: the walk stops where the path ends.
                var reader = JSONParser.Reader(bytes: buffer)
                reader.skipWhitespace()
                return (try? reader.value(atPath: path[...], depth: 0)) ?? nil
            }
        }
    }

    /// The compact JSON text: the bytes as the marketplace sent them, or the value serialized.
    public var jsonBytes: [UInt8] {
        switch storage {
        case .value(let value): return value.serializedBytes()
        case .text(let text): return text
        }
    }

    public var description: String { String(decoding: jsonBytes, as: UTF8.self) }

    /// Whether it is a JSON object.
    var isObject: Bool {
        switch storage {
        case .value(let value):
            if case .object = value { return true }
            return false
        case .text(let text):
            return text.withUnsafeBufferPointer { buffer in
                var reader = JSONParser.Reader(bytes: buffer)
                reader.skipWhitespace()
                return reader.next == UInt8(ascii: "{")
            }
        }
    }

    /// The text's `ObjectFingerprint` (a value's: of its compact text), leaving out the top-level
    /// members named in `ignoring`.
    func fingerprint(ignoring ignored: [String]) -> UInt64 {
        switch storage {
        case .value(let value):
            return value.serializedBytes().withUnsafeBufferPointer { ObjectFingerprint.of($0, ignoring: ignored) }
        case .text(let text):
            return text.withUnsafeBufferPointer { ObjectFingerprint.of($0, ignoring: ignored) }
        }
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
        case (.text(let x), .text(let y)) where x == y: return true
        case (.value(let x), .value(let y)): return x == y
        default: return a.value == b.value
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
