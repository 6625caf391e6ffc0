import Foundation

/// A parsed request line and header block, before the body is read.
struct RequestHead {
    var method: String
    var target: String
    var version: String
    var headers: HTTPHeaderFields

    /// Why a head was refused; each maps to the status the server answers with.
    enum Failure: Error, Equatable {
        case malformed(String)
        case unsupportedVersion(String)
    }

    /// Parses the bytes of a head, without the blank line that ends it.
    /// Lines end in CRLF (a bare LF is accepted); obsolete line folding is refused.
    static func parse(_ bytes: ArraySlice<UInt8>) throws(Failure) -> RequestHead {
        var lines: [ArraySlice<UInt8>] = []
        var start = bytes.startIndex
        var i = bytes.startIndex
        while i < bytes.endIndex {
            if bytes[i] == 0x0A {
                var end = i
                if end > start, bytes[end - 1] == 0x0D { end -= 1 }
                lines.append(bytes[start..<end])
                start = i + 1
            }
            i += 1
        }
        if start < bytes.endIndex {
            var end = bytes.endIndex
            if bytes[end - 1] == 0x0D { end -= 1 }
            lines.append(bytes[start..<end])
        }
        // RFC 9112 §2.2: ignore at least one empty line before the request line.
        while let first = lines.first, first.isEmpty { lines.removeFirst() }
        guard let requestLine = lines.first else { throw .malformed("empty request") }

        let parts = requestLine.split(separator: 0x20, omittingEmptySubsequences: false)
        guard parts.count == 3 else { throw .malformed("request line must be 'METHOD target HTTP/1.1'") }
        guard !parts[0].isEmpty, parts[0].allSatisfy(isTokenByte) else { throw .malformed("invalid method") }
        guard !parts[1].isEmpty, parts[1].allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw .malformed("invalid request target")
        }
        let method = String(decoding: parts[0], as: UTF8.self)
        let target = String(decoding: parts[1], as: UTF8.self)
        guard target.hasPrefix("/") || target == "*" || target.hasPrefix("http://") || target.hasPrefix("https://") else {
            throw .malformed("invalid request target")
        }
        let version = String(decoding: parts[2], as: UTF8.self)
        guard version.hasPrefix("HTTP/"), version.count == 8 else { throw .malformed("invalid HTTP version") }
        guard version == "HTTP/1.1" || version == "HTTP/1.0" else { throw .unsupportedVersion(version) }

        var headers = HTTPHeaderFields()
        for line in lines.dropFirst() {
            guard let first = line.first else { throw .malformed("empty header line") }
            if first == 0x20 || first == 0x09 { throw .malformed("obsolete header line folding") }
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else { throw .malformed("header line without ':'") }
            let name = line[line.startIndex..<colon]
            guard !name.isEmpty, name.allSatisfy(isTokenByte) else { throw .malformed("invalid header name") }
            var value = line[(colon + 1)...]
            while let c = value.first, c == 0x20 || c == 0x09 { value.removeFirst() }
            while let c = value.last, c == 0x20 || c == 0x09 { value.removeLast() }
            guard value.allSatisfy({ $0 >= 0x20 || $0 == 0x09 }), !value.contains(0x7F) else {
                throw .malformed("control character in header value")
            }
            headers.add(String(decoding: name, as: UTF8.self), String(decoding: value, as: UTF8.self))
        }
        return RequestHead(method: method, target: target, version: version, headers: headers)
    }

    /// RFC 9110 `tchar`.
    static func isTokenByte(_ c: UInt8) -> Bool {
        switch c {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        default:
            return "!#$%&'*+-.^_`|~".utf8.contains(c)
        }
    }

    /// Whether a comma-separated header (`Connection`, `Transfer-Encoding`) lists `token`.
    func headerLists(_ name: String, _ token: String) -> Bool {
        headers.values(for: name).contains { value in
            value.split(separator: ",").contains {
                $0.trimmingCharacters(in: .whitespaces).caseInsensitiveCompare(token) == .orderedSame
            }
        }
    }
}
