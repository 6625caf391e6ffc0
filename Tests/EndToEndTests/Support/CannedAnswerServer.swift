import Foundation

/// A misbehaving marketplace on 127.0.0.1 in its smallest form: every request, whatever
/// its path, gets the same status and body, and the connection closes. Plain sockets,
/// a thread of its own, so that it depends on no server library.
final class CannedAnswerServer: @unchecked Sendable {
    let port: Int
    private let listener: Int32
    private let answer: [UInt8]
    private let delay: TimeInterval
    private let lock = NSCondition()
    private var requests = 0
    private var taken = 0
    private var stopped = false

    /// `delay`: how long each answer is held back (cut short by `stop()`).
    init(status: Int, contentType: String = "application/json", body: String, delay: TimeInterval = 0) throws {
        self.delay = delay
        let bytes = Array(body.utf8)
        answer = Array(
            "HTTP/1.1 \(status) Canned\r\nContent-Type: \(contentType)\r\nContent-Length: \(bytes.count)\r\nConnection: close\r\n\r\n".utf8)
            + bytes
        listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard listener >= 0 else { throw CommandFailure("socket: \(String(cString: strerror(errno)))") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let fd = listener
        let ready = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(fd, pointer, length) == 0 && getsockname(fd, pointer, &length) == 0 && listen(fd, 16) == 0
            }
        }
        guard ready else {
            close(listener)
            throw CommandFailure("cannot listen: \(String(cString: strerror(errno)))")
        }
        port = Int(UInt16(bigEndian: address.sin_port))
        let thread = Thread { [self] in acceptLoop() }
        thread.name = "canned-answer"
        thread.start()
    }

    deinit { stop() }

    var url: String { "http://127.0.0.1:\(port)" }

    /// Requests answered so far.
    var answered: Int { lock.withLock { requests } }

    /// Requests read whole so far, answered or still held back.
    var received: Int { lock.withLock { taken } }

    func stop() {
        let first = lock.withLock { () -> Bool in
            defer {
                stopped = true
                lock.broadcast()
            }
            return !stopped
        }
        if first {
            shutdown(listener, Int32(SHUT_RDWR))
            close(listener)
        }
    }

    private func acceptLoop() {
        while true {
            let connection = accept(listener, nil, nil)
            if connection < 0 {
                if errno == EINTR { continue }
                return
            }
            readRequest(connection)
            lock.withLock { taken += 1 }
            if delay > 0 {
                let until = Date(timeIntervalSinceNow: delay)
                lock.withLock { while !stopped, lock.wait(until: until) {} }
            }
            var offset = 0
            while offset < answer.count {
                let written = answer[offset...].withUnsafeBytes { send(connection, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if written <= 0 { break }
                offset += written
            }
            lock.withLock { requests += 1 }
            close(connection)
        }
    }

    /// Reads the head and a `Content-Length` body, so the client sees its request taken whole.
    private func readRequest(_ connection: Int32) {
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 8192)
        var needed: Int?
        while needed.map({ received.count < $0 }) ?? true {
            let count = recv(connection, &buffer, buffer.count, 0)
            if count <= 0 { return }
            received += buffer[0..<count]
            if needed == nil, let end = received.firstRange(of: Array("\r\n\r\n".utf8)) {
                let head = String(decoding: received[..<end.lowerBound], as: UTF8.self).lowercased()
                let length = head.split(separator: "\r\n").first { $0.hasPrefix("content-length:") }
                    .flatMap { Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) } ?? 0
                needed = end.upperBound + length
            }
        }
    }
}
