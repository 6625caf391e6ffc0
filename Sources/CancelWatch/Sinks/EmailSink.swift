import Foundation

/// `kind: email`: one message per event over SMTP (README.md, "Email").
///
/// The message is plain RFC 5322: CRLF line ends, `Date`, a `Message-ID` stable per
/// event (`<event-id@cancelwatch>`, so a retry that did arrive twice is recognisable),
/// `MIME-Version`, UTF-8 text in quoted-printable (any line length is safe), and
/// RFC 2047 encoded-words for non-ASCII subjects and display names. Marketplace and
/// rule text reaches headers only through the subject, with every CR, LF and other
/// control character replaced by a space first.
///
/// One attempt per call. Connection failures, timeouts, TLS failures and 4xx replies
/// are retryable; 5xx replies (a refused recipient, refused credentials) are not.
public struct EmailSink: AlertSink {
    public let name: String
    public let config: EmailSinkConfig
    let transport: SMTPTransport
    let clock: WatchClock
    let timeZone: TimeZone
    let subjectTemplate: MessageTemplate

    public init(
        name: String, config: EmailSinkConfig, transport: SMTPTransport, clock: WatchClock = SystemClock(),
        timeZone: TimeZone = TimeZone(identifier: "UTC")!
    ) {
        self.name = name
        self.config = config
        self.transport = transport
        self.clock = clock
        self.timeZone = timeZone
        // The config reader checks the template; a broken one falls back to the default rather than losing mail.
        subjectTemplate =
            (try? MessageTemplate.compile(config.subject).get())
            ?? (try! MessageTemplate.compile(EmailSinkConfig.defaultSubject).get())
    }

    public func deliver(_ event: AlertEvent) async throws(DeliveryError) {
        let message = smtpMessage(for: event)
        do {
            try await transport.send(message)
        } catch {
            let scrubber = CurlSMTPTransport.scrubber(for: message)
            throw DeliveryError(
                retryable: !error.isPermanent, message: scrubber.scrub("SMTP \(config.host):\(config.port): \(error.description)"))
        }
    }

    /// The envelope and content one attempt sends for `event`.
    public func smtpMessage(for event: AlertEvent) -> SMTPMessage {
        let from = MailAddress(config.from)
        let recipients = (config.to + config.cc).map { MailAddress($0).address }
        return SMTPMessage(
            url: config.url, tls: config.tls, tlsOptions: TLSOptions(caFile: config.caFile, insecure: config.insecure),
            username: config.username, password: config.password, mailFrom: from.address, recipients: recipients,
            content: Data(content(for: event).utf8), timeout: config.timeout)
    }

    /// The subject for `event`: the template rendered with times in the configured zone,
    /// on one line. Source events have no request to render, so they get their own.
    public func subject(for event: AlertEvent) -> String {
        let text: String
        if event.kind == .group || event.kind == .digest {
            text = "[cancelwatch] \(event.severity.rawValue): \(RequestList.headline(of: event))"
        } else if let request = event.request {
            text = subjectTemplate.render(
                request: request, now: event.occurredAt, ruleName: event.rule, severity: event.severity, timeZone: timeZone)
        } else {
            text = "[cancelwatch] \(event.severity.rawValue): \(event.kind.rawValue) \(event.source)"
        }
        return TerminalText.singleLine(text)
    }

    /// The whole message, headers and body, CRLF line ends.
    public func content(for event: AlertEvent) -> String {
        let to = config.to.map { MailAddress($0).headerForm }
        let cc = config.cc.map { MailAddress($0).headerForm }
        var lines: [String] = []
        lines.append("Date: \(MailHeader.date(clock.now(), in: timeZone))")
        lines.append(MailHeader.field("From", MailAddress(config.from).headerForm))
        lines.append(MailHeader.addressField("To", to))
        if !cc.isEmpty { lines.append(MailHeader.addressField("Cc", cc)) }
        lines.append(MailHeader.unstructured("Subject", subject(for: event)))
        lines.append("Message-ID: <\(MailHeader.messageIDLocalPart(event.id))@cancelwatch>")
        lines.append("MIME-Version: 1.0")
        lines.append("Content-Type: text/plain; charset=UTF-8")
        lines.append("Content-Transfer-Encoding: quoted-printable")
        lines.append("Auto-Submitted: auto-generated")
        lines.append("X-Cancelwatch-Event: \(MailHeader.messageIDLocalPart(event.id))")
        return lines.joined(separator: "\r\n") + "\r\n\r\n" + QuotedPrintable.encode(body(for: event))
    }

    /// The readable text: the rule's message, then the facts about the request.
    public func body(for event: AlertEvent) -> String {
        var lines = [event.kind == .group || event.kind == .digest ? RequestList.text(of: event) : event.message, ""]
        func fact(_ label: String, _ value: String) {
            lines.append((label + ":").padding(toLength: 12, withPad: " ", startingAt: 0) + value)
        }
        if !event.rule.isEmpty { fact("Rule", "\(event.rule) (\(event.severity.rawValue))") }
        fact("Event", event.kind.rawValue + (event.outcome.map { " (\($0.rawValue))" } ?? ""))
        if !event.source.isEmpty { fact("Source", "\(event.source) (\(event.marketplace.rawValue))") }
        if let request = event.request {
            fact("Order", request.order)
            fact("Request", request.id)
            if !request.reason.isEmpty { fact("Reason", request.reason) }
            if !request.initiator.isEmpty { fact("Initiator", request.initiator) }
            fact("Deadline", "\(LocalTimestamp.format(request.deadline, in: timeZone)) (\(StdoutSink.status(of: event, request: request)))")
        }
        fact("Occurred", LocalTimestamp.format(event.occurredAt, in: timeZone))
        fact("Event ID", event.id)
        return lines.joined(separator: "\n")
    }
}

/// An address as the config writes it: `watch@example.com` or `Name <watch@example.com>`.
struct MailAddress {
    var displayName: String?
    var address: String

    /// The address keeps any control character, so that the SMTP transport refuses it
    /// (the config already does) rather than sending to an altered address.
    init(_ text: String) {
        if let open = text.lastIndex(of: "<"), text.hasSuffix(">") {
            address = String(text[text.index(after: open)..<text.index(before: text.endIndex)])
                .trimmingCharacters(in: .whitespaces)
            var name = TerminalText.singleLine(String(text[..<open]))
            if name.count >= 2, name.hasPrefix("\""), name.hasSuffix("\"") { name = String(name.dropFirst().dropLast()) }
            displayName = name.isEmpty ? nil : name
        } else {
            address = text.trimmingCharacters(in: .whitespaces)
            displayName = nil
        }
        address = String(address.unicodeScalars.filter { $0 != " " && $0 != "<" && $0 != ">" }.map(Character.init))
    }

    /// `addr`, `"Name" <addr>` or `=?UTF-8?B?…?= <addr>`, on one line.
    var headerForm: String {
        let address = TerminalText.singleLine(address)
        guard let displayName else { return address }
        return "\(MailHeader.phrase(displayName)) <\(address)>"
    }
}

/// Header construction: one-line text, RFC 2047 encoded-words, folding, dates.
enum MailHeader {
    /// A header field with a value that needs no encoding (already safe ASCII).
    static func field(_ name: String, _ value: String) -> String {
        "\(name): \(value)"
    }

    /// `To:`-like fields: addresses separated by commas, one per folded line when long.
    static func addressField(_ name: String, _ addresses: [String]) -> String {
        var out = "\(name): "
        var lineLength = out.count
        for (i, address) in addresses.enumerated() {
            let piece = address + (i < addresses.count - 1 ? "," : "")
            if i > 0 {
                if lineLength + 1 + piece.count > 78 {
                    out += "\r\n "
                    lineLength = 1
                } else {
                    out += " "
                    lineLength += 1
                }
            }
            out += piece
            lineLength += piece.count
        }
        return out
    }

    /// An unstructured field (`Subject`): printable ASCII folded at spaces, anything
    /// else as RFC 2047 encoded-words of at most 75 characters, one per line.
    static func unstructured(_ name: String, _ value: String) -> String {
        let text = TerminalText.singleLine(value)
        let prefix = "\(name): "
        if needsEncoding(text) {
            return prefix + encodedWords(text, firstLineUsed: prefix.count).joined(separator: "\r\n ")
        }
        return prefix + foldASCII(text, firstLineUsed: prefix.count)
    }

    /// A display name: an atom-safe name as is, specials quoted, non-ASCII as encoded-words.
    static func phrase(_ name: String) -> String {
        let text = TerminalText.singleLine(name)
        if needsEncoding(text) { return encodedWords(text, firstLineUsed: 6).joined(separator: "\r\n ") }
        let specials = Set("()<>[]:;@\\,.\"")
        if text.contains(where: { specials.contains($0) }) {
            return "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
        }
        return text
    }

    /// Non-ASCII, or text a reader could take for an encoded-word.
    static func needsEncoding(_ text: String) -> Bool {
        text.unicodeScalars.contains { $0.value > 0x7E || $0.value < 0x20 } || text.contains("=?")
    }

    /// `=?UTF-8?B?…?=` words, each at most 75 characters, split between characters (never
    /// inside a UTF-8 sequence); the first fits in what is left of a 76-character line.
    static func encodedWords(_ text: String, firstLineUsed: Int) -> [String] {
        let overhead = "=?UTF-8?B?".count + "?=".count
        func byteLimit(_ room: Int) -> Int { max(3, (min(room, 75) - overhead) / 4 * 3) }
        var words: [String] = []
        var chunk: [UInt8] = []
        var limit = byteLimit(76 - firstLineUsed)
        func flush() {
            guard !chunk.isEmpty else { return }
            words.append("=?UTF-8?B?" + Data(chunk).base64EncodedString() + "?=")
            chunk = []
            limit = byteLimit(75)
        }
        for character in text {
            let bytes = Array(character.utf8)
            if bytes.count <= limit {
                if chunk.count + bytes.count > limit { flush() }
                chunk += bytes
            } else {
                // A cluster longer than a word (a long emoji sequence): split between its scalars.
                for scalar in character.unicodeScalars {
                    let scalarBytes = Array(String(scalar).utf8)
                    if chunk.count + scalarBytes.count > limit { flush() }
                    chunk += scalarBytes
                }
            }
        }
        flush()
        return words.isEmpty ? ["=?UTF-8?B??="] : words
    }

    /// Printable ASCII folded at spaces so lines stay near 78 characters where the words allow.
    static func foldASCII(_ text: String, firstLineUsed: Int) -> String {
        let limited = TextCut.cut(text, limit: 900)
        var out = ""
        var lineLength = firstLineUsed
        for (i, word) in limited.split(separator: " ", omittingEmptySubsequences: false).enumerated() {
            if i > 0 {
                if lineLength + 1 + word.count > 78, lineLength > 1 {
                    out += "\r\n "
                    lineLength = 1
                } else {
                    out += " "
                    lineLength += 1
                }
            }
            out += word
            lineLength += word.count
        }
        return out
    }

    /// RFC 5322 `date-time`: `Mon, 23 Nov 2026 22:01:00 +0300`, in `timeZone`.
    static func date(_ date: Date, in timeZone: TimeZone) -> String {
        let offset = timeZone.secondsFromGMT(for: date)
        let local = Int64((date.timeIntervalSince1970).rounded(.down)) + Int64(offset)
        let days = Int(local >= 0 ? local / 86400 : (local - 86399) / 86400)
        let seconds = Int(local - Int64(days) * 86400)
        let (year, month, day) = Timestamp.civilFromDays(days)
        let weekdays = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"]  // 1970-01-01 was a Thursday
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        let weekday = weekdays[((days % 7) + 7) % 7]
        let sign = offset < 0 ? "-" : "+"
        let minutes = abs(offset) / 60
        return "\(weekday), \(day) \(months[month - 1]) \(year) "
            + String(format: "%02d:%02d:%02d ", seconds / 3600, (seconds % 3600) / 60, seconds % 60)
            + sign + String(format: "%02d%02d", minutes / 60, minutes % 60)
    }

    /// An event id as the local part of a message id: only characters a `dot-atom-text` allows.
    static func messageIDLocalPart(_ id: String) -> String {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~.")
        let cleaned = String(id.filter { allowed.contains($0) })
        return cleaned.isEmpty ? "event" : cleaned
    }
}

/// Quoted-printable (RFC 2045 §6.7) for UTF-8 text: lines of at most 76 characters
/// with soft breaks, CRLF hard breaks, no escape sequence ever split.
enum QuotedPrintable {
    static func encode(_ text: String) -> String {
        let normalized = text.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n")
        return normalized.split(separator: "\n", omittingEmptySubsequences: false).map { encodeLine(Substring($0)) }
            .joined(separator: "\r\n") + "\r\n"
    }

    static func encodeLine(_ line: Substring) -> String {
        let bytes = Array(line.utf8)
        var out = ""
        var lineLength = 0
        for (i, byte) in bytes.enumerated() {
            let isLast = i == bytes.count - 1
            let token: String
            switch byte {
            case UInt8(ascii: " "), UInt8(ascii: "\t"):
                token = isLast ? String(format: "=%02X", byte) : String(UnicodeScalar(byte))
            case 33...60, 62...126:
                // A line-leading dot is left to SMTP dot-stuffing; `From ` needs no care in MIME.
                token = String(UnicodeScalar(byte))
            default:
                token = String(format: "=%02X", byte)
            }
            // Room for the token plus a soft break `=` (unless this is the line's last token).
            if lineLength + token.count > (isLast ? 76 : 75) {
                out += "=\r\n"
                lineLength = 0
            }
            out += token
            lineLength += token.count
        }
        return out
    }
}
