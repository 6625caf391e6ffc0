import Foundation
import Testing

/// What the state file recorded as delivered at each crash or stop, against the
/// receiver's acknowledgements, to check at-least-once delivery across restarts:
/// an event whose acknowledgement was lost may come again with the same id, but an
/// event recorded as delivered is never sent again, and nothing due is missing.
struct DeliveryLedger {
    /// (acknowledgements so far, ids the state file recorded delivered) at each kill or stop.
    private(set) var checkpoints: [(acknowledged: Int, recorded: Set<String>)] = []

    /// Call right after the process is gone (before anything restarts it).
    mutating func checkpoint(_ setup: WatchSetup) throws {
        checkpoints.append((setup.receiver.acknowledged.count, try setup.deliveredIDs()))
    }

    /// Every due id acknowledged; none acknowledged after the state file recorded it
    /// delivered; nothing acknowledged that was not due.
    func expectAtLeastOnceWithoutRepeats(
        _ receiver: WebhookReceiver, due: Set<String>, sourceLocation: SourceLocation = #_sourceLocation
    ) {
        let acknowledged = receiver.acknowledged
        let missing = due.subtracting(acknowledged)
        #expect(missing.isEmpty, "due but never acknowledged: \(missing.sorted())", sourceLocation: sourceLocation)
        let unexpected = Set(acknowledged).subtracting(due)
        #expect(unexpected.isEmpty, "acknowledged but not due: \(unexpected.sorted())", sourceLocation: sourceLocation)
        for (index, checkpoint) in checkpoints.enumerated() {
            let later = acknowledged.dropFirst(checkpoint.acknowledged)
            let repeated = Set(later).intersection(checkpoint.recorded)
            #expect(
                repeated.isEmpty, "sent again after being recorded delivered (checkpoint \(index)): \(repeated.sorted())",
                sourceLocation: sourceLocation)
        }
        // A second acknowledgement is excused only by a crash that lost the first one:
        // acknowledged before a checkpoint, yet not recorded delivered at it.
        for (id, count) in multiplicities(acknowledged) where count > 1 {
            let excused = checkpoints.contains { checkpoint in
                acknowledged.prefix(checkpoint.acknowledged).contains(id) && !checkpoint.recorded.contains(id)
            }
            #expect(excused, "\(id) acknowledged \(count) times without a lost acknowledgement", sourceLocation: sourceLocation)
        }
    }
}
