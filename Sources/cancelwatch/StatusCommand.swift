import ArgumentParser
import CancelWatch
import Foundation

struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show pending requests by time remaining, each source's health, and each sink's deliveries.")

    @OptionGroup var config: ConfigOption

    @Option(help: "text (a table) or json (one object per line).")
    var format: StatusFormat = .text

    enum StatusFormat: String, ExpressibleByArgument {
        case text, json
    }

    func run() async throws {
        try await reportingErrors {
            let config = try config.load()
            let now = Date()
            // Reads beside a running watcher: takes no lock and writes nothing. Both stores
            // block (a SQLite reader may wait for a checkpoint): on BlockingWorkers.shared.
            let (state, tracked, health, deliveries, holders) = try await BlockingWorkers.shared.run {
                () throws -> (ConfiguredState, [TrackedRequest], [SourceHealth], StatusView.Deliveries, [SourceLease]?) in
                let state = try openState(config, readOnly: true)
                do throws(StoreError) {
                    return (
                        state, try state.store.loadTracked(keepingRaw: .none), try state.store.loadHealth(),
                        StatusView.Deliveries(
                            counts: try state.store.outboxCounts(), latestDead: try state.deadLetters(limit: StatusView.deadLettersShown)),
                        try state.sourceHolders()
                    )
                } catch {
                    throw CleanExit.message("error: \(error.description)", exitCode: 1)
                }
            }
            for warning in state.warnings { await CommandOutput.printError("warning: \(warning)") }
            let pending = tracked.filter { $0.status == .pending }.map(\.request)
                .sorted { ($0.deadline, $0.source, $0.id) < ($1.deadline, $1.source, $1.id) }
            switch format {
            case .json:
                var out = ""
                for request in pending { out += TerminalText.escapingJSON(request.statusJSON(now: now).serialized()) + "\n" }
                if !out.isEmpty { try await CommandOutput.print(out) }
            case .text:
                var text = StatusView.table(
                    pending, health: health, holders: holders, sources: config.sources.map(\.name), now: now, timeZone: config.timezone)
                text += StatusView.deliveries(deliveries, sinks: config.sinks.map(\.name), now: now, timeZone: config.timezone)
                try await CommandOutput.print(text)
            }
        }
    }
}

/// How `status` shows requests.
enum StatusView {
    /// The pending requests, then each source's health and, where sources are leased
    /// (`holders` not nil), the replica that holds it.
    static func table(
        _ pending: [CancellationRequest], health: [SourceHealth], holders: [SourceLease]? = nil, sources: [String], now: Date,
        timeZone: TimeZone
    ) -> String {
        let formatter = dateFormatter(timeZone)
        var rows: [[String]] = [["REMAINING", "DEADLINE (\(timeZone.identifier))", "SOURCE", "ORDER", "INITIATOR", "REASON"]]
        for request in pending {
            rows.append([
                DurationText.format(request.remaining(at: now)), formatter.string(from: request.deadline), request.source,
                request.order, request.initiator.isEmpty ? "-" : request.initiator, oneLine(request.reason),
            ])
        }
        var out = ""
        if pending.isEmpty {
            out += "No pending cancellation requests.\n"
        } else {
            out += render(rows)
            out += "\n\(pending.count) pending\n"
        }
        out += "\nSources:\n"
        let known = Dictionary(health.map { ($0.source, $0) }, uniquingKeysWith: { a, _ in a })
        let leases = holders.map { Dictionary($0.map { ($0.source, $0) }, uniquingKeysWith: { a, _ in a }) }
        for source in sources {
            let name = TerminalText.singleLine(source)
            let held = leases.map { holding($0[source], now: now) } ?? ""
            guard let item = known[source] else {
                out += "  \(name): not polled yet\(held)\n"
                continue
            }
            let last = item.lastSuccessAt.map { "last success \(DurationText.format(now.timeIntervalSince($0))) ago" } ?? "never succeeded"
            if item.consecutiveFailures > 0 {
                out += "  \(name): FAILING (\(item.consecutiveFailures) in a row, \(last))\(held): \(TerminalText.singleLine(item.lastError ?? ""))\n"
            } else {
                out += "  \(name): ok, \(last)\(held)\n"
            }
        }
        return out
    }

    /// `; held by REPLICA for 25s`, or that no live replica holds the source.
    static func holding(_ lease: SourceLease?, now: Date) -> String {
        guard let lease else { return "; held by no replica" }
        let holder = oneLine(lease.holder, limit: InstanceID.maxLength)
        let left = lease.expiresAt.timeIntervalSince(now)
        if left > 0 { return "; held by \(holder) for \(DurationText.format(left))" }
        return "; held by no replica (\(holder)'s lease ended \(DurationText.format(-left)) ago)"
    }

    /// What the outbox says of the sinks.
    struct Deliveries {
        var counts: [OutboxCount]
        var latestDead: [DeadLetter]
    }

    static let deadLettersShown = StatusBoard.deadLettersShown

    /// Per sink, what waits and what will never be delivered; then the latest dead letters.
    static func deliveries(_ deliveries: Deliveries, sinks: [String], now: Date, timeZone: TimeZone) -> String {
        var out = "\nDeliveries:\n"
        func count(_ sink: String, _ status: String) -> Int { deliveries.counts.count(sink: sink, status: status) }
        let names = deliveries.counts.sinks(configured: sinks)
        if names.isEmpty { out += "  no sinks\n" }
        for name in names {
            let waiting = count(name, "pending")
            let dead = count(name, "dead")
            var parts: [String] = []
            if waiting > 0 { parts.append("\(waiting) waiting") }
            if dead > 0 { parts.append("\(dead) DEAD LETTER\(dead == 1 ? "" : "S") (never delivered)") }
            let unconfigured = sinks.contains(name) ? "" : " (no longer configured)"
            out += "  \(TerminalText.singleLine(name))\(unconfigured): \(parts.isEmpty ? "ok" : parts.joined(separator: ", "))\n"
        }
        let totalDead = deliveries.counts.dead
        guard !deliveries.latestDead.isEmpty else { return out }
        let formatter = dateFormatter(timeZone)
        let shown = deliveries.latestDead.count
        out += "\nDead letters (\(shown < totalDead ? "latest \(shown) of \(totalDead)" : "\(totalDead)"), newest first):\n"
        for letter in deliveries.latestDead {
            let when = letter.at.map { formatter.string(from: $0) } ?? "-"
            let what: String
            if let event = letter.event {
                // A group is one dead letter: its members are its list.
                let about =
                    event.kind == .group ? RequestList.headline(of: event) : event.request.map { "\($0.source) \($0.order)" } ?? event.source
                what = "\(event.kind.rawValue)\(event.rule.isEmpty ? "" : " \(event.rule)") \(about)"
            } else {
                what = "event \(letter.eventID)"
            }
            let line = "\(what), \(letter.attempts) attempt\(letter.attempts == 1 ? "" : "s"): \(oneLine(letter.error, limit: 160))"
            out += "  \(when)  \(TerminalText.singleLine(letter.sink))  \(TerminalText.singleLine(line))\n"
        }
        return out
    }

    static func dateFormatter(_ timeZone: TimeZone) -> DateFormatter { StatusPage.localTime(timeZone) }

    /// `text` on one line (`TerminalText.singleLine`: no line breaks, no terminal escape
    /// sequences from marketplace data or a receiver's reply), cut to `limit` UTF-8 bytes.
    static func oneLine(_ text: String, limit: Int = 60) -> String {
        TextCut.cut(TerminalText.singleLine(text), limit: limit)
    }

    /// Columns padded to their widest cell; every cell on one line (`TerminalText.singleLine`).
    static func render(_ table: [[String]]) -> String {
        let rows = table.map { $0.map(TerminalText.singleLine) }
        var widths = [Int](repeating: 0, count: rows[0].count)
        for row in rows { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
        return rows.map { row in
            row.enumerated().map { i, cell in
                i == row.count - 1 ? cell : cell + String(repeating: " ", count: widths[i] - cell.count)
            }.joined(separator: "  ")
        }.joined(separator: "\n") + "\n"
    }
}
