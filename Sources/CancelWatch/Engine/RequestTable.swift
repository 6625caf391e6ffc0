import Foundation

/// Values kept once and named by a 32-bit id, with a count of references: a million
/// requests share a few hundred sources, states, initiators and reasons. Id 0 is the
/// `reserved` value, never counted nor freed.
struct InternPool<Value: Hashable & Sendable>: Sendable {
    private var values: [Value]
    private var references: [UInt32]
    private var ids: [Value: UInt32]
    private var free: [UInt32] = []

    init(reserved: Value) {
        values = [reserved]
        references = [0]
        ids = [reserved: 0]
    }

    @inline(__always)
    subscript(id: UInt32) -> Value { values[Int(id)] }

    /// The id of `value`, if it is kept.
    func id(of value: Value) -> UInt32? { ids[value] }

    /// Whether `id` names `value` (read in place).
    @inline(__always)
    func holds(_ value: Value, at id: UInt32) -> Bool { values[Int(id)] == value }

    /// One more reference to `id`.
    @inline(__always)
    mutating func retain(id: UInt32) {
        if id != 0 { references[Int(id)] += 1 }
    }

    /// The id of `value`, counting one more reference to it.
    mutating func retain(_ value: Value) -> UInt32 {
        if let id = ids[value] {
            if id != 0 { references[Int(id)] += 1 }
            return id
        }
        let id: UInt32
        if let reused = free.popLast() {
            id = reused
            values[Int(id)] = value
            references[Int(id)] = 1
        } else {
            id = UInt32(values.count)
            values.append(value)
            references.append(1)
        }
        ids[value] = id
        return id
    }

    /// One reference less to `id`; the value goes when none is left (the id may then name
    /// another value later).
    mutating func release(_ id: UInt32) {
        guard id != 0 else { return }
        references[Int(id)] -= 1
        guard references[Int(id)] == 0 else { return }
        ids[values[Int(id)]] = nil
        values[Int(id)] = values[0]
        free.append(id)
    }
}

/// A `CancellationRequest` in 64 bytes: its id and order inline, its source, details
/// (interned whole: a text field added to `CancellationRequest.Details` needs nothing here)
/// and raw object (pruned to what rules read) as pool ids, dates as seconds.
struct PackedRequest: Sendable {
    var id: String = ""
    var order: String = ""
    /// `Date.timeIntervalSinceReferenceDate`, exact.
    var deadline: Double = 0
    var createdAt: Double = 0
    var source: UInt32 = 0
    var details: UInt32 = 0
    var raw: UInt32 = 0
    var marketplace: Marketplace = .ozon
    var state: RequestState = .pending
    var hasCreatedAt = false
    var live = false
}

/// Requests by slot, compactly: an array of packed records, a free list, and an
/// open-addressing index from `RequestKey` to slot (4 bytes a bucket). What a request
/// holds beyond its fields (`Extra`) sits next to it. A value type; not thread-safe.
struct RequestTable<Extra: Sendable>: Sendable {
    struct Entry: Sendable {
        var request: PackedRequest
        var extra: Extra
    }

    /// What of each raw object is kept.
    private(set) var rawPaths: RawPaths
    private(set) var entries: [Entry] = []
    private var freeSlots: [Int32] = []
    /// Slot + 1 per bucket, 0 when empty; a power of two long, at most 70 % full.
    /// Open addressing, linear probing: each bucket holds the low 32 bits of the key's hash
    /// (high half) and slot + 1 (low half; 0 is empty). The stored hash answers most probes
    /// without touching the entry, and gives rehashing and removal every home for free.
    private var buckets: [UInt64] = []
    private(set) var count = 0
    private var sources = InternPool(reserved: ExactText(""))
    private var details = InternPool(reserved: CancellationRequest.Details(rawState: ""))
    private var raws = InternPool<JSONValue>(reserved: .object([:]))
    /// The source and details ids seen lately (each holding a reference): requests mostly
    /// repeat a few, and comparing with them is cheaper than a lookup.
    private var recentSources = RecentIDs()
    private var recentDetails = RecentIDs()
    /// The source interned last (0: none), holding a reference.
    private var lastSource: UInt32 = 0

    init(rawPaths: RawPaths) {
        self.rawPaths = rawPaths
    }

    mutating func reserveCapacity(_ n: Int) {
        entries.reserveCapacity(n)
        if Self.bucketCount(for: n) > buckets.count { rehash(Self.bucketCount(for: n)) }
    }

    /// Room for `n` more requests, grown as appending grows (so that calling it poll after
    /// poll stays linear): a first poll of thousands copies no array while it fills.
    mutating func reserveCapacity(adding n: Int) {
        let slots = entries.count + max(0, n - freeSlots.count)
        if slots > entries.capacity { entries.reserveCapacity(max(slots, 2 * entries.capacity)) }
        if Self.bucketCount(for: count + n) > buckets.count { rehash(Self.bucketCount(for: count + n)) }
    }

    // MARK: Reading

    @inline(__always)
    func isLive(_ slot: Int32) -> Bool { Int(slot) < entries.count && entries[Int(slot)].request.live }

    /// The slot holding `key`, if any.
    func slot(of key: RequestKey) -> Int32? { locate(key).slot }

    /// Where a key is: its slot if it has one, and its hash (for `set`, which then need
    /// not hash it again).
    struct Location {
        var slot: Int32?
        var hash: Int
    }

    func locate(_ key: RequestKey) -> Location {
        let hash = Self.hash(source: key.source, id: key.id)
        guard count > 0 else { return Location(slot: nil, hash: hash) }
        let mask = buckets.count - 1
        let tag = UInt64(UInt32(truncatingIfNeeded: hash)) << 32
        var i = Self.home(hash, mask: mask)
        while true {
            let stored = buckets[i]
            if stored == 0 { return Location(slot: nil, hash: hash) }
            if stored & 0xFFFF_FFFF_0000_0000 == tag {
                let slot = Self.slot(stored)
                // By bytes, as the key was hashed (and as the clients tell ids apart).
                if sameBytes(entries[Int(slot)].request.id, key.id) && sameBytes(sources[entries[Int(slot)].request.source].text, key.source) {
                    return Location(slot: slot, hash: hash)
                }
            }
            i = (i + 1) & mask
        }
    }

    @inline(__always)
    subscript(extra slot: Int32) -> Extra {
        get { entries[Int(slot)].extra }
        _modify { yield &entries[Int(slot)].extra }
    }

    @inline(__always)
    func deadline(at slot: Int32) -> Date { Date(timeIntervalSinceReferenceDate: entries[Int(slot)].request.deadline) }

    func source(at slot: Int32) -> String { sources[entries[Int(slot)].request.source].text }
    func id(at slot: Int32) -> String { entries[Int(slot)].request.id }
    func key(at slot: Int32) -> RequestKey { RequestKey(source: source(at: slot), id: id(at: slot)) }

    /// The request in `slot`, its raw object as kept (`rawPaths`).
    func request(at slot: Int32) -> CancellationRequest {
        let p = entries[Int(slot)].request
        var request = CancellationRequest(
            marketplace: p.marketplace, source: sources[p.source].text, id: p.id, order: p.order, state: p.state, rawState: "",
            createdAt: p.hasCreatedAt ? Date(timeIntervalSinceReferenceDate: p.createdAt) : nil,
            deadline: Date(timeIntervalSinceReferenceDate: p.deadline), raw: raws[p.raw])
        request.details = details[p.details]
        return request
    }

    /// Whether `request` (with the key of `slot`) equals the one in `slot` in every field but the raw object.
    func sameFields(_ slot: Int32, _ request: CancellationRequest) -> Bool {
        let p = entries[Int(slot)].request
        // Texts by bytes, as they are interned: a marketplace rewriting a reason in another
        // Unicode form has changed it.
        return p.marketplace == request.marketplace && p.deadline == request.deadline.timeIntervalSinceReferenceDate
            && p.state == request.state && sameBytes(p.order, request.order)
            && p.hasCreatedAt == (request.createdAt != nil)
            && (request.createdAt.map { $0.timeIntervalSinceReferenceDate == p.createdAt } ?? true)
            && details.holds(request.details, at: p.details)
    }

    /// Whether `raw` is exactly the raw object kept in `slot`.
    func keepsRaw(_ raw: RawObject, in slot: Int32) -> Bool {
        let kept = raws[entries[Int(slot)].request.raw]
        return RawObject(kept) == raw
    }

    /// The slots of the requests of `names`, in one pass.
    func slots(ofSources names: [String]) -> [Int32] {
        let wanted = Set(names.compactMap { sources.id(of: ExactText($0)) }.filter { $0 != 0 })
        guard !wanted.isEmpty else { return [] }
        var result: [Int32] = []
        for (slot, entry) in entries.enumerated() where entry.request.live && wanted.contains(entry.request.source) {
            result.append(Int32(slot))
        }
        return result
    }

    /// Every slot in use, in slot order.
    var slots: [Int32] {
        var result: [Int32] = []
        result.reserveCapacity(count)
        for (slot, entry) in entries.enumerated() where entry.request.live { result.append(Int32(slot)) }
        return result
    }

    // MARK: Writing

    /// Stores `request` (whose raw object holds `rawKept`) with `extra`, in the slot of its
    /// key or a new one; returns the slot. The raw object is pruned to `rawPaths`.
    @discardableResult
    mutating func set(_ request: CancellationRequest, rawKept: RawPaths, extra: Extra) -> Int32 {
        set(request, rawKept: rawKept, extra: extra, at: locate(request.key))
    }

    /// `set`, where the caller has located the request's key.
    @discardableResult
    mutating func set(_ request: CancellationRequest, rawKept: RawPaths, extra: Extra, at location: Location) -> Int32 {
        let existing = location.slot
        var packed = PackedRequest()
        packed.id = request.id
        packed.order = request.order
        packed.deadline = request.deadline.timeIntervalSinceReferenceDate
        packed.createdAt = request.createdAt?.timeIntervalSinceReferenceDate ?? 0
        packed.hasCreatedAt = request.createdAt != nil
        packed.live = true
        packed.source = internSource(request.source)
        // The recent details are found by their texts' lengths (no byte read twice: the
        // comparison that follows reads them); different details of the same lengths only
        // share a recent slot.
        packed.details = recentDetails.intern(request.details, digest: Self.lengths(of: request.details), in: &details)
        packed.marketplace = request.marketplace
        packed.state = request.state
        packed.raw = retainRaw(request.rawObject, kept: rawKept)
        if let existing {
            releaseValues(of: entries[Int(existing)].request)
            entries[Int(existing)] = Entry(request: packed, extra: extra)
            return existing
        }
        let slot: Int32
        if let reused = freeSlots.popLast() {
            slot = reused
            entries[Int(slot)] = Entry(request: packed, extra: extra)
        } else {
            slot = Int32(entries.count)
            entries.append(Entry(request: packed, extra: extra))
        }
        count += 1
        if Self.bucketCount(for: count) > buckets.count { rehash(Self.bucketCount(for: count)) }
        index(slot, hash: location.hash)
        return slot
    }

    /// Frees `slot`.
    mutating func remove(_ slot: Int32) {
        guard isLive(slot) else { return }
        unindex(slot)
        releaseValues(of: entries[Int(slot)].request)
        entries[Int(slot)].request = PackedRequest()
        freeSlots.append(slot)
        count -= 1
    }

    /// A poll's requests share one source: the last one is tried first.
    private mutating func internSource(_ source: String) -> UInt32 {
        if lastSource != 0 && sameBytes(sources[lastSource].text, source) {
            sources.retain(id: lastSource)
            return lastSource
        }
        let id = recentSources.intern(ExactText(source), digest: FastDigest.of(source), in: &sources)
        // It holds a reference of its own, so that the id keeps naming this text.
        sources.retain(id: id)
        sources.release(lastSource)
        lastSource = id
        return id
    }

    @inline(__always)
    private static func lengths(of details: CancellationRequest.Details) -> UInt64 {
        var digest = FastDigest()
        digest.add(UInt64(details.rawState.utf8.count) << 48 | UInt64(details.initiator.utf8.count) << 32 | UInt64(details.reason.utf8.count))
        digest.add(UInt64(details.reasonID.utf8.count) << 48 | UInt64(details.logistics.utf8.count) << 32 | UInt64(details.reasonMessage.utf8.count))
        return digest.value
    }

    private mutating func retainRaw(_ raw: RawObject, kept: RawPaths) -> UInt32 {
        if rawPaths.isEmpty, raw.isObject { return 0 }
        let pruned = kept == rawPaths || !kept.covers(rawPaths) ? raw.value : raw.pruned(to: rawPaths)
        if case .object(let members) = pruned, members.isEmpty { return 0 }
        return raws.retain(pruned)
    }

    private mutating func releaseValues(of p: PackedRequest) {
        sources.release(p.source)
        details.release(p.details)
        raws.release(p.raw)
    }

    // MARK: Index

    private static func bucketCount(for count: Int) -> Int {
        var n = 16
        while count * 10 > n * 7 { n *= 2 }
        return n
    }

    @inline(__always)
    private static func hash(source: String, id: String) -> Int {
        // The fast digest, not `Hasher`: two short strings per lookup, on every request of every poll.
        Int(truncatingIfNeeded: FastDigest.of(source, id))
    }

    @inline(__always)
    private static func home(_ hash: Int, mask: Int) -> Int { Int(UInt32(truncatingIfNeeded: hash)) & mask }

    @inline(__always)
    private static func slot(_ bucket: UInt64) -> Int32 { Int32(truncatingIfNeeded: bucket & 0xFFFF_FFFF) - 1 }

    @inline(__always)
    private static func bucket(_ slot: Int32, hash: Int) -> UInt64 {
        UInt64(UInt32(truncatingIfNeeded: hash)) << 32 | UInt64(UInt32(slot + 1))
    }

    private func hash(of slot: Int32) -> Int {
        let p = entries[Int(slot)].request
        return Self.hash(source: sources[p.source].text, id: p.id)
    }

    private mutating func index(_ slot: Int32, hash: Int? = nil) {
        insert(Self.bucket(slot, hash: hash ?? self.hash(of: slot)))
    }

    private mutating func insert(_ bucket: UInt64) {
        let mask = buckets.count - 1
        var i = Int(bucket >> 32) & mask
        while buckets[i] != 0 { i = (i + 1) & mask }
        buckets[i] = bucket
    }

    /// Removes `slot` from the index, shifting back what probed past it (no tombstones).
    private mutating func unindex(_ slot: Int32) {
        let mask = buckets.count - 1
        var hole = Self.home(hash(of: slot), mask: mask)
        while Self.slot(buckets[hole]) != slot { hole = (hole + 1) & mask }
        var next = hole
        while true {
            next = (next + 1) & mask
            let stored = buckets[next]
            if stored == 0 { break }
            let want = Int(stored >> 32) & mask
            // The entry at `next` may fill the hole unless its home lies cyclically in (hole, next].
            let stays = hole <= next ? (want > hole && want <= next) : (want > hole || want <= next)
            if !stays {
                buckets[hole] = stored
                hole = next
            }
        }
        buckets[hole] = 0
    }

    private mutating func rehash(_ size: Int) {
        let old = buckets
        buckets = [UInt64](repeating: 0, count: size)
        // Every indexed entry is in the old index with its hash: no key is hashed again.
        for bucket in old where bucket != 0 { insert(bucket) }
    }
}

/// The pool ids a table interned lately, by a digest of their values (four ways per set of
/// the digest's low bits, each holding a reference so that its id keeps naming its value):
/// requests mostly repeat a few hundred values, and finding one here costs a digest and a
/// comparison instead of a seeded hash and a dictionary probe. Four ways, so that values
/// whose digests share a set (or are equal: the caller may digest only part of a value)
/// do not push each other out.
struct RecentIDs: Sendable {
    private static let ways = 4
    private var digests = [UInt64](repeating: 0, count: 256)
    private var ids = [UInt32](repeating: 0, count: 256)
    /// Per set, the way replaced next.
    private var next = [UInt8](repeating: 0, count: 256 / 4)

    mutating func intern<Value>(_ value: Value, digest: UInt64, in pool: inout InternPool<Value>) -> UInt32 {
        let set = Int(truncatingIfNeeded: digest) & (next.count - 1)
        let first = set * Self.ways
        for slot in first..<first + Self.ways {
            let cached = ids[slot]
            if cached != 0 && digests[slot] == digest && pool.holds(value, at: cached) {
                pool.retain(id: cached)
                return cached
            }
        }
        let id = pool.retain(value)
        let slot = first + Int(next[set])
        next[set] = UInt8((Int(next[set]) + 1) % Self.ways)
        pool.release(ids[slot])
        pool.retain(id: id)
        ids[slot] = id
        digests[slot] = digest
        return id
    }
}
