import Foundation
import Testing

@testable import CancelWatch

/// Replicas are told apart in every series: each carries `instance` as its first label,
/// under the same metric names as before.
@Suite struct MetricsInstanceLabelTests {
    @Test func everySampleCarriesTheInstanceLabelFirst() throws {
        let metrics = CancelWatchMetrics(instance: try InstanceID("replica-1"))
        let now = Date()
        metrics.recordDelivery(sink: "hook", result: .delivered)
        metrics.recordReload(succeeded: true)
        metrics.recordOutputFailure(stream: "stdout")
        metrics.setOutbox([OutboxCount(sink: "hook", status: "pending", count: 2), OutboxCount(sink: "hook", status: "dead", count: 1)])
        metrics.setTracked([.pending: 3], nearestDeadline: now.addingTimeInterval(60))
        let text = metrics.render(now: now)
        let samples = text.split(separator: "\n").filter { !$0.hasPrefix("#") }
        #expect(samples.count >= 10, "\(text)")
        for sample in samples { #expect(sample.hasPrefix("cancelwatch_"), "\(sample)") }
        for sample in samples { #expect(sample.contains(#"{instance="replica-1""#), "\(sample)") }
        #expect(text.contains(#"cancelwatch_deliveries_total{instance="replica-1",sink="hook",result="delivered"} 1"#))
        #expect(text.contains(#"cancelwatch_outbox_pending{instance="replica-1",sink="hook"} 2"#))
        #expect(text.contains(#"cancelwatch_nearest_deadline_seconds{instance="replica-1"} 60"#))
        #expect(text.contains(#"cancelwatch_config_last_reload_success{instance="replica-1"} 1"#))
    }

    @Test func withoutAnInstanceTheSeriesHaveNoSuchLabel() {
        let text = CancelWatchMetrics().render(now: Date())
        #expect(!text.contains("instance="))
        #expect(text.contains("cancelwatch_config_last_reload_success 1"))
    }
}
