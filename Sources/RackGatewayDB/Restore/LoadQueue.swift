import Foundation

/// The work of a restore's load as one dependency-driven queue (as pg_restore orders its work by
/// dependencies, not by sections): data chunks in the plan's order, and index and constraint
/// builds that become ready the moment their table's last chunk is in. `take` hands out the first
/// ready build (builds come in priority order: the dearest first), else the next chunk; it waits
/// while nothing is ready and work is still running, and returns nil once everything is done or
/// the queue is stopped. So the small tables' builds run while the big table still loads, and the
/// big table's builds start while the small tables load, instead of every core waiting at a phase
/// boundary.
final class LoadQueue<Chunk: Sendable, Build: Sendable>: @unchecked Sendable {
    enum Item {
        case chunk(Chunk, table: Int)
        case build(Build)
    }

    private let condition = NSCondition()
    private let chunks: [(item: Chunk, table: Int)]
    private var nextChunk = 0
    private let builds: [(item: Build, table: Int?)]
    /// Indexes into `builds` of those ready to run, ascending (their priority order).
    private var ready: [Int] = []
    private var waiting: [Int: [Int]] = [:]
    private var chunksLeft: [Int: Int] = [:]
    private var running = 0
    private var stopped = false

    /// `builds` in priority order; a build's `table` is the table whose chunks it waits for (nil:
    /// none, ready at once).
    init(chunks: [(item: Chunk, table: Int)], builds: [(item: Build, table: Int?)]) {
        self.chunks = chunks
        self.builds = builds
        for chunk in chunks { chunksLeft[chunk.table, default: 0] += 1 }
        for (index, build) in builds.enumerated() {
            if let table = build.table, chunksLeft[table, default: 0] > 0 {
                waiting[table, default: []].append(index)
            } else {
                ready.append(index)
            }
        }
    }

    func take() -> Item? {
        condition.lock()
        defer { condition.unlock() }
        while true {
            if stopped { return nil }
            if !ready.isEmpty {
                running += 1
                return .build(builds[ready.removeFirst()].item)
            }
            if nextChunk < chunks.count {
                running += 1
                nextChunk += 1
                return .chunk(chunks[nextChunk - 1].item, table: chunks[nextChunk - 1].table)
            }
            if running == 0 { return nil }
            condition.wait()
        }
    }

    /// `item` is done; after a table's last chunk its builds are ready.
    func done(_ item: Item) {
        condition.lock()
        defer { condition.unlock() }
        running -= 1
        if case .chunk(_, let table) = item {
            chunksLeft[table]! -= 1
            if chunksLeft[table] == 0, let released = waiting.removeValue(forKey: table) {
                ready = (ready + released).sorted()
            }
        }
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
