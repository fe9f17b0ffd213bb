import Foundation
import Testing
import TestSupport
@testable import RackGatewayDB

/// `restore ARCHIVE --table ... [--schema ...] [--into-schema NEW]`: the selected tables in one
/// transaction into a database that holds anything else, the copy-back SQL that brings deleted rows
/// back, the refusals (nothing changed), and the bytes read (only the tables' members).
@Suite("restore --table")
struct TableRestoreTests {
    /// The production fixture's tables that reference users: the nine whose rows a user's delete
    /// takes with it (ON DELETE CASCADE, users itself included) and the two whose column it clears
    /// (ON DELETE SET NULL).
    static let cascading = ["public.users", "public.user_sessions", "public.api_tokens", "public.user_resources", "public.mfa_methods",
                            "public.mfa_backup_codes", "public.mfa_attempts", "public.used_totp_steps", "public.trusted_devices"]
    static let settingNull = ["public.settings", "public.deploy_approval_requests"]

    struct DiffReport: Decodable {
        struct Table: Decodable {
            var table: String
            var status: String
            var added: Int?
            var removed: Int?
            var changed: Int?
            var rows: [Row]?
        }
        struct Row: Decodable {
            var change: String
            var key: [String: String?]?
        }
        var equal: Bool
        var tables: [Table]
    }

    struct Report: Decodable {
        struct Table: Decodable {
            var table: String
            var restoredAs: String
            var rows: Int
        }
        var mode: String
        var intoSchema: String?
        var tables: [Table]
        var sequences: [String]
        var leftOut: [String]
        var bytesRead: Int
        var archiveBytes: Int
        var copyBackSql: String?
    }

    static func environment(major: Int) throws -> [String: String] { ["RGW_PG_BIN_DIR": try TestCluster.binDirectory(major: major)] }

    /// Everything in `database` but schema `excluded`, as pg_dump (of PostgreSQL `major`) writes it: the
    /// schema and every row.
    static func dump(_ database: TestDatabase, excluding excluded: String, major: Int) throws -> String {
        let text = try Shell.runChecked(try TestCluster.binDirectory(major: major) + "/pg_dump", ["--no-password", "--exclude-schema", excluded],
                                        environment: try database.settings.childEnvironment)
        return text.split(separator: "\n").filter { !$0.hasPrefix("\\restrict") && !$0.hasPrefix("\\unrestrict") }.joined(separator: "\n")
    }

    static func archive(in directory: String, suffix: String = ".sql.gz") throws -> String {
        directory + "/" + (try #require(try FileManager.default.contentsOfDirectory(atPath: directory).first { $0.hasSuffix(suffix) }))
    }

    /// The done-when of issue 31's item 2, on the production-shaped fixture: 60 users deleted with
    /// their cascades; `restore --table` of the user tables `--into-schema recovered` into the live
    /// database, touching nothing outside it; the printed copy-back SQL run with psql; every table's
    /// md5 is the source's again, and `diff --rows` names exactly the deleted rows before and none
    /// after. On 15 the nine cascading tables and the two whose column the delete cleared (their
    /// ON DELETE SET NULL repaired, through the triggers of one of them); on 18, smaller, the nine
    /// only: the SQL then says which cleared columns it does not repair.
    @Test(arguments: [15, 18])
    func sixtyDeletedUsersComeBackThroughTheCopyBackSQL(major: Int) throws {
        let env = try Self.environment(major: major)
        let cluster = major == 15 ? try TestCluster.shared() : try TestCluster.version(major)
        let restored = major == 15 ? Self.cascading + Self.settingNull : Self.cascading
        try TestDatabase.with(on: cluster) { live in
            try ProductionFixture.build(live, events: major == 15 ? 1200 : 300)
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let backup = try CLI.run(["backup", "--database-url", live.url, "--dir", directory], environment: env)
            #expect(backup.status == 0, "\(backup)")
            let archive = try Self.archive(in: directory)
            let source = try DatabaseOracle.tableDigests(live)
            let sourceSequences = try DatabaseOracle.sequenceStates(live)

            // The 60 users that the most rows point at, and what their delete takes with it.
            let users = try live.psql("""
                SELECT string_agg(id::text, ',') FROM (SELECT u.id FROM users u ORDER BY
                    (SELECT count(*) FROM deploy_approval_requests d WHERE u.id IN (d.created_by_user_id, d.approved_by_user_id))
                  + (SELECT count(*) FROM settings s WHERE s.updated_by_user_id = u.id)
                  + (SELECT count(*) FROM user_sessions s WHERE s.user_id = u.id) DESC, u.id LIMIT 60) chosen
                """).trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(users.split(separator: ",").count == 60)
            var expectedRemoved: [String: Int] = [:]
            for table in Self.cascading {
                let column = table == "public.users" ? "id" : "user_id"
                expectedRemoved[table] = Int(try live.psql("SELECT count(*) FROM \(table) WHERE \(column) IN (\(users))").trimmingCharacters(in: .whitespacesAndNewlines))
            }
            // An attempt of another user with a deleted user's method: its method_id is cleared (SET NULL).
            let attemptsCleared = Int(try live.psql("""
                SELECT count(*) FROM mfa_attempts a JOIN mfa_methods m ON m.id = a.method_id WHERE m.user_id IN (\(users)) AND a.user_id NOT IN (\(users))
                """).trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
            let cleared = Int(try live.psql("""
                SELECT count(*) FROM deploy_approval_requests WHERE created_by_user_id IN (\(users)) OR approved_by_user_id IN (\(users))
                """).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
            #expect(cleared > 0 && (expectedRemoved["public.user_sessions"] ?? 0) > 0, "the delete clears approvals' columns and takes sessions: \(expectedRemoved), \(cleared)")
            try live.psql("DELETE FROM users WHERE id IN (\(users))")

            let restoredArguments = restored.flatMap { ["--table", $0] }
            let before = try CLI.run(["diff", archive, "--database-url", live.url, "--rows", "--json"] + restoredArguments, environment: env)
            #expect(before.status == 2, "\(before)")
            let beforeReport = try CLI.decode(DiffReport.self, before.stdout)
            for table in Self.cascading {
                let verdict = try #require(beforeReport.tables.first { $0.table == table })
                let changed = table == "public.mfa_attempts" ? attemptsCleared : 0
                #expect(verdict.removed == expectedRemoved[table] && verdict.added == 0 && verdict.changed == changed,
                        "\(table): removed \(verdict.removed ?? -1) of \(expectedRemoved[table] ?? -1), added \(verdict.added ?? -1), changed \(verdict.changed ?? -1) of \(changed)")
            }
            let removedUsers = Set(try #require(beforeReport.tables.first { $0.table == "public.users" }).rows?.compactMap { $0.key?["id"] ?? nil } ?? [])
            #expect(removedUsers == Set(users.split(separator: ",").map(String.init)), "diff names exactly the deleted users")
            if major == 15 {
                #expect(beforeReport.tables.first { $0.table == "public.deploy_approval_requests" }?.changed == cleared)
            }

            // Everything outside the new schema, before and after the restore: untouched.
            let outside = try Self.dump(live, excluding: "recovered", major: major)
            let sqlFile = directory + "/copy-back.sql"
            let restore = try CLI.run(["restore", archive, "--into-schema", "recovered", "--target-url", live.url, "--copy-back-sql", sqlFile, "--json"]
                                      + restoredArguments, environment: env)
            #expect(restore.status == 0, "\(restore)")
            let report = try CLI.decode(Report.self, restore.stdout)
            #expect(report.mode == "table" && report.intoSchema == "recovered" && report.tables.count == restored.count)
            #expect(report.tables.first { $0.table == "public.users" }?.restoredAs == "recovered.users")
            #expect(report.sequences.contains("recovered.users_id_seq"))
            #expect(try Self.dump(live, excluding: "recovered", major: major) == outside, "nothing outside schema recovered changed")
            // The restored tables hold the archive's rows, and their sequences its values.
            let digests = try DatabaseOracle.tableDigests(live)
            for table in restored {
                let name = String(table.dropFirst("public.".count))
                #expect(digests["recovered.\(name)"] == source[table], "recovered.\(name)")
            }
            #expect(try DatabaseOracle.sequenceStates(live)["recovered.users_id_seq"] == sourceSequences["public.users_id_seq"])
            #expect(try FileManager.default.attributesOfItem(atPath: sqlFile)[.posixPermissions] as? Int == 0o600)
            let sql = try String(contentsOfFile: sqlFile, encoding: .utf8)
            #expect(sql == report.copyBackSql)
            // Parents first.
            let users_ = try #require(sql.range(of: "INSERT INTO public.users ")), sessions = try #require(sql.range(of: "INSERT INTO public.user_sessions "))
            let methods = try #require(sql.range(of: "INSERT INTO public.mfa_methods ")), attempts = try #require(sql.range(of: "INSERT INTO public.mfa_attempts "))
            #expect(users_.lowerBound < sessions.lowerBound && methods.lowerBound < attempts.lowerBound)
            if major != 15 {
                #expect(sql.contains("-- public.settings (updated_by_user_id) references public.users ON DELETE SET NULL and was not restored"), "\(sql)")
            }

            _ = try Shell.runChecked("psql", ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", sqlFile], environment: try live.settings.childEnvironment)
            let after = try DatabaseOracle.tableDigests(live)
            for table in restored { #expect(after[table] == source[table], "\(table) is the source's again") }
            let diff = try CLI.run(["diff", archive, "--database-url", live.url, "--rows"] + restoredArguments, environment: env)
            #expect(diff.status == 0 && diff.stdout.contains("EQUAL"), "\(diff)")
            // The live sequences are not behind the ids copied back.
            let behind = try live.psql("SELECT count(*) FROM users WHERE id > (SELECT last_value FROM users_id_seq)").trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(behind == "0")
        }
    }
}
