import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// `kind: stdout`: one line per event on standard output.
///
/// `format: text` prints a line a person reads, coloured by severity only when the
/// output is a terminal (and `NO_COLOR` is not set); `format: json` prints the generic
/// webhook body, one object per line. Lines go through `StandardStream`: whole, in
/// order, on a thread of its own (a stdout nobody reads blocks no task), and a failed
/// write is a retryable delivery failure, never a trap.
public final class StdoutSink: AlertSink {
    /// Where the lines go.
    public enum Output: Sendable {
        /// A file descriptor, written by `StandardStream` (standard output is 1).
        case fileDescriptor(Int32)
        /// A closure that receives each line, newline included (tests).
        case lines(@Sendable (String) -> Void)

        /// File descriptor 1.
        public static let standardOutput = Output.fileDescriptor(STDOUT_FILENO)
    }

    public let name: String
    public let format: StdoutSinkConfig.Format
    /// Times in text lines are shown in this zone.
    public let timeZone: TimeZone
    /// Whether text lines carry ANSI colour.
    public let colour: Bool
    private let output: Output
    private let stream: StandardStream?

    /// Serializes the lines handed to `.lines` closures.
    private static let linesLock = NSLock()

    /// - Parameters:
    ///   - colour: nil decides by the output: colour only on a terminal and only without `NO_COLOR`.
    public init(
        name: String, format: StdoutSinkConfig.Format = .text, timeZone: TimeZone = TimeZone(identifier: "UTC")!,
        output: Output = .standardOutput, colour: Bool? = nil
    ) {
        self.name = name
        self.format = format
        self.timeZone = timeZone
        self.output = output
        if case .fileDescriptor(let fd) = output {
            stream = StandardStream.forDescriptor(fd)
        } else {
            stream = nil
        }
        self.colour = colour ?? Self.wantsColour(output)
    }

    /// Colour only for a terminal, and never when the user set `NO_COLOR`.
    static func wantsColour(_ output: Output) -> Bool {
        guard case .fileDescriptor(let fd) = output else { return false }
        if let noColour = ProcessInfo.processInfo.environment["NO_COLOR"], !noColour.isEmpty { return false }
        return isatty(fd) == 1
    }

    public func deliver(_ event: AlertEvent) async throws(DeliveryError) {
        let line = self.line(for: event)
        try await emit(line + "\n")
    }

    /// The line printed for `event`, without its newline.
    public func line(for event: AlertEvent) -> String {
        switch format {
        case .json: return TerminalText.escapingJSON(event.webhookBody.serialized())
        case .text: return textLine(for: event)
        }
    }

    /// `2026-11-23T19:01:00Z CRITICAL firing final-hour ozon-main 0123-0001-1 (1h 05m left): message`
    func textLine(for event: AlertEvent) -> String {
        var parts = [LocalTimestamp.format(event.occurredAt, in: timeZone)]
        let label = event.severity.rawValue.uppercased()
        parts.append(colour ? Self.ansi(for: event.severity) + label + Self.ansiReset : label)
        parts.append(event.kind.rawValue)
        if !event.rule.isEmpty { parts.append(TerminalText.singleLine(event.rule)) }
        if !event.source.isEmpty { parts.append(TerminalText.singleLine(event.source)) }
        if let request = event.request {
            parts.append(TerminalText.singleLine(request.order.isEmpty ? request.id : request.order))
            parts.append("(\(Self.status(of: event, request: request)))")
        }
        var line = parts.joined(separator: " ")
        if event.kind == .group || event.kind == .digest {
            // The list's first lines follow, indented, each already on one line; a terminal is
            // not flooded (`format: json` prints the whole list).
            let requests = event.listedRequests
            var lines = [line + ": " + TerminalText.singleLine(RequestList.summary(of: event))]
            lines += requests.prefix(Self.listedLines).map { "  " + RequestList.line(for: $0, at: event.occurredAt) }
            if requests.count > Self.listedLines { lines.append("  … and \(requests.count - Self.listedLines) more") }
            return lines.joined(separator: "\n")
        }
        let message = TerminalText.singleLine(event.message)
        if !message.isEmpty { line += ": " + message }
        return line
    }

    /// How many of a group's or a digest's requests the text format lists.
    static let listedLines = 10

    /// `1h 05m left`, `overdue 4m 10s`, `approved`, `expired`.
    static func status(of event: AlertEvent, request: CancellationRequest) -> String {
        if let outcome = event.outcome { return outcome.rawValue }
        if event.kind == .expired { return "expired" }
        let remaining = request.deadline.timeIntervalSince(event.occurredAt)
        return remaining >= 0
            ? "\(DurationText.format(remaining)) left" : "overdue \(DurationText.format(-remaining))"
    }

    static let ansiReset = "\u{1B}[0m"

    static func ansi(for severity: Severity) -> String {
        switch severity {
        case .critical: "\u{1B}[1;31m"  // bold red
        case .warning: "\u{1B}[33m"  // yellow
        case .info: "\u{1B}[36m"  // cyan
        }
    }

    private func emit(_ text: String) async throws(DeliveryError) {
        if let stream {
            do {
                try await stream.write(text)
            } catch {
                // A closed or full pipe will not get better by itself soon, but the event must not be lost.
                throw DeliveryError(retryable: true, message: error.description)
            }
        } else if case .lines(let receive) = output {
            Self.linesLock.withLock { receive(text) }
        }
    }
}

/// RFC 3339 in a given time zone: `2026-11-23T22:01:00+03:00`, or `…Z` in UTC.
enum LocalTimestamp {
    static func format(_ date: Date, in timeZone: TimeZone) -> String {
        let offset = timeZone.secondsFromGMT(for: date)
        if offset == 0 { return Timestamp.format(date) }
        let shifted = Timestamp.format(date.addingTimeInterval(TimeInterval(offset)))
        let sign = offset < 0 ? "-" : "+"
        let minutes = abs(offset) / 60
        return String(shifted.dropLast()) + sign + String(format: "%02d:%02d", minutes / 60, minutes % 60)
    }
}
