import Foundation

/// One state file, one watcher: an exclusive `flock` on `<state>.lock` (mode 0600) with
/// the holder's pid written in it. The kernel releases it when the holder exits, however
/// it dies (`kill -9` included). The lock file stays: removing it would let two
/// processes lock two different files.
///
/// Within one process the lock is shared: a reload opens the state file again while
/// the old pipeline, already stopped, still holds it.
final class StateFileLock: Sendable {
    let path: String
    private let key: Key

    private struct Key: Hashable {
        var device: UInt64
        var inode: UInt64
    }

    private final class Held: @unchecked Sendable {
        let lock = NSLock()
        var entries: [Key: (descriptor: Int32, holders: Int)] = [:]
    }

    private static let held = Held()

    /// Takes the lock of the state file at `statePath`, or throws naming the file and the
    /// pid of the process that holds it.
    init(statePath: String) throws(StoreError) {
        path = statePath + ".lock"
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard descriptor >= 0 else {
            throw StoreError("state file \(statePath): cannot open its lock file \(path): \(String(cString: strerror(errno)))")
        }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else {
            let reason = String(cString: strerror(errno))
            close(descriptor)
            throw StoreError("state file \(statePath): cannot read its lock file \(path): \(reason)")
        }
        // `self.key` is set only once the lock is held: a throwing init runs no deinit.
        let key = Key(device: UInt64(info.st_dev), inode: UInt64(info.st_ino))
        let table = Self.held
        table.lock.lock()
        defer { table.lock.unlock() }
        if let entry = table.entries[key] {
            close(descriptor)
            table.entries[key] = (entry.descriptor, entry.holders + 1)
            self.key = key
            return
        }
        guard Self.lock(descriptor) else {
            let failure = errno
            let holder = Self.holder(descriptor)
            close(descriptor)
            guard failure == EWOULDBLOCK else {
                throw StoreError("state file \(statePath): cannot lock \(path): \(String(cString: strerror(failure)))")
            }
            var error = StoreError(
                "state file \(statePath) is in use by another cancelwatch (pid \(holder ?? "unknown"), lock \(path)): one state file has one watcher; stop that process, or give this one a state file of its own")
            error.lockHeld = true
            throw error
        }
        let pid = Array("\(getpid())\n".utf8)
        if ftruncate(descriptor, 0) == 0 {
            _ = pid.withUnsafeBytes { pwrite(descriptor, $0.baseAddress, $0.count, 0) }
        }
        table.entries[key] = (descriptor, 1)
        self.key = key
    }

    deinit {
        let table = Self.held
        table.lock.lock()
        defer { table.lock.unlock() }
        guard let entry = table.entries[key] else { return }
        if entry.holders > 1 {
            table.entries[key] = (entry.descriptor, entry.holders - 1)
        } else {
            table.entries[key] = nil
            close(entry.descriptor)
        }
    }

    /// Takes the lock, or returns false with `errno` set. Refused with this process's own
    /// pid in the file while no store of it holds the lock, the holder is a child another
    /// thread is starting (`Process`): it has a copy of a descriptor closed here until it
    /// execs, within moments, so this waits up to a second for it.
    private static func lock(_ descriptor: Int32) -> Bool {
        let own = String(getpid())
        for _ in 0..<1000 {
            if flock(descriptor, LOCK_EX | LOCK_NB) == 0 { return true }
            let failure = errno
            guard failure == EWOULDBLOCK, holder(descriptor) == own else {
                errno = failure
                return false
            }
            usleep(1000)
        }
        errno = EWOULDBLOCK
        return false
    }

    /// The pid written by the holder, when it reads as one.
    private static func holder(_ descriptor: Int32) -> String? {
        var buffer = [UInt8](repeating: 0, count: 32)
        let count = buffer.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, $0.count, 0) }
        guard count > 0 else { return nil }
        let text = String(decoding: buffer[..<count], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return Int32(text).map { String($0) }
    }
}
