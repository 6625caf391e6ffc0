import Foundation
import Logging

/// Decides when each (request, rule) event is due and emits it at that instant.
///
/// Not a fixed tick: each open request has one timer at the earliest instant any of
/// its rules can change (a threshold on `remaining` crossed, a repeat, the end of a
/// quiet window, its deadline). Events are committed to the outbox together with the
/// alert state that produced them, then the delivery queue is woken.
///
/// Compact for a million open requests: each is a packed record (raw object pruned to
/// what the rules read), with its alert states in a small list and its timer in an
/// indexed heap. Events carry the whole raw object: the one a change brought, or the one
/// in the state file. Alert states of closed requests stay in the state file only.
public actor AlertScheduler {
    /// Its methods call the state store: they run on a thread of their own (``Watcher``).
    private let executor = BlockingExecutor(name: "scheduler")
    public nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    public typealias ExpireHook = @Sendable () async -> [TrackerChange]

    private var rules: [AlertRule]
    /// Each rule's id in `alerts`, by position in `rules`.
    private var ruleIDs: [UInt16] = []
    private var ruleIDsByName: [String: UInt16] = [:]
    private let store: StateStore
    private let clock: WatchClock
    private let logger: Logger
    private let delivery: DeliveryQueue?
    private var expireHook: ExpireHook?

    /// The open requests; each slot's alert states are a list in `alerts`.
    private var open: RequestTable<Int32>
    private var alerts = AlertList()
    private var timers = SlotTimers()
    private let waker = Waker()
    private var observers: [@Sendable ([AlertEvent]) async -> Void] = []

    public init(rules: [AlertRule], store: StateStore, clock: WatchClock, logger: Logger, delivery: DeliveryQueue?) {
        self.rules = rules
        self.store = store
        self.clock = clock
        self.logger = logger
        self.delivery = delivery
        open = RequestTable(rawPaths: rules.rawPaths)
        var ids: [String: UInt16] = [:]
        ruleIDs = rules.map { rule in Self.id(of: rule.name, in: &ids) }
        ruleIDsByName = ids
    }

    private static func id(of rule: String, in ids: inout [String: UInt16]) -> UInt16 {
        if let id = ids[rule] { return id }
        let id = UInt16(clamping: ids.count)
        ids[rule] = id
        return id
    }

    /// How to expire requests whose deadline came (the watcher's `expireDue`).
    public func setExpireHook(_ hook: @escaping ExpireHook) { expireHook = hook }

    /// Called with every batch of events after it is in the outbox.
    public func onEvents(_ observer: @escaping @Sendable ([AlertEvent]) async -> Void) { observers.append(observer) }

    /// Replaces the rule set (SIGHUP). Alert states of rules that remain are kept.
    public func replaceRules(_ newRules: [AlertRule]) async {
        rules = newRules
        ruleIDs = newRules.map { rule in Self.id(of: rule.name, in: &ruleIDsByName) }
        let paths = newRules.rawPaths
        if paths != open.rawPaths {
            // Rules reading more of the raw objects: from the state file, where it has them.
            let keys = open.slots.map(open.key(at:))
            let whole = open.rawPaths.covers(paths) ? [:] : loadRaw(of: keys)
            open.changeRawPaths(to: paths, wholeRaws: whole)
        }
        var events: [AlertEvent] = []
        var states: [AlertState] = []
        evaluate(open.slots.map(open.key(at:)), now: clock.now(), fresh: [:], events: &events, states: &states)
        await commit(states: states, events: events, now: clock.now())
    }

    /// Takes the tracked requests and the saved alert states at start-up. What fell due
    /// while the process was down fires once now; alerts of requests that closed while
    /// down get their `resolved`/`expired`.
    public func start(tracked: [TrackedRequest]) async {
        var saved: [RequestKey: [AlertState]] = [:]
        do {
            for alert in try store.loadAlerts() { saved[alert.request, default: []].append(alert) }
        } catch {
            logger.error("cannot read alert states: \(error.description)")
        }
        let now = clock.now()
        // A raw object pruned to less than the rules read is read again from the state file.
        let short = tracked.filter { $0.status == .pending && !$0.rawKept.covers(open.rawPaths) }.map(\.key)
        let whole = loadRaw(of: short)
        var closed: [TrackerChange] = []
        var keys: [RequestKey] = []
        open.reserveCapacity(tracked.count)
        for item in tracked {
            switch item.status {
            case .pending:
                let key = item.key
                let slot: Int32
                if let raw = whole[key] {
                    var request = item.request
                    request.raw = raw
                    slot = keep(request, rawKept: .everything)
                } else {
                    slot = keep(item.request, rawKept: item.rawKept)
                }
                for state in saved[key] ?? [] { attach(state, to: slot) }
                keys.append(key)
            case .expired: closed.append(.expired(item))
            case .approved: closed.append(.resolved(item, .approved))
            case .rejected: closed.append(.resolved(item, .rejected))
            case .vanished: closed.append(.resolved(item, .vanished))
            }
        }
        var events: [AlertEvent] = []
        var states: [AlertState] = []
        process(closed, now: now, saved: saved, events: &events, states: &states)
        evaluate(keys, now: now, fresh: [:], events: &events, states: &states)
        await commit(states: states, events: events, now: now)
    }

    /// Applies the watcher's changes from one poll (or an expiry).
    public func handle(_ changes: [TrackerChange]) async {
        await apply(changes, now: clock.now())
    }

    /// Runs the timer loop until cancelled.
    public func run() async {
        while !Task.isCancelled {
            await processDue()
            if unsaved != nil, let failedAt = lastFailedCommit, clock.now() >= failedAt.addingTimeInterval(Self.unsavedRetry) {
                await commit(states: [], events: [], now: clock.now())
            }
            var wake = timers.earliest
            if unsaved != nil, let failedAt = lastFailedCommit {
                let retry = failedAt.addingTimeInterval(Self.unsavedRetry)
                wake = min(wake ?? retry, retry)
            }
            await waker.wait(until: wake, clock: clock)
        }
    }

    /// Events and alert states a commit could not write, kept for the next one.
    private var unsaved: (states: [AlertState], events: [AlertEvent])?
    private var lastFailedCommit: Date?
    /// How soon a failed commit is tried again while nothing else happens.
    static let unsavedRetry: TimeInterval = 5

    /// Fires everything due now (the timer loop's body; `once` calls it directly).
    public func processDue() async {
        let now = clock.now()
        var due: [RequestKey] = []
        var deadlineCame = false
        while let slot = timers.popDue(now: now) {
            due.append(open.key(at: slot))
            if open.deadline(at: slot) <= now { deadlineCame = true }
        }
        guard !due.isEmpty else { return }
        if deadlineCame, let expireHook {
            await apply(await expireHook(), now: clock.now())
        }
        var events: [AlertEvent] = []
        var states: [AlertState] = []
        let at = clock.now()
        evaluate(due, now: at, fresh: [:], events: &events, states: &states)
        await commit(states: states, events: events, now: at)
    }

    public var openCount: Int { open.count }

    /// Drops what it remembers about requests the watcher forgot (closed long ago).
    public func forget(_ keys: [RequestKey]) {
        for key in keys {
            if let slot = open.slot(of: key) { drop(slot) }
        }
    }

    /// The next instant the scheduler will wake at.
    public var nextWake: Date? { timers.earliest }

    // MARK: - Evaluation

    private func apply(_ changes: [TrackerChange], now: Date) async {
        var events: [AlertEvent] = []
        var states: [AlertState] = []
        process(changes, now: now, saved: [:], events: &events, states: &states)
        await commit(states: states, events: events, now: now)
    }

    /// Takes in `changes`: requests opened or refined are stored and evaluated (with the
    /// raw object the change brought), closed ones get their `resolved`/`expired`.
    /// `saved`: alert states of requests that are not open (at start-up).
    private func process(
        _ changes: [TrackerChange], now: Date, saved: [RequestKey: [AlertState]], events: inout [AlertEvent],
        states: inout [AlertState]
    ) {
        var touched: [RequestKey] = []
        var fresh: [RequestKey: CancellationRequest] = [:]
        var closing: [AlertEvent] = []
        var needRaw: [Int] = []
        for change in changes {
            let tracked = change.tracked
            let key = tracked.key
            switch change {
            case .new, .updated:
                guard tracked.status == .pending else { continue }
                var reopened: [AlertState] = []
                if open.slot(of: key) == nil, case .updated = change { reopened = reopen(key, states: &states) }
                let slot = keep(tracked.request, rawKept: tracked.rawKept)
                for state in reopened { attach(state, to: slot) }
                touched.append(key)
                fresh[key] = tracked.hasWholeRaw ? tracked.request : nil
            case .resolved(_, let outcome):
                fresh[key] = nil
                close(tracked, as: .resolved(outcome), now: now, saved: saved, events: &closing, needRaw: &needRaw, states: &states)
            case .expired:
                fresh[key] = nil
                close(tracked, as: .expired, now: now, saved: saved, events: &closing, needRaw: &needRaw, states: &states)
            }
        }
        fillRaw(&closing, needRaw)
        events += closing
        evaluate(touched, now: now, fresh: fresh, events: &events, states: &states)
    }

    /// Stores `request` as open (in its slot if it has one, keeping its alert states).
    @discardableResult
    private func keep(_ request: CancellationRequest, rawKept: RawPaths) -> Int32 {
        let head = open.slot(of: request.key).map { open[extra: $0] } ?? -1
        return open.set(request, rawKept: rawKept, extra: head)
    }

    private func attach(_ state: AlertState, to slot: Int32) {
        guard let rule = ruleIDsByName[state.rule], ruleIDs.contains(rule) else { return }
        var head = open[extra: slot]
        alerts.set(PackedAlert(state, rule: rule), in: &head)
        open[extra: slot] = head
    }

    /// Forgets an open request: its record, its alert states, its timer.
    private func drop(_ slot: Int32) {
        alerts.removeAll(open[extra: slot])
        timers.remove(slot)
        open.remove(slot)
    }

    /// A request that closed is pending again (listed again, or its deadline was
    /// extended): its rules may fire again, with new occurrence numbers (new ids).
    /// Its alert states are the ones closed in this batch, or else the state file's.
    private func reopen(_ key: RequestKey, states: inout [AlertState]) -> [AlertState] {
        var known: [String: AlertState] = [:]
        for state in states where state.request == key { known[state.rule] = state }
        if known.isEmpty {
            do {
                for state in try store.loadAlerts(of: [key]) { known[state.rule] = state }
            } catch {
                logger.error("cannot read alert states: \(error.description)", metadata: ["request": "\(key)"])
            }
        }
        var result: [AlertState] = []
        for rule in rules {
            guard let state = known[rule.name] else { continue }
            let reopened = Decisions.reopen(PackedAlert(state, rule: 0))
            let value = reopened.state.state(request: key, rule: rule.name)
            if reopened.changed { states.append(value) }
            result.append(value)
        }
        return result
    }

    private func close(
        _ tracked: TrackedRequest, as closing: Decisions.Closing, now: Date, saved: [RequestKey: [AlertState]],
        events: inout [AlertEvent], needRaw: inout [Int], states: inout [AlertState]
    ) {
        let key = tracked.key
        var current: [String: AlertState] = [:]
        if let slot = open.slot(of: key) {
            for alert in alerts.all(open[extra: slot]) {
                if let name = ruleName(alert.rule) { current[name] = alert.state(request: key, rule: name) }
            }
            drop(slot)
        } else {
            for state in saved[key] ?? [] { current[state.rule] = state }
        }
        let decision = Decisions.close(
            tracked.request, as: closing,
            states: rules.map { rule in current[rule.name].map { PackedAlert($0, rule: 0) } }, rules: rules, now: now)
        for (rule, state) in zip(rules, decision.states) {
            if let state { states.append(state.state(request: key, rule: rule.name)) }
        }
        if !tracked.hasWholeRaw {
            for index in decision.events.indices { needRaw.append(events.count + index) }
        }
        events += decision.events
    }

    private func ruleName(_ id: UInt16) -> String? {
        guard let index = ruleIDs.firstIndex(of: id) else { return nil }
        return rules[index].name
    }

    /// Evaluates every rule for `keys` at `now`, emits what is due, and re-arms their timers.
    /// `fresh`: requests as a change just brought them, with the whole raw object.
    private func evaluate(
        _ keys: [RequestKey], now: Date, fresh: [RequestKey: CancellationRequest], events: inout [AlertEvent],
        states: inout [AlertState]
    ) {
        var needRaw: [Int] = []
        var firing: [AlertEvent] = []
        for key in Set(keys).sorted() {
            guard let slot = open.slot(of: key) else { continue }
            let given = fresh[key]
            let request = given ?? open.request(at: slot)
            let wholeRaw = given != nil || open.rawPaths.isEverything
            var head = open[extra: slot]
            var wake: Date? = request.deadline > now ? request.deadline : nil
            for (index, rule) in rules.enumerated() {
                let ruleID = ruleIDs[index]
                let found = alerts.find(ruleID, in: head)
                let verdict = Decisions.evaluate(request, state: found.map { alerts[$0] }, rule: rule, now: now)
                if verdict.changed, var state = verdict.state {
                    state.rule = ruleID
                    if let found { alerts[found] = state } else { alerts.set(state, in: &head) }
                    states.append(state.state(request: key, rule: rule.name))
                }
                if let event = verdict.event {
                    if !wholeRaw { needRaw.append(firing.count) }
                    firing.append(event)
                }
                if let next = verdict.wake { wake = min(wake ?? next, next) }
            }
            open[extra: slot] = head
            if let wake { timers.schedule(slot, at: wake) } else { timers.remove(slot) }
        }
        fillRaw(&firing, needRaw)
        events += firing
    }

    /// Gives the events at `indexes` (built from a pruned raw object) the whole object
    /// from the state file; where it has none, they keep what memory held.
    private func fillRaw(_ events: inout [AlertEvent], _ indexes: [Int]) {
        guard !indexes.isEmpty else { return }
        let raws = loadRaw(of: indexes.compactMap { events[$0].request?.key })
        for index in indexes {
            if let key = events[index].request?.key, let raw = raws[key] { events[index].request?.raw = raw }
        }
    }

    private func loadRaw(of keys: [RequestKey]) -> [RequestKey: JSONValue] {
        guard !keys.isEmpty else { return [:] }
        do {
            return try store.loadRaw(of: keys)
        } catch {
            logger.error("cannot read raw objects from the state file: \(error.description)")
            return [:]
        }
    }

    private func commit(states: [AlertState], events: [AlertEvent], now: Date) async {
        defer { waker.signal() }
        var states = states
        var events = events
        if let earlier = unsaved {
            // What an earlier commit could not write goes first (a later state of the same
            // alert overwrites it in the same transaction).
            states = earlier.states + states
            events = earlier.events + events
            unsaved = nil
        }
        guard !states.isEmpty || !events.isEmpty else { return }
        do {
            try store.commit(alerts: states, events: events, health: nil, at: now)
        } catch {
            // Memory has moved on; the events and states are kept and written with the next
            // commit, tried again within `Self.unsavedRetry` (nothing is lost while it runs).
            logger.error(
                "cannot save alerts (\(events.count) events kept, tried again shortly): \(error.description)")
            unsaved = (states, events)
            lastFailedCommit = clock.now()
            return
        }
        lastFailedCommit = nil
        guard !events.isEmpty else { return }
        delivery?.wake(sinks: Array(Set(events.flatMap(\.sinks))))
        for observer in observers { await observer(events) }
    }
}

/// One (request, rule) alert state in 40 bytes, a link in its request's list.
struct PackedAlert: Sendable, Equatable {
    private var lastFired: Double = 0
    private var nextRepeat: Double = 0
    private var held: Double = 0
    var firings: Int32 = 0
    var repeats: Int32 = 0
    /// The next state of the same request; -1 ends the list.
    var next: Int32 = -1
    var rule: UInt16
    private var flags: UInt8 = 0

    private static let activeFlag: UInt8 = 1
    private static let closedFlag: UInt8 = 2
    private static let lastFiredFlag: UInt8 = 4
    private static let nextRepeatFlag: UInt8 = 8
    private static let heldFlag: UInt8 = 16

    init(rule: UInt16) { self.rule = rule }

    init(_ state: AlertState, rule: UInt16) {
        self.rule = rule
        firings = Int32(clamping: state.firings)
        repeats = Int32(clamping: state.repeats)
        active = state.active
        closed = state.closed
        lastFiredAt = state.lastFiredAt
        nextRepeatAt = state.nextRepeatAt
        heldUntil = state.heldUntil
    }

    func state(request: RequestKey, rule name: String) -> AlertState {
        AlertState(
            request: request, rule: name, firings: Int(firings), repeats: Int(repeats), active: active, lastFiredAt: lastFiredAt,
            nextRepeatAt: nextRepeatAt, heldUntil: heldUntil, closed: closed)
    }

    private func flag(_ bit: UInt8) -> Bool { flags & bit != 0 }
    private mutating func set(_ bit: UInt8, _ on: Bool) { flags = on ? flags | bit : flags & ~bit }

    var active: Bool {
        get { flag(Self.activeFlag) }
        set { set(Self.activeFlag, newValue) }
    }
    var closed: Bool {
        get { flag(Self.closedFlag) }
        set { set(Self.closedFlag, newValue) }
    }
    var lastFiredAt: Date? {
        get { flag(Self.lastFiredFlag) ? Date(timeIntervalSinceReferenceDate: lastFired) : nil }
        set {
            lastFired = newValue?.timeIntervalSinceReferenceDate ?? 0
            set(Self.lastFiredFlag, newValue != nil)
        }
    }
    var nextRepeatAt: Date? {
        get { flag(Self.nextRepeatFlag) ? Date(timeIntervalSinceReferenceDate: nextRepeat) : nil }
        set {
            nextRepeat = newValue?.timeIntervalSinceReferenceDate ?? 0
            set(Self.nextRepeatFlag, newValue != nil)
        }
    }
    var heldUntil: Date? {
        get { flag(Self.heldFlag) ? Date(timeIntervalSinceReferenceDate: held) : nil }
        set {
            held = newValue?.timeIntervalSinceReferenceDate ?? 0
            set(Self.heldFlag, newValue != nil)
        }
    }
}

/// Alert states, a short list per request (one per rule that ever fired or was held for
/// it), in one array with a free list. A list is named by its head (-1: empty).
struct AlertList: Sendable {
    private var items: [PackedAlert] = []
    private var free: [Int32] = []

    subscript(index: Int32) -> PackedAlert {
        get { items[Int(index)] }
        set { items[Int(index)] = newValue }
    }

    func find(_ rule: UInt16, in head: Int32) -> Int32? {
        var i = head
        while i >= 0 {
            if items[Int(i)].rule == rule { return i }
            i = items[Int(i)].next
        }
        return nil
    }

    /// Stores `alert` in the list starting at `head`: over the state of the same rule, or as a new head.
    mutating func set(_ alert: PackedAlert, in head: inout Int32) {
        if let existing = find(alert.rule, in: head) {
            var copy = alert
            copy.next = items[Int(existing)].next
            items[Int(existing)] = copy
            return
        }
        var copy = alert
        copy.next = head
        if let slot = free.popLast() {
            items[Int(slot)] = copy
            head = slot
        } else {
            head = Int32(items.count)
            items.append(copy)
        }
    }

    func all(_ head: Int32) -> [PackedAlert] {
        var result: [PackedAlert] = []
        var i = head
        while i >= 0 {
            result.append(items[Int(i)])
            i = items[Int(i)].next
        }
        return result
    }

    mutating func removeAll(_ head: Int32) {
        var i = head
        while i >= 0 {
            let next = items[Int(i)].next
            free.append(i)
            i = next
        }
    }
}

/// One timer per slot in a min-heap that knows where each slot is: re-scheduling moves
/// the entry (no stale entries pile up).
struct SlotTimers: Sendable {
    private var heap: [(at: Double, slot: Int32)] = []
    /// By slot: its index in `heap`, or -1.
    private var position: [Int32] = []

    var earliest: Date? { heap.first.map { Date(timeIntervalSinceReferenceDate: $0.at) } }

    mutating func schedule(_ slot: Int32, at date: Date) {
        let at = date.timeIntervalSinceReferenceDate
        while position.count <= Int(slot) { position.append(-1) }
        let current = position[Int(slot)]
        if current >= 0 {
            let old = heap[Int(current)].at
            if old == at { return }
            heap[Int(current)].at = at
            if at < old { siftUp(Int(current)) } else { siftDown(Int(current)) }
            return
        }
        heap.append((at, slot))
        position[Int(slot)] = Int32(heap.count - 1)
        siftUp(heap.count - 1)
    }

    mutating func remove(_ slot: Int32) {
        guard Int(slot) < position.count, position[Int(slot)] >= 0 else { return }
        let index = Int(position[Int(slot)])
        position[Int(slot)] = -1
        let last = heap.removeLast()
        guard index < heap.count else { return }
        heap[index] = last
        position[Int(last.slot)] = Int32(index)
        siftUp(index)
        siftDown(Int(position[Int(last.slot)]))
    }

    mutating func popDue(now: Date) -> Int32? {
        guard let top = heap.first, top.at <= now.timeIntervalSinceReferenceDate else { return nil }
        remove(top.slot)
        return top.slot
    }

    private mutating func swapAt(_ i: Int, _ j: Int) {
        heap.swapAt(i, j)
        position[Int(heap[i].slot)] = Int32(i)
        position[Int(heap[j].slot)] = Int32(j)
    }

    private mutating func siftUp(_ start: Int) {
        BinaryHeap.siftUp(from: start, less: { heap[$0].at < heap[$1].at }, swap: { swapAt($0, $1) })
    }

    private mutating func siftDown(_ start: Int) {
        BinaryHeap.siftDown(from: start, count: heap.count, less: { heap[$0].at < heap[$1].at }, swap: { swapAt($0, $1) })
    }
}
