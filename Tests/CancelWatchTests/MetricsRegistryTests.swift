import Foundation
import Testing
@testable import CancelWatch

/// `CancelWatchMetrics` writes its exposition from a Prometheus registry of its own: two
/// instances in one process never share a count.
@Suite struct MetricsRegistryTests {
    /// `name{labels}` → value, from exposition text.
    private func samples(_ text: String) -> [String: Double] {
        var found: [String: Double] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            found[String(line[..<space])] = value
        }
        return found
    }

    @Test func eachInstanceKeepsItsOwnCountsWithHelpAndTypeLines() {
        let first = CancelWatchMetrics()
        let second = CancelWatchMetrics()
        first.recordDelivery(sink: "hook", result: .delivered)
        first.recordDelivery(sink: "hook", result: .delivered)
        second.recordReload(succeeded: false)
        let one = first.render(now: Date())
        let two = second.render(now: Date())
        #expect(samples(one)[#"cancelwatch_deliveries_total{sink="hook",result="delivered"}"#] == 2)
        #expect(samples(two)[#"cancelwatch_deliveries_total{sink="hook",result="delivered"}"#] == nil)
        #expect(samples(two)[#"cancelwatch_config_reloads_total{result="failure"}"#] == 1)
        #expect(samples(one)[#"cancelwatch_config_reloads_total{result="failure"}"#] == 0)
        #expect(samples(two)["cancelwatch_config_last_reload_success"] == 0)
        #expect(samples(one)["cancelwatch_config_last_reload_success"] == 1)
        #expect(one.contains("# HELP cancelwatch_deliveries_total Delivery attempts by sink and result"))
        #expect(one.contains("# TYPE cancelwatch_deliveries_total counter"))
        #expect(one.contains("# TYPE cancelwatch_tracked_requests gauge"))
    }

    @Test func theNearestDeadlineAndOutboxGaugesFollowWhatIsThereAtEachScrape() {
        let metrics = CancelWatchMetrics()
        let now = Date()
        metrics.setOutbox([OutboxCount(sink: "hook", status: "pending", count: 3)])
        metrics.setTracked([.pending: 2], nearestDeadline: now.addingTimeInterval(90))
        var seen = samples(metrics.render(now: now))
        #expect(seen["cancelwatch_nearest_deadline_seconds"] == 90)
        #expect(seen[#"cancelwatch_outbox_pending{sink="hook"}"#] == 3)
        #expect(seen[#"cancelwatch_tracked_requests{state="pending"}"#] == 2)
        metrics.setOutbox([])
        metrics.setTracked([:], nearestDeadline: nil)
        seen = samples(metrics.render(now: now))
        #expect(seen["cancelwatch_nearest_deadline_seconds"] == nil)
        #expect(seen[#"cancelwatch_outbox_pending{sink="hook"}"#] == nil)
        #expect(seen[#"cancelwatch_tracked_requests{state="pending"}"#] == 0)
    }
}
