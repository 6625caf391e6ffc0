import Foundation
import Testing

/// A state file restored from a backup at 0644 (and its lock file) is made 0600 by the
/// next `once` or `status`, which say so on stderr.
@Suite struct LooseStateFileModeTests {
    func mode(_ path: String) throws -> Int {
        try #require(FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int)
    }

    @Test func onceAndStatusMakeALooseStateFile0600AndWarnNamingIt() async throws {
        var options = WatchOptions()
        options.red = false
        let setup = try WatchSetup(ozon: 1, red: 0, options: options)
        defer { setup.shutdown() }
        let first = try await setup.capture(["once", "--config", setup.configPath])
        #expect(first.status == 0, "\(first.stderr)")
        let files = [setup.statePath, setup.statePath + ".lock"]
        for file in files {
            #expect(try mode(file) == 0o600, "\(file)")
            try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: file)
        }

        let again = try await setup.capture(["once", "--config", setup.configPath])
        #expect(again.status == 0, "\(again.stderr)")
        for file in files {
            #expect(try mode(file) == 0o600, "\(file)")
            #expect(again.stderr.contains("\(file) was mode 644"), "\(again.stderr)")
        }

        try FileManager.default.setAttributes([.posixPermissions: 0o640], ofItemAtPath: setup.statePath)
        let status = try await setup.capture(["status", "--config", setup.configPath])
        #expect(status.status == 0, "\(status.stderr)")
        #expect(status.stderr.contains("warning: \(setup.statePath) was mode 640"), "\(status.stderr)")
        #expect(try mode(setup.statePath) == 0o600)
    }
}
