import Foundation

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
    /// The newest item, removed (nil when empty): the list as a stack, e.g. of spare buffers.
    public func popLast() -> Element? { lock.withLock { list.popLast() } }
}

/// The result of work done on another thread, read after joining it.
final class ResultBox<Value>: @unchecked Sendable {
    var value: Result<Value, Error>?
}
