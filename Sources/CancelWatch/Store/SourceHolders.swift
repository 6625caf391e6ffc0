import Foundation
import PostgresNIO

/// Which replica holds a source's lease, as the state database's `leases` table says.
public struct SourceHolder: Sendable, Hashable {
    public var source: String
    /// The holder's instance id (``InstanceID``).
    public var holder: String
    /// When the lease ends unless its holder renews it.
    public var expiresAt: Date

    public init(source: String, holder: String, expiresAt: Date) {
        self.source = source
        self.holder = holder
        self.expiresAt = expiresAt
    }
}

extension PostgresStateStore {
    /// Every source's lease, by source; nil when the database has no `leases` table (no
    /// replica that shares sources by lease has used it).
    public func sourceHolders() throws(StoreError) -> [SourceHolder]? {
        try database.withSession { (session) throws(StoreError) -> [SourceHolder]? in
            guard try session.tableExists("leases") else { return nil }
            var holders: [SourceHolder] = []
            for row in try session.query("SELECT source, holder, expires_at FROM leases ORDER BY source").rows {
                let (source, holder, expiresAt) = try session.decode(row, as: (ByteBuffer, String, Double).self)
                holders.append(
                    SourceHolder(source: String(buffer: source), holder: holder, expiresAt: Date(timeIntervalSince1970: expiresAt)))
            }
            // No lease yet (replicas have not balanced, or a single `run` never does): nothing to say.
            return holders.isEmpty ? nil : holders
        }
    }
}
