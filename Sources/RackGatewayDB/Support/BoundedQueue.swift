import Foundation

/// A blocking FIFO with a fixed capacity, for the backup and restore pipelines: `put` waits while it
/// is full, `take` waits while it is empty. `close` wakes everyone: `take` then drains what is left
/// and returns nil; `put` returns false once the queue is closed.
public final class BoundedQueue<Element>: @unchecked Sendable {
    private let condition = NSCondition()
    /// Taken slots are set to nil at once, so a taken element is not kept alive by the queue.
    private var items: [Element?] = []
    private var head = 0
    private let capacity: Int
    private var closed = false

    public init(capacity: Int) {
        precondition(capacity > 0)
        self.capacity = capacity
    }

    @discardableResult
    public func put(_ item: Element) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while !closed && items.count - head >= capacity { condition.wait() }
        guard !closed else { return false }
        items.append(item)
        condition.broadcast()
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

/// The first error of a group of threads; later ones are dropped.
public final class FirstError: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Error?

    public init() {}

    public func record(_ error: Error) {
        lock.withLock { if stored == nil { stored = error } }
    }

    public var error: Error? { lock.withLock { stored } }
    public var isSet: Bool { lock.withLock { stored != nil } }
}

/// Run `body` on a new thread; `group` is left when it returns.
public func spawnThread(_ name: String, group: DispatchGroup, _ body: @escaping @Sendable () -> Void) {
    group.enter()
    let thread = Thread {
        body()
        group.leave()
    }
    thread.name = name
    thread.stackSize = 1 << 20
    thread.start()
}
