import Foundation

/// The largest answer to an answer call that is read (the vendors send an empty object or an
/// error of a few lines).
let answerResponseLimit = 64 << 10

/// Sends one answer call. It is sent again only when it cannot have reached the marketplace
/// (no connection was made; a 429, which applies nothing), at most `policy.maxAttempts`
/// times, waiting on `clock` as `policy` says (a `Retry-After` honoured, clamped). Anything
/// that may have been applied (a timeout, a connection lost after sending, a 5xx) ends it as
/// `.unknown`. Every try is built afresh by `makeRequest` from the instant it is sent, on a
/// connection of its own (``HTTPRequest/sendsOnce``). `interpret` reads a response; every
/// message that leaves is on one line, scrubbed of the try's credentials, and cut.
func sendAnswer(
    transport: HTTPTransport, clock: WatchClock, policy: RetryPolicy, scrubber: SecretScrubber, secretHeaders: Set<String>,
    makeRequest: (Date) -> HTTPRequest,
    interpret: (HTTPResponse, SecretScrubber) -> AnswerOutcome
) async -> AnswerOutcome {
    var attempt = 1
    while true {
        if Task.isCancelled { return .refused(AnswerRefusal(kind: .notSent, message: "not sent: cancelled")) }
        var request = makeRequest(clock.now())
        request.sendsOnce = true
        request.maxResponseBytes = answerResponseLimit
        let scrubbing = scrubber.including(headersOf: request, named: secretHeaders)
        let outcome: AnswerOutcome
        var retryAfter: TimeInterval?
        do {
            let response = try await transport.send(request)
            outcome = scrubbing.oneLine(interpret(response, scrubbing))
            retryAfter = OutsideDelay.parse(response.header("Retry-After"), now: clock.now())
            guard case .refused(let refusal) = outcome, refusal.kind == .rateLimited else { return outcome }
        } catch {
            guard !error.mayHaveBeenSent else {
                return scrubbing.oneLine(.unknown("\(error.description); \(AnswerOutcome.mayHaveApplied)"))
            }
            outcome = scrubbing.oneLine(.refused(AnswerRefusal(kind: .notSent, message: "not sent: \(error.description)")))
            guard error.kind == .connection else { return outcome }
        }
        guard attempt < (policy.maxAttempts ?? Int.max) else { return outcome }
        do {
            try await clock.sleep(for: policy.delay(afterAttempt: attempt, retryAfter: retryAfter))
        } catch {
            return outcome
        }
        attempt += 1
    }
}

extension AnswerOutcome {
    /// What an `.unknown` outcome's message ends with.
    static let mayHaveApplied = "the answer may have been applied (the next listing tells)"
}

extension SecretScrubber {
    /// `body: …` with the body's start, scrubbed, or `an empty body`.
    func answerExcerpt(of body: Data) -> String {
        body.isEmpty ? "an empty body" : "body: \(excerpt(of: body, limit: 160))"
    }

    /// `outcome` with its message on one line, scrubbed, then cut to ``TextCut/errorTextLimit``.
    func oneLine(_ outcome: AnswerOutcome) -> AnswerOutcome {
        switch outcome {
        case .accepted: return .accepted
        case .unknown(let message): return .unknown(scrub(TerminalText.singleLine(message)))
        case .refused(var refusal):
            refusal.message = scrub(TerminalText.singleLine(refusal.message))
            refusal.code = refusal.code.map { scrub(TerminalText.singleLine($0), limit: 64) }
            return .refused(refusal)
        }
    }
}
