/// What the load of one archive into one target does after pre-data, decided from the manifest
/// and the target's catalog (build costs, which tables can be analyzed early): the order of the
/// data chunks, the index and constraint builds that run beside them (each once its table is
/// loaded), the large objects, and the later post-data phases with their entries in build order.
typealias RestoreQueue = LoadQueue<TableLoad, DumpScript.Entry>

struct RestorePlan {
    struct Build {
        var phase: DumpScript.Phase
        var entries: [DumpScript.Entry]
    }

    /// Data members in load order: the biggest tables' first (locally), or file order (from a
    /// store, where one stream reads ahead of the workers).
    var data: [ArchiveManifest.Member]
    var largeObjects: [ArchiveManifest.Member]
    /// Tables a data worker analyzes as soon as their last chunk is in (qualified names).
    var analyzeEarly: Set<String>
    /// Index and constraint builds (post-data's first phase), the dearest first: each waits for its
    /// table's data only (`LoadQueue`).
    var tableBuilds: [DumpScript.Entry]
    /// What goes into the load queue: the table builds, then the foreign keys between two tables
    /// of the archive, each waiting for both tables' data and the referenced table's builds.
    /// Foreign keys the plan cannot place (a partitioned table, a reference it cannot read) stay in
    /// their phase after the load.
    var queued: [RestoreQueue.PlannedBuild]
    /// The post-data phases after them that have entries, in order; in the parallel ones the
    /// dearest builds first.
    var builds: [Build]
    /// Created last, once the restore's own DDL is done.
    var eventTriggers: [DumpScript.Entry]

    init(manifest: ArchiveManifest, postData: DumpScript, costs: BuildCostModel, analyzable: Set<String>, remote: Bool) {
        data = manifest.members.enumerated().filter { $0.element.kind == .data }
            .sorted { a, b in
                let sizeA = manifest.tables[a.element.table!].bytes, sizeB = manifest.tables[b.element.table!].bytes
                return sizeA != sizeB && !remote ? sizeA > sizeB : a.element.offset < b.element.offset
            }.map(\.element)
        largeObjects = manifest.members.filter { $0.kind == .largeObjects }
        analyzeEarly = analyzable
        eventTriggers = postData.entries(in: .eventTriggers)
        // The longest builds first, so no long build starts last and runs alone.
        func dearestFirst(_ entries: [DumpScript.Entry]) -> [DumpScript.Entry] {
            entries.map { (entry: $0, cost: costs.cost(of: $0)) }.enumerated()
                .sorted { $0.element.cost != $1.element.cost ? $0.element.cost > $1.element.cost : $0.offset < $1.offset }
                .map(\.element.entry)
        }
        tableBuilds = dearestFirst(postData.entries(in: .indexes))
        var tableIndex: [String: Int] = [:]
        for (index, table) in manifest.tables.enumerated() { tableIndex[BuildCostModel.key(table.schema, table.name)] = index }
        func index(_ table: (schema: String, name: String)?) -> Int? { table.flatMap { tableIndex[BuildCostModel.key($0.schema, $0.name)] } }
        // pg_restore's rule for parallel post-data: everything but CREATE INDEX locks its tables
        // exclusively (ADD PRIMARY KEY takes an access exclusive lock, ADD FOREIGN KEY a share row
        // exclusive one on both tables, which conflicts with an index build's share lock).
        queued = tableBuilds.map { entry in
            let owner = index(entry.table)
            return RestoreQueue.PlannedBuild(item: entry, owner: owner, after: owner.map { [.data($0)] } ?? [],
                                             locks: owner.map { [$0] } ?? [], exclusive: entry.type != "INDEX")
        }
        var laterForeignKeys: [DumpScript.Entry] = []
        for entry in dearestFirst(postData.entries(in: .foreignKeys)) {
            if let child = index(entry.table), let parent = index(DumpScript.referencedTable(entry)) {
                queued.append(RestoreQueue.PlannedBuild(item: entry, owner: nil, after: [.data(child), .data(parent), .builds(parent)],
                                                        locks: [child, parent], exclusive: true))
            } else {
                laterForeignKeys.append(entry)
            }
        }
        builds = DumpScript.Phase.allCases.filter { $0 != .eventTriggers && $0 != .indexes }.compactMap { phase in
            let entries = phase == .foreignKeys ? laterForeignKeys
                : phase.parallel ? dearestFirst(postData.entries(in: phase)) : postData.entries(in: phase)
            return entries.isEmpty ? nil : Build(phase: phase, entries: entries)
        }
    }
}
