import Foundation

#if canImport(Glibc)
    import Glibc
#endif

extension Pipe {
    /// A pipe whose two ends are close-on-exec, for a child's stdin, stdout or stderr
    /// (`Process` dups its end into the child, which clears the flag there). A plain
    /// `Pipe()` is inherited by every child another test spawns meanwhile: its write end
    /// then stays open in that child, and the reader waits for end of file as long as
    /// that unrelated process lives.
    public static func closeOnExec() -> Pipe {
        let pipe = Pipe()
        for fd in [pipe.fileHandleForReading.fileDescriptor, pipe.fileHandleForWriting.fileDescriptor] {
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        }
        return pipe
    }
}

/// Reads `fd` to end of file on a thread of its own, handing each chunk to `append`,
/// then `closed`. The thread reads a duplicate of `fd` that it closes itself, so the
/// caller may close or drop its own end at any time: a thread left reading a descriptor
/// number its owner closed would read whatever file next gets that number (another
/// test's pipe or socket).
public func readToEndInBackground(
    _ fd: Int32, name: String, append: @escaping @Sendable (Data) -> Void, closed: @escaping @Sendable () -> Void
) {
    let owned = fcntl(fd, F_DUPFD_CLOEXEC, 0)
    guard owned >= 0 else {
        closed()
        return
    }
    let thread = Thread {
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = buffer.withUnsafeMutableBytes { Glibc.read(owned, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { break }
            append(Data(buffer[0..<count]))
        }
        close(owned)
        closed()
    }
    thread.name = name
    thread.start()
}
