import Foundation
import RGWCompression
import Logging
import RackGatewayDB

/// Archives for tests: a scratch directory, a backup, the stock-tools restore, schema dumps and the
/// fingerprint comparison that every round-trip test makes.
public enum TestArchives {
    public static func temporaryDirectory() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("rgw-bk-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// Writes an executable script. Foundation's `write(toFile:)` opens the file without close-on-exec, so a
    /// child that another test thread starts meanwhile (a server, psql) keeps it open for writing, and
    /// running the script then fails with "Text file busy" (ETXTBSY). Here the descriptor is close-on-exec.
    public static func writeExecutable(_ text: String, to path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o755)
        guard fd >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        defer { close(fd) }
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
            bytes = bytes.dropFirst(written)
        }
        fchmod(fd, 0o755)
    }

    public static func backup(_ database: TestDatabase, directory: String, jobs: Int = 2, chunkSize: Int = 8 << 20,
                              lockTimeout: Int = 10_000, codec: MemberCodec = .gzip, keys: BackupKeys = BackupKeys()) throws -> BackupReport {
        var options = BackupOptions(store: LocalStore(directory: directory), jobs: jobs, compressors: 2)
        options.keys = keys
        options.codec = codec
        options.compressionLevel = codec.defaultLevel
        options.chunkSize = chunkSize
        options.lockTimeoutMilliseconds = lockTimeout
        return try BackupRunner(settings: try database.settings, options: options, logger: .quiet).run()
    }

    /// `gunzip -c FILE | psql -v ON_ERROR_STOP=1 --single-transaction` (`zstd -dc` for a `.sql.zst`;
    /// `age -d -i IDENTITY FILE |` first for an `.age`) into `target`: stock tools only; throws with
    /// psql's error when it fails.
    public static func restoreWithStockTools(_ file: String, into target: TestDatabase, identity: String? = nil) throws {
        let plain = ArchiveName.isEncrypted(file) ? String(file.dropLast(ArchiveName.ageSuffix.count)) : file
        let decompress = plain.hasSuffix(ArchiveName.zstdSuffix) ? "zstd -q -dc" : "gunzip -c"
        let source = ArchiveName.isEncrypted(file) ? "age -d -i \"$2\" \"$1\" | \(decompress)" : "\(decompress) \"$1\""
        _ = try Shell.runChecked("/bin/bash", ["-c", "set -o pipefail; \(source) | psql -X -q -v ON_ERROR_STOP=1 --single-transaction -o /dev/null", "sh", file, identity ?? ""],
                                 environment: try target.settings.childEnvironment)
    }

    /// `pg_dump --schema-only` of `database`, without the per-run `\restrict` keys.
    public static func schemaDump(_ database: TestDatabase) throws -> String {
        let text = try Shell.runChecked("pg_dump", ["--schema-only", "--no-password"], environment: try database.settings.childEnvironment)
        return text.split(separator: "\n").filter { !$0.hasPrefix("\\restrict") && !$0.hasPrefix("\\unrestrict") }.joined(separator: "\n")
    }

    /// The tables of `manifest` whose rows or fingerprint, recomputed in `database`, differ; empty when all match.
    public static func fingerprintMismatches(_ manifest: ArchiveManifest, in database: TestDatabase) throws -> [String] {
        let connection = try database.connect()
        try LiveFingerprint.prepare(connection)
        var problems: [String] = []
        for table in manifest.tables {
            let live = try LiveFingerprint.compute(connection, schema: table.schema, table: table.name, columns: table.columns)
            if live.rows != table.rows { problems.append("\(table.qualifiedName): \(live.rows) rows, manifest \(table.rows)") }
            if live.fingerprint != table.fingerprint { problems.append("\(table.qualifiedName): fingerprint \(live.fingerprint), manifest \(table.fingerprint)") }
        }
        return problems
    }

    /// Run samples/generate-sample-data with `events` audit events on the database at `url`; throws
    /// with its output when it fails.
    public static func generateSampleData(url: String, events: Int) throws {
        _ = try Shell.runChecked(sampleDataScript, ["--events", String(events)], environment: ["RGW_DATABASE_URL": url])
    }

    /// samples/generate-sample-data.
    public static var sampleDataScript: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("samples/generate-sample-data").path
    }
}

extension TestDatabase {
    /// A migrated database filled by samples/generate-sample-data with `events` audit events.
    public static func withSampleData<R>(events: Int, _ body: (TestDatabase) throws -> R) throws -> R {
        try withMigrated { database in
            try database.generateSampleData(events: events)
            return try body(database)
        }
    }

    /// Run samples/generate-sample-data on this database.
    public func generateSampleData(events: Int) throws {
        try TestArchives.generateSampleData(url: url, events: events)
    }
}


extension TestArchives {
    /// Rewrites `file` with `body` applied to its bytes, and a sidecar that matches the result (so
    /// only the load itself can notice).
    public static func tamper(_ file: String, sidecarToo: Bool, _ body: (inout Data) throws -> Void) throws {
        var data = try Data(contentsOf: URL(fileURLWithPath: file))
        try body(&data)
        try data.write(to: URL(fileURLWithPath: file))
        if sidecarToo {
            let digest = SHA256()
            digest.update([UInt8](data))
            try "\(SHA256.hex(digest.finalize()))  \(URL(fileURLWithPath: file).lastPathComponent)\n"
                .write(toFile: file + ".sha256", atomically: true, encoding: .utf8)
        }
    }

    public static let featureSchema = #"""
        CREATE SCHEMA feat;
        CREATE TYPE feat.mood AS ENUM ('sad', 'ok', 'happy');
        CREATE DOMAIN feat.positive AS integer CHECK (VALUE > 0);
        CREATE TABLE feat.items (
            id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            label text,
            price numeric(12, 4),
            qty feat.positive,
            total numeric GENERATED ALWAYS AS (price * qty) STORED,
            tags text[],
            doc jsonb,
            blob bytea,
            at timestamptz,
            span interval,
            mood feat.mood,
            ratio double precision,
            addr inet
        );
        COMMENT ON TABLE feat.items IS 'items with every kind of value';
        COMMENT ON COLUMN feat.items.label IS 'NULL and empty differ';
        INSERT INTO feat.items (label, price, qty, tags, doc, blob, at, span, mood, ratio, addr) VALUES
            (NULL, 1.5, 2, ARRAY['a', 'b c', NULL], '{"k": [1, 2, {"x": null}]}', '\x00ff10', '2025-03-01 12:00:00.123456+02', '1 year 2 mons 3 days 04:05:06.7', 'happy', 0.1, '10.0.0.1'),
            ('', 0.0001, 1, '{}', '"str"', '', '-infinity', '-1 day', 'sad', 'NaN', '::1'),
            (E'tab\there\nnewline \\ backslash', 99999999.9999, 3, ARRAY['ünï', '日本'], 'null', NULL, 'infinity', '0', 'ok', 1e300, NULL),
            (E'quote '' and "double" and \\N', 3, 4, NULL, '{"emoji": "🚀"}', '\x5c2e0a', now(), NULL, NULL, -0.0, '192.168.1.0/24');
        CREATE TABLE feat."MixedCase Table" ("Weird ""Col""" text, "select" int);
        INSERT INTO feat."MixedCase Table" VALUES ('a', 1), (NULL, NULL), ('\.', 3);
        CREATE TABLE feat.measurements (id bigserial, at date NOT NULL, value real, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
        CREATE TABLE feat.measurements_2025 PARTITION OF feat.measurements FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
        CREATE TABLE feat.measurements_2026 PARTITION OF feat.measurements FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
        INSERT INTO feat.measurements (at, value) SELECT DATE '2025-06-01' + i, i * 1.5 FROM generate_series(1, 400) i;
        CREATE UNLOGGED TABLE feat.scratch (k text PRIMARY KEY, v text) WITH (autovacuum_enabled = false, fillfactor = 90);
        INSERT INTO feat.scratch SELECT 'k' || i, repeat('v', i % 50) FROM generate_series(1, 300) i;
        CREATE TABLE feat.parent (id int PRIMARY KEY);
        CREATE TABLE feat.child (id int PRIMARY KEY, parent_id int REFERENCES feat.parent (id) ON DELETE CASCADE);
        INSERT INTO feat.parent SELECT generate_series(1, 50);
        INSERT INTO feat.child SELECT i, i % 50 + 1 FROM generate_series(1, 200) i;
        CREATE VIEW feat.item_labels AS SELECT id, coalesce(label, '(none)') AS label FROM feat.items;
        CREATE MATERIALIZED VIEW feat.item_totals AS SELECT mood, count(*) AS n FROM feat.items GROUP BY mood;
        CREATE FUNCTION feat.touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.label := coalesce(NEW.label, 'x'); RETURN NEW; END $$;
        CREATE TRIGGER items_touch BEFORE UPDATE ON feat.items FOR EACH ROW EXECUTE FUNCTION feat.touch();
        ALTER TABLE feat.child ENABLE ROW LEVEL SECURITY;
        DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'feat_reader') THEN CREATE ROLE feat_reader NOLOGIN; END IF; END $$;
        CREATE POLICY child_read ON feat.child FOR SELECT TO feat_reader USING (parent_id < 10);
        GRANT USAGE ON SCHEMA feat TO feat_reader;
        GRANT SELECT ON feat.child, feat.item_labels TO feat_reader;
        CREATE INDEX items_doc_idx ON feat.items USING gin (doc);
        CREATE SEQUENCE feat.counter START 100 INCREMENT 5;
        SELECT nextval('feat.counter'), nextval('feat.counter');
        CREATE TABLE feat.empty_table (id int);
        """#
}
