import CancelWatch
import Foundation

/// Parts of one `StateStore.commit`, as tests write a state file by hand, and the outbox
/// as tests read it.
extension StateStore {
    /// Saves requests and a source's health (a commit without events).
    func save(_ tracked: [TrackedRequest], health: SourceHealth?) throws(StoreError) {
        try commit(StoreChanges(tracked: tracked, health: health.map { [$0] } ?? []), at: Date(timeIntervalSince1970: 0))
    }

    /// Saves alert states and queues events (a commit of no request).
    func commit(alerts: [AlertState], events: [AlertEvent], health: SourceHealth?, at now: Date) throws(StoreError) {
        try commit(StoreChanges(alerts: alerts, events: events, health: health.map { [$0] } ?? []), at: now)
    }

    /// Deliveries due at `now`, claimed for a minute where replicas share the store.
    func dueDeliveries(sink: String, now: Date, limit: Int) throws(StoreError) -> DueDeliveries {
        try dueDeliveries(sink: sink, now: now, limit: limit, claim: 60)
    }
}
