import Foundation

/// Which `run` process this is among the replicas that share one state: the `instance` label
/// of every metric and the `instance` field of every log line. `CANCELWATCH_INSTANCE` sets
/// it; otherwise it is the host name, the pid and a random suffix (`web-1-4182-7f3a9c`), so
/// that a process restarted on the same host, even with the same pid, is a new replica.
/// It is not a config key: replicas share one config file.
public struct InstanceID: Sendable, Hashable, CustomStringConvertible {
    public let value: String

    public static let environmentVariable = "CANCELWATCH_INSTANCE"
    /// The longest id, in characters (all ASCII).
    public static let maxLength = 64
    /// How much of the host name a generated id keeps.
    static let hostLimit = 40

    /// Why an id was refused.
    public struct Invalid: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    /// `text` as an id: 1 to ``maxLength`` ASCII letters, digits, `.`, `_` or `-`.
    public init(_ text: String) throws(Invalid) {
        guard (1...Self.maxLength).contains(text.utf8.count), text.utf8.allSatisfy(Self.isAllowed) else {
            throw Invalid(
                description: "\(Self.environmentVariable) '\(TextCut.cut(TerminalText.singleLine(text), limit: Self.maxLength + 16))' "
                    + "is not an instance id: write 1 to \(Self.maxLength) letters, digits, '.', '_' or '-'")
        }
        value = text
    }

    private init(checked text: String) { value = text }

    /// The id `environment` sets, or a new one for this process.
    public static func current(environment: [String: String] = ProcessInfo.processInfo.environment) throws(Invalid) -> InstanceID {
        if let set = environment[environmentVariable] { return try InstanceID(set) }
        return generated(host: ProcessInfo.processInfo.hostName, pid: getpid())
    }

    /// `host-pid-suffix`: the host name with anything not allowed made `-` and cut to
    /// ``hostLimit``, the pid, and 6 random hex digits.
    static func generated(host: String, pid: Int32) -> InstanceID {
        let cleaned = String(decoding: host.utf8.prefix(Self.hostLimit).map { isAllowed($0) ? $0 : UInt8(ascii: "-") }, as: UTF8.self)
        let suffix = String(UInt32.random(in: 0..<(1 << 24)), radix: 16)
        let padded = String(repeating: "0", count: 6 - suffix.count) + suffix
        // Allowed characters only, at most 40 + 1 + 11 + 1 + 6 of them.
        return InstanceID(checked: "\(cleaned.isEmpty ? "cancelwatch" : cleaned)-\(pid)-\(padded)")
    }

    private static func isAllowed(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
            UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"):
            true
        default: false
        }
    }

    public var description: String { value }
}
