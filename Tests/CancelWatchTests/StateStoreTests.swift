import Foundation
import Testing

@testable import CancelWatch

/// What only the SQLite state file does: its mode, a reader beside the writer, a file that
/// is not one. What every store does is `StateStoreContractTests`.
@Suite struct StateStoreTests {
    func temporaryPath() -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cw-store-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory.appendingPathComponent("state.sqlite").path
    }

    func sample(_ id: String, status: TrackedStatus = .pending) -> TrackedRequest {
        let now = Date(timeIntervalSince1970: 1_764_000_000)
        let raw: JSONValue = ["cancellation_id": 42, "cancellation_reason": ["id": 5, "name": "Покупатель передумал"], "extra": nil]
        let request = CancellationRequest(
            marketplace: .ozon, source: "ozon-main", id: id, order: "1234-0001-1", state: .pending, rawState: "ON_APPROVAL",
            initiator: "CLIENT", reason: "Покупатель передумал", reasonID: "5", logistics: "non_integrated",
            createdAt: now.addingTimeInterval(-600), deadline: now.addingTimeInterval(7200), raw: raw)
        return TrackedRequest(request: request, status: status, firstSeen: now, lastSeen: now.addingTimeInterval(60))
    }

    @Test func stateFileIsCreatedWithModeSixHundred() throws {
        let path = temporaryPath()
        _ = try SQLiteStateStore(path: path)
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
    }

    /// `status` reads the file while `run` holds it: it sees what was committed, keys
    /// that differ only after a NUL as two.
    @Test func aReaderOpenedReadOnlyWhileTheWriterHoldsTheFileSeesWhatItCommitted() throws {
        let path = temporaryPath()
        let writer = try SQLiteStateStore(path: path)
        let nul = sample("PKG\u{0}A")
        let other = sample("PKG\u{0}B")
        try writer.save([sample("1"), sample("2", status: .approved), nul, other], health: nil)
        let readOnly = try SQLiteStateStore(path: path, readOnly: true)
        #expect(Set(try readOnly.loadTracked().map(\.key)) == Set([sample("1"), sample("2"), nul, other].map(\.key)))
        #expect(try readOnly.loadTracked().count == 4)
    }

    @Test func aFileThatIsNotAStateFileIsReportedAndLeftUntouched() throws {
        let path = temporaryPath()
        let garbage = Data(repeating: 0x41, count: 4096)
        try garbage.write(to: URL(fileURLWithPath: path))
        #expect {
            _ = try SQLiteStateStore(path: path)
        } throws: { error in
            "\(error)".contains("not a cancelwatch state file or is corrupt") && "\(error)".contains(path)
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == garbage)
    }

    @Test func statusOnAMissingStateFileSaysWhatToRun() {
        #expect {
            _ = try SQLiteStateStore(path: temporaryPath(), readOnly: true)
        } throws: { error in
            "\(error)".contains("cancelwatch once")
        }
    }
}
