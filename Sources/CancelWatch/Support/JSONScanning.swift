import Foundation

/// Reading JSON without building it: the same reader as `JSONParser` (same grammar, same
/// errors), walked member by member. The marketplace clients read a list page this way,
/// taking the fields they need and keeping each item's text (its stretch of the answer) as
/// its raw object, so a page of 500 items costs one pass over its bytes instead of 500
/// dictionaries.
extension JSONParser {
    /// Runs `body` on a reader at the start of the one JSON value in `bytes`, then checks
    /// that nothing but whitespace follows it.
    static func scan<T>(
        _ bytes: UnsafeBufferPointer<UInt8>, answer: AnswerBytes? = nil, _ body: (inout Reader) throws(JSONParseError) -> T
    ) throws(JSONParseError) -> T {
        var reader = Reader(bytes: bytes)
        reader.answer = answer
        reader.skipWhitespace()
        guard reader.index < bytes.count else { throw reader.error("unexpected end of input") }
        let result = try body(&reader)
        reader.skipWhitespace()
        if reader.index != bytes.count { throw reader.error("unexpected characters after the JSON value") }
        return result
    }

    /// Reads a marketplace's answer with `read`. When that fails (the scan stops at the first
    /// thing it cannot use), the whole answer is parsed to say why: not JSON (and where),
    /// not an object, or what `read` could not use.
    static func readAnswer<T>(
        _ body: Data, _ read: (inout Reader) throws(JSONParseError) -> T
    ) -> Result<T, UnreadableAnswer> {
        let answer = AnswerBytes(body)
        return answer.withBytes { bytes -> Result<T, UnreadableAnswer> in
            do throws(JSONParseError) {
                return .success(try scan(bytes, answer: answer, read))
            } catch {
                let value: JSONValue
                do throws(JSONParseError) {
                    value = try parse(buffer: bytes)
                } catch let notJSON {
                    return .failure(UnreadableAnswer("the answer is not JSON (\(notJSON.description))"))
                }
                guard case .object = value else {
                    return .failure(UnreadableAnswer("the answer is a JSON \(value.typeName), not an object"))
                }
                return .failure(UnreadableAnswer("the answer could not be read (\(error.description))"))
            }
        }
    }

    /// `read` run on the compact text of `value` (tests give list items as values).
    static func read<T>(_ value: JSONValue, _ read: (inout Reader) throws(JSONParseError) -> T) -> T? {
        value.serializedBytes().withUnsafeBufferPointer { buffer in try? scan(buffer, read) }
    }

    /// Whether `bytes` hold exactly one JSON value that `parse` would read.
    static func validate(_ bytes: UnsafeBufferPointer<UInt8>) throws(JSONParseError) {
        try scan(bytes) { (reader: inout Reader) throws(JSONParseError) in try reader.skipValue(depth: 0) }
    }
}

extension JSONParser.Reader {
    /// An object's key as it appears in the text: its bytes, or its unescaped text when it has escapes.
    struct Key {
        /// The key's bytes in the text (empty, at the key's place, when it has escapes).
        /// With `unescaped`, four words: a key comes back in registers.
        let raw: UnsafeBufferPointer<UInt8>
        let unescaped: String?

        /// Whether the key is `name` (compared by bytes). A literal picks this one: the
        /// `String` comparison is `matches`.
        @inline(__always)
        func `is`(_ name: StaticString) -> Bool {
            if let unescaped { return unescaped.utf8.elementsEqual(UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount)) }
            guard raw.count == name.utf8CodeUnitCount else { return false }
            return memcmp(raw.baseAddress!, name.utf8Start, raw.count) == 0
        }

        /// Whether the key is `name` (a `String` known only at run time).
        func matches(_ name: String) -> Bool {
            if let unescaped { return unescaped == name }
            if name.utf8.count == raw.count {
                let same = name.utf8.withContiguousStorageIfAvailable { stored in
                    raw.count == 0 || memcmp(stored.baseAddress!, raw.baseAddress!, raw.count) == 0
                }
                if same ?? name.utf8.elementsEqual(raw) { return true }
            }
            // Equal bytes are equal text; beyond ASCII, text can be equal in other bytes (a
            // composed and a decomposed accent): compared as `String`s, as a dictionary would.
            if name.utf8.allSatisfy({ $0 < 0x80 }) && !raw.contains(where: { $0 >= 0x80 }) { return false }
            return text == name
        }

        var text: String { unescaped ?? String(decoding: raw, as: UTF8.self) }
    }

    /// The byte the next value starts with (after whitespace), or nil at the end.
    var next: UInt8? { index < bytes.count ? bytes[index] : nil }

    /// Reads an object, calling `body` with the reader at each member's value, which
    /// `body` must read or skip. Throws if the next value is not an object.
    mutating func members(
        depth: Int, _ body: (inout Self, Key) throws(JSONParseError) -> Void
    ) throws(JSONParseError) {
        try openObject(depth: depth)
        var key = try nextMember(first: true)
        while let current = key {
            try body(&self, current)
            key = try nextMember(first: false)
        }
    }

    /// Checks the depth and the opening brace, and moves past it.
    @inline(__always)
    private mutating func openObject(depth: Int) throws(JSONParseError) {
        guard depth < Self.maxDepth else { throw error("nesting deeper than \(Self.maxDepth) levels") }
        guard next == UInt8(ascii: "{") else { throw error("expected an object") }
        index += 1
    }

    /// The next member's key, with the reader at its value, or nil once the object is
    /// closed. `first`: just after the opening brace. (A function of its own, not inlined
    /// into `members`: side by side, the page loop runs ~2 ms in 72 faster so.)
    private mutating func nextMember(first: Bool) throws(JSONParseError) -> Key? {
        if !first {
            skipWhitespace()
            guard index < bytes.count else { throw error("unterminated object") }
            switch bytes[index] {
            case UInt8(ascii: ","): index += 1
            case UInt8(ascii: "}"): index += 1; return nil
            default: throw error("expected ',' or '}' in object")
            }
        }
        skipWhitespace()
        guard index < bytes.count else { throw error("unterminated object") }
        if bytes[index] == UInt8(ascii: "}") { index += 1; return nil }  // empty, or a trailing comma
        guard bytes[index] == UInt8(ascii: "\"") else { throw error("expected a string key") }
        let key = try readKey()
        skipWhitespace()
        guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw error("expected ':' after key") }
        index += 1
        skipWhitespace()
        guard index < bytes.count else { throw error("unexpected end of input") }
        return key
    }

    /// Reads an array, calling `body` with the reader at each element, which `body` must
    /// read or skip. Throws if the next value is not an array.
    mutating func elements(depth: Int, _ body: (inout Self) throws(JSONParseError) -> Void) throws(JSONParseError) {
        guard depth < Self.maxDepth else { throw error("nesting deeper than \(Self.maxDepth) levels") }
        guard next == UInt8(ascii: "[") else { throw error("expected an array") }
        index += 1
        while true {
            skipWhitespace()
            guard index < bytes.count else { throw error("unterminated array") }
            if bytes[index] == UInt8(ascii: "]") { index += 1; return }  // empty, or a trailing comma
            try body(&self)
            skipWhitespace()
            guard index < bytes.count else { throw error("unterminated array") }
            switch bytes[index] {
            case UInt8(ascii: ","): index += 1
            case UInt8(ascii: "]"): index += 1; return
            default: throw error("expected ',' or ']' in array")
            }
        }
    }

    /// A string, number, boolean or null as its value; an object or array is checked,
    /// skipped, and given as an empty one of its kind (enough to say what it is).
    mutating func scalar(depth: Int) throws(JSONParseError) -> JSONValue {
        switch next {
        case UInt8(ascii: "{")?: try skipValue(depth: depth); return .object([:])
        case UInt8(ascii: "[")?: try skipValue(depth: depth); return .array([])
        default: return try readValue(depth: depth)
        }
    }

    /// Checks the next value as `readValue` would and moves past it, building nothing.
    mutating func skipValue(depth: Int) throws(JSONParseError) {
        guard depth < Self.maxDepth else { throw error("nesting deeper than \(Self.maxDepth) levels") }
        guard index < bytes.count else { throw error("unexpected end of input") }
        switch bytes[index] {
        case UInt8(ascii: "\""): try skipString()
        case UInt8(ascii: "{"):
            try members(depth: depth) { (reader: inout Self, _) throws(JSONParseError) in try reader.skipValue(depth: depth + 1) }
        case UInt8(ascii: "["):
            try elements(depth: depth) { (reader: inout Self) throws(JSONParseError) in try reader.skipValue(depth: depth + 1) }
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): _ = try readNumber()
        default: _ = try readValue(depth: depth)  // a literal, or the error
        }
    }

    /// Moves past a string, checking its escapes and control characters as `readString` does.
    mutating func skipString() throws(JSONParseError) {
        if plainString() != nil { return }
        // An escape, a control character or no end: read as `readString` reads it (one copy
        // of the escape rules and their errors; strings with escapes are rare in a page).
        _ = try readString()
    }

    /// A key: its byte range when it has no escapes (no String made), its text otherwise.
    private mutating func readKey() throws(JSONParseError) -> Key {
        let start = index + 1
        if let raw = plainString() { return Key(raw: raw, unescaped: nil) }
        let text = try readString()
        return Key(raw: UnsafeBufferPointer(rebasing: bytes[start..<start]), unescaped: text)
    }

    /// One item of a list, read into a new `Item`: an object member by member with `member`
    /// (which must read or skip each value), or any other value (then `notAnObject` says
    /// what it is). Either way the item keeps its text: an object read from an answer
    /// (`answer`) as its stretch of it, anything else as its own copy; an object also its
    /// change fingerprint, the members named in `volatile` left out.
    @inline(__always)
    mutating func listItem<Item: ListItem>(
        depth: Int, volatile: [String], _ member: (inout Self, Key, Item) throws(JSONParseError) -> Void
    ) throws(JSONParseError) -> Item {
        let start = index
        guard next == UInt8(ascii: "{") else {
            let type = try scalar(depth: depth).typeDescription
            let item = Item(raw: RawObject(checkedText: itemText(from: start)))
            item.notAnObject = type
            return item
        }
        let item = Item(raw: RawObject(.null))
        var fingerprint = ObjectFingerprint(ignoring: volatile, bytes: bytes, start: start)
        try members(depth: depth, fingerprint: &fingerprint) { (reader: inout Self, key) throws(JSONParseError) in
            try member(&reader, key, item)
        }
        let changeFingerprint = fingerprint.value(end: index)
        if let answer, index <= Int(UInt32.max) {
            // (A stretch is kept as 32-bit offsets: past 4 GB of one answer, the item copies its bytes.)
            item.raw = RawObject(checkedText: answer, start..<index, changeFingerprint: changeFingerprint)
        } else {
            item.raw = RawObject(checkedText: itemText(from: start), changeFingerprint: changeFingerprint)
        }
        return item
    }

    /// The text read since `start`, as its own bytes.
    @inline(__always)
    private func itemText(from start: Int) -> [UInt8] {
        [UInt8](UnsafeBufferPointer(rebasing: bytes[start..<index]))
    }

    /// An object's members, each read or skipped by `body` (true); any other value is skipped
    /// (false).
    @inline(__always)
    @discardableResult
    mutating func membersIfObject(depth: Int, _ body: (inout Self, Key) throws(JSONParseError) -> Void) throws(JSONParseError) -> Bool {
        guard next == UInt8(ascii: "{") else {
            try skipValue(depth: depth)
            return false
        }
        try members(depth: depth, body)
        return true
    }

    /// A list's elements, each read with `element`; for any other value no elements and what
    /// the value is (nothing for null, which is no list).
    @inline(__always)
    mutating func list<Element>(
        depth: Int, _ element: (inout Self) throws(JSONParseError) -> Element
    ) throws(JSONParseError) -> (elements: [Element], notAnArray: String?) {
        guard next == UInt8(ascii: "[") else {
            let value = try scalar(depth: depth)
            return ([], value == .null ? nil : value.typeDescription)
        }
        var elements: [Element] = []
        try self.elements(depth: depth) { (reader: inout Self) throws(JSONParseError) in elements.append(try element(&reader)) }
        return (elements, nil)
    }

    /// A string value as its text, or nil for any other value (skipped).
    @inline(__always)
    mutating func string(depth: Int) throws(JSONParseError) -> String? {
        if next == UInt8(ascii: "\"") { return try readString() }
        try skipValue(depth: depth)
        return nil
    }

    // MARK: Fingerprints and paths over the text

    /// `members`, also taking the object's change fingerprint (`ObjectFingerprint`, made
    /// for this object's text).
    @inline(__always)
    mutating func members(
        depth: Int, fingerprint: inout ObjectFingerprint, _ body: (inout Self, Key) throws(JSONParseError) -> Void
    ) throws(JSONParseError) {
        try members(depth: depth) { (reader: inout Self, key) throws(JSONParseError) in
            try body(&reader, key)
            fingerprint.add(key, end: reader.index)
        }
    }

    /// The value at `path` below the next value (object keys, array indexes), read whole;
    /// nil where there is none. A repeated key counts by its last value, as `parse` keeps it.
    mutating func value(atPath path: ArraySlice<String>, depth: Int) throws(JSONParseError) -> JSONValue? {
        guard let component = path.first else { return try readValue(depth: depth) }
        var found: Int?
        switch next {
        case UInt8(ascii: "{")?:
            try members(depth: depth) { (reader: inout Self, key) throws(JSONParseError) in
                if key.matches(component) { found = reader.index }
                try reader.skipValue(depth: depth + 1)
            }
        case UInt8(ascii: "[")?:
            guard let wanted = Int(component) else {
                try skipValue(depth: depth)
                return nil
            }
            var position = 0
            try elements(depth: depth) { (reader: inout Self) throws(JSONParseError) in
                if position == wanted { found = reader.index }
                position += 1
                try reader.skipValue(depth: depth + 1)
            }
        default:
            try skipValue(depth: depth)
            return nil
        }
        guard let found else { return nil }
        index = found
        return try value(atPath: path.dropFirst(), depth: depth + 1)
    }
}

/// An item of a marketplace's list, as its client reads it.
protocol ListItem: AnyObject {
    init(raw: RawObject)
    /// The item's own text (and its change fingerprint).
    var raw: RawObject { get set }
    /// What the item is when it is not an object ("an array", "a string", …).
    var notAnObject: String? { get set }
}

/// A 64-bit digest of an object's text for telling whether it changed between polls: the
/// text as sent, leaving out the members a marketplace changes on its own (`ignoring`), each
/// from the end of the member before it (or the opening brace) to the end of its value.
/// Two texts of the same value written differently (member order, spacing, escapes) differ,
/// and so do an object with such a member and the same object without it (the text around
/// the cut is digested piece by piece): a marketplace sends an unchanged object the same
/// way, and a difference costs one `updated` (the row written again), never an alert.
/// A fast hash, never written down.
struct ObjectFingerprint {
    /// Top-level member names (ASCII) left out.
    let ignoring: [String]
    private let bytes: UnsafeBufferPointer<UInt8>
    private var digest = FastDigest()
    /// Where the text not yet added starts.
    private var pending: Int
    /// Where the member read last ends (first: just after the opening brace).
    private var lastEnd: Int

    /// For the object whose opening brace is at `start` of `bytes`.
    init(ignoring: [String], bytes: UnsafeBufferPointer<UInt8>, start: Int) {
        self.ignoring = ignoring
        self.bytes = bytes
        pending = start
        lastEnd = start + 1
    }

    /// The member whose key is `key` has been read; its value ends at `end`.
    @inline(__always)
    mutating func add(_ key: JSONParser.Reader.Key, end: Int) {
        defer { lastEnd = end }
        // The names are ASCII: only a key of the same length (or with escapes) can be one.
        guard !ignoring.isEmpty,
            ignoring.contains(where: { (key.unescaped != nil || $0.utf8.count == key.raw.count) && key.matches($0) })
        else { return }
        digest.add(bytes: UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(bytes)[pending..<lastEnd]))
        pending = end
    }

    /// The fingerprint of the object whose text ends at `end`.
    func value(end: Int) -> UInt64 {
        var digest = digest
        digest.add(bytes: UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(bytes)[pending..<end]))
        return digest.value
    }

    /// The fingerprint of `text` (one JSON value, already checked): an object's as above,
    /// anything else's from all its bytes.
    static func of(_ text: UnsafeBufferPointer<UInt8>, ignoring: [String]) -> UInt64 {
        var reader = JSONParser.Reader(bytes: text)
        reader.skipWhitespace()
        if reader.next == UInt8(ascii: "{") {
            var fingerprint = ObjectFingerprint(ignoring: ignoring, bytes: text, start: reader.index)
            let done: Void? = try? reader.members(depth: 0, fingerprint: &fingerprint) {
                (reader: inout JSONParser.Reader, _) throws(JSONParseError) in try reader.skipValue(depth: 1)
            }
            if done != nil { return fingerprint.value(end: reader.index) }
        }
        var digest = FastDigest()
        digest.add(bytes: UnsafeRawBufferPointer(text))
        return digest.value
    }
}

/// Why a marketplace's answer could not be read, in words for an error message.
struct UnreadableAnswer: Error {
    var message: String
    init(_ message: String) { self.message = message }
}
