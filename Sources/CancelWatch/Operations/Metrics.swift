import Foundation

/// What an operator graphs and alerts on, in the Prometheus text format. One instance
/// lives as long as the process (across config reloads); the pipeline reports into it.
public final class CancelWatchMetrics: @unchecked Sendable {
    private let lock = NSLock()
    private var polls: [String: Int] = [:]
    private var pollErrors: [LabelPair: Int] = [:]
    private var lastSuccess: [String: Date] = [:]
    /// Sources whose `source_down` has been raised and not yet answered by `source_up`.
    private var down: Set<String> = []
    private var pollIntervals: [String: TimeInterval] = [:]
    private var tracked: [String: Int] = [:]
    private var events: [String: Int] = [:]
    private var deliveries: [LabelPair: Int] = [:]
    private var nearestDeadline: Date?
    private var reloads: [String: Int] = [:]
    private var lastReloadSucceeded = true
    private var outputFailures: [String: Int] = [:]
    private var outbox: @Sendable () -> [OutboxCount] = { [] }

    struct LabelPair: Hashable {
        var first: String
        var second: String
    }

    public init() {}

    /// The sources being polled and their intervals (for `/healthz`).
    public func configure(sources: [(name: String, interval: TimeInterval)], outbox: @escaping @Sendable () -> [OutboxCount]) {
        lock.withLock {
            pollIntervals = Dictionary(sources.map { ($0.name, $0.interval) }, uniquingKeysWith: { a, _ in a })
            self.outbox = outbox
        }
    }

    public func recordPoll(_ report: PollReport) {
        lock.withLock {
            polls[report.source, default: 0] += 1
            if let error = report.error {
                pollErrors[LabelPair(first: report.source, second: error.kind.rawValue), default: 0] += 1
            }
            if let success = report.health.lastSuccessAt { lastSuccess[report.source] = success }
            if report.health.down { down.insert(report.source) } else { down.remove(report.source) }
        }
    }

    public func setTracked(_ counts: [TrackedStatus: Int], nearestDeadline: Date?) {
        lock.withLock {
            tracked = Dictionary(uniqueKeysWithValues: counts.map { ($0.key.rawValue, $0.value) })
            self.nearestDeadline = nearestDeadline
        }
    }

    public func recordEvents(_ batch: [AlertEvent]) {
        lock.withLock {
            for event in batch { events[event.kind.rawValue, default: 0] += 1 }
        }
    }

    public func recordDelivery(sink: String, result: DeliveryResult.Status) {
        lock.withLock { deliveries[LabelPair(first: sink, second: result.rawValue), default: 0] += 1 }
    }

    public func recordReload(succeeded: Bool) {
        lock.withLock {
            reloads[succeeded ? "success" : "failure", default: 0] += 1
            lastReloadSucceeded = succeeded
        }
    }

    /// A write to `stream` (`stdout`, `stderr`) failed or was dropped.
    public func recordOutputFailure(stream: String) {
        lock.withLock { outputFailures[stream, default: 0] += 1 }
    }

    /// Sources reported down (their polls keep failing), or whose last successful poll is
    /// older than three intervals plus a minute.
    public func unhealthySources(now: Date) -> [String] {
        lock.withLock {
            pollIntervals.keys.sorted().filter { name in
                if down.contains(name) { return true }
                guard let success = lastSuccess[name] else { return true }
                return now.timeIntervalSince(success) > 3 * (pollIntervals[name] ?? 60) + 60
            }
        }
    }

    /// The exposition text for `/metrics`.
    public func render(now: Date) -> String {
        let outboxCounts = lock.withLock { outbox }()
        return lock.withLock {
            var out = ""
            func family(_ name: String, _ type: String, _ help: String, _ samples: [(labels: [(String, String)], value: Double)]) {
                out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
                for sample in samples {
                    let labels = sample.labels.map { "\($0.0)=\"\(escape($0.1))\"" }.joined(separator: ",")
                    out += name + (labels.isEmpty ? "" : "{\(labels)}") + " " + format(sample.value) + "\n"
                }
            }
            family(
                "cancelwatch_polls_total", "counter", "Polls of each source, successful or not.",
                polls.sorted { $0.key < $1.key }.map { ([("source", $0.key)], Double($0.value)) })
            family(
                "cancelwatch_poll_errors_total", "counter", "Failed polls by source and kind of failure.",
                pollErrors.sorted { ($0.key.first, $0.key.second) < ($1.key.first, $1.key.second) }.map {
                    ([("source", $0.key.first), ("kind", $0.key.second)], Double($0.value))
                })
            family(
                "cancelwatch_last_successful_poll_timestamp_seconds", "gauge", "Unix time of each source's last successful poll.",
                lastSuccess.sorted { $0.key < $1.key }.map { ([("source", $0.key)], $0.value.timeIntervalSince1970) })
            let states = TrackedStatus.allCases.map { ([("state", $0.rawValue)], Double(tracked[$0.rawValue] ?? 0)) }
            family("cancelwatch_tracked_requests", "gauge", "Tracked cancellation requests by state.", states)
            family(
                "cancelwatch_events_total", "counter", "Alert events emitted by kind.",
                AlertEvent.Kind.allCases.map { ([("kind", $0.rawValue)], Double(events[$0.rawValue] ?? 0)) })
            family(
                "cancelwatch_deliveries_total", "counter", "Delivery attempts by sink and result (delivered, retry, dead).",
                deliveries.sorted { ($0.key.first, $0.key.second) < ($1.key.first, $1.key.second) }.map {
                    ([("sink", $0.key.first), ("result", $0.key.second)], Double($0.value))
                })
            family(
                "cancelwatch_outbox_pending", "gauge", "Deliveries waiting in the outbox, by sink.",
                outboxCounts.filter { $0.status == "pending" }.map { ([("sink", $0.sink)], Double($0.count)) })
            family(
                "cancelwatch_outbox_dead_letters", "gauge", "Deliveries given up on, by sink.",
                outboxCounts.filter { $0.status == "dead" }.map { ([("sink", $0.sink)], Double($0.count)) })
            family(
                "cancelwatch_nearest_deadline_seconds", "gauge",
                "Seconds until the nearest pending request's deadline (absent when none is pending).",
                nearestDeadline.map { [([], $0.timeIntervalSince(now))] } ?? [])
            family(
                "cancelwatch_config_reloads_total", "counter", "SIGHUP reloads by result.",
                ["success", "failure"].map { ([("result", $0)], Double(reloads[$0] ?? 0)) })
            family(
                "cancelwatch_config_last_reload_success", "gauge", "1 when the last reload worked (or none was tried), 0 when it failed.",
                [([], lastReloadSucceeded ? 1 : 0)])
            family(
                "cancelwatch_output_failures_total", "counter", "Writes to stdout or stderr that failed or were dropped.",
                Set(["stdout", "stderr"]).union(outputFailures.keys).sorted().map { ([("stream", $0)], Double(outputFailures[$0] ?? 0)) })
            return out
        }
    }

    private func format(_ value: Double) -> String {
        value.rounded() == value && abs(value) < 1e15 ? String(Int64(value)) : String(format: "%.3f", value)
    }

    private func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n")
    }
}
