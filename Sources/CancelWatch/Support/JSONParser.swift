import Foundation

/// Why a JSON text could not be read, and where.
public struct JSONParseError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public var offset: Int
    public var line: Int
    public var column: Int

    public var description: String { "invalid JSON at line \(line), column \(column): \(message)" }
}

/// A JSON reader that accepts what the marketplaces really send: RFC 8259 plus
/// trailing commas (Xiaohongshu's own example has them). Integers that fit in
/// 64 bits stay exact.
public enum JSONParser {
    /// A lone surrogate escape `\uD800`...`\uDFFF` (no Swift string holds one) reads as
    /// U+F0000 + (u - 0xD800), plane 15's private use: distinct escapes stay distinct ids
    /// (U+FFFD would make them one). Only literal U+F0000...U+F07FF text reads the same.
    static let loneSurrogateBase: UInt32 = 0xF0000

    public static func parse(_ data: Data) throws(JSONParseError) -> JSONValue {
        let result: Result<JSONValue, JSONParseError> = data.withUnsafeBytes { raw in
            Result { () throws(JSONParseError) in try parse(buffer: raw.bindMemory(to: UInt8.self)) }
        }
        return try result.get()
    }

    public static func parse(_ bytes: [UInt8]) throws(JSONParseError) -> JSONValue {
        let result: Result<JSONValue, JSONParseError> = bytes.withUnsafeBufferPointer { buffer in
            Result { () throws(JSONParseError) in try parse(buffer: buffer) }
        }
        return try result.get()
    }

    static func parse(buffer: UnsafeBufferPointer<UInt8>) throws(JSONParseError) -> JSONValue {
        try scan(buffer) { (reader: inout Reader) throws(JSONParseError) in try reader.readValue(depth: 0) }
    }

    public static func parse(_ text: String) throws(JSONParseError) -> JSONValue {
        try parse(Data(text.utf8))
    }

    struct Reader {
        let bytes: UnsafeBufferPointer<UInt8>
        var index = 0
        static let maxDepth = 512
        /// Members of the objects being read, innermost last: each object is built once at
        /// its final size instead of growing (and rehashing every key) as members arrive.
        var memberStack: [(String, JSONValue)] = []
        /// Elements of the arrays being read, innermost last.
        var elementStack: [JSONValue] = []
        /// Recently read strings, by a cheap hash of their bytes. A list page repeats the
        /// same keys (and many values) in every item: they are shared instead of allocated
        /// again, which saves the allocation now and the memory while the value lives.
        /// Made on the first string (a reader that walks a path reads few or none).
        var stringCache: [String?] = []
        static let cacheSlots = 256
        /// Longer strings rarely repeat. Up to here they do: a page's reasons and buyers'
        /// stock messages (a sentence in Cyrillic is 60-100 bytes), whose sharing also lets
        /// the ledger's storage intern them by identity.
        static let cacheableLength = 128
        /// The answer whose bytes `bytes` are, exactly (offsets into `bytes` are offsets into
        /// it), when the items read keep their text as stretches of it.
        var answer: AnswerBytes?

        init(bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

        func error(_ message: String) -> JSONParseError {
            var line = 1
            var column = 1
            var i = 0
            while i < min(index, bytes.count) {
                if bytes[i] == UInt8(ascii: "\n") { line += 1; column = 1 } else { column += 1 }
                i += 1
            }
            return JSONParseError(message: message, offset: index, line: line, column: column)
        }

        @inline(__always)
        mutating func skipWhitespace() {
            // Compact JSON has none: one look, no loop.
            if index < bytes.count && bytes[index] > 0x20 { return }
            while index < bytes.count {
                switch bytes[index] {
                case 0x20, 0x09, 0x0A, 0x0D: index += 1
                default: return
                }
            }
        }

        mutating func readValue(depth: Int) throws(JSONParseError) -> JSONValue {
            guard depth < Self.maxDepth else { throw error("nesting deeper than \(Self.maxDepth) levels") }
            guard index < bytes.count else { throw error("unexpected end of input") }
            switch bytes[index] {
            case UInt8(ascii: "{"): return try readObject(depth: depth)
            case UInt8(ascii: "["): return try readArray(depth: depth)
            case UInt8(ascii: "\""): return .string(try readString())
            case UInt8(ascii: "t"): try expectLiteral("true"); return .bool(true)
            case UInt8(ascii: "f"): try expectLiteral("false"); return .bool(false)
            case UInt8(ascii: "n"): try expectLiteral("null"); return .null
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try readNumber()
            default: throw error("unexpected character '\(Character(Unicode.Scalar(bytes[index])))'")
            }
        }

        mutating func expectLiteral(_ literal: StaticString) throws(JSONParseError) {
            let count = literal.utf8CodeUnitCount
            guard index + count <= bytes.count else { throw error("unexpected end of input") }
            let base = literal.utf8Start
            for i in 0..<count where bytes[index + i] != base[i] {
                throw error("invalid literal")
            }
            index += count
        }

        mutating func readObject(depth: Int) throws(JSONParseError) -> JSONValue {
            let base = memberStack.count
            defer { memberStack.removeSubrange(base...) }
            try members(depth: depth) { (reader: inout Self, key) throws(JSONParseError) in
                let name = key.unescaped ?? reader.makeString(key.raw)
                let value = try reader.readValue(depth: depth + 1)
                reader.memberStack.append((name, value))
            }
            return memberStack.count == base ? .object([:]) : makeObject(from: base)
        }

        /// The members read since `base` as one object; a repeated key keeps its last value.
        private func makeObject(from base: Int) -> JSONValue {
            var members = [String: JSONValue](minimumCapacity: memberStack.count - base)
            for i in base..<memberStack.count {
                members[memberStack[i].0] = memberStack[i].1
            }
            return .object(members)
        }

        mutating func readArray(depth: Int) throws(JSONParseError) -> JSONValue {
            let base = elementStack.count
            defer { elementStack.removeSubrange(base...) }
            try elements(depth: depth) { (reader: inout Self) throws(JSONParseError) in
                let value = try reader.readValue(depth: depth + 1)
                reader.elementStack.append(value)
            }
            return .array(Array(elementStack[base...]))
        }

        mutating func readNumber() throws(JSONParseError) -> JSONValue {
            let start = index
            var isInteger = true
            if bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) else {
                throw error("invalid number")
            }
            while index < bytes.count {
                let c = bytes[index]
                if (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(c) {
                    index += 1
                } else if c == UInt8(ascii: ".") || c == UInt8(ascii: "e") || c == UInt8(ascii: "E")
                    || c == UInt8(ascii: "+") || c == UInt8(ascii: "-")
                {
                    isInteger = false
                    index += 1
                } else {
                    break
                }
            }
            if isInteger, let value = integer(start..<index) { return .integer(value) }
            let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
            guard let value = Double(text), value.isFinite else {
                index = start
                throw error("invalid number '\(text)'")
            }
            return .number(value)
        }

        /// `-?[0-9]+` as an Int64, or nil when it does not fit (then it is read as a Double).
        private func integer(_ range: Range<Int>) -> Int64? {
            var i = range.lowerBound
            let negative = bytes[i] == UInt8(ascii: "-")
            if negative { i += 1 }
            guard range.upperBound - i <= 18 else {
                return Int64(String(decoding: UnsafeBufferPointer(rebasing: bytes[range]), as: UTF8.self))
            }
            var value: Int64 = 0
            while i < range.upperBound {
                value = value &* 10 &+ Int64(bytes[i] &- UInt8(ascii: "0"))
                i += 1
            }
            return negative ? -value : value
        }

        /// The string of `text` (bytes of this reader's with no escapes), shared with an earlier
        /// equal one when cached.
        mutating func makeString(_ text: UnsafeBufferPointer<UInt8>) -> String {
            let count = text.count
            guard count > 0 else { return "" }
            guard count <= Self.cacheableLength else { return String(decoding: text, as: UTF8.self) }
            let first = Int(text[0])
            let last = Int(text[count - 1])
            let middle = Int(text[count / 2])
            let slot = (count &* 31 &+ first &* 7 &+ last &* 131 &+ middle &* 17) & (Self.cacheSlots - 1)
            if stringCache.isEmpty { stringCache = Array(repeating: nil, count: Self.cacheSlots) }
            if let cached = stringCache[slot], cached.utf8.count == count {
                let same = cached.utf8.withContiguousStorageIfAvailable { stored in
                    memcmp(stored.baseAddress!, text.baseAddress!, count) == 0
                }
                if same == true { return cached }
            }
            let string = String(decoding: text, as: UTF8.self)
            stringCache[slot] = string
            return string
        }

        /// At a string's opening quote (the caller has seen it): when the string has no escapes
        /// and no control characters, moves past it and gives its bytes (without the quotes);
        /// otherwise stays, and gives nil (`readString` then reads the string, or says what is
        /// wrong with it).
        @inline(__always)
        mutating func plainString() -> UnsafeBufferPointer<UInt8>? {
            let start = index + 1
            let stop = stringStop(from: start)
            guard stop < bytes.count, bytes[stop] == UInt8(ascii: "\"") else { return nil }
            index = stop + 1
            return UnsafeBufferPointer(rebasing: bytes[start..<stop])
        }

        /// The first position from `start` holding a quote, a backslash or a control
        /// character (`bytes.count` if none): where a string's plain run of bytes ends.
        /// Eight bytes at a time (the bulk of a page is string bytes).
        @inline(__always)
        func stringStop(from start: Int) -> Int {
            var i = start
            let n = bytes.count
            if n >= 8, let base = UnsafeRawPointer(bytes.baseAddress) {
                let ones: UInt64 = 0x0101_0101_0101_0101
                let high: UInt64 = 0x8080_8080_8080_8080
                while i + 8 <= n {
                    let w = base.loadUnaligned(fromByteOffset: i, as: UInt64.self)
                    let quote = w ^ (ones &* 0x22)
                    let backslash = w ^ (ones &* 0x5C)
                    // Each term flags bytes equal to zero (or below 0x20); the lowest flag of
                    // each is exact (a borrow only reaches the bytes above a real one).
                    let found = ((quote &- ones) & ~quote | (backslash &- ones) & ~backslash | (w &- ones &* 0x20) & ~w) & high
                    if found != 0 { return i + found.trailingZeroBitCount / 8 }
                    i += 8
                }
            }
            while i < n {
                let c = bytes[i]
                if c == UInt8(ascii: "\"") || c == UInt8(ascii: "\\") || c < 0x20 { return i }
                i += 1
            }
            return n
        }

        mutating func readString() throws(JSONParseError) -> String {
            if let plain = plainString() { return makeString(plain) }
            index += 1  // opening quote
            let start = index
            index = stringStop(from: start)
            if index < bytes.count && bytes[index] < 0x20 { throw error("control character in string") }
            var buffer = [UInt8](UnsafeBufferPointer(rebasing: bytes[start..<index]))
            while index < bytes.count {
                let c = bytes[index]
                if c == UInt8(ascii: "\"") {
                    index += 1
                    return String(decoding: buffer, as: UTF8.self)
                }
                if c < 0x20 { throw error("control character in string") }
                if c != UInt8(ascii: "\\") {
                    buffer.append(c)
                    index += 1
                    continue
                }
                index += 1
                guard index < bytes.count else { break }
                let escape = bytes[index]
                index += 1
                switch escape {
                case UInt8(ascii: "\""): buffer.append(0x22)
                case UInt8(ascii: "\\"): buffer.append(0x5C)
                case UInt8(ascii: "/"): buffer.append(0x2F)
                case UInt8(ascii: "b"): buffer.append(0x08)
                case UInt8(ascii: "f"): buffer.append(0x0C)
                case UInt8(ascii: "n"): buffer.append(0x0A)
                case UInt8(ascii: "r"): buffer.append(0x0D)
                case UInt8(ascii: "t"): buffer.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try readHex4()
                    if (0xD800...0xDBFF).contains(scalar), index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"),
                        bytes[index + 1] == UInt8(ascii: "u")
                    {
                        let next = index
                        index += 2
                        let low = try readHex4()
                        if (0xDC00...0xDFFF).contains(low) {
                            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                        } else {
                            index = next  // not a pair: the next escape is read on its own
                        }
                    }
                    if (0xD800...0xDFFF).contains(scalar) { scalar = JSONParser.loneSurrogateBase + (scalar - 0xD800) }
                    UTF8.encode(Unicode.Scalar(scalar) ?? "\u{FFFD}") { buffer.append($0) }
                default:
                    throw error("invalid escape '\\\(Character(Unicode.Scalar(escape)))'")
                }
            }
            throw error("unterminated string")
        }

        mutating func readHex4() throws(JSONParseError) -> UInt32 {
            guard index + 4 <= bytes.count else { throw error("truncated \\u escape") }
            var value: UInt32 = 0
            for _ in 0..<4 {
                let c = bytes[index]
                let digit: UInt32
                switch c {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(c - UInt8(ascii: "0"))
                case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(c - UInt8(ascii: "a") + 10)
                case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(c - UInt8(ascii: "A") + 10)
                default: throw error("invalid \\u escape")
                }
                value = value << 4 | digit
                index += 1
            }
            return value
        }
    }
}

extension JSONValue {
    /// Compact JSON text with object keys sorted, so equal values serialize equally
    /// (webhook bodies are signed, event ids hashed).
    public func serialized() -> String {
        String(decoding: serializedBytes(), as: UTF8.self)
    }

    public func serializedData() -> Data { Data(serializedBytes()) }

    /// Compact JSON, object keys sorted, written straight into bytes.
    public func serializedBytes() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        write(to: &out)
        return out
    }

    func write(to out: inout [UInt8]) {
        switch self {
        case .null: out.append(contentsOf: "null".utf8)
        case .bool(let b): out.append(contentsOf: (b ? "true" : "false").utf8)
        case .integer(let i): JSONValue.writeInteger(i, to: &out)
        case .number(let d):
            if d.rounded() == d, abs(d) < 1e15 {
                JSONValue.writeInteger(Int64(d), to: &out)
            } else if d.isFinite {
                out.append(contentsOf: "\(d)".utf8)
            } else {
                out.append(contentsOf: "null".utf8)  // JSON has no NaN or infinity
            }
        case .string(let s): JSONValue.writeString(s, to: &out)
        case .array(let items):
            out.append(UInt8(ascii: "["))
            for (i, item) in items.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                item.write(to: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let members):
            out.append(UInt8(ascii: "{"))
            for (i, key) in members.keys.sorted().enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                JSONValue.writeString(key, to: &out)
                out.append(UInt8(ascii: ":"))
                members[key]!.write(to: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    static func writeInteger(_ value: Int64, to out: inout [UInt8]) {
        if value == 0 {
            out.append(UInt8(ascii: "0"))
            return
        }
        var magnitude = value.magnitude
        if value < 0 { out.append(UInt8(ascii: "-")) }
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var count = 0
        withUnsafeMutableBytes(of: &digits) { buffer in
            while magnitude > 0 {
                buffer[count] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
                count += 1
            }
            for index in stride(from: count - 1, through: 0, by: -1) { out.append(buffer[index]) }
        }
    }

    private static let hex: [UInt8] = Array("0123456789abcdef".utf8)

    /// A JSON string: `"` and `\` escaped, control characters and U+2028/U+2029 as
    /// escapes (safe inside JavaScript too); everything else copied as UTF-8.
    static func writeString(_ s: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        var utf8 = s.utf8
        let copied: Bool? = utf8.withContiguousStorageIfAvailable { bytes in
            appendEscaped(bytes, to: &out)
            return true
        }
        if copied == nil {
            var string = s
            string.makeContiguousUTF8()
            utf8 = string.utf8
            _ = utf8.withContiguousStorageIfAvailable { bytes in appendEscaped(bytes, to: &out) }
        }
        out.append(UInt8(ascii: "\""))
    }

    private static func appendEscaped(_ bytes: UnsafeBufferPointer<UInt8>, to out: inout [UInt8]) {
        var start = 0
        var i = 0
        let count = bytes.count
        func flush(_ end: Int) {
            if end > start { out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start..<end])) }
        }
        while i < count {
            let byte = bytes[i]
            if byte >= 0x20 && byte != 0x22 && byte != 0x5C && byte != 0xE2 {
                i += 1
                continue
            }
            if byte == 0xE2 {
                // U+2028 and U+2029 are E2 80 A8 and E2 80 A9.
                if i + 2 < count, bytes[i + 1] == 0x80, bytes[i + 2] == 0xA8 || bytes[i + 2] == 0xA9 {
                    flush(i)
                    out.append(contentsOf: (bytes[i + 2] == 0xA8 ? "\\u2028" : "\\u2029").utf8)
                    i += 3
                    start = i
                } else {
                    i += 1
                }
                continue
            }
            flush(i)
            switch byte {
            case 0x22: out.append(contentsOf: "\\\"".utf8)
            case 0x5C: out.append(contentsOf: "\\\\".utf8)
            case 0x0A: out.append(contentsOf: "\\n".utf8)
            case 0x0D: out.append(contentsOf: "\\r".utf8)
            case 0x09: out.append(contentsOf: "\\t".utf8)
            case 0x08: out.append(contentsOf: "\\b".utf8)
            case 0x0C: out.append(contentsOf: "\\f".utf8)
            default:
                out.append(contentsOf: "\\u00".utf8)
                out.append(hex[Int(byte >> 4)])
                out.append(hex[Int(byte & 0x0F)])
            }
            i += 1
            start = i
        }
        flush(count)
    }
}
