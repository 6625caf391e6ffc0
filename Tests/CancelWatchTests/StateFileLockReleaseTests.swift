import Foundation
import Testing

@testable import CancelWatch

/// The state file's lock within one process that spawns children (the test run does,
/// all the time): a lock this process released is its own to take again, even while a
/// child being spawned still holds a copy of the released descriptor until its exec.
@Suite struct StateFileLockReleaseTests {
    @Test func aLockThisProcessReleasedIsTakenAgainWhileAChildStillHoldsTheOldDescriptor() throws {
        let path = try temporaryStatePath("cw-lock")
        var first: StateFileLock? = try StateFileLock(statePath: path)
        // A child that has the descriptor (as one between its spawn and its exec has) and
        // goes away by itself.
        let child = fork()
        if child == 0 {
            usleep(300_000)
            _exit(0)
        }
        #expect(child > 0)
        defer {
            var status: Int32 = 0
            _ = waitpid(child, &status, 0)
        }
        first = nil
        #expect(first == nil)
        #expect(throws: Never.self) { _ = try StateFileLock(statePath: path) }
    }
}
