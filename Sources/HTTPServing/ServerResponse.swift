import Foundation

/// What a handler answers. The server adds `Content-Length` and, when it closes the
/// connection, `Connection: close`; handlers set everything else.
public struct ServerResponse: Sendable {
    /// How the server should misbehave while sending this response, for fault tests.
    public enum DeliveryFault: Sendable, Hashable {
        /// Close the connection without sending anything.
        case dropConnection
        /// Send the head (with the full `Content-Length`) and only the body's first
        /// `bytes` bytes, then close the connection.
        case truncateBody(afterBytes: Int)
    }

    public var status: Int
    public var headers: HTTPHeaderFields
    public var body: Data
    /// Seconds to wait before answering (at most a day). The wait holds only this
    /// connection and ends early when the server shuts down.
    public var delay: TimeInterval
    /// A deliberate failure while sending, or nil to send normally.
    public var fault: DeliveryFault?

    public init(
        status: Int, headers: HTTPHeaderFields = HTTPHeaderFields(), body: Data = Data(), delay: TimeInterval = 0,
        fault: DeliveryFault? = nil
    ) {
        self.status = status
        self.headers = headers
        self.body = body
        self.delay = delay
        self.fault = fault
    }

    /// A JSON body (already serialized) with `Content-Type: application/json; charset=utf-8`.
    public static func json(status: Int = 200, _ body: Data, headers: HTTPHeaderFields = HTTPHeaderFields()) -> ServerResponse {
        var all = headers
        if !all.contains("Content-Type") { all["Content-Type"] = "application/json; charset=utf-8" }
        return ServerResponse(status: status, headers: all, body: body)
    }

    /// A JSON body given as text.
    public static func json(status: Int = 200, text: String, headers: HTTPHeaderFields = HTTPHeaderFields()) -> ServerResponse {
        json(status: status, Data(text.utf8), headers: headers)
    }

    /// A plain-text body with `Content-Type: text/plain; charset=utf-8`.
    public static func text(status: Int = 200, _ text: String, headers: HTTPHeaderFields = HTTPHeaderFields()) -> ServerResponse {
        var all = headers
        if !all.contains("Content-Type") { all["Content-Type"] = "text/plain; charset=utf-8" }
        return ServerResponse(status: status, headers: all, body: Data(text.utf8))
    }

    /// The connection is closed without any response (a fault for tests).
    public static var dropConnection: ServerResponse {
        ServerResponse(status: 500, fault: .dropConnection)
    }

    /// This response, answered after `seconds`.
    public func delayed(by seconds: TimeInterval) -> ServerResponse {
        var copy = self
        copy.delay = seconds
        return copy
    }

    /// This response with only the body's first `bytes` bytes sent before the connection closes.
    public func truncated(afterBytes bytes: Int) -> ServerResponse {
        var copy = self
        copy.fault = .truncateBody(afterBytes: max(0, bytes))
        return copy
    }

    /// The standard reason phrase for `status`.
    public static func reasonPhrase(_ status: Int) -> String {
        switch status {
        case 100: return "Continue"
        case 200: return "OK"
        case 201: return "Created"
        case 202: return "Accepted"
        case 204: return "No Content"
        case 301: return "Moved Permanently"
        case 302: return "Found"
        case 303: return "See Other"
        case 304: return "Not Modified"
        case 400: return "Bad Request"
        case 401: return "Unauthorized"
        case 403: return "Forbidden"
        case 404: return "Not Found"
        case 405: return "Method Not Allowed"
        case 408: return "Request Timeout"
        case 409: return "Conflict"
        case 410: return "Gone"
        case 411: return "Length Required"
        case 413: return "Content Too Large"
        case 414: return "URI Too Long"
        case 415: return "Unsupported Media Type"
        case 417: return "Expectation Failed"
        case 422: return "Unprocessable Content"
        case 425: return "Too Early"
        case 429: return "Too Many Requests"
        case 431: return "Request Header Fields Too Large"
        case 500: return "Internal Server Error"
        case 501: return "Not Implemented"
        case 502: return "Bad Gateway"
        case 503: return "Service Unavailable"
        case 504: return "Gateway Timeout"
        case 505: return "HTTP Version Not Supported"
        default: return "Status \(status)"
        }
    }
}
