import Foundation

/// A write to a pipe whose reader is gone fails with EPIPE instead of killing the
/// process (SIGPIPE's default): the failure is reported where the write was made.
enum BrokenPipes {
    static func ignore() {
        signal(SIGPIPE, SIG_IGN)
    }
}
