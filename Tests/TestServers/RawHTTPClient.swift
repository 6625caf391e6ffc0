import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A raw TCP client for what libcurl would never send: heads dripped a byte at a time,
/// bodies nobody asked for, line feeds instead of a request. Its calls block: run them
/// with `offPool` from async tests.
public final class RawHTTPClient: @unchecked Sendable {
    public let fd: Int32

    /// Connects to `host` (an IPv4 or IPv6 literal) on `port`.
    public init(host: String = "127.0.0.1", port: Int) throws {
        var hints = addrinfo()
        hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &list) == 0, let info = list else { throw POSIXError(.EINVAL) }
        defer { freeaddrinfo(list) }
        fd = socket(info.pointee.ai_family, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EMFILE) }
        guard connect(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 else {
            close(fd)
            throw POSIXError(.ECONNREFUSED)
        }
    }

    deinit { close(fd) }

    /// Sends everything; false when the peer closed or reset the connection.
    @discardableResult
    public func send(_ text: String) -> Bool { send(Array(text.utf8)) }

    @discardableResult
    public func send(_ bytes: [UInt8]) -> Bool {
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return false }
            sent += n
        }
        return true
    }

    /// Reads until `marker` appears in what was read, the peer closes, or `timeout` passes.
    public func read(until marker: String? = nil, timeout: TimeInterval = 10) -> String {
        var received: [UInt8] = []
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let marker, String(decoding: received, as: UTF8.self).contains(marker) { break }
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, Int32(max(1, deadline.timeIntervalSinceNow * 1000))) > 0 else { break }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            received += chunk[0..<n]
        }
        return String(decoding: received, as: UTF8.self)
    }

    /// Sends `head`, then up to `bodyBytes` of body in chunks while reading, and stops
    /// sending as soon as a whole response head has arrived (or the peer closes). Returns
    /// what was read and how many body bytes went out.
    public func sendHead(_ head: String, thenBody bodyBytes: Int, timeout: TimeInterval = 30) -> (response: String, bodySent: Int) {
        guard send(head) else { return ("", 0) }
        let chunk = [UInt8](repeating: UInt8(ascii: "x"), count: 64 * 1024)
        var sent = 0
        var received: [UInt8] = []
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if String(decoding: received, as: UTF8.self).contains("\r\n\r\n") { break }
            var poller = pollfd(fd: fd, events: Int16(POLLIN) | (sent < bodyBytes ? Int16(POLLOUT) : 0), revents: 0)
            guard poll(&poller, 1, 1000) >= 0 else { break }
            if poller.revents & Int16(POLLIN) != 0 {
                var buffer = [UInt8](repeating: 0, count: 65536)
                let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if n <= 0 { break }
                received += buffer[0..<n]
            } else if poller.revents & Int16(POLLOUT) != 0 {
                let size = min(chunk.count, bodyBytes - sent)
                let n = chunk.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, size, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
                if n <= 0 && errno != EAGAIN { break }
                sent += max(0, n)
            } else if poller.revents != 0 {
                break
            }
        }
        return (String(decoding: received, as: UTF8.self), sent)
    }

    /// Whether the peer closed or reset the connection: a read returns end of file or an error.
    /// Waits at most `timeout` for it.
    public func isClosedByPeer(timeout: TimeInterval = 2) -> Bool {
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&poller, 1, Int32(timeout * 1000)) > 0 else { return false }
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if n > 0 { continue }
            return n == 0 || errno != EAGAIN
        }
    }
}

/// Resident memory and CPU time of a process, read from `/proc`.
public enum ProcessUsage {
    /// VmRSS in bytes, or nil when the process is gone.
    public static func residentBytes(pid: Int32) -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = text.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
            let kilobytes = line.split(separator: " ").dropFirst().first.flatMap({ Int($0) })
        else { return nil }
        return kilobytes * 1024
    }

    /// User plus system CPU time in seconds, or nil when the process is gone.
    public static func cpuSeconds(pid: Int32) -> Double? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = text.lastIndex(of: ")")
        else { return nil }
        // Fields after the command name: state is field 3; utime and stime are 14 and 15.
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }
}
