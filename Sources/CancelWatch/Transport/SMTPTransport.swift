import CCurl
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

    /// A permanent failure: a 5xx reply (a refused recipient, refused credentials). Connection
    /// problems, timeouts, TLS failures and 4xx replies are worth another try.
    public var isPermanent: Bool {
        replyCode.map { (500..<600).contains($0) } ?? false
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

/// `SMTPTransport` over libcurl's SMTP support, each conversation on a dedicated
/// thread (never Swift's cooperative pool).
///
/// `smtp://` with ``EmailSinkConfig/TLSMode/starttls`` requires STARTTLS (`CURLUSESSL_ALL`:
/// a server that does not offer it fails the send, nothing goes out in clear);
/// ``EmailSinkConfig/TLSMode/implicit`` speaks TLS from the first byte (`smtps://`);
/// ``EmailSinkConfig/TLSMode/unencrypted`` only when the config says `tls: none`.
/// Failures carry the server's last error reply (`550 5.1.1 …`), read from curl's
/// protocol trace; what the client sends (AUTH included) is never kept.
public final class CurlSMTPTransport: SMTPTransport {
    private let workers: BlockingWorkers

    public init(threads: Int = 2) {
        _ = CurlGlobal.initialized
        workers = BlockingWorkers(threads: threads, name: "curl-smtp")
    }

    public func send(_ message: SMTPMessage) async throws(SMTPError) {
        let result = await workers.run { _ in Self.perform(message) }
        try result.get()
    }

    /// Takes the conversation's credentials out of what the server and curl say.
    static func scrubber(for message: SMTPMessage) -> SecretScrubber {
        SecretScrubber([message.password?.value, message.url.password].compactMap { $0 })
    }

    /// The URL curl is given: the scheme follows the TLS mode.
    static func curlURL(for message: SMTPMessage) -> String {
        let host = message.url.host ?? ""
        let shownHost = host.contains(":") ? "[\(host)]" : host
        let port = message.url.port ?? (message.tls == .implicit ? 465 : 587)
        let scheme = message.tls == .implicit ? "smtps" : "smtp"
        return "\(scheme)://\(shownHost):\(port)"
    }

    static func perform(_ message: SMTPMessage) -> Result<Void, SMTPError> {
        // A CR or LF here would end an SMTP command and start one of its own.
        let commandTexts = [message.mailFrom, message.username ?? "", message.password?.value ?? ""] + message.recipients
        if commandTexts.contains(where: { ControlScalars.first(in: $0) != nil }) {
            return .failure(
                SMTPError(kind: .other, curlCode: -1, curlMessage: "an address or credential holds a control character; not sent"))
        }
        guard let curl = curl_easy_init() else {
            return .failure(SMTPError(kind: .other, curlCode: -1, curlMessage: "curl_easy_init failed"))
        }
        defer { curl_easy_cleanup(curl) }
        let state = SMTPConversation(upload: message.content, scrubber: scrubber(for: message))
        let userdata = Unmanaged.passUnretained(state).toOpaque()
        var errorBuffer = [CChar](repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)

        var recipients: UnsafeMutablePointer<curl_slist>? = nil
        defer { curl_slist_free_all(recipients) }
        for address in message.recipients {
            recipients = curl_slist_append(recipients, "<\(address)>")
        }

        let code: CURLcode = errorBuffer.withUnsafeMutableBufferPointer { errorPointer in
            _ = cw_easy_setopt_string(curl, CURLOPT_URL, curlURL(for: message))
            _ = cw_easy_setopt_string(curl, CURLOPT_PROTOCOLS_STR, "smtp,smtps")
            _ = cw_easy_setopt_long(curl, CURLOPT_NOSIGNAL, 1)
            _ = cw_easy_setopt_long(curl, CURLOPT_TIMEOUT_MS, curlMilliseconds(message.timeout))
            _ = cw_easy_setopt_long(curl, CURLOPT_CONNECTTIMEOUT_MS, curlMilliseconds(min(message.timeout, 15)))
            _ = cw_easy_setopt_pointer(curl, CURLOPT_ERRORBUFFER, errorPointer.baseAddress)
            switch message.tls {
            case .starttls, .implicit:
                _ = cw_easy_setopt_long(curl, CURLOPT_USE_SSL, Int(CURLUSESSL_ALL.rawValue))
            case .unencrypted:
                _ = cw_easy_setopt_long(curl, CURLOPT_USE_SSL, Int(CURLUSESSL_NONE.rawValue))
            }
            if message.tlsOptions.insecure {
                _ = cw_easy_setopt_long(curl, CURLOPT_SSL_VERIFYPEER, 0)
                _ = cw_easy_setopt_long(curl, CURLOPT_SSL_VERIFYHOST, 0)
            } else {
                _ = cw_easy_setopt_long(curl, CURLOPT_SSL_VERIFYPEER, 1)
                _ = cw_easy_setopt_long(curl, CURLOPT_SSL_VERIFYHOST, 2)
            }
            if let caFile = message.tlsOptions.caFile {
                _ = cw_easy_setopt_string(curl, CURLOPT_CAINFO, caFile)
            }
            if let username = message.username {
                _ = cw_easy_setopt_string(curl, CURLOPT_USERNAME, username)
                _ = cw_easy_setopt_string(curl, CURLOPT_PASSWORD, message.password?.value ?? "")
            }
            _ = cw_easy_setopt_string(curl, CURLOPT_MAIL_FROM, "<\(message.mailFrom)>")
            _ = cw_easy_setopt_slist(curl, CURLOPT_MAIL_RCPT, recipients)
            _ = cw_easy_setopt_long(curl, CURLOPT_UPLOAD, 1)
            _ = cw_easy_setopt_off(curl, CURLOPT_INFILESIZE_LARGE, curl_off_t(message.content.count))
            _ = cw_easy_setopt_read_function(curl, smtpRead)
            _ = cw_easy_setopt_pointer(curl, CURLOPT_READDATA, userdata)
            // Should curl ever need the message from the start again, it can have it.
            _ = cw_easy_setopt_seek_function(curl, smtpSeek)
            _ = cw_easy_setopt_pointer(curl, CURLOPT_SEEKDATA, userdata)
            // The protocol trace, for the server's replies only.
            _ = cw_easy_setopt_debug_function(curl, smtpTrace)
            _ = cw_easy_setopt_pointer(curl, CURLOPT_DEBUGDATA, userdata)
            _ = cw_easy_setopt_long(curl, CURLOPT_VERBOSE, 1)
            let code = curl_easy_perform(curl)
            // curl_easy_cleanup (deferred) ends the conversation with QUIT and may report a
            // failure while doing so: not into this buffer, which is gone by then.
            _ = cw_easy_setopt_pointer(curl, CURLOPT_ERRORBUFFER, nil)
            return code
        }
        withExtendedLifetime(state) {}
        guard code != CURLE_OK else { return .success(()) }

        var detail = curlErrorText(errorBuffer)
        if detail.isEmpty { detail = String(cString: curl_easy_strerror(code)) }
        detail = scrubber(for: message).scrub(detail)
        let reply = state.lastErrorReply
        return .failure(
            SMTPError(
                kind: errorKind(code, reply: reply), replyCode: reply?.code, reply: reply?.text, curlCode: Int(code.rawValue),
                curlMessage: detail))
    }

    static func errorKind(_ code: CURLcode, reply: SMTPConversation.Reply?) -> SMTPError.Kind {
        switch code {
        case CURLE_LOGIN_DENIED: return .authentication
        case CURLE_OPERATION_TIMEDOUT: return .timeout
        case CURLE_USE_SSL_FAILED, CURLE_SSL_CONNECT_ERROR, CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CERTPROBLEM,
            CURLE_SSL_CIPHER, CURLE_SSL_CACERT_BADFILE:
            return .tls
        default: break
        }
        if reply != nil { return .rejected }
        switch code {
        case CURLE_COULDNT_CONNECT, CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY, CURLE_SEND_ERROR,
            CURLE_RECV_ERROR, CURLE_GOT_NOTHING:
            return .connection
        default: return .other
        }
    }
}

/// One SMTP conversation's upload and what the server said (userdata for curl's callbacks).
final class SMTPConversation {
    /// A complete server reply: its code and its last line.
    struct Reply {
        var code: Int
        var text: String
    }

    let upload: Data
    var uploadOffset = 0
    /// Server output not yet ending in a line break (its start only, when a line is huge).
    private var pending = ""
    /// The last reply with a 4xx or 5xx code.
    private(set) var lastErrorReply: Reply?
    private let scrubber: SecretScrubber

    /// How much of a reply line is kept: scrubbed, then cut to this.
    static let replyLimit = 300
    /// How much of an unfinished line is kept: room for the kept reply and a secret across its cut.
    static let pendingLimit = 8192

    init(upload: Data, scrubber: SecretScrubber) {
        self.upload = upload
        self.scrubber = scrubber
    }

    /// Server output, possibly several lines or part of one.
    func received(_ text: String) {
        pending += text
        while let end = pending.firstIndex(where: { $0 == "\n" || $0 == "\r\n" }) {
            let line = String(pending[..<end]).trimmingCharacters(in: .whitespacesAndNewlines)
            pending = String(pending[pending.index(after: end)...])
            record(line)
        }
        if pending.utf8.count > Self.pendingLimit {
            pending = scrubber.scrub(pending, limit: Self.pendingLimit)
        }
    }

    private func record(_ line: String) {
        let bytes = Array(line.utf8)
        guard bytes.count >= 3, bytes[0...2].allSatisfy({ $0 >= 48 && $0 <= 57 }), let code = Int(String(line.prefix(3))) else {
            return
        }
        // `550-…` continues a multi-line reply; `550 …` ends it. Keep the final line.
        let final = bytes.count == 3 || bytes[3] == UInt8(ascii: " ")
        if final, code >= 400 {
            lastErrorReply = Reply(code: code, text: scrubber.scrub(line, limit: Self.replyLimit))
        }
    }
}

private let smtpRead: cw_data_callback = { pointer, size, count, userdata in
    guard let pointer, let userdata else { return 0 }
    let state = Unmanaged<SMTPConversation>.fromOpaque(userdata).takeUnretainedValue()
    let length = min(size * count, state.upload.count - state.uploadOffset)
    guard length > 0 else { return 0 }
    state.upload.withUnsafeBytes { bytes in
        UnsafeMutableRawPointer(pointer).copyMemory(from: bytes.baseAddress!.advanced(by: state.uploadOffset), byteCount: length)
    }
    state.uploadOffset += length
    return length
}

private let smtpSeek: cw_seek_callback = { userdata, offset, origin in
    guard let userdata, origin == SEEK_SET else { return Int32(CURL_SEEKFUNC_CANTSEEK) }
    let state = Unmanaged<SMTPConversation>.fromOpaque(userdata).takeUnretainedValue()
    guard offset >= 0, offset <= state.upload.count else { return Int32(CURL_SEEKFUNC_FAIL) }
    state.uploadOffset = Int(offset)
    return Int32(CURL_SEEKFUNC_OK)
}

private let smtpTrace: cw_debug_callback = { _, type, data, size, userdata in
    // Only what the server sent: what we send includes AUTH credentials.
    guard type == CURLINFO_HEADER_IN, let data, let userdata else { return 0 }
    let state = Unmanaged<SMTPConversation>.fromOpaque(userdata).takeUnretainedValue()
    let text = data.withMemoryRebound(to: UInt8.self, capacity: size) {
        String(decoding: UnsafeBufferPointer(start: $0, count: size), as: UTF8.self)
    }
    state.received(text)
    return 0
}
