import Foundation
import Synchronization

/// The status page's access token (`auth: {token: "${STATUS_TOKEN}"}`) and what is derived
/// from it: API clients send it as `Authorization: Bearer <token>`; a browser signs in once
/// with it on `/login` and then carries a signed session cookie.
///
/// A session lives in its cookie: its expiry, a random nonce and the name the user gave (any
/// name: whoever holds the token chooses it), under an HMAC keyed by the token. A changed token
/// ends every session; a restart or a reload with the same token does not. The server keeps
/// only the sessions signed out (``SignedOutSessions``). Each session's CSRF token is an HMAC
/// of its nonce.
public struct StatusAuth: Sendable, Hashable {
    /// The token itself; never shown.
    public let token: Secret
    private let sessionKey: Data

    /// The shortest token taken: a token is the only thing between the network and the answer buttons.
    public static let minimumLength = 16
    /// How long a sign-in lasts.
    public static let sessionLifetime: TimeInterval = 12 * 3600
    /// The cookie's name.
    public static let cookieName = "cw_session"
    /// The longest name a user may give at sign-in (it names them in the answer journal).
    public static let nameLimit = 40

    public init(token: Secret) {
        self.token = token
        sessionKey = Digest.hmacSHA256(key: Data(token.value.utf8), message: Data("cancelwatch status page sessions v1".utf8))
    }

    public static func == (a: StatusAuth, b: StatusAuth) -> Bool { a.token == b.token }
    public func hash(into hasher: inout Hasher) { hasher.combine(token) }

    /// Why a token from the config is not taken; nil when it is.
    public static func problem(with token: String) -> String? {
        if token.count < minimumLength {
            return "the token is \(token.count) characters long; use at least \(minimumLength) random ones "
                + "(e.g. `openssl rand -hex 32`)"
        }
        if token.unicodeScalars.contains(where: { $0.value < 0x21 || $0.value > 0x7E }) {
            return "the token may hold printable ASCII characters only (no spaces or control characters)"
        }
        return nil
    }

    /// Whether `given` is the token, in time that does not depend on where they differ (both
    /// are MACed first; a MAC fails closed).
    public func accepts(token given: String) -> Bool {
        Self.sameBytes(
            Digest.hmacSHA256(key: sessionKey, message: Data(("token\n" + given).utf8)),
            Digest.hmacSHA256(key: sessionKey, message: Data(("token\n" + token.value).utf8)))
    }

    /// The credentials of an `Authorization` header of the Bearer scheme (nil for another
    /// scheme, such as a proxy's Basic); empty when it names none.
    public static func bearerToken(_ authorization: String) -> String? {
        let parts = authorization.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.first?.lowercased() == "bearer" else { return nil }
        return parts.count == 2 ? parts[1].trimmingCharacters(in: .whitespaces) : ""
    }

    /// Whether a name may be given at sign-in: letters, digits and `.`, `_`, `-`, `@`, at most
    /// ``nameLimit``; not `api`, which names answers made with the bearer token.
    public static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= nameLimit && name.lowercased() != "api"
            && name.unicodeScalars.allSatisfy { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "._-@".unicodeScalars.contains($0)) }
    }

    /// A signed-in browser: who, until when, and its CSRF token.
    public struct Session: Sendable, Hashable {
        public var name: String
        public var expires: Date
        /// Sent back with every form (a hidden field) or script call (`X-CSRF-Token`).
        public var csrf: String
        /// The random part that tells it from every other session (``SignedOutSessions``).
        public var nonce: String
    }

    /// The cookie value of a new session for `name` (``isValidName(_:)``) from `now`.
    public func newSessionCookie(name: String, now: Date) -> String {
        let nonce = Digest.hex(Data((0..<16).map { _ in UInt8.random(in: 0...255) }))
        let expires = Int64(clampingFloor: now.timeIntervalSince1970 + Self.sessionLifetime)
        let body = "v1.\(expires).\(nonce).\(name)"
        return body + "." + mac(body)
    }

    /// The session a `Cookie` header carries, when it is signed with this token and not expired at `now`.
    public func session(cookieHeader: String?, now: Date) -> Session? {
        guard let cookieHeader, cookieHeader.utf8.count <= 8192 else { return nil }
        for pair in cookieHeader.split(separator: ";") {
            let trimmed = pair.trimmingCharacters(in: .whitespaces)
            guard trimmed.hasPrefix(Self.cookieName + "=") else { continue }
            let value = String(trimmed.dropFirst(Self.cookieName.count + 1))
            if let session = session(cookie: value, now: now) { return session }
        }
        return nil
    }

    private func session(cookie: String, now: Date) -> Session? {
        let parts = cookie.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        // v1.<expires>.<nonce>.<name, which may hold dots>.<mac>
        guard parts.count >= 5, parts[0] == "v1", let expires = Int64(parts[1]), parts[2].utf8.count == 32 else { return nil }
        let name = parts[3..<(parts.count - 1)].joined(separator: ".")
        guard Self.isValidName(name) else { return nil }
        let body = parts[0..<(parts.count - 1)].joined(separator: ".")
        guard Self.sameBytes(Data(mac(body).utf8), Data(parts[parts.count - 1].utf8)) else { return nil }
        let until = Date(timeIntervalSince1970: TimeInterval(expires))
        guard until > now, until.timeIntervalSince(now) <= Self.sessionLifetime + 60 else { return nil }
        return Session(name: name, expires: until, csrf: csrf(nonce: parts[2]), nonce: parts[2])
    }

    /// Whether `given` is `session`'s CSRF token.
    public func acceptsCSRF(_ given: String?, for session: Session) -> Bool {
        guard let given else { return false }
        return Self.sameBytes(Data(given.utf8), Data(session.csrf.utf8))
    }

    private func mac(_ body: String) -> String {
        Digest.hex(Digest.hmacSHA256(key: sessionKey, message: Data(("session\n" + body).utf8)))
    }

    private func csrf(nonce: String) -> String {
        Digest.hex(Digest.hmacSHA256(key: sessionKey, message: Data(("csrf\n" + nonce).utf8)).prefix(16))
    }

    /// Compares without stopping at the first difference.
    static func sameBytes(_ a: Data, _ b: Data) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for (x, y) in zip(a, b) { difference |= x ^ y }
        return difference == 0
    }
}

/// Sessions signed out in this process: their cookies are refused until they would have
/// expired, though a copy of one still carries a valid signature. At most ``limit`` are kept
/// (the soonest to expire go first); a restart forgets them, and only a new token ends every
/// session everywhere.
public final class SignedOutSessions: Sendable {
    public static let limit = 10_000
    private let ended = Mutex<[String: Date]>([:])

    public init() {}

    public func add(_ session: StatusAuth.Session, now: Date) {
        ended.withLock { ended in
            ended = ended.filter { $0.value > now }
            if ended.count >= Self.limit, let soonest = ended.min(by: { $0.value < $1.value })?.key { ended[soonest] = nil }
            ended[session.nonce] = session.expires
        }
    }

    public func contains(_ session: StatusAuth.Session) -> Bool { ended.withLock { $0[session.nonce] != nil } }
}

/// What the status page keeps between requests, for the process's life.
public final class StatusPageGuards: Sendable {
    public let throttle = LoginThrottle()
    public let signedOut = SignedOutSessions()
    let answering: AnswerSlots

    /// `answering`: the page's answer slots (tests give shorter waits).
    init(answering: AnswerSlots = AnswerSlots()) { self.answering = answering }

    public convenience init() { self.init(answering: AnswerSlots()) }
}

/// Wrong tokens per client address (a sign-in, or a bearer token on the API): at most
/// ``limit`` within ``window``; more from that address are answered 429 until the oldest
/// leaves the window. The token is long and random, so this only keeps a guesser from using
/// the server as an oracle at network speed; a client elsewhere is not locked out by it
/// (behind a proxy every client shares the proxy's address).
public final class LoginThrottle: Sendable {
    public static let limit = 10
    public static let window: TimeInterval = 60
    /// Addresses remembered at once; the one quiet longest is forgotten first.
    public static let maxClients = 1024
    private let failures = Mutex<[String: [Date]]>([:])

    public init() {}

    /// The address of `remote` (`203.0.113.9:51234`, `[2001:db8::1]:51234`) without its port;
    /// of an IPv6 address, its /64 network (one host usually has a whole /64 to pick from).
    public static func client(_ remote: String) -> String {
        guard let colon = remote.lastIndex(of: ":") else { return remote }
        let address = String(remote[..<colon])
        guard address.hasPrefix("["), address.hasSuffix("]") else { return address }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, String(address.dropFirst().dropLast()), &v6) == 1 else { return address }
        let network = withUnsafeBytes(of: &v6) { Data($0.prefix(8)) }
        return "[\(Digest.hex(network))::/64]"
    }

    /// When `client` may try again, or nil when it may now.
    public func blockedUntil(client: String, now: Date) -> Date? {
        failures.withLock { failures in
            guard var times = failures[client] else { return nil }
            times.removeAll { now.timeIntervalSince($0) >= Self.window || $0 > now.addingTimeInterval(Self.window) }
            failures[client] = times.isEmpty ? nil : times
            guard times.count >= Self.limit, let oldest = times.min() else { return nil }
            return oldest.addingTimeInterval(Self.window)
        }
    }

    public func recordFailure(client: String, now: Date) {
        failures.withLock { failures in
            if failures[client] == nil, failures.count >= Self.maxClients,
                let quietest = failures.min(by: { ($0.value.max() ?? .distantPast) < ($1.value.max() ?? .distantPast) })?.key
            {
                failures[quietest] = nil
            }
            var times = failures[client] ?? []
            times.append(now)
            if times.count > Self.limit { times.removeFirst(times.count - Self.limit) }
            failures[client] = times
        }
    }
}
