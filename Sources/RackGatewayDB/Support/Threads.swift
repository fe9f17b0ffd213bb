import Foundation

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
