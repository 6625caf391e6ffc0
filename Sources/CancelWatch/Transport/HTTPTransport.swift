import CCurl
import Foundation

/// One header line.
public struct HTTPHeader: Sendable, Hashable {
    public var name: String
    public var value: String
    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }
}

/// TLS settings for one destination.
public struct TLSOptions: Sendable, Hashable {
    /// A PEM bundle of CAs to trust instead of the system's (private CAs).
    public var caFile: String?
    /// Skip certificate verification. Only ever set when a config says `insecure: true`.
    public var insecure: Bool
    public init(caFile: String? = nil, insecure: Bool = false) {
        self.caFile = caFile
        self.insecure = insecure
    }
}

public struct HTTPRequest: Sendable {
    public var method: String
    public var url: String
    public var headers: [HTTPHeader]
    public var body: Data?
    /// The whole transfer's limit, connection included.
    public var timeout: TimeInterval
    public var tls: TLSOptions
    /// The largest answer body read: past it the transfer stops and fails (a list page is well
    /// under a megabyte; a proxy or server gone wrong must not fill the memory), unless
    /// `cutsLongAnswer`.
    public var maxResponseBytes: Int
    /// Past `maxResponseBytes`, answer with the start of the body (`bodyTruncated`) instead of
    /// failing: for a caller that judges by the status (a webhook's reply).
    public var cutsLongAnswer: Bool
    /// Sent on a connection of its own, never a kept-alive one: libcurl sends a request again
    /// by itself when a reused connection closes before any answer, and a call that must not
    /// reach the server twice (answering a request) cannot allow that.
    public var sendsOnce: Bool

    public static let defaultMaxResponseBytes = 64 << 20

    public init(
        method: String, url: String, headers: [HTTPHeader] = [], body: Data? = nil, timeout: TimeInterval = 30,
        tls: TLSOptions = TLSOptions(), maxResponseBytes: Int = HTTPRequest.defaultMaxResponseBytes,
        cutsLongAnswer: Bool = false, sendsOnce: Bool = false
    ) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.timeout = timeout
        self.tls = tls
        self.maxResponseBytes = maxResponseBytes
        self.cutsLongAnswer = cutsLongAnswer
        self.sendsOnce = sendsOnce
    }
}

public struct HTTPResponse: Sendable {
    public var status: Int
    public var headers: [HTTPHeader]
    public var body: Data
    /// The body was longer than the request's `maxResponseBytes`: `body` is its start only.
    public var bodyTruncated: Bool

    public init(status: Int, headers: [HTTPHeader] = [], body: Data = Data(), bodyTruncated: Bool = false) {
        self.status = status
        self.headers = headers
        self.body = body
        self.bodyTruncated = bodyTruncated
    }

    /// The first header of that name, case-insensitively.
    public func header(_ name: String) -> String? {
        headers.first { $0.name.caseInsensitiveCompare(name) == .orderedSame }?.value
    }
}

/// A transfer that did not produce an HTTP response.
public struct TransportError: Error, Sendable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        case timeout, connection, tls, other
    }
    public var kind: Kind
    /// curl's code and its explanation, e.g. `7: Couldn't connect to server`.
    public var code: Int
    public var message: String
    /// False only when the request cannot have reached the server: no connection was made
    /// (refused, a name that does not resolve, a failed TLS handshake) or it was refused
    /// before sending. A timeout or a connection lost may come after the server read it.
    public var mayHaveBeenSent = true

    public var description: String { "\(kind.rawValue) error (curl \(code)): \(message)" }
}

/// Sends HTTP requests through libcurl on dedicated threads. The only HTTP path in cancelwatch.
public protocol HTTPTransport: Sendable {
    func send(_ request: HTTPRequest) async throws(TransportError) -> HTTPResponse
}

/// libcurl, once per process.
enum CurlGlobal {
    static let initialized: Bool = {
        curl_global_init(Int(CURL_GLOBAL_ALL))
        return true
    }()
}

/// A timeout in curl's milliseconds, at least 1 and at most a day, whatever `seconds` is
/// (NaN and infinities included): `Int(seconds * 1000)` traps on a huge value.
func curlMilliseconds(_ seconds: TimeInterval) -> Int {
    guard seconds.isFinite else { return seconds > 0 ? 86_400_000 : 1 }
    return Int(max(1, min(86_400_000, (seconds * 1000).rounded(.down))))
}

/// Collects a transfer's response (userdata for curl's callbacks).
final class CurlResponseBuffer {
    var body = Data()
    var headers: [HTTPHeader] = []
    let limit: Int
    /// Set when the body would have passed `limit` (the transfer was stopped).
    var tooLarge = false
    init(limit: Int) { self.limit = limit }
}

/// `HTTPTransport` over libcurl's easy interface, one reused handle per worker thread
/// so connections stay alive between polls.
public final class CurlHTTPTransport: HTTPTransport {
    public static let userAgent = "cancelwatch/\(CancelWatchVersion.current)"
    private let workers: BlockingWorkers

    public init(threads: Int = 8) {
        _ = CurlGlobal.initialized
        workers = BlockingWorkers(threads: threads, name: "curl-http")
    }

    public func send(_ request: HTTPRequest) async throws(TransportError) -> HTTPResponse {
        let result = await workers.run { context in Self.perform(request, context: context) }
        return try result.get()
    }

    private final class HandleBox {
        let handle: UnsafeMutableRawPointer
        init(_ handle: UnsafeMutableRawPointer) { self.handle = handle }
        deinit { curl_easy_cleanup(handle) }
    }

    static func perform(_ request: HTTPRequest, context: BlockingWorkers.WorkerContext) -> Result<HTTPResponse, TransportError> {
        // A CR or LF in a header would put lines of its own on the wire (the config refuses them; this is the last guard).
        if let header = request.headers.first(where: {
            ControlScalars.first(in: $0.name) != nil || ControlScalars.first(in: $0.value) != nil
        }) {
            let name = ControlScalars.first(in: header.name) == nil ? "'\(header.name)'" : "a header name"
            return .failure(
                TransportError(
                    kind: .other, code: -1, message: "\(name) holds a control character; the request was not sent",
                    mayHaveBeenSent: false))
        }
        let box: HandleBox
        if let existing = context.storage["curl"] as? HandleBox {
            box = existing
            curl_easy_reset(box.handle)
        } else {
            guard let handle = curl_easy_init() else {
                return .failure(TransportError(kind: .other, code: -1, message: "curl_easy_init failed", mayHaveBeenSent: false))
            }
            box = HandleBox(handle)
            context.storage["curl"] = box
        }
        let curl = box.handle
        let buffer = CurlResponseBuffer(limit: request.maxResponseBytes)
        let userdata = Unmanaged.passUnretained(buffer).toOpaque()
        var errorBuffer = [CChar](repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)

        var headerList: UnsafeMutablePointer<curl_slist>? = nil
        defer { curl_slist_free_all(headerList) }
        for header in request.headers {
            headerList = curl_slist_append(headerList, "\(header.name): \(header.value)")
        }
        // curl adds "Expect: 100-continue" to larger POSTs; receivers should not have to answer it.
        headerList = curl_slist_append(headerList, "Expect:")

        let code: CURLcode = errorBuffer.withUnsafeMutableBufferPointer { errorPointer in
            _ = cw_easy_setopt_string(curl, CURLOPT_URL, request.url)
            _ = cw_easy_setopt_long(curl, CURLOPT_NOSIGNAL, 1)
            _ = cw_easy_setopt_long(curl, CURLOPT_TIMEOUT_MS, curlMilliseconds(request.timeout))
            _ = cw_easy_setopt_long(curl, CURLOPT_CONNECTTIMEOUT_MS, curlMilliseconds(min(request.timeout, 10)))
            _ = cw_easy_setopt_long(curl, CURLOPT_FOLLOWLOCATION, 0)
            if request.sendsOnce { _ = cw_easy_setopt_long(curl, CURLOPT_FRESH_CONNECT, 1) }
            _ = cw_easy_setopt_string(curl, CURLOPT_PROTOCOLS_STR, "http,https")
            _ = cw_easy_setopt_string(curl, CURLOPT_USERAGENT, userAgent)
            _ = cw_easy_setopt_string(curl, CURLOPT_ACCEPT_ENCODING, "")
            _ = cw_easy_setopt_pointer(curl, CURLOPT_ERRORBUFFER, errorPointer.baseAddress)
            _ = cw_easy_setopt_slist(curl, CURLOPT_HTTPHEADER, headerList)
            if request.tls.insecure {
                _ = cw_easy_setopt_long(curl, CURLOPT_SSL_VERIFYPEER, 0)
                _ = cw_easy_setopt_long(curl, CURLOPT_SSL_VERIFYHOST, 0)
            } else {
                _ = cw_easy_setopt_long(curl, CURLOPT_SSL_VERIFYPEER, 1)
                _ = cw_easy_setopt_long(curl, CURLOPT_SSL_VERIFYHOST, 2)
            }
            if let caFile = request.tls.caFile {
                _ = cw_easy_setopt_string(curl, CURLOPT_CAINFO, caFile)
            }

            switch request.method.uppercased() {
            case "GET":
                _ = cw_easy_setopt_long(curl, CURLOPT_HTTPGET, 1)
            case "HEAD":
                _ = cw_easy_setopt_long(curl, CURLOPT_NOBODY, 1)
            default:
                _ = cw_easy_setopt_string(curl, CURLOPT_CUSTOMREQUEST, request.method.uppercased())
            }
            if let body = request.body {
                // curl keeps its own copy of the body, so it can send it again from the start
                // whenever it must (a retry on a fresh connection after a reused one died, a
                // rewind for authentication): a read callback would need a seek callback too.
                // The size first: the body may hold NUL bytes.
                _ = cw_easy_setopt_off(curl, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(body.count))
                body.withUnsafeBytes { bytes in
                    if let base = bytes.baseAddress, !bytes.isEmpty {
                        _ = cw_easy_setopt_pointer(curl, CURLOPT_COPYPOSTFIELDS, UnsafeMutableRawPointer(mutating: base))
                    } else {
                        _ = cw_easy_setopt_string(curl, CURLOPT_COPYPOSTFIELDS, "")
                    }
                }
                if request.method.uppercased() != "POST" {
                    _ = cw_easy_setopt_string(curl, CURLOPT_CUSTOMREQUEST, request.method.uppercased())
                }
            }
            _ = cw_easy_setopt_write_function(curl, curlWrite)
            _ = cw_easy_setopt_pointer(curl, CURLOPT_WRITEDATA, userdata)
            _ = cw_easy_setopt_header_function(curl, curlHeader)
            _ = cw_easy_setopt_pointer(curl, CURLOPT_HEADERDATA, userdata)
            let code = curl_easy_perform(curl)
            // The handle outlives this call (and may write an error while it closes a cached
            // connection later): it must not keep a pointer to this call's error buffer.
            _ = cw_easy_setopt_pointer(curl, CURLOPT_ERRORBUFFER, nil)
            return code
        }
        // The buffer must outlive the transfer: curl holds a raw pointer to it.
        withExtendedLifetime(buffer) {}

        if buffer.tooLarge && !request.cutsLongAnswer {
            return .failure(
                TransportError(
                    kind: .other, code: Int(code.rawValue),
                    message: "the answer was longer than \(request.maxResponseBytes) bytes; stopped reading it"))
        }
        // Cut on purpose (`cutsLongAnswer`): the status and headers came; the caller judges by them.
        guard code == CURLE_OK || buffer.tooLarge else {
            let detail = curlErrorText(errorBuffer)
            let message = detail.isEmpty ? String(cString: curl_easy_strerror(code)) : detail
            return .failure(
                TransportError(
                    kind: errorKind(code), code: Int(code.rawValue), message: message, mayHaveBeenSent: mayHaveBeenSent(code)))
        }
        var status = 0
        _ = cw_easy_getinfo_long(curl, CURLINFO_RESPONSE_CODE, &status)
        return .success(HTTPResponse(status: status, headers: buffer.headers, body: buffer.body, bodyTruncated: buffer.tooLarge))
    }

    /// Whether a transfer that failed with `code` may have sent its request: not when it
    /// failed before a connection (and its TLS handshake) was made.
    static func mayHaveBeenSent(_ code: CURLcode) -> Bool {
        switch code {
        case CURLE_COULDNT_CONNECT, CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY, CURLE_SSL_CONNECT_ERROR,
            CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CERTPROBLEM, CURLE_SSL_CIPHER, CURLE_SSL_CACERT_BADFILE,
            CURLE_UNSUPPORTED_PROTOCOL, CURLE_URL_MALFORMAT:
            return false
        default: return true
        }
    }

    static func errorKind(_ code: CURLcode) -> TransportError.Kind {
        switch code {
        case CURLE_OPERATION_TIMEDOUT: return .timeout
        case CURLE_COULDNT_CONNECT, CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY, CURLE_SEND_ERROR,
            CURLE_RECV_ERROR, CURLE_GOT_NOTHING, CURLE_PARTIAL_FILE:
            return .connection
        case CURLE_SSL_CONNECT_ERROR, CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CERTPROBLEM, CURLE_SSL_CIPHER,
            CURLE_SSL_CACERT_BADFILE, CURLE_USE_SSL_FAILED:
            return .tls
        default: return .other
        }
    }
}

private let curlWrite: cw_data_callback = { pointer, size, count, userdata in
    guard let pointer, let userdata else { return 0 }
    let buffer = Unmanaged<CurlResponseBuffer>.fromOpaque(userdata).takeUnretainedValue()
    let length = size * count
    guard buffer.body.count + length <= buffer.limit else {
        buffer.tooLarge = true
        return 0  // curl stops the transfer (a write error)
    }
    pointer.withMemoryRebound(to: UInt8.self, capacity: length) { buffer.body.append($0, count: length) }
    return length
}

private let curlHeader: cw_data_callback = { pointer, size, count, userdata in
    guard let pointer, let userdata else { return 0 }
    let buffer = Unmanaged<CurlResponseBuffer>.fromOpaque(userdata).takeUnretainedValue()
    let length = size * count
    let line = pointer.withMemoryRebound(to: UInt8.self, capacity: length) {
        String(decoding: UnsafeBufferPointer(start: $0, count: length), as: UTF8.self)
    }
    if line.hasPrefix("HTTP/") {
        buffer.headers = []  // a new response (after a redirect or 100 Continue)
    } else if let colon = line.firstIndex(of: ":") {
        let name = line[..<colon].trimmingCharacters(in: .whitespaces)
        let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespacesAndNewlines)
        buffer.headers.append(HTTPHeader(name, value))
    }
    return length
}

/// The text curl left in an error buffer, ending in `…` when it filled the buffer (curl cut
/// it): scrubbing then takes out a secret's start before that mark too.
func curlErrorText(_ buffer: [CChar]) -> String {
    let bytes = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
    let text = String(decoding: bytes, as: UTF8.self)
    return bytes.count >= Int(CURL_ERROR_SIZE) - 1 ? text + "…" : text
}
