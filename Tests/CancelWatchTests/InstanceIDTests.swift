import Foundation
import Testing

@testable import CancelWatch

/// A replica's id: `CANCELWATCH_INSTANCE` when set (checked), otherwise the host name, the
/// pid and a random suffix, always short and safe in a label or a log line.
@Suite struct InstanceIDTests {
    @Test func aGeneratedIDIsTheHostThePidAndSixHexDigits() throws {
        let id = InstanceID.generated(host: "web-1.example.com", pid: 4182)
        let parts = id.value.split(separator: "-")
        #expect(id.value.hasPrefix("web-1.example.com-4182-"), "\(id)")
        #expect(parts.last?.count == 6 && parts.last!.allSatisfy(\.isHexDigit), "\(id)")
    }

    @Test func aRestartedProcessWithTheSamePidOnTheSameHostIsANewReplica() {
        let ids = Set((0..<20).map { _ in InstanceID.generated(host: "web-1", pid: 7) })
        #expect(ids.count == 20)
    }

    @Test func aHostNameWithOtherCharactersOrTooLongIsCleanedAndCut() throws {
        let id = InstanceID.generated(host: "bad host/ñame:" + String(repeating: "x", count: 200), pid: Int32.max)
        // A byte not allowed becomes '-': "ñ" is two.
        #expect(id.value.hasPrefix("bad-host---ame-xxx"), "\(id)")
        #expect(id.value.count <= InstanceID.maxLength)
        // What a generated id holds is what the environment variable may hold.
        #expect(try InstanceID(id.value) == id)
        #expect(InstanceID.generated(host: "", pid: 1).value.hasPrefix("cancelwatch-1-"))
    }

    @Test func theEnvironmentVariableSetsTheID() throws {
        #expect(try InstanceID.current(environment: ["CANCELWATCH_INSTANCE": "replica_2.eu-west"]).value == "replica_2.eu-west")
        #expect(try InstanceID.current(environment: [:]).value.contains("-\(getpid())-"))
    }

    @Test(arguments: ["", " ", "two words", "line\nbreak", "é", "a/b", String(repeating: "r", count: 65)])
    func anIDThatIsEmptyTooLongOrHasOtherCharactersIsRefusedNamingTheVariable(_ value: String) {
        #expect {
            try InstanceID.current(environment: ["CANCELWATCH_INSTANCE": value])
        } throws: { error in
            let text = "\(error)"
            return text.hasPrefix("CANCELWATCH_INSTANCE '") && text.contains("1 to 64 letters, digits") && !text.contains("\n")
        }
        #expect(throws: Never.self) { try InstanceID(String(repeating: "r", count: 64)) }
    }
}
