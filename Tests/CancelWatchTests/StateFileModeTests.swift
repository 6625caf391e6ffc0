import Foundation
import Testing

@testable import CancelWatch

/// The state file, SQLite's `-wal` and `-shm` beside it, and the lock file are readable
/// by their owner only, on every open: a file restored from a backup at 0644 is made
/// 0600 again (with a warning), not only a file cancelwatch creates.
@Suite struct StateFileModeTests {
    func temporaryPath() -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cw-mode-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory.appendingPathComponent("state.sqlite").path
    }

    func mode(_ path: String) throws -> Int {
        try #require(FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int)
    }

    func loosen(_ paths: [String]) throws {
        for path in paths { try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: path) }
        for path in paths { #expect(try mode(path) == 0o644) }
    }

    /// The state file with its WAL files and lock file in place: a store keeps them open.
    func files(_ path: String) -> [String] { [path, path + "-wal", path + "-shm", path + ".lock"] }

    @Test func aStateFileAndItsCompanionsLeftAt0644AreMade0600WhenOpenedForWriting() throws {
        let path = temporaryPath()
        let first = try SQLiteStateStore(path: path)
        try first.save([], health: SourceHealth(source: "ozon", marketplace: .ozon))
        for file in files(path) { #expect(FileManager.default.fileExists(atPath: file), "\(file)") }
        for file in files(path) { #expect(try mode(file) == 0o600, "\(file) as created") }
        try loosen(files(path))
        _ = try SQLiteStateStore(path: path)
        for file in files(path) { #expect(try mode(file) == 0o600, "\(file) after opening again") }
        withExtendedLifetime(first) {}
    }

    @Test func aStateFileLeftAt0644IsMade0600WhenStatusOpensItToRead() throws {
        let path = temporaryPath()
        let writer = try SQLiteStateStore(path: path)
        try writer.save([], health: SourceHealth(source: "ozon", marketplace: .ozon))
        try loosen(files(path))
        _ = try SQLiteStateStore(path: path, readOnly: true)
        for file in files(path) { #expect(try mode(file) == 0o600, "\(file)") }
        withExtendedLifetime(writer) {}
    }

    @Test func aRestoredBackupWithoutWALFilesGetsItsNewWALFilesAt0600() throws {
        let path = temporaryPath()
        do { try SQLiteStateStore(path: path).save([], health: nil) }
        for file in files(path).dropFirst(1).dropLast(1) { #expect(!FileManager.default.fileExists(atPath: file), "\(file) left") }
        try loosen([path])
        let store = try SQLiteStateStore(path: path)
        try store.save([], health: SourceHealth(source: "ozon", marketplace: .ozon))
        for file in files(path) { #expect(try mode(file) == 0o600, "\(file)") }
    }
}
