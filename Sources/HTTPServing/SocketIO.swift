import Foundation

#if canImport(Glibc)
    import Glibc
    let socketStreamType = Int32(SOCK_STREAM.rawValue)
    let sendFlags = Int32(MSG_NOSIGNAL)
#elseif canImport(Musl)
    import Musl
    let socketStreamType = Int32(SOCK_STREAM)
    let sendFlags = Int32(MSG_NOSIGNAL)
#else
    import Darwin
    let socketStreamType = SOCK_STREAM
    let sendFlags: Int32 = 0
#endif

/// Thin wrappers over the POSIX calls the server uses.
enum SocketIO {
    enum ReadResult {
        case data(Int)
        case closed
        case timedOut
        case failed
    }

    /// Waits up to `timeout` seconds for `fd` to become readable, then reads into `buffer`.
    static func read(_ fd: Int32, into buffer: inout [UInt8], timeout: TimeInterval) -> ReadResult {
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let remainingMs = max(0, Int32(min(deadline.timeIntervalSinceNow * 1000, Double(Int32.max))))
            let ready = poll(&poller, 1, remainingMs)
            if ready < 0 {
                if errno == EINTR { continue }
                return .failed
            }
            if ready == 0 { return .timedOut }
            break
        }
        var chunk = [UInt8](repeating: 0, count: 16384)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n > 0 {
                buffer.append(contentsOf: chunk[0..<n])
                return .data(n)
            }
            if n == 0 { return .closed }
            if errno == EINTR { continue }
            return .failed
        }
    }

    /// Writes all of `bytes`; false when the peer is gone or the send timeout passed.
    @discardableResult
    static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let n = send(fd, bytes.baseAddress!.advanced(by: offset), bytes.count - offset, sendFlags)
            if n > 0 {
                offset += n
            } else if n < 0 && errno == EINTR {
                continue
            } else {
                return false
            }
        }
        return true
    }

    @discardableResult
    static func writeAll(_ fd: Int32, _ data: Data) -> Bool {
        if data.isEmpty { return true }
        return data.withUnsafeBytes { writeAll(fd, $0) }
    }

    static func setOption(_ fd: Int32, _ level: Int32, _ name: Int32, _ value: Int32) {
        var v = value
        _ = setsockopt(fd, level, name, &v, socklen_t(MemoryLayout<Int32>.size))
    }

    static func setSendTimeout(_ fd: Int32, seconds: TimeInterval) {
        var tv = timeval()
        tv.tv_sec = .init(seconds)
        tv.tv_usec = .init((seconds - floor(seconds)) * 1_000_000)
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    static func describe(_ address: sockaddr_in) -> String {
        var addr = address.sin_addr
        var text = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
        _ = inet_ntop(AF_INET, &addr, &text, socklen_t(INET_ADDRSTRLEN))
        let host = String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return "\(host):\(UInt16(bigEndian: address.sin_port))"
    }

    static func closeSocket(_ fd: Int32) {
        _ = close(fd)
    }

    static func shutdownWrite(_ fd: Int32) {
        _ = shutdown(fd, Int32(SHUT_WR))
    }

    static func shutdownSocket(_ fd: Int32) {
        _ = shutdown(fd, Int32(SHUT_RDWR))
    }
}
