import Foundation
import Metrics
import Prometheus

/// What an operator graphs and alerts on. The pipeline reports through the recording
/// methods below; they go through swift-metrics into a Prometheus registry of this
/// instance's own (nothing is bootstrapped globally, so several can live in one process),
/// and ``render(now:)`` is that registry's exposition text. One instance lives as long as
/// the process (across config reloads).
///
/// A new metric: a case in ``Family`` (its name and help), a recording method here.
public final class CancelWatchMetrics: @unchecked Sendable {
    /// Every metric family: its name and its help text (the only place either is written).
    enum Family: String, CaseIterable {
        case polls = "cancelwatch_polls_total"
        case pollErrors = "cancelwatch_poll_errors_total"
        case lastSuccessfulPoll = "cancelwatch_last_successful_poll_timestamp_seconds"
        case tracked = "cancelwatch_tracked_requests"
        case events = "cancelwatch_events_total"
        case deliveries = "cancelwatch_deliveries_total"
        case outboxPending = "cancelwatch_outbox_pending"
        case outboxDeadLetters = "cancelwatch_outbox_dead_letters"
        case nearestDeadline = "cancelwatch_nearest_deadline_seconds"
        case reloads = "cancelwatch_config_reloads_total"
        case lastReloadSuccess = "cancelwatch_config_last_reload_success"
        case outputFailures = "cancelwatch_output_failures_total"

        var help: String {
            switch self {
            case .polls: "Polls of each source, successful or not."
            case .pollErrors: "Failed polls by source and kind of failure."
            case .lastSuccessfulPoll: "Unix time of each source's last successful poll."
            case .tracked: "Tracked cancellation requests by state."
            case .events: "Alert events emitted by kind."
            case .deliveries: "Delivery attempts by sink and result (delivered, retry, dead)."
            case .outboxPending: "Deliveries waiting in the outbox, by sink."
            case .outboxDeadLetters: "Deliveries given up on, by sink."
            case .nearestDeadline: "Seconds until the nearest pending request's deadline (absent when none is pending)."
            case .reloads: "SIGHUP reloads by result."
            case .lastReloadSuccess: "1 when the last reload worked (or none was tried), 0 when it failed."
            case .outputFailures: "Writes to stdout or stderr that failed or were dropped."
            }
        }

        var descriptor: MetricNameDescriptor { MetricNameDescriptor(metricName: rawValue, unitName: "", helpText: help) }
    }

    /// The replica every series is labelled with (`instance="…"`, the first label); none when nil.
    public let instance: InstanceID?
    /// What the status page shows, kept up to date beside the metrics.
    public let board: StatusBoard
    private let registry = PrometheusCollectorRegistry()
    private let factory: any MetricsFactory
    private let lock = NSLock()
    /// The running pipeline's state database, checked at each `/healthz` (nil: a state file).
    private var stateProbe: StateDatabaseProbe?
    /// Each source's health, as the ledger last reported it.
    private var sources: [SourceHealthState] = []
    private var nearestDeadline: Date?
    /// As the delivery queue last counted them (a scrape never reads the state file).
    private var outbox: [OutboxCount] = []
    /// Gauges set at each scrape, kept to be removed when their series goes away.
    private var scrapeGauges: [String: Prometheus.Gauge] = [:]

    /// `board`: what the status page serves (its own by default).
    public init(instance: InstanceID? = nil, board: StatusBoard = StatusBoard()) {
        self.instance = instance
        self.board = board
        factory = HelpfulPrometheusFactory(registry: registry)
        for state in TrackedStatus.allCases { meter(.tracked, [("state", state.rawValue)]).set(0) }
        for kind in AlertEvent.Kind.allCases { _ = counter(.events, [("kind", kind.rawValue)]) }
        for result in ["success", "failure"] { _ = counter(.reloads, [("result", result)]) }
        meter(.lastReloadSuccess, []).set(1)
        for stream in ["stdout", "stderr"] { _ = counter(.outputFailures, [("stream", stream)]) }
    }

    private func counter(_ family: Family, _ labels: [(String, String)]) -> Metrics.Counter {
        Metrics.Counter(label: family.rawValue, dimensions: labelled(labels), factory: factory)
    }

    private func meter(_ family: Family, _ labels: [(String, String)]) -> Meter {
        Meter(label: family.rawValue, dimensions: labelled(labels), factory: factory)
    }

    /// `labels` after the `instance` label, when there is one.
    private func labelled(_ labels: [(String, String)]) -> [(String, String)] {
        guard let instance else { return labels }
        return [("instance", instance.value)] + labels
    }

    /// Every source's health, from the ledger (``LedgerReport/sources(_:)``).
    public func setSources(_ states: [SourceHealthState]) {
        lock.withLock { sources = states }
    }

    /// The outbox's counts, from the delivery queue (``DeliveryReport/outbox(_:)``).
    public func setOutbox(_ counts: [OutboxCount]) {
        lock.withLock { outbox = counts }
    }

    public func recordPoll(_ report: PollReport) {
        counter(.polls, [("source", report.source)]).increment()
        if let error = report.error {
            counter(.pollErrors, [("source", report.source), ("kind", error.kind.rawValue)]).increment()
        }
        if let success = report.health.lastSuccessAt {
            meter(.lastSuccessfulPoll, [("source", report.source)]).set(success.timeIntervalSince1970)
        }
    }

    public func setTracked(_ counts: [TrackedStatus: Int], nearestDeadline: Date?) {
        for state in TrackedStatus.allCases { meter(.tracked, [("state", state.rawValue)]).set(counts[state] ?? 0) }
        lock.withLock { self.nearestDeadline = nearestDeadline }
    }

    public func recordEvents(_ batch: [AlertEvent]) {
        for event in batch { counter(.events, [("kind", event.kind.rawValue)]).increment() }
        board.record(batch)
    }

    public func recordDelivery(sink: String, result: DeliveryResult.Status) {
        counter(.deliveries, [("sink", sink), ("result", result.rawValue)]).increment()
    }

    public func recordReload(succeeded: Bool) {
        counter(.reloads, [("result", succeeded ? "success" : "failure")]).increment()
        meter(.lastReloadSuccess, []).set(succeeded ? 1 : 0)
    }

    /// A write to `stream` (`stdout`, `stderr`) failed or was dropped.
    public func recordOutputFailure(stream: String) {
        counter(.outputFailures, [("stream", stream)]).increment()
    }

    /// The outbox's counts, as the delivery queue last reported them.
    public func outboxCounts() -> [OutboxCount] {
        lock.withLock { outbox }
    }

    /// The sources the ledger reports down (for `/healthz`), by name.
    public func downSources() -> [SourceHealthState] {
        lock.withLock { sources.filter(\.down).sorted { $0.source < $1.source } }
    }

    /// The probe of the state database the running pipeline uses (nil for a state file).
    public func setStateProbe(_ probe: StateDatabaseProbe?) {
        lock.withLock { stateProbe = probe }
    }

    /// Why the state database cannot be reached now, or nil (it answered, or the state is a
    /// file). Blocks up to the probe's timeout: for `/healthz`'s handler thread.
    public func unreachableState() -> String? {
        lock.withLock { stateProbe }?.problem()
    }

    /// The exposition text for `/metrics` (Prometheus text format 0.0.4).
    public func render(now: Date) -> String {
        let (outboxCounts, deadline) = lock.withLock { (outbox, nearestDeadline) }
        var current: [String: (Family, [(String, String)], Double)] = [:]
        for count in outboxCounts {
            guard let family = count.status == "pending" ? Family.outboxPending : count.status == "dead" ? .outboxDeadLetters : nil
            else { continue }
            current["\(family.rawValue)\u{0}\(count.sink)"] = (family, [("sink", count.sink)], Double(count.count))
        }
        if let deadline { current[Family.nearestDeadline.rawValue] = (.nearestDeadline, [], deadline.timeIntervalSince(now)) }
        lock.withLock {
            for (key, gauge) in scrapeGauges where current[key] == nil {
                registry.unregisterGauge(gauge)
                scrapeGauges[key] = nil
            }
            for (key, (family, labels, value)) in current {
                let gauge = scrapeGauges[key] ?? registry.makeGauge(descriptor: family.descriptor, labels: labelled(labels))
                gauge.set(value)
                scrapeGauges[key] = gauge
            }
        }
        return registry.emitToString()
    }
}

/// swift-prometheus's factory for swift-metrics, with each family's help text: counters
/// and meters become Prometheus counters and gauges registered with their `# HELP` line.
private struct HelpfulPrometheusFactory: MetricsFactory {
    let registry: PrometheusCollectorRegistry
    private let plain: PrometheusMetricsFactory

    init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
        plain = PrometheusMetricsFactory(registry: registry)
    }

    private func descriptor(_ label: String) -> MetricNameDescriptor {
        CancelWatchMetrics.Family(rawValue: label)?.descriptor ?? MetricNameDescriptor(metricName: label, unitName: "", helpText: "")
    }

    func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        registry.makeCounter(descriptor: descriptor(label), labels: dimensions)
    }

    func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        registry.makeGauge(descriptor: descriptor(label), labels: dimensions)
    }

    func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
        plain.makeFloatingPointCounter(label: label, dimensions: dimensions)
    }

    func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        plain.makeRecorder(label: label, dimensions: dimensions, aggregate: aggregate)
    }

    func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        plain.makeTimer(label: label, dimensions: dimensions)
    }

    func destroyCounter(_ handler: any CounterHandler) { plain.destroyCounter(handler) }
    func destroyMeter(_ handler: any MeterHandler) { plain.destroyMeter(handler) }
    func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) { plain.destroyFloatingPointCounter(handler) }
    func destroyRecorder(_ handler: any RecorderHandler) { plain.destroyRecorder(handler) }
    func destroyTimer(_ handler: any TimerHandler) { plain.destroyTimer(handler) }
}
