import Foundation

/// One message to hand to an SMTP server: where, how, the envelope and the bytes.
public struct SMTPMessage: Sendable {
    /// `smtp://host:port` or `smtps://host:port`.
    public var url: URL
    /// How the connection is protected.
    public var tls: EmailSinkConfig.TLSMode
    /// Verification settings for STARTTLS and implicit TLS.
    public var tlsOptions: TLSOptions
    /// SMTP AUTH user, if any.
    public var username: String?
    /// SMTP AUTH password; never printed.
    public var password: Secret?
    /// The envelope sender (`MAIL FROM`), a bare address.
    public var mailFrom: String
    /// The envelope recipients (`RCPT TO`), bare addresses.
    public var recipients: [String]
    /// The whole RFC 5322 message, CRLF line ends, as it goes on the wire (before dot-stuffing).
    public var content: Data
    /// The limit for the whole conversation.
    public var timeout: TimeInterval

    public init(
        url: URL, tls: EmailSinkConfig.TLSMode, tlsOptions: TLSOptions = TLSOptions(), username: String? = nil,
        password: Secret? = nil, mailFrom: String, recipients: [String], content: Data,
        timeout: TimeInterval = EmailSinkConfig.defaultTimeout
    ) {
        self.url = url
        self.tls = tls
        self.tlsOptions = tlsOptions
        self.username = username
        self.password = password
        self.mailFrom = mailFrom
        self.recipients = recipients
        self.content = content
        self.timeout = timeout
    }
}

/// An SMTP conversation that did not end with the message accepted.
public struct SMTPError: Error, Sendable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        /// No connection, or it broke.
        case connection
        case timeout
        /// The TLS handshake or certificate check failed, or STARTTLS was not offered.
        case tls
        /// The server answered with an error reply (`reply` has it).
        case rejected
        /// The server refused the credentials.
        case authentication
        case other
    }

    public var kind: Kind
    /// The server's last reply code (`550`), when it gave one.
    public var replyCode: Int?
    /// The server's last reply line (`550 5.1.1 <x@example.com>: user unknown`), when it gave one.
    public var reply: String?
    /// curl's code and text.
    public var curlCode: Int
    public var curlMessage: String

    public init(kind: Kind, replyCode: Int? = nil, reply: String? = nil, curlCode: Int, curlMessage: String) {
        self.kind = kind
        self.replyCode = replyCode
        self.reply = reply
        self.curlCode = curlCode
        self.curlMessage = curlMessage
    }

    /// A permanent failure: a 5xx reply. Connection problems, timeouts and 4xx replies are worth another try.
    public var isPermanent: Bool {
        if let replyCode { return (500..<600).contains(replyCode) }
        return kind == .tls || kind == .authentication
    }

    /// `server replied "550 5.1.1 user unknown" (curl 55: …)`.
    public var description: String {
        if let reply {
            return "\(kind.rawValue): server replied \"\(reply)\" (curl \(curlCode): \(curlMessage))"
        }
        return "\(kind.rawValue) error (curl \(curlCode)): \(curlMessage)"
    }
}

/// Sends mail. The only SMTP path in cancelwatch; tests may put a fake behind it.
public protocol SMTPTransport: Sendable {
    /// One SMTP conversation: connect, (STARTTLS,) (AUTH,) MAIL FROM, RCPT TO each, DATA.
    func send(_ message: SMTPMessage) async throws(SMTPError)
}

/// `SMTPTransport` over libcurl's SMTP support, on dedicated threads.
public final class CurlSMTPTransport: SMTPTransport {
    public init(threads: Int = 2) {}

    public func send(_ message: SMTPMessage) async throws(SMTPError) {
        throw SMTPError(kind: .other, curlCode: -1, curlMessage: "SMTP is not available in this build yet")
    }
}
