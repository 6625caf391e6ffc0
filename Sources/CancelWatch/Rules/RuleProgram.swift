import Foundation

/// A condition flattened for evaluation: its nodes in one array, in prefix order, each
/// knowing how many nodes its subtree spans. A node is a plain value (no strings, no
/// references), so walking it counts no references; the few tests that need strings or
/// paths name them by index. Tests of the fields with a closed set of values (`state`,
/// `marketplace`) are decided once for each value and kept as a bit mask.
///
/// Same answers as `RuleCondition.evaluate`, which stays the reference (and what
/// `nextChange` walks): the program is only faster.
struct RuleProgram: Sendable {
    enum Op: Sendable {
        case constant(Bool)
        case all
        case any
        case not
        /// Bit `caseIndex` set for each state the test holds for.
        case state(mask: UInt8)
        /// Bit `caseIndex` set for each marketplace the test holds for.
        case marketplace(mask: UInt8)
        /// `texts[test]` against the field.
        case text(RuleTextField, test: Int32)
        case remaining(RuleOrder, TimeInterval)
        case age(RuleOrder, TimeInterval)
        /// Against seconds since the reference date.
        case time(RuleTimeField, RuleOrder, TimeInterval)
        case hour(mask: UInt32)
        case weekday(mask: UInt8)
        /// `raws[test]`.
        case raw(test: Int32)
    }

    struct Node: Sendable {
        var op: Op
        /// This node and everything under it.
        var span: Int32
    }

    private var nodes: [Node] = []
    private var texts: [RuleTextTest] = []
    private var raws: [(path: [String], test: RuleRawTest)] = []

    init(_ condition: RuleCondition) {
        append(condition)
    }

    private mutating func append(_ condition: RuleCondition) {
        let at = nodes.count
        switch condition {
        case .constant(let b): nodes.append(Node(op: .constant(b), span: 1))
        case .all(let items), .any(let items):
            if case .all = condition { nodes.append(Node(op: .all, span: 1)) } else { nodes.append(Node(op: .any, span: 1)) }
            for item in items { append(item) }
        case .not(let inner):
            nodes.append(Node(op: .not, span: 1))
            append(inner)
        case .text(.state, let test):
            let mask = RequestState.allCases.reduce(UInt8(0)) { test.test($1.rawValue) ? $0 | 1 << $1.caseIndex : $0 }
            nodes.append(Node(op: .state(mask: mask), span: 1))
        case .text(.marketplace, let test):
            let mask = Marketplace.allCases.reduce(UInt8(0)) { test.test($1.rawValue) ? $0 | 1 << $1.caseIndex : $0 }
            nodes.append(Node(op: .marketplace(mask: mask), span: 1))
        case .text(let field, let test):
            texts.append(test)
            nodes.append(Node(op: .text(field, test: Int32(texts.count - 1)), span: 1))
        case .duration(.remaining, let op, let seconds): nodes.append(Node(op: .remaining(op, seconds), span: 1))
        case .duration(.age, let op, let seconds): nodes.append(Node(op: .age(op, seconds), span: 1))
        case .time(let field, let op, let instant):
            nodes.append(Node(op: .time(field, op, instant.timeIntervalSinceReferenceDate), span: 1))
        case .hour(let mask): nodes.append(Node(op: .hour(mask: mask), span: 1))
        case .weekday(let mask): nodes.append(Node(op: .weekday(mask: mask), span: 1))
        case .raw(let path, let test):
            raws.append((path, test))
            nodes.append(Node(op: .raw(test: Int32(raws.count - 1)), span: 1))
        }
        nodes[at].span = Int32(nodes.count - at)
    }

    func evaluate(_ request: CancellationRequest, now: Date, clock: RuleClock) -> Bool {
        evaluate(at: 0, request, now: now.timeIntervalSinceReferenceDate, clock: clock)
    }

    private func evaluate(at i: Int, _ request: CancellationRequest, now: TimeInterval, clock: RuleClock) -> Bool {
        let node = nodes[i]
        switch node.op {
        case .constant(let b):
            return b
        case .all:
            var j = i + 1
            let end = i + Int(node.span)
            while j < end {
                if !evaluate(at: j, request, now: now, clock: clock) { return false }
                j += Int(nodes[j].span)
            }
            return true
        case .any:
            var j = i + 1
            let end = i + Int(node.span)
            while j < end {
                if evaluate(at: j, request, now: now, clock: clock) { return true }
                j += Int(nodes[j].span)
            }
            return false
        case .not:
            return !evaluate(at: i + 1, request, now: now, clock: clock)
        case .state(let mask):
            return mask & (1 << request.state.caseIndex) != 0
        case .marketplace(let mask):
            return mask & (1 << request.marketplace.caseIndex) != 0
        case .text(let field, let test):
            return texts[Int(test)].test(field.value(of: request))
        case .remaining(let op, let seconds):
            return RuleCondition.remaining(request, op, seconds, now: now)
        case .age(let op, let seconds):
            return RuleCondition.age(request, op, seconds, now: now)
        case .time(let field, let op, let instant):
            return RuleCondition.time(request, field, op, instant)
        case .hour(let mask):
            return RuleCondition.hour(mask, now: Date(timeIntervalSinceReferenceDate: now), clock: clock)
        case .weekday(let mask):
            return RuleCondition.weekday(mask, now: Date(timeIntervalSinceReferenceDate: now), clock: clock)
        case .raw(let test):
            let raw = raws[Int(test)]
            return RuleCondition.raw(request, raw.path, raw.test)
        }
    }
}

extension RequestState {
    /// A bit position of its own (below 8).
    @inline(__always)
    var caseIndex: UInt8 {
        switch self {
        case .pending: return 0
        case .approved: return 1
        case .rejected: return 2
        }
    }
}

extension Marketplace {
    /// A bit position of its own (below 8).
    @inline(__always)
    var caseIndex: UInt8 {
        switch self {
        case .ozon: return 0
        case .xiaohongshu: return 1
        }
    }
}
