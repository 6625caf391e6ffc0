import Foundation

/// A compiled rule file rule is what the ledger's decisions evaluate.
extension CompiledRule: AlertRule {
    public var notifiesResolution: Bool { resolveNotifications }

    public func message(for request: CancellationRequest, now: Date) -> String {
        renderMessage(request: request, now: now)
    }

    public func quietRelease(at now: Date, deadline: Date) -> Date {
        // A deadline at the very end of the window is inside it: holding until then would be too late.
        guard let end = quietEnd(containing: now), deadline > end else { return now }
        return end
    }
}
