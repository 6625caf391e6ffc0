import Foundation
import TestServers
import Testing

@testable import CancelWatch

/// A state file locked by another process is left alone by a second opener: it is
/// refused before it opens the database, so it neither changes the file's mode nor
/// touches SQLite's files beside it.
@Suite struct LockedStateFileTests {
    @Test func aSecondOpenerRefusedByTheLockLeavesTheStateFileAsItWas() throws {
        let path = try temporaryStatePath("cw-locked")
        _ = try SQLiteStateStore(path: path)  // created, then closed
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: path)

        // Another process holds the lock until its standard input closes.
        let output = Pipe.closeOnExec()
        let input = Pipe.closeOnExec()
        let holder = try ChildProcess(
            executable: "/usr/bin/python3",
            arguments: [
                "-c",
                "import fcntl, os, sys\nfd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)\nfcntl.flock(fd, fcntl.LOCK_EX)\nprint('locked', flush=True)\nsys.stdin.read()",
                path + ".lock",
            ], environment: ProcessInfo.processInfo.environment, standardInput: input.fileHandleForReading.fileDescriptor,
            standardOutput: output.fileHandleForWriting.fileDescriptor, standardError: 2)
        try input.fileHandleForReading.close()
        try output.fileHandleForWriting.close()
        defer {
            try? input.fileHandleForWriting.close()
            holder.waitUntilExit()
        }
        let said = String(decoding: output.fileHandleForReading.availableData, as: UTF8.self)
        try #require(said.hasPrefix("locked"), "the holder said \(said)")

        #expect(throws: StoreError.self) { try SQLiteStateStore(path: path) }
        let mode = try #require(FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int)
        #expect(mode == 0o644, "the refused opener changed the mode to \(String(mode, radix: 8))")
        #expect(!FileManager.default.fileExists(atPath: path + "-wal"), "the refused opener opened the database")
    }
}
