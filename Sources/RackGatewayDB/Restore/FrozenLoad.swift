import Foundation
import RGWPostgres

/// What one item of the load queue loads: some chunks of one table, on one connection. A load
/// that holds all of a table's chunks and may be frozen (`freeze`) runs in one transaction,
/// `BEGIN; TRUNCATE ONLY t; COPY t FROM STDIN (FREEZE)` per chunk; `COMMIT`: the table is
/// truncated in that transaction, which is what makes `FREEZE` legal, so its rows are written
/// once, frozen, with the pages all-visible and all-frozen in the visibility map. The index builds
/// after it then do not rewrite every page to set hint bits, and no anti-wraparound vacuum has to
/// read the table weeks later. Any other load commits each chunk on its own, as before.
struct TableLoad: Sendable {
    var table: Int
    var members: [ArchiveManifest.Member]
    var freeze: Bool

    /// The plan's data members (`RestorePlan.data`, in its order) as loads over `jobs` connections:
    /// each table that `freezable` holds, whose chunks follow each other there and that holds at
    /// most 1/`jobs` of the data's bytes, as one load; every other chunk alone. From a store the
    /// members must be taken in file order (`MemberPrefetcher` reads ahead in that order), so a
    /// table whose chunks interleave with another's is loaded a chunk at a time. A bigger table is
    /// split over the connections as before: on one it would be the load's critical path (on two
    /// cores, a table of 90% of the data loaded frozen on one connection made the restore slower
    /// than the rewrite FREEZE saves; docs/design.md).
    static func loads(_ data: [ArchiveManifest.Member], manifest: ArchiveManifest, freezable: Set<Int>, jobs: Int) -> [TableLoad] {
        let total = manifest.tables.reduce(0) { $0 + $1.bytes }
        let freezable = jobs <= 1 ? freezable : freezable.filter { manifest.tables[$0].bytes * jobs <= total }
        var loads: [TableLoad] = []
        var start = 0
        while start < data.count {
            let table = data[start].table!
            var end = start + 1
            while end < data.count && data[end].table! == table { end += 1 }
            let run = Array(data[start..<end])
            if freezable.contains(table) && run.count == manifest.tables[table].chunks.count {
                loads.append(TableLoad(table: table, members: run, freeze: true))
            } else {
                loads += run.map { TableLoad(table: table, members: [$0], freeze: false) }
            }
            start = end
        }
        return loads
    }
}

extension ArchiveLoader {
    /// The archive's tables (indexes into the manifest's) that this restore may truncate and load
    /// with `COPY ... FREEZE`, read from the target after pre-data: plain tables (`relkind` r; not a
    /// partitioned table, where `FREEZE` is refused, nor a foreign table, whose `TRUNCATE` would
    /// reach the remote one), unlogged ones included, with no `ON TRUNCATE` trigger (it would run),
    /// referenced by no foreign key (`TRUNCATE` refuses them; pg_dump adds foreign keys in
    /// post-data, after the load, but a crafted pre-data may not) and that the restoring role may
    /// truncate. Inheritance parents and children and partitions are plain tables: `TRUNCATE ONLY`
    /// empties only the one.
    func freezableTables(_ connection: Connection) throws -> Set<Int> {
        let rows = try connection.query("""
            SELECT n.nspname, c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind = 'r' AND \(CatalogSQL.userSchemaFilter)
              AND NOT EXISTS (SELECT FROM pg_catalog.pg_trigger t WHERE t.tgrelid = c.oid AND t.tgtype & 32 <> 0)
              AND NOT EXISTS (SELECT FROM pg_catalog.pg_constraint f WHERE f.contype = 'f' AND f.confrelid = c.oid)
              AND pg_catalog.has_table_privilege(c.oid, 'TRUNCATE, INSERT')
            """).rows
        let names = Set(rows.map { BuildCostModel.key($0[0]!, $0[1]!) })
        return Set(manifest.tables.indices.filter { names.contains(BuildCostModel.key(manifest.tables[$0].schema, manifest.tables[$0].name)) })
    }

    /// One load: its chunks in order (`load(_:worker:...)` checks each, and the table after its last),
    /// frozen in one transaction when `load.freeze`.
    func load(_ load: TableLoad, worker: DataWorker, totals: TableTotals, analyzable: Set<String>,
              prefetcher: MemberPrefetcher?) throws {
        guard load.freeze else {
            for member in load.members {
                try self.load(member, worker: worker, totals: totals, analyzable: analyzable, prefetcher: prefetcher)
            }
            return
        }
        let table = manifest.tables[load.table]
        let connection = worker.connection
        do {
            try connection.execute("BEGIN")
            try connection.execute("TRUNCATE ONLY \(SQL.qualified(table.schema, table.name))")
        } catch let error as PostgresError {
            throw ToolError(.failed, "loading table \(SQL.qualified(table.schema, table.name)) failed before its first row: \(error.description)",
                            fix: error.isConnectionLoss ? "Check that the target server is up, then restore again with --clean." : nil)
        }
        for member in load.members {
            try self.load(member, worker: worker, totals: totals, analyzable: analyzable, prefetcher: prefetcher, freeze: true)
        }
        do {
            try connection.execute("COMMIT")
        } catch let error as PostgresError {
            throw ToolError(.failed, "loading table \(SQL.qualified(table.schema, table.name)) failed at its commit: \(error.description)",
                            fix: error.isConnectionLoss ? "Check that the target server is up, then restore again with --clean." : nil)
        }
        // Analyzed after the commit: inside the load's transaction, its inserts would count as
        // changes since the ANALYZE once committed.
        let name = SQL.qualified(table.schema, table.name)
        loadedFrozen.add(name)
        if analyzable.contains(name) { try analyzeLoaded(name, on: connection) }
    }
}
