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

/// Run `body` for every item over `workers` threads, each with its own connection made by `connect`;
/// items are handed out in order. The first error stops the others (they finish the item in hand)
/// and is rethrown.
public func forEachInParallel<Item: Sendable, Resource>(
    _ items: [Item], workers: Int, name: String,
    connect: @escaping @Sendable () throws -> Resource,
    _ body: @escaping @Sendable (Resource, Item) throws -> Void
) throws {
    guard !items.isEmpty else { return }
    let failure = FirstError()
    let next = Counter()
    let group = DispatchGroup()
    for worker in 0..<max(1, min(workers, items.count)) {
        spawnThread("\(name) \(worker)", group: group) {
            do {
                let resource = try connect()
                while !failure.isSet {
                    let index = next.next()
                    guard index < items.count else { break }
                    try body(resource, items[index])
                }
            } catch {
                failure.record(error)
            }
        }
    }
    group.wait()
    if let error = failure.error { throw error }
}

/// A shared counter handing out 0, 1, 2, ... to threads.
public final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0
    public init() {}
    public func next() -> Int { lock.withLock { defer { value += 1 }; return value } }
}

/// A list that threads append to.
public final class LockedList<Element>: @unchecked Sendable {
    private let lock = NSLock()
    private var list: [Element] = []
    public init() {}
    public func add(_ item: Element) { lock.withLock { list.append(item) } }
    public var items: [Element] { lock.withLock { list } }
}

/// The result of work done on another thread, read after joining it.
final class ResultBox<Value>: @unchecked Sendable {
    var value: Result<Value, Error>?
}
