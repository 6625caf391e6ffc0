import CancelWatchTesting
import Foundation
import Testing

@testable import CancelWatch

/// `ManualClock.sleep` ends on cancellation however early the cancellation comes: a sleep
/// cancelled before it is registered among the sleepers throws instead of waiting for an
/// `advance` that nothing makes (the hang a graceful shutdown on the manual clock met).
@Suite struct ManualClockTests {
    /// How a sleep ended, once it has.
    final class Ending: @unchecked Sendable {
        private let lock = NSLock()
        private var stored: String?
        var value: String? { lock.withLock { stored } }
        func set(_ value: String) { lock.withLock { stored = value } }
    }

    @Test func aSleepCancelledBeforeItWaitsThrowsInsteadOfWaitingForever() async throws {
        let clock = ManualClock()
        let ending = Ending()
        let sleeper = Task {
            // Cancelled before the sleep begins: its cancellation handler runs before its
            // continuation exists.
            withUnsafeCurrentTask { $0?.cancel() }
            do {
                try await clock.sleep(until: clock.now().addingTimeInterval(60))
                ending.set("woke")
            } catch {
                ending.set("cancelled")
            }
        }
        // A bounded wait on the sleep's ending: a hang fails this test, not the suite.
        let ended = await eventually(limit: 10) { ending.value != nil }
        if !ended { clock.advance(by: 60) }
        await sleeper.value
        #expect(ended, "the cancelled sleep waited for the clock to move")
        #expect(ending.value == "cancelled")
        #expect(clock.sleeperCount == 0)
    }

    @Test func aSleepCancelledWhileItWaitsThrowsAndLeavesNoSleeper() async throws {
        let clock = ManualClock()
        let ending = Ending()
        let sleeper = Task {
            do {
                try await clock.sleep(until: clock.now().addingTimeInterval(60))
                ending.set("woke")
            } catch {
                ending.set("cancelled")
            }
        }
        try await waitFor { clock.sleeperCount == 1 }
        sleeper.cancel()
        let ended = await eventually(limit: 10) { ending.value != nil }
        if !ended { clock.advance(by: 60) }
        await sleeper.value
        #expect(ending.value == "cancelled")
        #expect(clock.sleeperCount == 0)
    }
}
