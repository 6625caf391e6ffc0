import Foundation

/// A binary min-heap of payloads by instant: the tracker's deadlines (the scheduler's
/// timers, one per slot and moved in place, are a `SlotTimers`). Stale entries are the
/// owner's to recognise and skip.
struct DateHeap<Payload: Sendable>: Sendable {
    private var items: [(at: Date, payload: Payload)] = []

    init() {}

    /// A heap of `entries`, built in linear time.
    init(_ entries: [(Date, Payload)]) {
        items = entries.map { (at: $0.0, payload: $0.1) }
        var i = items.count / 2 - 1
        while i >= 0 {
            siftDown(i)
            i -= 1
        }
    }

    var top: (at: Date, payload: Payload)? { items.first }
    var isEmpty: Bool { items.isEmpty }
    var count: Int { items.count }

    mutating func push(_ at: Date, _ payload: Payload) {
        items.append((at, payload))
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard items[i].at < items[parent].at else { break }
            items.swapAt(i, parent)
            i = parent
        }
    }

    mutating func pop() {
        guard !items.isEmpty else { return }
        items.swapAt(0, items.count - 1)
        items.removeLast()
        siftDown(0)
    }

    private mutating func siftDown(_ start: Int) {
        var i = start
        while true {
            let left = 2 * i + 1
            let right = left + 1
            var smallest = i
            if left < items.count && items[left].at < items[smallest].at { smallest = left }
            if right < items.count && items[right].at < items[smallest].at { smallest = right }
            if smallest == i { break }
            items.swapAt(i, smallest)
            i = smallest
        }
    }
}
