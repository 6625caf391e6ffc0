import Foundation

/// Serves one connection: reads requests, calls the handler, writes responses,
/// until the client closes, asks to close, times out, or the server stops.
struct ConnectionHandler {
    let fd: Int32
    let remoteAddress: String
    let core: ServerCore
    private var buffer: [UInt8] = []

    init(fd: Int32, remoteAddress: String, core: ServerCore) {
        self.fd = fd
        self.remoteAddress = remoteAddress
        self.core = core
    }

    private enum Step: Error {
        case request(ServerRequest, keepAlive: Bool)
        /// Answer with this and close.
        case refuse(ServerResponse)
        /// Close without answering.
        case close
    }

    mutating func serve() {
        while !core.isStopping {
            switch nextRequest() {
            case .close:
                return
            case .refuse(let response):
                if Self.write(response, to: fd, closing: true, headOnly: false) { lingeringClose() }
                return
            case .request(let request, let keepAlive):
                let response = core.handler(request)
                if response.delay > 0, !core.pause(response.delay) { return }
                if core.isStopping { return }
                let closing = !keepAlive || response.fault != nil || response.headers["Connection"]?.lowercased() == "close"
                var answer = response
                if !closing && request.version == "HTTP/1.0" { answer.headers["Connection"] = "keep-alive" }
                guard Self.write(answer, to: fd, closing: closing, headOnly: request.method == "HEAD") else { return }
                if closing { return }
            }
        }
    }

    /// After refusing a request whose body was not read, stops sending and drains
    /// briefly, so the close does not reset the connection before the client reads the answer.
    private mutating func lingeringClose() {
        SocketIO.shutdownWrite(fd)
        let until = Date().addingTimeInterval(1)
        var drained = 0
        while Date() < until, drained < 4 * 1024 * 1024 {
            buffer.removeAll(keepingCapacity: true)
            switch SocketIO.read(fd, into: &buffer, timeout: max(0, until.timeIntervalSinceNow)) {
            case .data(let n): drained += n
            case .closed, .failed, .timedOut: return
            }
        }
    }

    // MARK: Reading

    private mutating func nextRequest() -> Step {
        let options = core.options
        // The head: wait for the blank line.
        var searchFrom = 0
        var headEnd: (head: Int, body: Int)? = nil
        while headEnd == nil {
            headEnd = Self.findHeadEnd(buffer, from: searchFrom)
            if headEnd != nil { break }
            searchFrom = max(0, buffer.count - 3)
            if buffer.count > options.maxHeaderBytes {
                return .refuse(.text(status: 431, "request header fields too large\n"))
            }
            let idle = buffer.allSatisfy { $0 == 0x0D || $0 == 0x0A }
            switch SocketIO.read(fd, into: &buffer, timeout: idle ? options.idleTimeout : options.readTimeout) {
            case .data: continue
            case .closed, .failed: return .close
            case .timedOut: return idle ? .close : .refuse(.text(status: 408, "request timeout\n"))
            }
        }
        guard let (headLength, bodyStart) = headEnd else { return .close }
        if headLength > options.maxHeaderBytes {
            return .refuse(.text(status: 431, "request header fields too large\n"))
        }
        let head: RequestHead
        do {
            head = try RequestHead.parse(buffer[0..<headLength])
        } catch {
            switch error {
            case .unsupportedVersion(let version):
                return .refuse(.text(status: 505, "unsupported HTTP version \(version)\n"))
            case .malformed(let reason):
                return .refuse(.text(status: 400, "bad request: \(reason)\n"))
            }
        }
        buffer.removeFirst(bodyStart)

        // Framing.
        let transferEncodings = head.headers.values(for: "Transfer-Encoding")
        let lengths = head.headers.values(for: "Content-Length")
        var chunked = false
        var contentLength = 0
        if !transferEncodings.isEmpty {
            guard lengths.isEmpty else { return .refuse(.text(status: 400, "bad request: both Content-Length and Transfer-Encoding\n")) }
            let codings = transferEncodings.flatMap { $0.split(separator: ",") }.map {
                $0.trimmingCharacters(in: .whitespaces).lowercased()
            }
            guard codings == ["chunked"] else {
                return .refuse(.text(status: 501, "unsupported transfer coding\n"))
            }
            chunked = true
        } else if !lengths.isEmpty {
            let values = Set(lengths.flatMap { $0.split(separator: ",", omittingEmptySubsequences: false) }.map {
                $0.trimmingCharacters(in: .whitespaces)
            })
            guard values.count == 1, let text = values.first, !text.isEmpty, text.count <= 18,
                text.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), let value = Int(text)
            else { return .refuse(.text(status: 400, "bad request: invalid Content-Length\n")) }
            contentLength = value
        }
        if contentLength > options.maxBodyBytes {
            return .refuse(.text(status: 413, "request body larger than \(options.maxBodyBytes) bytes\n"))
        }

        if let expect = head.headers["Expect"] {
            guard expect.lowercased() == "100-continue" else { return .refuse(.text(status: 417, "unsupported expectation\n")) }
            if head.version == "HTTP/1.1", buffer.isEmpty, chunked || contentLength > 0 {
                let interim = Array("HTTP/1.1 100 Continue\r\n\r\n".utf8)
                guard interim.withUnsafeBytes({ SocketIO.writeAll(fd, $0) }) else { return .close }
            }
        }

        let body: [UInt8]
        if chunked {
            switch readChunkedBody() {
            case .success(let bytes): body = bytes
            case .failure(let step): return step
            }
        } else {
            while buffer.count < contentLength {
                switch SocketIO.read(fd, into: &buffer, timeout: options.readTimeout) {
                case .data: continue
                case .closed, .failed: return .close
                case .timedOut: return .refuse(.text(status: 408, "request timeout\n"))
                }
            }
            body = Array(buffer[0..<contentLength])
            buffer.removeFirst(contentLength)
        }

        let keepAlive: Bool
        if head.headerLists("Connection", "close") {
            keepAlive = false
        } else if head.version == "HTTP/1.0" {
            keepAlive = head.headerLists("Connection", "keep-alive")
        } else {
            keepAlive = true
        }
        let request = ServerRequest(
            method: head.method, target: head.target, version: head.version, headers: head.headers, body: Data(body),
            remoteAddress: remoteAddress)
        return .request(request, keepAlive: keepAlive)
    }

    /// Reads a chunked body (RFC 9112 §7.1), discarding extensions and trailers.
    private mutating func readChunkedBody() -> Result<[UInt8], Step> {
        var body: [UInt8] = []
        while true {
            let sizeLine: [UInt8]
            switch readLine(limit: 4096) {
            case .success(let l): sizeLine = l
            case .failure(let step): return .failure(step)
            }
            let sizeText = sizeLine.prefix { $0 != UInt8(ascii: ";") }
            let trimmed = String(decoding: sizeText, as: UTF8.self).trimmingCharacters(in: .whitespaces)
            guard !trimmed.isEmpty, trimmed.count <= 15, let size = Int(trimmed, radix: 16), size >= 0 else {
                return .failure(.refuse(.text(status: 400, "bad request: invalid chunk size\n")))
            }
            if size == 0 {
                // Trailers until an empty line.
                var trailerBytes = 0
                while true {
                    switch readLine(limit: 8192) {
                    case .success(let l):
                        if l.isEmpty { return .success(body) }
                        trailerBytes += l.count
                        if trailerBytes > core.options.maxHeaderBytes {
                            return .failure(.refuse(.text(status: 431, "trailer fields too large\n")))
                        }
                    case .failure(let step): return .failure(step)
                    }
                }
            }
            if body.count + size > core.options.maxBodyBytes {
                return .failure(.refuse(.text(status: 413, "request body larger than \(core.options.maxBodyBytes) bytes\n")))
            }
            while buffer.count < size + 2 {
                switch SocketIO.read(fd, into: &buffer, timeout: core.options.readTimeout) {
                case .data: continue
                case .closed, .failed: return .failure(.close)
                case .timedOut: return .failure(.refuse(.text(status: 408, "request timeout\n")))
                }
            }
            body.append(contentsOf: buffer[0..<size])
            var skip = size
            if buffer[skip] == 0x0D { skip += 1 }
            guard buffer[skip] == 0x0A else { return .failure(.refuse(.text(status: 400, "bad request: chunk not followed by CRLF\n"))) }
            buffer.removeFirst(skip + 1)
        }
    }

    /// One line (CRLF or LF ended) from the buffer, reading more as needed.
    private mutating func readLine(limit: Int) -> Result<[UInt8], Step> {
        while true {
            if let newline = buffer.firstIndex(of: 0x0A) {
                var end = newline
                if end > 0, buffer[end - 1] == 0x0D { end -= 1 }
                let line = Array(buffer[0..<end])
                buffer.removeFirst(newline + 1)
                return .success(line)
            }
            if buffer.count > limit { return .failure(.refuse(.text(status: 400, "bad request: line too long\n"))) }
            switch SocketIO.read(fd, into: &buffer, timeout: core.options.readTimeout) {
            case .data: continue
            case .closed, .failed: return .failure(.close)
            case .timedOut: return .failure(.refuse(.text(status: 408, "request timeout\n")))
            }
        }
    }

    /// Where the head ends: the index of its blank line, and where the body starts.
    static func findHeadEnd(_ bytes: [UInt8], from start: Int) -> (head: Int, body: Int)? {
        var i = max(0, start)
        // Skip leading empty lines (allowed before a request line).
        while i < bytes.count {
            if bytes[i] == 0x0A {
                // "\n\n" or "\n\r\n" ends the head, unless it is at the very beginning.
                let lineStart = i + 1
                if lineStart < bytes.count, bytes[lineStart] == 0x0A {
                    if hasContent(bytes, before: i) { return (i + 1, lineStart + 1) }
                } else if lineStart + 1 < bytes.count, bytes[lineStart] == 0x0D, bytes[lineStart + 1] == 0x0A {
                    if hasContent(bytes, before: i) { return (i + 1, lineStart + 2) }
                }
            }
            i += 1
        }
        return nil
    }

    private static func hasContent(_ bytes: [UInt8], before end: Int) -> Bool {
        bytes[0..<end].contains { $0 != 0x0D && $0 != 0x0A }
    }

    // MARK: Writing

    /// Writes `response`; false when the connection should end (a fault or a write error).
    @discardableResult
    static func write(_ response: ServerResponse, to fd: Int32, closing: Bool, headOnly: Bool) -> Bool {
        if response.fault == .dropConnection { return false }
        let status = (100...999).contains(response.status) ? response.status : 500
        var head = "HTTP/1.1 \(status) \(ServerResponse.reasonPhrase(status))\r\n"
        let framed = ![204, 304].contains(status) && status >= 200
        for field in response.headers {
            let name = field.name.lowercased()
            if name == "content-length" || name == "transfer-encoding" { continue }
            if name == "connection" && (closing || field.value.lowercased() != "keep-alive") { continue }
            guard !field.name.isEmpty, field.name.utf8.allSatisfy(RequestHead.isTokenByte) else { continue }
            let value = String(field.value.unicodeScalars.filter { $0 != "\r" && $0 != "\n" && $0 != "\0" })
            head += "\(field.name): \(value)\r\n"
        }
        if !response.headers.contains("Date") { head += "Date: \(httpDate(Date()))\r\n" }
        if framed { head += "Content-Length: \(response.body.count)\r\n" }
        if closing { head += "Connection: close\r\n" }
        head += "\r\n"
        var bytes = Data(head.utf8)
        if framed && !headOnly {
            if case .truncateBody(let count) = response.fault {
                bytes.append(response.body.prefix(count))
            } else {
                bytes.append(response.body)
            }
        }
        guard SocketIO.writeAll(fd, bytes) else { return false }
        return response.fault == nil
    }

    /// An IMF-fixdate, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
    static func httpDate(_ date: Date) -> String {
        let seconds = Int(date.timeIntervalSince1970)
        let days = seconds >= 0 ? seconds / 86400 : (seconds - 86399) / 86400
        let secs = seconds - days * 86400
        let weekdays = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"]
        let weekday = weekdays[((days % 7) + 7) % 7]
        // Civil date from days (Howard Hinnant).
        let z = days + 719468
        let era = (z >= 0 ? z : z - 146096) / 146097
        let doe = z - era * 146097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        return String(
            format: "%@, %02d %@ %04d %02d:%02d:%02d GMT", weekday, day, months[month - 1], year, secs / 3600,
            (secs % 3600) / 60, secs % 60)
    }
}
