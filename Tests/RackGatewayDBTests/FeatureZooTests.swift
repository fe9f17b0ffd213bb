import Foundation
import Postgres
import Testing
import TestSupport
@testable import RackGatewayDB

/// PostgreSQL features the application's schema does not use but a database may hold, round-tripped
/// through backup → verify → restore → drill and `gunzip | psql`, and compared with what
/// `pg_dump -Fc | pg_restore` makes of the same database: schema text, and every table's rows by an
/// oracle independent of the tool's fingerprints.
@Suite("feature zoo: what pg_restore keeps, the restore keeps")
struct FeatureZooTests {
    static let zoo = #"""
        CREATE SCHEMA zoo;
        -- Tables with no column COPY can carry: none, all dropped, only generated ones.
        CREATE TABLE zoo.no_columns ();
        INSERT INTO zoo.no_columns SELECT FROM generate_series(1, 7);
        CREATE TABLE zoo.dropped_columns (a int, b text);
        INSERT INTO zoo.dropped_columns SELECT i, 'x' FROM generate_series(1, 5) i;
        ALTER TABLE zoo.dropped_columns DROP COLUMN a, DROP COLUMN b;
        CREATE TABLE zoo.only_generated (g int GENERATED ALWAYS AS (42) STORED);
        INSERT INTO zoo.only_generated DEFAULT VALUES; INSERT INTO zoo.only_generated DEFAULT VALUES;
        -- A rule with several actions, and SQL-standard function bodies.
        CREATE TABLE zoo.accounts (id int PRIMARY KEY, note text);
        CREATE TABLE zoo.deleted_a (id int);
        CREATE TABLE zoo.deleted_b (id int);
        CREATE RULE accounts_deleted AS ON DELETE TO zoo.accounts DO ALSO (
            INSERT INTO zoo.deleted_a VALUES (old.id); INSERT INTO zoo.deleted_b VALUES (old.id));
        INSERT INTO zoo.accounts SELECT i, 'note ' || i FROM generate_series(1, 20) i;
        CREATE FUNCTION zoo.classify(x int) RETURNS text LANGUAGE sql
        BEGIN ATOMIC
            SELECT CASE WHEN x > 10 THEN 'big' ELSE 'small' END;
        END;
        CREATE PROCEDURE zoo.add_account(x int) LANGUAGE sql
        BEGIN ATOMIC
            INSERT INTO zoo.accounts VALUES (x, zoo.classify(x));
            INSERT INTO zoo.deleted_a VALUES (-x);
        END;
        -- A trigger whose WHEN text holds a line that looks like a pg_dump entry header.
        CREATE FUNCTION zoo.keep_note() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.note := OLD.note; RETURN NEW; END $$;
        CREATE TRIGGER accounts_keep_note BEFORE UPDATE ON zoo.accounts FOR EACH ROW
            WHEN (NEW.note IS DISTINCT FROM '
        -- Name: accounts_fake_idx; Type: INDEX; Schema: zoo; Owner: postgres
        ') EXECUTE FUNCTION zoo.keep_note();
        CREATE INDEX accounts_note_idx ON zoo.accounts (note);
        -- Storage options the restore pauses autovacuum over, and must put back exactly.
        CREATE TABLE zoo.tuned (id int) WITH (fillfactor = 70, autovacuum_vacuum_scale_factor = 0.01);
        INSERT INTO zoo.tuned SELECT generate_series(1, 100);
        -- Event triggers: one logs every DDL command, one forbids DDL in this database from now on.
        CREATE TABLE zoo.ddl_log (id bigserial PRIMARY KEY, tag text, at timestamptz DEFAULT now());
        CREATE FUNCTION zoo.log_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$
        BEGIN INSERT INTO zoo.ddl_log (tag, at) VALUES (tg_tag, '2025-01-01'); END $$;
        CREATE EVENT TRIGGER zoo_log_ddl ON ddl_command_end EXECUTE FUNCTION zoo.log_ddl();
        CREATE TABLE zoo.after_logging (id int);
        CREATE FUNCTION zoo.freeze_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'DDL is frozen in this database (%)', tg_tag; END $$;
        CREATE EVENT TRIGGER zoo_freeze_ddl ON ddl_command_start EXECUTE FUNCTION zoo.freeze_ddl();
        """#

    /// The schema text of `pg_dump -Fc SOURCE | pg_restore`: the reference.
    static func referenceSchema(_ source: TestDatabase) throws -> String {
        try TestDatabase.with { reference in
            let copy = try Shell.run("/bin/sh", ["-c", #"pg_dump -Fc --no-password -d "$1" | pg_restore --no-password --exit-on-error -d "$2""#, "sh", source.name, reference.name],
                                     environment: try source.settings.childEnvironment)
            #expect(copy.status == 0, "\(copy.stderr)")
            #expect(try DatabaseOracle.tableDigests(reference) == DatabaseOracle.tableDigests(source), "pg_restore keeps every row")
            return try BackupTests.schemaDump(reference)
        }
    }

    @Test func theZooRoundTripsLikePgRestore() throws {
        try TestDatabase.with { source in
            try source.psql(Self.zoo)
            let digests = try DatabaseOracle.tableDigests(source)
            #expect(digests["zoo.no_columns"]?.hasPrefix("p 7 ") == true && digests["zoo.dropped_columns"]?.hasPrefix("p 5 ") == true, "\(digests)")
            let reference = try Self.referenceSchema(source)
            let directory = try BackupTests.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let backup = try BackupTests.backup(source, directory: directory, chunkSize: 4096)
            let verify = try CLI.run(["verify", backup.file])
            #expect(verify.status == 0, "\(verify)")
            let manifest = try ArchiveReader(path: backup.file).manifest
            #expect(manifest.tables.first { $0.name == "no_columns" }.map { $0.columns.isEmpty && $0.rows == 7 } == true)

            try TestDatabase.withUnused { target in
                let restore = try CLI.run(["restore", backup.file, "--target-url", target.url, "--verify"])
                #expect(restore.status == 0 && restore.stdout.contains("verified: every table"), "\(restore)")
                #expect(try DatabaseOracle.tableDigests(target) == digests, "no row lost, and no DDL logged by the restore")
                #expect(try BackupTests.schemaDump(target) == reference)
                #expect(try target.psql("SELECT count(*) FROM pg_event_trigger").contains("2"))
            }
            try TestDatabase.with { stock in
                try BackupTests.restoreWithStockTools(backup.file, into: stock)
                #expect(try DatabaseOracle.tableDigests(stock) == digests)
                #expect(try BackupTests.schemaDump(stock) == reference)
            }
            let drill = try CLI.run(["drill", backup.file, "--database-url", source.url])
            #expect(drill.status == 0 && drill.stdout.contains("PASS  rows and fingerprints"), "\(drill)")
        }
    }

    @Test func anyUserObjectMakesATargetNonEmpty() throws {
        try TestDatabase.withMigrated { source in
            let directory = try BackupTests.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let backup = try BackupTests.backup(source, directory: directory)
            try TestDatabase.with { target in
                // What a pre-data failure leaves: schemas, types and functions, no relation.
                try target.psql("CREATE SCHEMA audit; CREATE TYPE public.mood AS ENUM ('a'); CREATE FUNCTION public.f() RETURNS int LANGUAGE sql RETURN 1;")
                let refused = try CLI.run(["restore", backup.file, "--target-url", target.url])
                #expect(refused.status == 1 && refused.stderr.contains("already holds 3 objects (function public.f, schema audit, type public.mood)"), "\(refused)")
                let cleaned = try CLI.run(["restore", backup.file, "--target-url", target.url, "--clean", "--yes", "--verify"])
                #expect(cleaned.status == 0, "\(cleaned)")
                #expect(try DatabaseOracle.tableDigests(target) == DatabaseOracle.tableDigests(source))
            }
        }
    }
}
