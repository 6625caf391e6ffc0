import Foundation

extension SimScenario {
    /// Many pending requests at once, for paging: deadlines spread evenly over
    /// `deadlines` (offsets from the anchor), created `window` before each deadline.
    public static func bulkRequests(
        marketplace: SimMarketplace, account: String, count: Int, deadlines: ClosedRange<TimeInterval>,
        window: TimeInterval, logistics: String = "red_auto", seed: UInt64
    ) -> [SimRequestPlan] {
        var random = SeededGenerator(seed: seed)
        let span = deadlines.upperBound - deadlines.lowerBound
        return (0..<max(0, count)).map { index in
            let fraction = count > 1 ? Double(index) / Double(count - 1) : 0
            let jitter = Double(Int.random(in: 0..<60, using: &random))
            let deadline = deadlines.lowerBound + span * fraction + (fraction < 1 ? jitter : 0)
            var plan = SimRequestPlan(
                marketplace: marketplace, account: account, created: .relative(deadline - window), deadline: .relative(deadline),
                logistics: logistics)
            if marketplace == .ozon {
                let initiators = ["CLIENT", "CLIENT", "CLIENT", "OZON", "SYSTEM", "DELIVERY"]
                plan.initiator = initiators[Int.random(in: 0..<initiators.count, using: &random)]
            }
            return plan
        }
    }

    /// The built-in scenario of `cancelwatch simulate` and `cancelwatch demo`.
    ///
    /// Accounts:
    /// - Ozon `sim-ozon-main`: client_id `100001`, api_key `sim-ozon-key-1`: 14 requests.
    /// - Ozon `sim-ozon-bulk`: client_id `100002`, api_key `sim-ozon-key-2`: 523 pending
    ///   (more than one 500-item page) and 5 already approved.
    /// - RED `sim-red-shop`: app_key `sim-red-key`, app_secret `sim-red-secret`,
    ///   `max_audit_time` in milliseconds, `red_auto` and `red_box`.
    ///
    /// Timeline (offsets from the simulator's start):
    /// - due soon: Ozon at +75s and +2m (both auto-approve at their deadline), +3m (rejected by
    ///   the seller at +2m30s), bulk account +2m20s; RED red_auto +90s and +2m30s, red_box +2m
    ///   (auto-approves at its deadline);
    /// - resolved by the seller in the first minute: Ozon approved +20s, rejected +45s;
    ///   RED canceled +30s, refused +50s;
    /// - appearing during the first minute: Ozon +15s, +40s (due +2m40s), +55s; RED +20s (due
    ///   +2m40s), +35s;
    /// - vanishing: Ozon (due +6h) at +50s;
    /// - hours and days away: +3h to +47h, and the bulk ones at +12h to +60h (a quarter of them
    ///   within a day: the default rules' heads-up fires on some 130 at the first poll);
    /// - history: Ozon and RED requests decided before the start; RED package `P800000000000001`
    ///   asked twice (refused two days ago, pending again now).
    ///
    /// Ids, posting numbers and stock texts come from a seeded generator: the scenario is the
    /// same on every run, relative to its start.
    public static var standard: SimScenario {
        let main = "100001"
        let bulk = "100002"
        let red = "sim-red-key"
        let minute = 60.0
        let hour = 3600.0
        let day = 86400.0
        let h48 = 48 * hour
        var requests: [SimRequestPlan] = []

        func ozon(
            _ account: String, created: TimeInterval, deadline: TimeInterval, resolve: (TimeInterval, SimOutcome)? = nil,
            vanish: TimeInterval? = nil, initiator: String = "CLIENT", reasonIndex: Int? = nil
        ) {
            var plan = SimRequestPlan.ozon(
                account: account, created: created, deadline: deadline, resolve: resolve.map { (at: $0.0, $0.1) },
                vanishAt: vanish, initiator: initiator)
            if let reasonIndex, initiator == "CLIENT" {
                let reason = StockTexts.ozonReasons[reasonIndex]
                plan.reason = reason.name
                plan.reasonID = reason.id
            }
            requests.append(plan)
        }

        // Ozon, main account.
        ozon(main, created: 75 - h48, deadline: 75, reasonIndex: 0)
        ozon(main, created: 2 * minute - h48, deadline: 2 * minute, reasonIndex: 1)
        ozon(main, created: 3 * minute - 72 * hour, deadline: 3 * minute, resolve: (150, .rejected), initiator: "OZON")
        ozon(main, created: 5 * hour - h48, deadline: 5 * hour, resolve: (20, .approved), reasonIndex: 2)
        ozon(main, created: day - h48, deadline: day, resolve: (45, .rejected), reasonIndex: 3)
        ozon(main, created: 4 * hour - h48, deadline: 4 * hour, reasonIndex: 4)
        ozon(main, created: 12 * hour - h48, deadline: 12 * hour, initiator: "SYSTEM")
        ozon(main, created: -hour, deadline: 47 * hour, reasonIndex: 5)
        ozon(main, created: 15, deadline: 15 + h48, reasonIndex: 0)
        ozon(main, created: 40, deadline: 160, initiator: "DELIVERY")
        ozon(main, created: 55, deadline: 3 * hour, reasonIndex: 1)
        ozon(main, created: 6 * hour - h48, deadline: 6 * hour, vanish: 50, reasonIndex: 2)
        ozon(main, created: -3 * day, deadline: -day, resolve: (-2 * day, .approved), reasonIndex: 0)
        ozon(main, created: -2 * day, deadline: 0 - 20 * hour + h48, resolve: (-20 * hour, .rejected), reasonIndex: 3)

        // Ozon, bulk account: more pending than one page of 500.
        ozon(bulk, created: 140 - h48, deadline: 140, reasonIndex: 0)
        ozon(bulk, created: 3 * hour - h48, deadline: 3 * hour, reasonIndex: 4)
        ozon(bulk, created: 20 * hour - h48, deadline: 20 * hour, initiator: "OZON")
        requests += bulkRequests(
            marketplace: .ozon, account: bulk, count: 520, deadlines: (12 * hour)...(60 * hour), window: 72 * hour, seed: 7)
        for i in 0..<5 {
            let at = -Double(i + 1) * 6 * hour
            ozon(bulk, created: at - hour, deadline: at - hour + h48, resolve: (at, .approved), reasonIndex: i)
        }

        // RED.
        func redRequest(
            _ logistics: String, created: TimeInterval, deadline: TimeInterval, resolve: (TimeInterval, SimOutcome)? = nil,
            reasonIndex: Int = 0, packageID: String? = nil
        ) {
            var plan = SimRequestPlan.red(
                account: red, logistics: logistics, created: created, deadline: deadline,
                resolve: resolve.map { (at: $0.0, $0.1) }, reason: StockTexts.redReasons[reasonIndex], packageID: packageID)
            plan.resolution?.comment =
                resolve?.1 == .rejected ? StockTexts.redRefusedReason : resolve == nil ? nil : StockTexts.redCanceledReason
            requests.append(plan)
        }
        redRequest("red_auto", created: -50 * minute, deadline: 90, reasonIndex: 0)
        redRequest("red_auto", created: -10 * minute, deadline: 150, reasonIndex: 1)
        redRequest("red_auto", created: -hour, deadline: 6 * hour, reasonIndex: 3)
        redRequest("red_auto", created: -2 * hour, deadline: 20 * hour, reasonIndex: 2)
        redRequest("red_auto", created: -5 * minute, deadline: 3 * hour, resolve: (30, .approved), reasonIndex: 4)
        redRequest("red_auto", created: -20 * minute, deadline: day, resolve: (50, .rejected), reasonIndex: 5)
        redRequest("red_auto", created: 20, deadline: 160, reasonIndex: 0)
        redRequest(
            "red_auto", created: -2 * day, deadline: -2 * day + 6 * hour, resolve: (-2 * day + hour, .rejected), reasonIndex: 0,
            packageID: "P800000000000001")
        redRequest("red_auto", created: -30 * minute, deadline: 8 * hour, reasonIndex: 0, packageID: "P800000000000001")
        requests += bulkRequests(
            marketplace: .red, account: red, count: 55, deadlines: (10 * hour)...(70 * hour), window: 72 * hour,
            logistics: "red_auto", seed: 11)
        redRequest("red_box", created: -15 * minute, deadline: 2 * minute, reasonIndex: 1)
        redRequest("red_box", created: -hour, deadline: 10 * hour, reasonIndex: 2)
        redRequest("red_box", created: -day - hour, deadline: -day + 5 * hour, resolve: (-day, .approved), reasonIndex: 3)
        redRequest("red_box", created: 35, deadline: 12 * hour, reasonIndex: 5)

        return SimScenario(
            ozonAccounts: [
                SimOzonAccount(name: "sim-ozon-main", clientID: main, apiKey: "sim-ozon-key-1"),
                SimOzonAccount(name: "sim-ozon-bulk", clientID: bulk, apiKey: "sim-ozon-key-2"),
            ],
            redAccounts: [SimRedAccount(name: "sim-red-shop", appKey: red, appSecret: "sim-red-secret")],
            requests: requests, seed: 20_261_123)
    }
}

extension SimScenario {
    /// An agency's fleet: `ozonAccounts` Ozon accounts and `redAccounts` RED shops
    /// (`red_auto`, milliseconds), each with `pendingPerAccount` pending requests whose
    /// deadlines are 30 to 70 hours away, so nothing changes during a benchmark cycle.
    /// Accounts are `fleet-ozon-N` (client_id `300000+N`) and `fleet-red-N` (app_key `fleet-red-key-N`).
    public static func fleet(ozonAccounts: Int, redAccounts: Int, pendingPerAccount: Int, seed: UInt64 = 1) -> SimScenario {
        let hour = 3600.0
        var requests: [SimRequestPlan] = []
        requests.reserveCapacity((ozonAccounts + redAccounts) * pendingPerAccount)
        var ozon: [SimOzonAccount] = []
        for i in 0..<max(0, ozonAccounts) {
            let account = SimOzonAccount(name: "fleet-ozon-\(i)", clientID: String(300_000 + i), apiKey: "fleet-ozon-key-\(i)")
            ozon.append(account)
            requests += bulkRequests(
                marketplace: .ozon, account: account.clientID, count: pendingPerAccount, deadlines: (30 * hour)...(70 * hour),
                window: 72 * hour, seed: seed &+ UInt64(i))
        }
        var red: [SimRedAccount] = []
        for i in 0..<max(0, redAccounts) {
            let account = SimRedAccount(name: "fleet-red-\(i)", appKey: "fleet-red-key-\(i)", appSecret: "fleet-red-secret-\(i)")
            red.append(account)
            requests += bulkRequests(
                marketplace: .red, account: account.appKey, count: pendingPerAccount, deadlines: (30 * hour)...(70 * hour),
                window: 72 * hour, seed: seed &+ 1_000_000 &+ UInt64(i))
        }
        return SimScenario(ozonAccounts: ozon, redAccounts: red, requests: requests, seed: seed)
    }
}
