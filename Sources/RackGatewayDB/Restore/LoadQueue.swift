import Foundation

/// The work of a restore's load as one dependency-driven queue (as pg_restore orders its work by
/// dependencies, not by sections): data chunks in the plan's order, and builds that become ready
/// the moment what they need is in: an index or constraint build its table's data; a foreign key
/// both tables' data and the referenced table's builds. `take` hands out the first ready build
/// (builds come in priority order: the dearest first), else the next chunk; it waits while nothing
/// is ready and work is still running, and returns nil once everything is done or the queue is
/// stopped. So the small tables' builds run while the big table still loads, and the big table's
/// builds start while the small tables load, instead of every core waiting at a phase boundary.
/// A ready build whose table locks conflict with a running build's is passed over for the next
/// one (as pg_restore's `has_lock_conflicts`): `ALTER TABLE ... ADD CONSTRAINT` (a primary key, a
/// foreign key) locks its tables exclusively, `CREATE INDEX` shares its table with other index
/// builds; handed out together, one connection would only wait for the other's lock.
final class LoadQueue<Chunk: Sendable, Build: Sendable>: @unchecked Sendable {
    enum Item {
        case chunk(Chunk, table: Int)
        case build(Build, index: Int)
    }

    /// What a build waits for.
    enum Dependency: Hashable {
        /// Every chunk of the table.
        case data(Int)
        /// Every build the table owns.
        case builds(Int)
    }

    struct PlannedBuild {
        var item: Build
        /// The table whose `.builds` this one counts toward, if any.
        var owner: Int?
        var after: Set<Dependency>
        /// The tables the build locks while it runs, and whether exclusively (everything but
        /// `CREATE INDEX`, whose share lock admits other index builds of the table).
        var locks: Set<Int> = []
        var exclusive = false

        /// Whether this build would wait for `other`'s locks (or `other` for this one's).
        func conflicts(with other: PlannedBuild) -> Bool {
            (exclusive || other.exclusive) && !locks.isDisjoint(with: other.locks)
        }
    }

    private let condition = NSCondition()
    private let chunks: [(item: Chunk, table: Int)]
    private var nextChunk = 0
    private let builds: [PlannedBuild]
    /// Indexes into `builds` of those ready to run, ascending (their priority order).
    private var ready: [Int] = []
    private var waiting: [Int] = []
    private var left: [Dependency: Int] = [:]
    private var running = 0
    /// Indexes into `builds` of those running.
    private var runningBuilds: [Int] = []
    private var stopped = false

    /// `builds` in priority order.
    init(chunks: [(item: Chunk, table: Int)], builds: [PlannedBuild]) {
        self.chunks = chunks
        self.builds = builds
        for chunk in chunks { left[.data(chunk.table), default: 0] += 1 }
        for build in builds { if let owner = build.owner { left[.builds(owner), default: 0] += 1 } }
        waiting = Array(builds.indices)
        release()
    }

    /// Move the builds whose dependencies are all met to `ready` (called under the lock).
    private func release() {
        let met = waiting.filter { builds[$0].after.allSatisfy { left[$0, default: 0] == 0 } }
        guard !met.isEmpty else { return }
        let released = Set(met)
        waiting.removeAll { released.contains($0) }
        ready = (ready + met).sorted()
    }

    func take() -> Item? {
        condition.lock()
        defer { condition.unlock() }
        while true {
            if stopped { return nil }
            if let position = ready.firstIndex(where: { candidate in
                !runningBuilds.contains { builds[candidate].conflicts(with: builds[$0]) }
            }) {
                running += 1
                let index = ready.remove(at: position)
                runningBuilds.append(index)
                return .build(builds[index].item, index: index)
            }
            if nextChunk < chunks.count {
                running += 1
                nextChunk += 1
                return .chunk(chunks[nextChunk - 1].item, table: chunks[nextChunk - 1].table)
            }
            // Here every ready build (if any) conflicts with a running one: wait for it to end.
            if running == 0 {
                // Builds still waiting here wait for something that never comes (a dependency the
                // plan did not know): hand them out rather than drop them.
                if !waiting.isEmpty {
                    ready = waiting
                    waiting = []
                    continue
                }
                return nil
            }
            condition.wait()
        }
    }

    /// `item` is done: what waited for it may be ready.
    func done(_ item: Item) {
        condition.lock()
        defer { condition.unlock() }
        running -= 1
        switch item {
        case .chunk(_, let table): left[.data(table)]! -= 1
        case .build(_, let index):
            runningBuilds.removeAll { $0 == index }
            if let owner = builds[index].owner { left[.builds(owner)]! -= 1 }
        }
        release()
        condition.broadcast()
    }

    /// Hand out nothing more (after a failure); `take` returns nil in every worker.
    func stop() {
        condition.lock()
        stopped = true
        condition.broadcast()
        condition.unlock()
    }
}
