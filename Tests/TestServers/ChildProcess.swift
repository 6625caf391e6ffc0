import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A child process started with `posix_spawn` directly, for tests that run many of them
/// at once. Foundation's `Process.run` lists `/proc/self/fd` to close descriptors in the
/// child and copies each entry's whole 256-byte name out of glibc's buffer; with the
/// 1,500 and more descriptors a full test run holds, an entry lands at the buffer's end
/// and that copy reads past it (a crash inside `Process.run`, seen in a full run). Here
/// the child closes every other descriptor with `closefrom` instead, and starts in a
/// process group of its own with no signal blocked, as `Process` does.
public final class ChildProcess: @unchecked Sendable {
    public let processIdentifier: Int32
    private let lock = NSLock()
    private var status: Int32?

    /// `standardInput`/`standardOutput`/`standardError`: descriptors the child gets as 0, 1
    /// and 2 (nil: /dev/null); `inherited`: descriptors it gets as 3, 4, … in order (each must
    /// be above the last of those numbers). The caller keeps its own and closes them when it likes.
    public init(
        executable: String, arguments: [String], environment: [String: String], directory: String? = nil,
        standardInput: Int32? = nil, standardOutput: Int32? = nil, standardError: Int32? = nil, inherited: [Int32] = []
    ) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        let null = open("/dev/null", O_RDWR | O_CLOEXEC)
        guard null >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        defer { close(null) }
        for (target, source) in [(Int32(0), standardInput), (1, standardOutput), (2, standardError)] {
            posix_spawn_file_actions_adddup2(&actions, source ?? null, target)
        }
        let firstFree = Int32(3 + inherited.count)
        guard inherited.allSatisfy({ $0 >= firstFree }) else { throw POSIXError(.EINVAL) }
        for (offset, source) in inherited.enumerated() { posix_spawn_file_actions_adddup2(&actions, source, Int32(3 + offset)) }
        if let closeFrom = Self.addCloseFrom { _ = closeFrom(&actions, firstFree) }
        if let directory {
            guard let addChdir = Self.addChdir else { throw POSIXError(.ENOSYS) }
            _ = directory.withCString { addChdir(&actions, $0) }
        }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // No signal blocked, each at its default: the spawning thread's mask (a Swift thread
        // blocks SIGCHLD, SIGTERM and more) would otherwise be the child's.
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attributes, &none)
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        posix_spawnattr_setpgroup(&attributes, 0)

        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        guard result == 0 else { throw POSIXError(POSIXErrorCode(rawValue: result) ?? .EIO) }
        processIdentifier = pid
    }

    /// A child still running is reaped by a thread of its own when it exits (no zombie).
    deinit {
        guard isRunning else { return }
        let pid = processIdentifier
        Thread.detachNewThread {
            var raw: Int32 = 0
            while waitpid(pid, &raw, 0) < 0 && errno == EINTR {}
        }
    }

    /// False once the child has exited (and was reaped here).
    public var isRunning: Bool {
        lock.withLock {
            if status != nil { return false }
            var raw: Int32 = 0
            let reaped = waitpid(processIdentifier, &raw, WNOHANG)
            if reaped == processIdentifier || (reaped < 0 && errno == ECHILD) {
                status = reaped == processIdentifier ? raw : 0
                return false
            }
            return true
        }
    }

    public func waitUntilExit() {
        lock.withLock {
            guard status == nil else { return }
            var raw: Int32 = 0
            var reaped: pid_t
            repeat { reaped = waitpid(processIdentifier, &raw, 0) } while reaped < 0 && errno == EINTR
            status = reaped == processIdentifier ? raw : 0
        }
    }

    /// The exit status, or the signal's number when a signal ended it (-1 while running).
    public var terminationStatus: Int32 {
        guard !isRunning, let raw = lock.withLock({ status }) else { return -1 }
        return raw & 0x7f == 0 ? (raw >> 8) & 0xff : raw & 0x7f
    }

    public var terminationReason: Process.TerminationReason {
        guard !isRunning, let raw = lock.withLock({ status }) else { return .exit }
        return raw & 0x7f == 0 ? .exit : .uncaughtSignal
    }

    /// SIGTERM, unless the child is already gone (its pid may belong to another process by then).
    public func terminate() {
        if isRunning { kill(processIdentifier, SIGTERM) }
    }

    private typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>?, Int32) -> Int32
    private typealias Chdir = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>?, UnsafePointer<CChar>?) -> Int32

    /// glibc's `posix_spawn_file_actions_addclosefrom_np` and `…_addchdir_np` (GNU
    /// extensions the Glibc module does not declare).
    private static let addCloseFrom: CloseFrom? = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np").map {
        unsafeBitCast($0, to: CloseFrom.self)
    }
    private static let addChdir: Chdir? = dlsym(nil, "posix_spawn_file_actions_addchdir_np").map {
        unsafeBitCast($0, to: Chdir.self)
    }
}
