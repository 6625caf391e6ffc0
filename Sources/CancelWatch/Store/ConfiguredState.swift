import Foundation

/// The state store a config names, open: its PostgreSQL database (`state: postgres://…`)
/// or its state file. ``open(_:readOnly:)`` is the one place that chooses; what only the
/// state file has (its lock, its mode checks) comes with the file alone.
public enum ConfiguredState: Sendable {
    case database(PostgresStateStore)
    case file(SQLiteStateStore)

    /// Opens the store `config` names, creating or migrating its schema; `readOnly` (as
    /// `status` reads beside a running watcher) takes no lock and writes nothing. A database
    /// claims outbox entries in the name of `instance` (a new name when nil). Blocks: call it
    /// off Swift's cooperative pool. Throws one line naming the file, or the database's host
    /// and port (never its password).
    public static func open(_ config: CancelWatchConfig, readOnly: Bool = false, instance: InstanceID? = nil) throws(StoreError)
        -> ConfiguredState
    {
        try open(config, access: readOnly ? .read : .write, instance: instance)
    }

    /// `access` as the state file takes it (``SQLiteStateStore/Access``). A database is shared
    /// anyway: answering writes its journal beside the replicas, and, as reading, needs the
    /// schema up to date without changing it (a newer command line never migrates a fleet's
    /// database under its replicas).
    public static func open(_ config: CancelWatchConfig, access: SQLiteStateStore.Access, instance: InstanceID? = nil)
        throws(StoreError) -> ConfiguredState
    {
        if let location = config.stateDatabase {
            return .database(
                try PostgresStateStore(
                    location: location, instance: instance?.value ?? PostgresStateStore.newInstance(), readOnly: access != .write))
        }
        return .file(try SQLiteStateStore(path: config.state, access: access))
    }

    public var store: any StateStore {
        switch self {
        case .database(let store): store
        case .file(let store): store
        }
    }

    /// What opening found and fixed (a state file readable by others), one line each.
    public var warnings: [String] {
        switch self {
        case .database: []
        case .file(let store): store.warnings
        }
    }

    /// The latest dead letters, newest first.
    public func deadLetters(limit: Int) throws(StoreError) -> [DeadLetter] {
        switch self {
        case .database(let store): try store.deadLetters(limit: limit)
        case .file(let store): try store.deadLetters(limit: limit)
        }
    }

    /// Which replica holds each source; nil where sources are not leased (a state file, or a
    /// database no replica has taken a lease in yet).
    public func sourceHolders() throws(StoreError) -> [SourceLease]? {
        switch self {
        case .database(let store):
            let leases = try store.leases()
            return leases.isEmpty ? nil : leases
        case .file: return nil
        }
    }

    /// A check of the database for `/healthz`; nil for a state file (nothing to reach).
    public func probe() -> StateDatabaseProbe? {
        switch self {
        case .database(let store): StateDatabaseProbe(location: store.location)
        case .file: nil
        }
    }
}
