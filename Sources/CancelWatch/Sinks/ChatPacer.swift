import Foundation
import Synchronization

/// How fast a chat tool takes messages from one webhook, robot or chat: at most `count`
/// messages in any `seconds`, for each of its windows.
public struct ChatPace: Sendable, Hashable {
    public struct Window: Sendable, Hashable {
        public var count: Int
        public var seconds: TimeInterval
    }

    public var windows: [Window]

    public init(_ windows: [(count: Int, seconds: TimeInterval)]) {
        self.windows = windows.map { Window(count: max(1, $0.count), seconds: max(0, $0.seconds)) }
    }

    /// The longest window: how long a send is remembered.
    var longestWindow: TimeInterval { windows.map(\.seconds).max() ?? 0 }

    /// Each preset below its tool's documented limits, per sink; nil for `generic`.
    public static func of(_ format: WebhookSinkConfig.Format) -> ChatPace? {
        switch format {
        case .generic: nil
        case .telegram: ChatPace([(1, 1), (20, 60)])
        case .slack: ChatPace([(1, 1)])
        case .dingtalk, .wecom: ChatPace([(20, 60)])
        case .feishu: ChatPace([(5, 1), (100, 60)])
        }
    }
}

/// Hands out send instants that keep one sink within its ``ChatPace``, on the sink's clock.
/// Each instant is reserved when handed out, so concurrent sends get distinct ones.
final class ChatPacer: Sendable {
    let pace: ChatPace
    /// Reserved send instants, oldest first, no older than the longest window.
    private let sends = Mutex<[Date]>([])

    init(_ pace: ChatPace) {
        self.pace = pace
    }

    /// The earliest instant from `now` at which one more message keeps every window's count,
    /// reserved.
    func reserve(now: Date) -> Date { reserve(now: now, within: .infinity).slot }

    /// That instant, reserved only when it is at most `within` seconds away (`booked`): a
    /// longer wait is the caller's to give back to its queue rather than sleep through.
    func reserve(now: Date, within: TimeInterval) -> (slot: Date, booked: Bool) {
        sends.withLock { sends in
            var slot = max(now, sends.last ?? now)
            for window in pace.windows where sends.count >= window.count {
                slot = max(slot, sends[sends.count - window.count].addingTimeInterval(window.seconds))
            }
            guard slot.timeIntervalSince(now) <= within else { return (slot, false) }
            sends.append(slot)
            let horizon = slot.addingTimeInterval(-pace.longestWindow)
            if let keep = sends.firstIndex(where: { $0 > horizon }) { sends.removeFirst(keep) }
            return (slot, true)
        }
    }

    /// Moves the reserved `slot` to `at`, when its message's sending ended later: the tool took
    /// the message at some instant before that, so counting from it, the next message can never
    /// reach the tool sooner than its pace allows, however late this one went out or however long
    /// it travelled.
    func settle(_ slot: Date, at: Date) {
        guard at > slot else { return }
        sends.withLock { sends in
            guard let index = sends.lastIndex(of: slot) else { return }
            sends[index] = at
            sends.sort()
        }
    }
}
