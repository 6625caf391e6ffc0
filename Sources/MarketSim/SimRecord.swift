import CancelWatch
import Foundation

/// A scenario request made concrete: absolute times and every id assigned.
struct SimRecord: Sendable {
    /// The simulator's own serial number for it.
    let simID: Int
    var marketplace: SimMarketplace
    var account: String
    var created: Date
    var deadline: Date
    var resolution: (at: Date, outcome: SimOutcome, comment: String?)?
    var vanishAt: Date?
    var reason: String
    var reasonID: Int64
    var initiator: String
    var reasonMessage: String
    var cancellationID: Int64
    var postingNumber: String
    var orderDate: Date
    var fractionDigits: Int
    var sourceID: Int64
    var tplIntegrationType: String
    var packageID: String
    var logistics: String

    /// Where a request is in its life at an instant.
    enum Phase: Equatable {
        case hidden
        case pending
        case decided(SimOutcome, at: Date, automatic: Bool)
    }

    func phase(at now: Date) -> Phase {
        if now < created { return .hidden }
        if let vanishAt, now >= vanishAt { return .hidden }
        if let resolution, resolution.at < deadline, resolution.at <= now {
            return .decided(resolution.outcome, at: resolution.at, automatic: false)
        }
        if now >= deadline { return .decided(.approved, at: deadline, automatic: true) }
        return .pending
    }

    /// The id a client sees: Ozon `cancellation_id`, RED `package_id`.
    var publicID: String { marketplace == .ozon ? String(cancellationID) : packageID }
    /// The order: Ozon `posting_number`, RED `package_id`.
    var order: String { marketplace == .ozon ? postingNumber : packageID }
}

/// Times as the simulator writes them.
enum SimDates {
    /// RFC 3339 UTC with exactly `digits` fractional digits (0: none).
    static func rfc3339(_ date: Date, digits: Int) -> String {
        let whole = Timestamp.format(date)
        guard digits > 0 else { return whole }
        let seconds = date.timeIntervalSince1970
        let scale = pow(10.0, Double(digits))
        let fraction = min(Int(((seconds - floor(seconds)) * scale).rounded()), Int(scale) - 1)
        let padded = String(fraction)
        let text = String(repeating: "0", count: max(0, digits - padded.count)) + padded
        return String(whole.dropLast()) + "." + text + "Z"
    }

    /// `date` cut to `digits` fractional digits, so what is shown is what is meant.
    static func truncate(_ date: Date, digits: Int) -> Date {
        let scale = pow(10.0, Double(digits))
        return Date(timeIntervalSince1970: floor(date.timeIntervalSince1970 * scale) / scale)
    }

    static func unixSeconds(_ date: Date) -> Int64 { Int64(floor(date.timeIntervalSince1970)) }
}
