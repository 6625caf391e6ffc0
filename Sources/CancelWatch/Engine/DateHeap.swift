import Foundation

/// A binary min-heap of payloads by instant: the ledger's deadlines (its
/// timers, one per slot and moved in place, are a `SlotTimers`). Stale entries are the
/// owner's to recognise and skip.
struct DateHeap<Payload: Sendable>: Sendable {
    // Two arrays, not one of pairs: an instant and a slot take 12 bytes, not a padded 16.
    private var ats: [Date] = []
    private var payloads: [Payload] = []

    init() {}

    /// A heap of `entries`, built in linear time.
    init(_ entries: [(Date, Payload)]) {
        ats = entries.map(\.0)
        payloads = entries.map(\.1)
        var i = ats.count / 2 - 1
        while i >= 0 {
            siftDown(i)
            i -= 1
        }
    }

    var top: (at: Date, payload: Payload)? { ats.first.map { ($0, payloads[0]) } }
    var count: Int { ats.count }

    mutating func push(_ at: Date, _ payload: Payload) {
        ats.append(at)
        payloads.append(payload)
        BinaryHeap.siftUp(from: ats.count - 1, less: { ats[$0] < ats[$1] }, swap: { swapAt($0, $1) })
    }

    mutating func pop() {
        guard !ats.isEmpty else { return }
        swapAt(0, ats.count - 1)
        ats.removeLast()
        payloads.removeLast()
        siftDown(0)
    }

    private mutating func swapAt(_ i: Int, _ j: Int) {
        ats.swapAt(i, j)
        payloads.swapAt(i, j)
    }

    private mutating func siftDown(_ start: Int) {
        BinaryHeap.siftDown(from: start, count: ats.count, less: { ats[$0] < ats[$1] }, swap: { swapAt($0, $1) })
    }
}

/// The two moves of a binary min-heap stored in an array, for heaps that keep their
/// entries their own way (`DateHeap`, the ledger's `SlotTimers`).
enum BinaryHeap {
    /// Moves the entry at `start` up while it is less than its parent.
    @inline(__always)
    static func siftUp(from start: Int, less: (Int, Int) -> Bool, swap: (Int, Int) -> Void) {
        var i = start
        while i > 0 {
            let parent = (i - 1) / 2
            guard less(i, parent) else { break }
            swap(i, parent)
            i = parent
        }
    }

    /// Moves the entry at `start` down while a child is less than it.
    @inline(__always)
    static func siftDown(from start: Int, count: Int, less: (Int, Int) -> Bool, swap: (Int, Int) -> Void) {
        var i = start
        while true {
            let left = 2 * i + 1
            let right = left + 1
            var smallest = i
            if left < count && less(left, smallest) { smallest = left }
            if right < count && less(right, smallest) { smallest = right }
            if smallest == i { break }
            swap(i, smallest)
            i = smallest
        }
    }
}
