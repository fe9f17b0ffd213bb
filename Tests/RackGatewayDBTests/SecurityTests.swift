import Foundation
import RGWPostgres
import RackGatewayDB
import Testing
import TestSupport

/// Secrets stay secret, files are private, and catalog names are quoted everywhere.
@Suite("security")
struct SecurityTests {
    @Test func thePasswordAppearsNowhereAndEveryFileIsPrivate() throws {
        let cluster = try TestCluster.shared()
        let secret = "S3cr3t-\(UUID().uuidString.prefix(12))"
        let role = "rgw_sec_\(UUID().uuidString.prefix(6).lowercased())"
        let admin = try Connection(settings: try cluster.adminSettings)
        try admin.execute("CREATE ROLE \(role) LOGIN SUPERUSER PASSWORD \(SQL.literal(secret))")
        defer { _ = try? admin.execute("DROP ROLE IF EXISTS \(role)") }
        try TestDatabase.withMigrated { source in
            try source.psql("INSERT INTO users (email) SELECT 'u' || i || '@example.com' FROM generate_series(1, 300) i")
            let url = cluster.url(database: source.name, user: role, password: secret)
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let (bin, argv) = try Self.wrapClientPrograms(in: directory)
            let archives = directory + "/archives"
            let environment = ["RGW_DATABASE_URL": url, "RGW_PG_BIN_DIR": bin, "RGW_LOG_LEVEL": "debug"]
            var outputs: [String] = []
            func run(_ arguments: [String], expect status: Int32 = 0) throws {
                let result = try CLI.run(arguments, environment: environment)
                #expect(result.status == status, "\(arguments): \(result)")
                outputs.append(result.output)
            }
            try run(["backup", "--dir", archives, "--json", "--metrics-file", directory + "/backup.prom"])
            let archive = try #require(try FileManager.default.contentsOfDirectory(atPath: archives).first { $0.hasSuffix(".sql.gz") })
            try run(["verify", archives + "/" + archive, "--json"])
            try run(["list", "--dir", archives, "--json"])
            try run(["drill", "--latest", "--dir", archives, "--json", "--metrics-file", directory + "/drill.prom"])
            try run(["check", "--dir", archives, "--max-backup-age", "26h", "--metrics-file", directory + "/check.prom", "--json"])
            try run(["status", "--json"])
            try TestDatabase.withUnused { target in
                try run(["restore", archives + "/" + archive, "--target-url", cluster.url(database: target.name, user: role, password: secret), "--json"])
            }
            // psql and pg_restore children: a plain and a custom-format pg_dump restored.
            let plain = directory + "/plain.sql", custom = directory + "/custom.dump"
            _ = try Shell.runChecked("pg_dump", ["-f", plain], environment: try source.settings.childEnvironment)
            _ = try Shell.runChecked("pg_dump", ["-Fc", "-f", custom], environment: try source.settings.childEnvironment)
            for dump in [plain, custom] {
                try TestDatabase.withUnused { target in
                    try run(["restore", dump, "--target-url", cluster.url(database: target.name, user: role, password: secret)])
                }
            }
            // A wrong password is not echoed either.
            let wrong = "Wr0ng-\(UUID().uuidString.prefix(12))"
            let refused = try CLI.run(["backup", "--dir", archives], environment: ["RGW_DATABASE_URL": cluster.url(database: source.name, user: role, password: wrong)])
            #expect(refused.status == 1 && refused.stderr.contains("password"), "\(refused)")
            #expect(!refused.output.contains(wrong))

            try Self.expectNoSecret(secret, outputs: outputs, argvLog: argv,
                                    files: [directory + "/backup.prom", directory + "/drill.prom", directory + "/check.prom"], archives: archives)
        }
    }

    /// Issue 19: the age identity and the minisign secret key appear in no output (debug logs and
    /// JSON included), no child's argv, no metrics file and no file beside the archives; every file
    /// the tool writes there is 0600.
    @Test func theSecretKeysAppearNowhere() throws {
        try TestDatabase.withSampleData(events: 1000) { source in
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let (bin, argv) = try Self.wrapClientPrograms(in: directory)
            let keys = try TestKeys.make()
            defer { try? FileManager.default.removeItem(atPath: keys.directory) }
            let (identity, signKey, publicKey, recipient) = (keys.identity, keys.signKey, keys.publicKeyFile, keys.recipient)
            let secrets = keys.secrets
            let archives = directory + "/archives", rekeyed = directory + "/rekeyed"
            let environment = ["RGW_DATABASE_URL": source.url, "RGW_PG_BIN_DIR": bin, "RGW_LOG_LEVEL": "debug",
                               "RGW_AGE_IDENTITY_FILE": identity, "RGW_VERIFY_KEY": publicKey, "RGW_SIGN_KEY_FILE": signKey]
            var outputs: [String] = []
            func run(_ arguments: [String]) throws {
                let result = try CLI.run(arguments, environment: environment)
                #expect(result.status == 0, "\(arguments): \(result)")
                outputs.append(result.output)
            }
            try run(["backup", "--dir", archives, "--recipient", recipient, "--json", "--metrics-file", directory + "/backup.prom"])
            let archive = try #require(try FileManager.default.contentsOfDirectory(atPath: archives).first { $0.hasSuffix(".age") })
            try run(["verify", archives + "/" + archive, "--json"])
            try run(["list", "--dir", archives, "--json"])
            try run(["drill", "--latest", "--dir", archives, "--json", "--metrics-file", directory + "/drill.prom"])
            try run(["rekey", archives + "/" + archive, "--recipient", recipient, "--to", rekeyed, "--json"])
            try TestDatabase.withUnused { target in
                try run(["restore", archives + "/" + archive, "--target-url", target.url, "--json"])
            }
            var texts = outputs + [try String(contentsOfFile: argv, encoding: .utf8)]
            for folder in [archives, rekeyed] {
                for name in try FileManager.default.contentsOfDirectory(atPath: folder) where !name.hasPrefix(".") {
                    let path = folder + "/" + name
                    texts.append(try String(contentsOfFile: path, encoding: .isoLatin1))
                    #expect(try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int == 0o600, "\(path)")
                }
            }
            for file in [directory + "/backup.prom", directory + "/drill.prom"] { texts.append(try String(contentsOfFile: file, encoding: .utf8)) }
            for (index, text) in texts.enumerated() {
                for secret in secrets { #expect(!text.contains(secret) && !text.contains(secret.prefix(32)), "a secret key leaked into text \(index)") }
            }
        }
    }

    /// `pg_dump`, `psql` and `pg_restore` in `directory/bin`, each recording its argv in
    /// `directory/argv.log` before it runs the real one (for `RGW_PG_BIN_DIR`).
    static func wrapClientPrograms(in directory: String) throws -> (bin: String, argvLog: String) {
        let bin = directory + "/bin", argv = directory + "/argv.log"
        try FileManager.default.createDirectory(atPath: bin, withIntermediateDirectories: true)
        for tool in ["pg_dump", "psql", "pg_restore"] {
            let real = try Shell.runChecked("/bin/sh", ["-c", "command -v \(tool)"]).trimmingCharacters(in: .whitespacesAndNewlines)
            try TestArchives.writeExecutable("#!/bin/sh\necho \"\(tool) $*\" >> \(argv)\nexec \(real) \"$@\"\n", to: bin + "/" + tool)
        }
        return (bin, argv)
    }

    /// Every output, the children's argv, and every file (metrics, archives, sidecars, logs) free
    /// of `secret`; every file mode 0600 but the metrics files, 0644 (they hold no secret, and
    /// node_exporter reads them as its own user).
    static func expectNoSecret(_ secret: String, outputs: [String], argvLog: String, files metrics: [String], archives: String) throws {
        let listing = try FileManager.default.contentsOfDirectory(atPath: archives)
        var files = metrics
        for name in listing where !name.hasPrefix(".") { files.append(archives + "/" + name) }
        let logged = try String(contentsOfFile: argvLog, encoding: .utf8)
        #expect(logged.contains("pg_dump") && logged.contains("psql") && logged.contains("pg_restore"), "every child ran: \(logged)")
        var texts = outputs
        texts.append(logged)
        for file in files { texts.append(try String(contentsOfFile: file, encoding: .isoLatin1)) }
        let encoded = secret.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? secret
        for (index, text) in texts.enumerated() {
            #expect(!text.contains(secret) && !text.contains(encoded), "the password leaked into text \(index)")
        }
        let names = Set(listing)
        #expect(names.contains("drills.jsonl") && names.contains("verifications.jsonl") && names.contains { $0.hasSuffix(".sha256") }, "\(listing)")
        #expect(files.count == metrics.count + listing.count - 1, "\(files)")
        for file in files {
            let mode = try FileManager.default.attributesOfItem(atPath: file)[.posixPermissions] as? Int
            #expect(mode == (metrics.contains(file) ? 0o644 : 0o600), "\(file) is mode \(String(mode ?? 0, radix: 8))")
        }
    }

    @Test func aMisspelledGuardTriggersNothing() throws {
        try TestDatabase.withMigrated { database in
            try database.psql("INSERT INTO users (email) VALUES ('keep@example.com'); INSERT INTO rgw_internal_metadata (environment) VALUES ('production')")
            let base = ["RGW_DATABASE_URL": database.url]
            let attempts: [[String: String]] = [
                ["RESET_RACK_GATEWAY_DATABASE": "delete_all_data", "DISABLE_DATABASE_ENVIRONMENT_CHECK": "1"],
                ["RESET_RACK_GATEWAY_DATABASE": "DELETE_ALL_DATA ", "DISABLE_DATABASE_ENVIRONMENT_CHECK": "1"],
                ["RESET_RACK_GATEWAY_DATABASE": "DELETE-ALL-DATA", "DISABLE_DATABASE_ENVIRONMENT_CHECK": "1"],
                ["RESET_RACK_GATEWAY_DB": "DELETE_ALL_DATA", "DISABLE_DATABASE_ENVIRONMENT_CHECK": "1"],
                ["RESET_RACK_GATEWAY_DATABASE": "DELETE_ALL_DATA", "DISABLE_DATABASE_ENVIRONMENT_CHECK": "true"],
                ["RESET_RACK_GATEWAY_DATABASE": "DELETE_ALL_DATA", "DISABLE_DATABASE_ENVIRONMENT_CHECKS": "1"],
                ["RESET_RACK_GATEWAY_DATABASE": "DELETE_ALL_DATA", "DEV_MODE": "true"],
            ]
            for guards in attempts {
                let reset = try CLI.run(["reset-db"], environment: base.merging(guards) { $1 })
                #expect(reset.status == 1 && reset.stderr.contains("refused"), "\(guards): \(reset)")
            }
            #expect(try database.psql("SELECT email FROM users").contains("keep@example.com"))
            // --clean takes its confirmation from --yes exactly: anything else is a usage error.
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let archive = try TestArchives.backup(database, directory: directory).file
            for confirmation in ["--yess", "--Yes", "-yes", "--yes=true"] {
                let clean = try CLI.run(["restore", archive, "--target-url", database.url, "--clean", confirmation])
                #expect(clean.status == 64, "\(confirmation): \(clean)")
            }
            let unconfirmed = try CLI.run(["restore", archive, "--target-url", database.url, "--clean"], stdin: Array("y\n".utf8))
            #expect(unconfirmed.status == 1 && unconfirmed.stderr.contains("not confirmed"), "no terminal, no --yes: \(unconfirmed)")
            #expect(try database.psql("SELECT email FROM users").contains("keep@example.com"))
        }
    }

    @Test func namesWithQuotesSemicolonsAndSpacesRoundTrip() throws {
        try TestDatabase.with { source in
            try source.psql(#"""
                CREATE SCHEMA "Sch ""ema; x";
                CREATE TABLE "Sch ""ema; x"."we""ird; DROP TABLE t; --" (id serial PRIMARY KEY, "co;l ""x""" text, "select" int);
                INSERT INTO "Sch ""ema; x"."we""ird; DROP TABLE t; --" ("co;l ""x""", "select") SELECT 'v' || i || E'\t"q"; x', i FROM generate_series(1, 500) i;
                CREATE INDEX "ix ""odd""" ON "Sch ""ema; x"."we""ird; DROP TABLE t; --" ("co;l ""x""");
                CREATE TABLE t (id int);
                """#)
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let report = try TestArchives.backup(source, directory: directory, chunkSize: 4096)
            #expect(try ArchiveVerifier().verify(path: report.file).ok)
            let manifest = try ArchiveReader(path: report.file).manifest
            #expect(manifest.tables.contains { $0.name == #"we"ird; DROP TABLE t; --"# && $0.schema == #"Sch "ema; x"# && $0.rows == 500 })
            try TestDatabase.withUnused { target in
                let restore = try CLI.run(["restore", report.file, "--target-url", target.url, "--verify"])
                #expect(restore.status == 0 && restore.stdout.contains("verified"), "\(restore)")
                #expect(try target.psql("SELECT count(*) FROM t").trimmingCharacters(in: .whitespacesAndNewlines) == "0", "t is still there")
            }
            try TestDatabase.with { restored in
                try TestArchives.restoreWithStockTools(report.file, into: restored)
                #expect(try TestArchives.fingerprintMismatches(manifest, in: restored) == [])
            }
            let drill = try CLI.run(["drill", report.file, "--database-url", source.url])
            #expect(drill.status == 0, "\(drill)")
        }
    }
}
