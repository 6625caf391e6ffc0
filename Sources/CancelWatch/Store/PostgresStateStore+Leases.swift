import Foundation
import PostgresNIO

/// Leases in the shared database. Expiry and liveness are read from the DATABASE's clock
/// (`clock_timestamp()`), never the process's: replicas on machines whose clocks disagree
/// still agree on when a lease lapses.
extension PostgresStateStore: SourceLeases {
    /// The advisory lock a lease round holds ("cwleases"): rounds run one at a time, each
    /// planning on what the one before it wrote (who is live, who holds what). Taking is
    /// conditional besides, so a source is never taken from a holder whose lease is live.
    static let leaseRoundLock: Int64 = 0x6377_6C65_6173_6573
    /// Replicas not seen for this long are forgotten.
    static let forgetReplicasAfter: TimeInterval = 86400
    /// The longest lease a store accepts (the config allows less).
    static let longestLease: TimeInterval = 86400

    public func balanceLeases(sources: [String], ttl: TimeInterval) throws(StoreError) -> LeaseRound {
        let ttl = try leaseTTL(ttl)
        return try database.transaction { (session) throws(StoreError) in
            try session.execute("SELECT pg_advisory_xact_lock(\(Self.leaseRoundLock))")
            let now = try databaseNow(in: session)
            try enroll(in: session, now: now, ttl: ttl)
            try session.execute("DELETE FROM replicas WHERE seen_at < \(now - Self.forgetReplicasAfter)")
            var live: Set<String> = []
            for row in try session.query("SELECT instance FROM replicas WHERE seen_at > \(now - ttl)").rows {
                live.insert(try session.decode(row, as: String.self))
            }
            let plan = LeasePlan.decide(
                sources: sources, leases: try readLeases(in: session), live: live, instance: instance,
                now: Date(timeIntervalSince1970: now))

            let expiresAt = now + ttl
            if !plan.giveBack.isEmpty {
                try session.execute(
                    "DELETE FROM leases WHERE holder = \(instance) AND source = ANY(\(plan.giveBack.map(bytes)))")
            }
            var held = try leases(
                in: session,
                """
                UPDATE leases SET expires_at = \(expiresAt) WHERE holder = \(instance) AND source = ANY(\(plan.keep.map(bytes)))
                RETURNING source, holder, expires_at, token
                """)
            // A lease renewed by its holder's commit since it was read stays its holder's:
            // the update waits for that commit and finds the lease unexpired.
            let taken = try leases(
                in: session,
                """
                INSERT INTO leases (source, holder, expires_at, token)
                SELECT source, \(instance), \(expiresAt), nextval('lease_tokens') FROM unnest(\(plan.take.map(bytes))) AS source
                ON CONFLICT (source) DO UPDATE SET
                    holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at, token = EXCLUDED.token
                WHERE leases.expires_at <= \(now) AND leases.holder <> EXCLUDED.holder
                RETURNING source, holder, expires_at, token
                """)
            held += taken
            return LeaseRound(
                held: held.sorted { $0.source < $1.source }, taken: taken.map(\.source).sorted(), givenBack: plan.giveBack,
                at: Date(timeIntervalSince1970: now))
        }
    }

    /// Under the rounds' lock, so that no round counts this replica live once its leases are gone.
    /// Gives back this replica's leases; nothing when another process runs as this replica.
    public func releaseLeases() throws(StoreError) {
        try database.transaction { (session) throws(StoreError) in
            try session.execute("SELECT pg_advisory_xact_lock(\(Self.leaseRoundLock))")
            guard try otherProcess(in: session) == nil else { return }
            try session.execute("DELETE FROM leases WHERE holder = \(instance)")
            try session.execute("DELETE FROM replicas WHERE instance = \(instance)")
        }
    }

    /// Records this process as the replica `instance`, alive now, or throws when another
    /// process has been running as it within `ttl` (two copies started with one
    /// `CANCELWATCH_INSTANCE`: they would share its leases and its outbox claims).
    public func enroll(ttl: TimeInterval) throws(StoreError) {
        let ttl = try leaseTTL(ttl)
        try database.transaction { (session) throws(StoreError) in
            try session.execute("SELECT pg_advisory_xact_lock(\(Self.leaseRoundLock))")
            try enroll(in: session, now: try databaseNow(in: session), ttl: ttl)
        }
    }

    private func enroll(in session: StateDatabaseSession, now: Double, ttl: Double) throws(StoreError) {
        if let other = try otherProcess(in: session) {
            if other.seenAt > now - ttl {
                let ago = DurationText.format(max(0, now - other.seenAt))
                let wait = DurationText.format(max(1, other.seenAt + ttl - now))
                throw StoreError(
                    "state database \(location): replica '\(instance)' already runs in another process (seen \(ago) ago); "
                        + "give each replica its own CANCELWATCH_INSTANCE, or, if that process died, start again in \(wait)",
                    supplanted: true)
            }
            // Its leases change hands to this process: a commit the other makes under them
            // (it was only cut off, and comes back) is refused.
            try session.execute("UPDATE leases SET token = nextval('lease_tokens') WHERE holder = \(instance)")
        }
        try session.execute(
            """
            INSERT INTO replicas (instance, seen_at, process) VALUES (\(instance), \(now), \(process))
            ON CONFLICT (instance) DO UPDATE SET seen_at = GREATEST(replicas.seen_at, EXCLUDED.seen_at), process = EXCLUDED.process
            """)
    }

    /// When another process last ran as this replica, if one did.
    private func otherProcess(in session: StateDatabaseSession) throws(StoreError) -> (process: String, seenAt: Double)? {
        let rows = try session.query("SELECT process, seen_at FROM replicas WHERE instance = \(instance)").rows
        for row in rows {
            let (process, seenAt) = try session.decode(row, as: (String, Double).self)
            if process != self.process { return (process, seenAt) }
        }
        return nil
    }

    public func leases() throws(StoreError) -> [SourceLease] {
        try database.withSession { (session) throws(StoreError) in try readLeases(in: session) }
    }

    /// Renews every claim's lease for its TTL in one statement, or throws
    /// (``StoreError/lostLease``, naming the first such claim) when a lease is not that
    /// holding any more; the caller's transaction then writes nothing. An expired lease
    /// nobody took is still its holder's: taking one changes its token.
    func renew(_ claims: [LeaseClaim], in session: StateDatabaseSession) throws(StoreError) {
        guard !claims.isEmpty else { return }
        let ttls = try claims.map { (claim) throws(StoreError) in try leaseTTL(claim.ttl) }
        let rows = try session.query(
            """
            UPDATE leases SET expires_at = extract(epoch FROM clock_timestamp())::double precision + claim.ttl
            FROM unnest(\(claims.map { bytes($0.source) }), \(claims.map(\.instance)), \(claims.map(\.token)), \(ttls))
                AS claim(source, holder, token, ttl)
            WHERE leases.source = claim.source AND leases.holder = claim.holder AND leases.token = claim.token
            RETURNING leases.source, leases.token
            """
        ).rows
        // A source has one lease, so at most one row each.
        var renewed: [[UInt8]: Int64] = [:]
        for row in rows {
            let (source, token) = try session.decode(row, as: (ByteBuffer, Int64).self)
            renewed[Array(source.readableBytesView)] = token
        }
        if let lost = claims.first(where: { renewed[Array($0.source.utf8)] != $0.token }) {
            throw try lostLease(lost, in: session)
        }
    }

    /// Why `claim` no longer holds: who holds its source now, if anyone.
    private func lostLease(_ claim: LeaseClaim, in session: StateDatabaseSession) throws(StoreError) -> StoreError {
        let now = try databaseNow(in: session)
        let current = try leases(
            in: session, "SELECT source, holder, expires_at, token FROM leases WHERE source = \(bytes(claim.source))"
        ).first
        let state: String
        switch current {
        case nil: state = "nobody holds it"
        case let lease? where lease.holder == claim.instance: state = "this replica took it again since"
        case let lease? where lease.expiresAt.timeIntervalSince1970 <= now: state = "'\(lease.holder)' held it last"
        case let lease?: state = "'\(lease.holder)' holds it"
        }
        return StoreError(
            "state database \(location): replica '\(claim.instance)' no longer holds the lease on source '\(claim.source)' "
                + "(\(state)); nothing was written",
            lostLease: claim.source)
    }

    /// Every lease, by source.
    private func readLeases(in session: StateDatabaseSession) throws(StoreError) -> [SourceLease] {
        try leases(in: session, "SELECT source, holder, expires_at, token FROM leases ORDER BY source")
    }

    /// The leases `query` returns as (source, holder, expires_at, token).
    private func leases(in session: StateDatabaseSession, _ query: PostgresQuery) throws(StoreError) -> [SourceLease] {
        var result: [SourceLease] = []
        for row in try session.query(query).rows {
            let (source, holder, expiresAt, token) = try session.decode(row, as: (ByteBuffer, String, Double, Int64).self)
            result.append(
                SourceLease(
                    source: String(buffer: source), holder: holder, expiresAt: Date(timeIntervalSince1970: expiresAt), token: token))
        }
        return result
    }

    /// The database's clock, in seconds since 1970.
    private func databaseNow(in session: StateDatabaseSession) throws(StoreError) -> Double {
        guard let row = try session.query("SELECT extract(epoch FROM clock_timestamp())::double precision").rows.first else {
            throw StoreError("state database \(location): the server did not say what time it is")
        }
        return try session.decode(row, as: Double.self)
    }

    private func leaseTTL(_ ttl: TimeInterval) throws(StoreError) -> Double {
        guard ttl.isFinite, ttl > 0, ttl <= Self.longestLease else {
            throw StoreError("state database \(location): a lease TTL of \(ttl) s is not from 0 to \(Int(Self.longestLease)) s")
        }
        return ttl
    }
}
