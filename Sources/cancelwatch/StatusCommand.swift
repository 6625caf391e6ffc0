import ArgumentParser
import CancelWatch
import Foundation

struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show pending requests by time remaining, and each source's health.")

    @OptionGroup var config: ConfigOption

    @Option(help: "text (a table) or json (one object per line).")
    var format: StatusFormat = .text

    enum StatusFormat: String, ExpressibleByArgument {
        case text, json
    }

    func run() async throws {
        try await reportingErrors {
            let config = try config.load()
            let store = try openStore(config, readOnly: true)
            let now = Date()
            let tracked: [TrackedRequest]
            let health: [SourceHealth]
            do throws(StoreError) {
                tracked = try store.loadTracked(keepingRaw: .none)
                health = try store.loadHealth()
            } catch {
                throw CleanExit.message("error: \(error.description)", exitCode: 1)
            }
            let pending = tracked.filter { $0.status == .pending }.map(\.request)
                .sorted { ($0.deadline, $0.source, $0.id) < ($1.deadline, $1.source, $1.id) }
            switch format {
            case .json:
                var out = ""
                for request in pending { out += StatusView.json(request, now: now).serialized() + "\n" }
                FileHandle.standardOutput.write(Data(out.utf8))
            case .text:
                let text = StatusView.table(pending, health: health, sources: config.sources.map(\.name), now: now, timeZone: config.timezone)
                FileHandle.standardOutput.write(Data(text.utf8))
            }
        }
    }
}

/// How `status` shows requests.
enum StatusView {
    static func json(_ request: CancellationRequest, now: Date) -> JSONValue {
        [
            "source": .string(request.source), "marketplace": .string(request.marketplace.rawValue), "id": .string(request.id),
            "order": .string(request.order), "state": .string(request.state.rawValue), "raw_state": .string(request.rawState),
            "initiator": .string(request.initiator), "reason": .string(request.reason), "logistics": .string(request.logistics),
            "created_at": request.createdAt.map { .string(Timestamp.format($0)) } ?? .null,
            "deadline": .string(Timestamp.format(request.deadline)),
            "remaining_seconds": .integer(Int64(clampingFloor: request.remaining(at: now))),
        ]
    }

    static func table(_ pending: [CancellationRequest], health: [SourceHealth], sources: [String], now: Date, timeZone: TimeZone)
        -> String
    {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = timeZone
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ss"
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
        for name in sources {
            guard let item = known[name] else {
                out += "  \(name): not polled yet\n"
                continue
            }
            let last = item.lastSuccessAt.map { "last success \(DurationText.format(now.timeIntervalSince($0))) ago" } ?? "never succeeded"
            if item.consecutiveFailures > 0 {
                out += "  \(name): FAILING (\(item.consecutiveFailures) in a row, \(last)): \(item.lastError ?? "")\n"
            } else {
                out += "  \(name): ok, \(last)\n"
            }
        }
        return out
    }

    static func oneLine(_ text: String) -> String {
        let flat = text.replacingOccurrences(of: "\r", with: " ").replacingOccurrences(of: "\n", with: " ")
        return flat.count > 60 ? String(flat.prefix(59)) + "…" : flat
    }

    static func render(_ rows: [[String]]) -> String {
        var widths = [Int](repeating: 0, count: rows[0].count)
        for row in rows { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
        return rows.map { row in
            row.enumerated().map { i, cell in
                i == row.count - 1 ? cell : cell + String(repeating: " ", count: widths[i] - cell.count)
            }.joined(separator: "  ")
        }.joined(separator: "\n") + "\n"
    }
}
