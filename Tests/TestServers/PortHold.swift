import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A socket bound to 127.0.0.1:`port` and not listening: connections to the port are
/// refused, and no other server of the test run is given it meanwhile (a watcher still
/// polling a stopped server would otherwise reach whichever server got its port next).
public final class PortHold: @unchecked Sendable {
    private let fd: Int32

    /// Nil when the port cannot be bound (something else holds it).
    public init?(port: Int) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        var reuse: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &reuse, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(clamping: port)).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else {
            close(fd)
            return nil
        }
        self.fd = fd
    }

    deinit { close(fd) }
}
