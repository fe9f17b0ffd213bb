import Foundation

/// A blocking FIFO with a fixed capacity, for the backup and restore pipelines: `put` waits while it
/// is full, `take` waits while it is empty. `close` wakes everyone: `take` then drains what is left
/// and returns nil; `put` returns false once the queue is closed. Capacity 0 is a hand-over: `put`
/// returns once a taker has the item, so the queue itself never holds one.
public final class BoundedQueue<Element>: @unchecked Sendable {
    private let condition = NSCondition()
    /// Taken slots are set to nil at once, so a taken element is not kept alive by the queue.
    private var items: [Element?] = []
    private var head = 0
    private let capacity: Int
    private var closed = false
    private var putCount = 0
    private var takenCount = 0

    public init(capacity: Int) {
        precondition(capacity >= 0)
        self.capacity = capacity
    }

    @discardableResult
    public func put(_ item: Element) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while !closed && items.count - head >= max(capacity, 1) { condition.wait() }
        guard !closed else { return false }
        items.append(item)
        putCount += 1
        let number = putCount
        condition.broadcast()
        if capacity == 0 {
            while !closed && takenCount < number { condition.wait() }
        }
        return true
    }

    public func take() -> Element? {
        condition.lock()
        defer { condition.unlock() }
        while !closed && head == items.count { condition.wait() }
        guard head < items.count else { return nil }
        let item = items[head]
        items[head] = nil
        head += 1
        takenCount += 1
        if head > 64 && head * 2 > items.count {
            items.removeFirst(head)
            head = 0
        }
        condition.broadcast()
        return item
    }

    public func close() {
        condition.lock()
        closed = true
        condition.broadcast()
        condition.unlock()
    }
}
