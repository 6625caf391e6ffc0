import Foundation

/// Encodes `Encodable` values as the project's JSON text (strings byte for byte,
/// lone-surrogate scalars as the parser maps them, integers exact) or as `JSONValue`.
///
/// An absent optional (`encodeIfPresent`) is written as `null`, as the webhook body has
/// it. A `JSONValue` is written as itself and a `RawObject` as its own bytes. Dates, and
/// which members a value writes, are as `form` says.
struct JSONValueEncoder {
    /// Who reads the text.
    enum Form: Sendable {
        /// Receivers of the webhook body: dates in RFC 3339 UTC, whole seconds
        /// (`Timestamp.format`); a value writes only the members of the body's contract
        /// (`Encoder.writesWebhookBody`).
        case webhookBody
        /// cancelwatch, reading its state file: every member a value needs to be read back,
        /// dates as seconds since 1970 with every digit a `Double` holds (as the state file's
        /// date columns keep them); a date that is not finite cannot be written.
        case stateFile
    }

    var form: Form
    /// Leaves `RawObject` members out (a store keeping the object in a column of its own).
    var omitsRawObjects = false

    /// The value as `JSONValue` (read back from its text).
    func encode<T: Encodable>(_ value: T) throws -> JSONValue {
        try JSONParser.parse(try encodeText(value))
    }

    /// The value as compact JSON text, written as it is encoded: members in the order they
    /// are encoded (not sorted), no tree built (the state file writes a row per request).
    func encodeText<T: Encodable>(_ value: T) throws -> String {
        let text = TextValue(TextSink(form: form))
        try text.write(value, options: self, codingPath: [])
        return String(decoding: text.sink.out, as: UTF8.self)
    }

    /// `item` as a `JSONValue` when it is one of the values written as they are (dates,
    /// strings, numbers, `JSONValue`, `RawObject`); nil for anything with containers.
    fileprivate func scalar<T: Encodable>(_ item: T, codingPath: @autoclosure () -> [any CodingKey]) throws -> JSONValue? {
        // By type, not by casts (a cast is a runtime search per member of every row).
        if T.self == String.self { return .string(unsafeBitCast(item, to: String.self)) }
        if T.self == Date.self {
            let date = unsafeBitCast(item, to: Date.self)
            switch form {
            case .webhookBody: return .string(Timestamp.format(date))
            case .stateFile:
                guard date.timeIntervalSince1970.isFinite else {
                    throw EncodingError.invalidValue(
                        date, .init(codingPath: codingPath(), debugDescription: "not a finite instant (\(date.timeIntervalSince1970) s from 1970)"))
                }
                return .number(date.timeIntervalSince1970)
            }
        }
        if T.self == Bool.self { return .bool(unsafeBitCast(item, to: Bool.self)) }
        if T.self == Double.self { return .number(unsafeBitCast(item, to: Double.self)) }
        if T.self == Int.self { return .integer(Int64(unsafeBitCast(item, to: Int.self))) }
        if T.self == Int64.self { return .integer(unsafeBitCast(item, to: Int64.self)) }
        if T.self == RawObject.self { return unsafeBitCast(item, to: RawObject.self).value }
        if T.self == JSONValue.self { return unsafeBitCast(item, to: JSONValue.self) }
        switch item {
        case let number as Float: return .number(Double(number))
        case let number as any BinaryInteger:
            guard let exact = Int64(exactly: number) else {
                throw EncodingError.invalidValue(item, .init(codingPath: codingPath(), debugDescription: "beyond a 64-bit integer"))
            }
            return .integer(exact)
        default: return nil
        }
    }
}

/// Decodes `Decodable` values from `JSONValue`. A date is read from either form the
/// encoder writes (an RFC 3339 string or seconds since 1970).
struct JSONValueDecoder {
    func decode<T: Decodable>(_ type: T.Type, from value: JSONValue) throws -> T {
        try JSONValueDecoding.read(type, from: value, codingPath: [])
    }
}

// MARK: Encoding

private struct IndexKey: CodingKey {
    var stringValue: String { String(intValue ?? 0) }
    var intValue: Int?
    init(_ index: Int) { intValue = index }
    init?(stringValue: String) { nil }
    init?(intValue: Int) { self.intValue = intValue }
}


private final class TextSink {
    var out: [UInt8] = []
    /// What every value's encoder tells it (built once per text, not per value).
    let userInfo: [CodingUserInfoKey: Any]

    init(form: JSONValueEncoder.Form) {
        out.reserveCapacity(512)
        userInfo = [.jsonForm: form]
    }
}

/// One value being written: opened as an object or array by the first container asked
/// for, closed when its `encode(to:)` returns. A nested container's value is closed when
/// its parent writes its next member or closes.
private final class TextValue {
    enum Shape { case none, object, array, single }
    let sink: TextSink
    private var shape = Shape.none
    private var count = 0
    private var child: TextValue?

    init(_ sink: TextSink) { self.sink = sink }

    /// Writes `item`, whose coding path is `codingPath` and then `key` (the path is made only
    /// where it is needed: not for a member that is a scalar).
    func write<T: Encodable>(_ item: T, options: JSONValueEncoder, codingPath: [any CodingKey], key: (any CodingKey)? = nil) throws {
        if T.self == RawObject.self {
            sink.out.append(contentsOf: unsafeBitCast(item, to: RawObject.self).jsonBytes)
            shape = .single
        } else if let scalar = try options.scalar(item, codingPath: codingPath + (key.map { [$0] } ?? [])) {
            scalar.write(to: &sink.out)
            shape = .single
        } else {
            try item.encode(to: TextEncoder(text: self, options: options, codingPath: codingPath + (key.map { [$0] } ?? [])))
            close()
        }
    }

    func open(_ wanted: Shape) {
        guard shape == .none else { return }
        shape = wanted
        sink.out.append(wanted == .object ? UInt8(ascii: "{") : UInt8(ascii: "["))
    }

    /// Starts the next member (`key` in an object) or element; returns its value's writer.
    func next(key: String?) -> TextValue {
        start(key: key)
        return TextValue(sink)
    }

    /// Writes the next member (or element) when it is a scalar; false when it is not (nothing written).
    func nextScalar<T: Encodable>(_ item: T, key: String?, options: JSONValueEncoder, codingPath: @autoclosure () -> [any CodingKey])
        throws -> Bool
    {
        if T.self == RawObject.self {
            start(key: key)
            sink.out.append(contentsOf: unsafeBitCast(item, to: RawObject.self).jsonBytes)
            return true
        }
        guard let scalar = try options.scalar(item, codingPath: codingPath()) else { return false }
        start(key: key)
        scalar.write(to: &sink.out)
        return true
    }

    private func start(key: String?) {
        child?.close()
        child = nil
        if count > 0 { sink.out.append(UInt8(ascii: ",")) }
        count += 1
        if let key {
            JSONValue.writeString(key, to: &sink.out)
            sink.out.append(UInt8(ascii: ":"))
        }
    }

    /// Adopts `value` as a nested container's, closed later.
    func nest(_ value: TextValue) -> TextValue {
        child = value
        return value
    }

    func close() {
        child?.close()
        child = nil
        switch shape {
        case .object: sink.out.append(UInt8(ascii: "}"))
        case .array: sink.out.append(UInt8(ascii: "]"))
        case .none: sink.out.append(contentsOf: "{}".utf8)
        case .single: break
        }
        shape = .single
    }

    func writeNull() {
        sink.out.append(contentsOf: "null".utf8)
        shape = .single
    }
}

private struct TextEncoder: Encoder {
    let text: TextValue
    let options: JSONValueEncoder
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { text.sink.userInfo }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        text.open(.object)
        return KeyedEncodingContainer(KeyedTextContainer<Key>(text: text, options: options, codingPath: codingPath))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        text.open(.array)
        return UnkeyedTextContainer(text: text, options: options, codingPath: codingPath)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer {
        SingleTextContainer(text: text, options: options, codingPath: codingPath)
    }
}

private struct KeyedTextContainer<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let text: TextValue
    let options: JSONValueEncoder
    let codingPath: [any CodingKey]

    mutating func encodeNil(forKey key: Key) throws { text.next(key: key.stringValue).writeNull() }

    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
        if options.omitsRawObjects, T.self == RawObject.self { return }
        if try text.nextScalar(value, key: key.stringValue, options: options, codingPath: codingPath + [key]) { return }
        try text.next(key: key.stringValue).write(value, options: options, codingPath: codingPath, key: key)
    }

    mutating func encodeIfPresent<T: Encodable>(_ value: T?, forKey key: Key) throws {
        guard let value else { return try encodeNil(forKey: key) }
        try encode(value, forKey: key)
    }

    // Every concrete overload too: their default implementations leave a nil out.
    mutating func encodeIfPresent(_ value: Bool?, forKey key: Key) throws { try encodeIfPresent(value as Bool?, key) }
    mutating func encodeIfPresent(_ value: String?, forKey key: Key) throws { try encodeIfPresent(value as String?, key) }
    mutating func encodeIfPresent(_ value: Double?, forKey key: Key) throws { try encodeIfPresent(value as Double?, key) }
    mutating func encodeIfPresent(_ value: Float?, forKey key: Key) throws { try encodeIfPresent(value as Float?, key) }
    mutating func encodeIfPresent(_ value: Int?, forKey key: Key) throws { try encodeIfPresent(value as Int?, key) }
    mutating func encodeIfPresent(_ value: Int8?, forKey key: Key) throws { try encodeIfPresent(value as Int8?, key) }
    mutating func encodeIfPresent(_ value: Int16?, forKey key: Key) throws { try encodeIfPresent(value as Int16?, key) }
    mutating func encodeIfPresent(_ value: Int32?, forKey key: Key) throws { try encodeIfPresent(value as Int32?, key) }
    mutating func encodeIfPresent(_ value: Int64?, forKey key: Key) throws { try encodeIfPresent(value as Int64?, key) }
    mutating func encodeIfPresent(_ value: UInt?, forKey key: Key) throws { try encodeIfPresent(value as UInt?, key) }
    mutating func encodeIfPresent(_ value: UInt8?, forKey key: Key) throws { try encodeIfPresent(value as UInt8?, key) }
    mutating func encodeIfPresent(_ value: UInt16?, forKey key: Key) throws { try encodeIfPresent(value as UInt16?, key) }
    mutating func encodeIfPresent(_ value: UInt32?, forKey key: Key) throws { try encodeIfPresent(value as UInt32?, key) }
    mutating func encodeIfPresent(_ value: UInt64?, forKey key: Key) throws { try encodeIfPresent(value as UInt64?, key) }

    private mutating func encodeIfPresent<T: Encodable>(_ value: T?, _ key: Key) throws {
        guard let value else { return try encodeNil(forKey: key) }
        try encode(value, forKey: key)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key)
        -> KeyedEncodingContainer<NestedKey>
    {
        let child = text.nest(text.next(key: key.stringValue))
        return TextEncoder(text: child, options: options, codingPath: codingPath + [key]).container(keyedBy: keyType)
    }

    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        let child = text.nest(text.next(key: key.stringValue))
        return TextEncoder(text: child, options: options, codingPath: codingPath + [key]).unkeyedContainer()
    }

    mutating func superEncoder() -> any Encoder { TextEncoder(text: text, options: options, codingPath: codingPath) }
    mutating func superEncoder(forKey key: Key) -> any Encoder {
        TextEncoder(text: text.nest(text.next(key: key.stringValue)), options: options, codingPath: codingPath + [key])
    }
}

private struct UnkeyedTextContainer: UnkeyedEncodingContainer {
    let text: TextValue
    let options: JSONValueEncoder
    let codingPath: [any CodingKey]
    private(set) var count = 0

    init(text: TextValue, options: JSONValueEncoder, codingPath: [any CodingKey]) {
        self.text = text
        self.options = options
        self.codingPath = codingPath
    }

    private mutating func next() -> (TextValue, [any CodingKey]) {
        defer { count += 1 }
        return (text.next(key: nil), codingPath + [IndexKey(count)])
    }

    mutating func encodeNil() throws { next().0.writeNull() }
    mutating func encode<T: Encodable>(_ value: T) throws {
        let (element, path) = next()
        try element.write(value, options: options, codingPath: path)
    }
    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        let (element, path) = next()
        return TextEncoder(text: text.nest(element), options: options, codingPath: path).container(keyedBy: keyType)
    }
    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        let (element, path) = next()
        return TextEncoder(text: text.nest(element), options: options, codingPath: path).unkeyedContainer()
    }
    mutating func superEncoder() -> any Encoder {
        let (element, path) = next()
        return TextEncoder(text: text.nest(element), options: options, codingPath: path)
    }
}

private struct SingleTextContainer: SingleValueEncodingContainer {
    let text: TextValue
    let options: JSONValueEncoder
    let codingPath: [any CodingKey]

    mutating func encodeNil() throws { text.writeNull() }
    mutating func encode<T: Encodable>(_ value: T) throws { try text.write(value, options: options, codingPath: codingPath) }
}

extension CodingUserInfoKey {
    /// The `JSONValueEncoder.Form` a value is written in.
    static let jsonForm = CodingUserInfoKey(rawValue: "cancelwatch.jsonForm")!
}

extension Encoder {
    /// True when the value is written for the webhook body's receivers: members its
    /// contract does not have are left out (any other encoder writes them all).
    var writesWebhookBody: Bool { (userInfo[.jsonForm] as? JSONValueEncoder.Form) == .webhookBody }
}

// MARK: Decoding

private enum JSONValueDecoding {
    static func read<T: Decodable>(_ type: T.Type, from value: JSONValue, codingPath: [any CodingKey]) throws -> T {
        func mismatch() -> DecodingError {
            .typeMismatch(type, .init(codingPath: codingPath, debugDescription: "found \(value.typeDescription)"))
        }
        switch type {
        case is JSONValue.Type: return value as! T
        case is RawObject.Type: return RawObject(value) as! T
        case is Date.Type:
            if case .string(let text) = value, let date = Timestamp.parse(text) { return date as! T }
            if case .string = value {} else if let seconds = value.lenientDouble { return Date(timeIntervalSince1970: seconds) as! T }
            throw mismatch()
        case is String.Type:
            guard let text = value.stringValue else { throw mismatch() }
            return text as! T
        case is Bool.Type:
            guard let flag = value.boolValue else { throw mismatch() }
            return flag as! T
        case let integer as any FixedWidthInteger.Type:
            guard case .integer(let number) = value, let exact = integer.init(exactly: number) else { throw mismatch() }
            return exact as! T
        case is Double.Type, is Float.Type:
            let number: Double
            switch value {
            case .integer(let whole): number = Double(whole)
            case .number(let fraction): number = fraction
            default: throw mismatch()
            }
            return (type == Float.self ? Float(number) as Any : number) as! T
        default:
            return try T(from: ValueDecoder(value: value, codingPath: codingPath))
        }
    }
}

private struct ValueDecoder: Decoder {
    let value: JSONValue
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard let members = value.objectValue else {
            throw DecodingError.typeMismatch(
                [String: JSONValue].self, .init(codingPath: codingPath, debugDescription: "found \(value.typeDescription)"))
        }
        return KeyedDecodingContainer(KeyedValueContainer<Key>(members: members, codingPath: codingPath))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        guard let elements = value.arrayValue else {
            throw DecodingError.typeMismatch(
                [JSONValue].self, .init(codingPath: codingPath, debugDescription: "found \(value.typeDescription)"))
        }
        return UnkeyedValueContainer(elements: elements, codingPath: codingPath)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer { SingleValueContainer(value: value, codingPath: codingPath) }
}

private struct KeyedValueContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let members: [String: JSONValue]
    let codingPath: [any CodingKey]
    var allKeys: [Key] { members.keys.compactMap(Key.init(stringValue:)) }

    func contains(_ key: Key) -> Bool { members[key.stringValue] != nil }

    private func member(_ key: Key) throws -> JSONValue {
        guard let value = members[key.stringValue] else {
            throw DecodingError.keyNotFound(key, .init(codingPath: codingPath, debugDescription: "no member '\(key.stringValue)'"))
        }
        return value
    }

    func decodeNil(forKey key: Key) throws -> Bool { members[key.stringValue]?.isNull ?? true }

    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        try JSONValueDecoding.read(type, from: try member(key), codingPath: codingPath + [key])
    }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
        try ValueDecoder(value: try member(key), codingPath: codingPath + [key]).container(keyedBy: type)
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        try ValueDecoder(value: try member(key), codingPath: codingPath + [key]).unkeyedContainer()
    }

    func superDecoder() throws -> any Decoder { ValueDecoder(value: .object(members), codingPath: codingPath) }
    func superDecoder(forKey key: Key) throws -> any Decoder { ValueDecoder(value: try member(key), codingPath: codingPath + [key]) }
}

private struct UnkeyedValueContainer: UnkeyedDecodingContainer {
    let elements: [JSONValue]
    let codingPath: [any CodingKey]
    var currentIndex = 0
    var count: Int? { elements.count }
    var isAtEnd: Bool { currentIndex >= elements.count }

    private mutating func next() throws -> (JSONValue, [any CodingKey]) {
        guard !isAtEnd else {
            throw DecodingError.valueNotFound(JSONValue.self, .init(codingPath: codingPath, debugDescription: "no more elements"))
        }
        defer { currentIndex += 1 }
        return (elements[currentIndex], codingPath + [IndexKey(currentIndex)])
    }

    mutating func decodeNil() throws -> Bool {
        guard !isAtEnd, elements[currentIndex].isNull else { return false }
        currentIndex += 1
        return true
    }

    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
        let (value, path) = try next()
        return try JSONValueDecoding.read(type, from: value, codingPath: path)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        let (value, path) = try next()
        return try ValueDecoder(value: value, codingPath: path).container(keyedBy: type)
    }

    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
        let (value, path) = try next()
        return try ValueDecoder(value: value, codingPath: path).unkeyedContainer()
    }

    mutating func superDecoder() throws -> any Decoder {
        let (value, path) = try next()
        return ValueDecoder(value: value, codingPath: path)
    }
}

private struct SingleValueContainer: SingleValueDecodingContainer {
    let value: JSONValue
    let codingPath: [any CodingKey]
    func decodeNil() -> Bool { value.isNull }
    func decode<T: Decodable>(_ type: T.Type) throws -> T { try JSONValueDecoding.read(type, from: value, codingPath: codingPath) }
}

// MARK: Conformances

/// Any JSON as itself (`JSONValueEncoder` writes it as it is, without these).
extension JSONValue: Codable {
    private struct MemberKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    public func encode(to encoder: any Encoder) throws {
        switch self {
        case .array(let items):
            var container = encoder.unkeyedContainer()
            for item in items { try container.encode(item) }
        case .object(let members):
            var container = encoder.container(keyedBy: MemberKey.self)
            for (key, member) in members { try container.encode(member, forKey: MemberKey(stringValue: key)) }
        default:
            var container = encoder.singleValueContainer()
            switch self {
            case .bool(let flag): try container.encode(flag)
            case .number(let number): try container.encode(number)
            case .integer(let number): try container.encode(number)
            case .string(let text): try container.encode(text)
            default: try container.encodeNil()
            }
        }
    }

    public init(from decoder: any Decoder) throws {
        if let container = try? decoder.container(keyedBy: MemberKey.self) {
            var members: [String: JSONValue] = [:]
            for key in container.allKeys { members[key.stringValue] = try container.decode(JSONValue.self, forKey: key) }
            self = .object(members)
        } else if var container = try? decoder.unkeyedContainer() {
            var items: [JSONValue] = []
            while !container.isAtEnd { items.append(try container.decode(JSONValue.self)) }
            self = .array(items)
        } else {
            let container = try decoder.singleValueContainer()
            if container.decodeNil() {
                self = .null
            } else if let flag = try? container.decode(Bool.self) {
                self = .bool(flag)
            } else if let number = try? container.decode(Int64.self) {
                self = .integer(number)
            } else if let number = try? container.decode(Double.self) {
                self = .number(number)
            } else {
                self = .string(try container.decode(String.self))
            }
        }
    }
}

/// A raw object as its value.
extension RawObject: Codable {
    public func encode(to encoder: any Encoder) throws { try value.encode(to: encoder) }
    public init(from decoder: any Decoder) throws { self.init(try JSONValue(from: decoder)) }
}
