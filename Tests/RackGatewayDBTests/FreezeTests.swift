import Foundation
import Logging
import RGWPostgres
import Testing
import TestSupport
@testable import RackGatewayDB

/// Issue 33's item 2: a table loaded by one connection is truncated and loaded with `COPY ...
/// FREEZE` in one transaction, so the restore writes its pages once, all-visible and all-frozen
/// (`pg_visibility`), and everything else about the restore stays as it was.
@Suite("restore loads tables with COPY FREEZE")
struct FreezeTests {
    /// Plain tables of several chunks and of one, an unlogged one, an inheritance parent and child,
    /// a partitioned table's partitions, tables with an insert and a truncate trigger and two joined
    /// by a foreign key.
    static let schema = """
        CREATE TABLE big (id int PRIMARY KEY, payload text NOT NULL);
        INSERT INTO big SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, 20000) g;
        CREATE INDEX big_payload ON big (payload);
        CREATE TABLE small (id int, note text);
        INSERT INTO small VALUES (1, 'one'), (2, 'two');
        CREATE UNLOGGED TABLE scratch AS SELECT g AS id FROM generate_series(1, 3000) g;
        CREATE TABLE animals (id int, name text);
        CREATE TABLE dogs (breed text) INHERITS (animals);
        INSERT INTO animals VALUES (1, 'cat');
        INSERT INTO dogs VALUES (2, 'rex', 'collie');
        CREATE TABLE measurements (at date NOT NULL, value int) PARTITION BY RANGE (at);
        CREATE TABLE measurements_2025 PARTITION OF measurements FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
        CREATE TABLE measurements_2026 PARTITION OF measurements FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
        INSERT INTO measurements SELECT date '2025-01-01' + (g % 700), g FROM generate_series(1, 5000) g;
        CREATE TABLE parents (id int PRIMARY KEY);
        CREATE TABLE children (id int PRIMARY KEY, parent int REFERENCES parents);
        INSERT INTO parents SELECT generate_series(1, 500);
        INSERT INTO children SELECT g, g FROM generate_series(1, 500) g;
        CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
        CREATE TABLE audited (id int);
        INSERT INTO audited SELECT generate_series(1, 100);
        CREATE TRIGGER audited_touch BEFORE INSERT ON audited FOR EACH ROW EXECUTE FUNCTION touch();
        CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE 'no truncate'; END $$;
        CREATE TABLE kept (id int);
        INSERT INTO kept SELECT generate_series(1, 100);
        CREATE TRIGGER kept_refuse BEFORE TRUNCATE ON kept FOR EACH STATEMENT EXECUTE FUNCTION refuse();
        """

    static let tables = ["big", "small", "scratch", "animals", "dogs", "measurements_2025", "measurements_2026", "parents", "children", "audited", "kept"]

    /// Each table's heap pages, and those the visibility map marks all-visible and all-frozen.
    static func visibility(_ database: TestDatabase, _ tables: [String]) throws -> [String: String] {
        try database.psql("CREATE EXTENSION IF NOT EXISTS pg_visibility")
        var result: [String: String] = [:]
        for table in tables {
            let line = try database.psql("""
                SELECT pg_relation_size('\(table)') / current_setting('block_size')::int || ' ' || all_visible || ' ' || all_frozen
                FROM pg_visibility_map_summary('\(table)')
                """).trimmingCharacters(in: .whitespacesAndNewlines)
            result[table] = line
        }
        return result
    }

    /// Every page of `tables` all-visible and all-frozen (and at least one page each).
    static func expectFrozen(_ database: TestDatabase, _ tables: [String]) throws {
        for (table, line) in try visibility(database, tables) {
            let numbers = line.split(separator: " ").compactMap { Int($0) }
            #expect(numbers.count == 3 && numbers[0] > 0 && numbers[1] == numbers[0] && numbers[2] == numbers[0],
                    "\(table): pages, all-visible, all-frozen = \(line)")
        }
    }

    /// The whole restore (chunks of 16 KiB so `big` has many): every table that holds rows is loaded
    /// frozen, trigger, foreign key and inheritance notwithstanding (pg_dump makes them in post-data,
    /// after the load), and the rows and schema are the source's. Over two connections `big`, most
    /// of the data, is split over both as before and not frozen; over one it is frozen too.
    @Test(arguments: [1, 2])
    func aRestoreLeavesEveryLoadedTablesPagesAllVisibleAndAllFrozen(jobs: Int) throws {
        try TestDatabase.with { source in
            try source.psql(Self.schema)
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let backup = try TestArchives.backup(source, directory: directory, chunkSize: 16 * 1024)
            let manifest = try ArchiveReader(path: backup.file).manifest
            let big = try #require(manifest.tables.first { $0.name == "big" })
            #expect(big.chunks.count > 4, "big is loaded from several chunks")
            try TestDatabase.withUnused { target in
                let report = try RestoreTests.restore(backup.file, into: target, jobs: jobs)
                #expect(report.verified && report.mismatches.isEmpty)
                #expect(try DatabaseOracle.tableDigests(target) == DatabaseOracle.tableDigests(source))
                #expect(try TestArchives.schemaDump(target) == TestArchives.schemaDump(source))
                try Self.expectFrozen(target, jobs == 1 ? Self.tables : Self.tables.filter { $0 != "big" })
                if jobs == 2 {
                    let big = try Self.visibility(target, ["big"])["big"]!.split(separator: " ")
                    #expect(big.count == 3 && big[0] != "0" && big[2] == "0", "big was loaded a chunk at a time, not frozen: \(big)")
                }
            }
        }
    }

    /// `restore --table --into-schema`: the tables are created in the restore's transaction, so
    /// their rows are loaded frozen too.
    @Test func aTableRestoreLoadsItsTablesFrozen() throws {
        try TestDatabase.with { source in
            try source.psql(Self.schema)
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let backup = try TestArchives.backup(source, directory: directory, chunkSize: 16 * 1024)
            let restore = try CLI.run(["restore", backup.file, "--table", "public.big", "--table", "public.small",
                                       "--into-schema", "side", "--target-url", source.url])
            #expect(restore.status == 0, "\(restore.stderr)")
            for table in ["big", "small"] {
                #expect(try source.psql("SELECT count(*) FROM side.\(table)") == source.psql("SELECT count(*) FROM public.\(table)"))
                #expect(try source.psql("(TABLE side.\(table) EXCEPT ALL TABLE public.\(table)) UNION ALL (TABLE public.\(table) EXCEPT ALL TABLE side.\(table))")
                    .trimmingCharacters(in: .whitespacesAndNewlines).isEmpty)
            }
            try Self.expectFrozen(source, ["side.big", "side.small"])
        }
    }

    /// Where FREEZE does not apply the table is loaded a chunk at a time as before: a table with an
    /// ON TRUNCATE trigger (it would run; an insert trigger or the foreign key's own triggers do not
    /// matter) or one a foreign key references (TRUNCATE refuses it), read from a live catalog; a partitioned parent is no plain table; and a table whose chunks
    /// interleave with another's in the order they are read (from a store, in file order).
    @Test func tablesWhereFreezeDoesNotApplyAreLoadedAChunkAtATime() throws {
        try TestDatabase.with { source in
            try source.psql(Self.schema)
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let backup = try TestArchives.backup(source, directory: directory, chunkSize: 16 * 1024)
            let reader = try ArchiveReader(path: backup.file)
            let manifest = reader.manifest
            let loader = ArchiveLoader(reader: reader, settings: try source.settings, jobs: 1, maintenanceWorkMem: nil, logger: .quiet,
                                       progress: RestoreProgress())
            let freezable = Set(try loader.freezableTables(try source.connect()).map { manifest.tables[$0].name })
            #expect(freezable == ["big", "small", "scratch", "animals", "dogs", "measurements_2025", "measurements_2026", "children", "audited"])

            let data = manifest.members.filter { $0.kind == .data }
            let index = { (name: String) in manifest.tables.firstIndex { $0.name == name }! }
            let big = data.filter { $0.table == index("big") }, small = data.filter { $0.table == index("small") }
            let all = Set(manifest.tables.indices)
            let whole = TableLoad.loads(big + small, manifest: manifest, freezable: all, jobs: 1)
            #expect(whole.map(\.members.count) == [big.count, 1] && whole.allSatisfy(\.freeze))
            // Over two connections big, most of the data, is split over both; small is still whole.
            let split = TableLoad.loads(big + small, manifest: manifest, freezable: all, jobs: 2)
            #expect(split.count == big.count + 1 && split.filter(\.freeze).map(\.table) == [index("small")])
            // big's chunks with small's between them: big a chunk at a time, small still whole.
            let interleaved = [big[0], small[0]] + big.dropFirst()
            let loads = TableLoad.loads(interleaved, manifest: manifest, freezable: all, jobs: 1)
            #expect(loads.count == big.count + 1)
            #expect(loads.filter(\.freeze).map(\.table) == [index("small")])
            #expect(TableLoad.loads(big, manifest: manifest, freezable: all.subtracting([index("big")]), jobs: 1).allSatisfy { !$0.freeze && $0.members.count == 1 })
        }
    }
}
