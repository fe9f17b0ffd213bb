import Foundation
import Testing
import TestSupport
@testable import RackGatewayDB
import RGWCrypto

/// Issue 29, items 5, 9 and 12: names as `list` prints them work in restore, verify, drill and
/// rekey; `verify --latest`; `list`'s header row and drill marks; typos in `--dir` or
/// `RGW_BACKUP_DIR` named as given, with the locations near them that hold archives; counts in the
/// singular for one; a person answering no to a question is told so plainly.
@Suite("archive names, list and typos")
struct ArchiveNameTests {
    static func name(_ report: BackupReport) -> String { URL(fileURLWithPath: report.file).lastPathComponent }

    /// Two archives a second apart in `directory`, oldest first.
    static func twoArchives(_ database: TestDatabase, directory: String) throws -> (older: String, newer: String) {
        let older = try TestArchives.backup(database, directory: directory)
        Thread.sleep(forTimeInterval: 1.1)  // a new archive name
        let newer = try TestArchives.backup(database, directory: directory)
        return (name(older), name(newer))
    }

    @Test func aBareNameResolvesAgainstRGWBackupDirOrDirInVerifyRestoreAndDrill() throws {
        try TestDatabase.withMigrated { database in
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let (older, newer) = try Self.twoArchives(database, directory: directory)
            #expect(!FileManager.default.fileExists(atPath: newer), "the test runs where the archive is not")
            let fromEnvironment = ["RGW_BACKUP_DIR": directory]

            let listed = try CLI.run(["list"], environment: fromEnvironment)
            #expect(listed.status == 0 && listed.stdout.contains(newer), "\(listed)")
            let verify = try CLI.run(["verify", newer], environment: fromEnvironment)
            #expect(verify.status == 0 && verify.stdout.hasPrefix("OK \(directory)/\(newer)"), "\(verify)")
            let verifyDir = try CLI.run(["verify", older, "--dir", directory])
            #expect(verifyDir.status == 0 && verifyDir.stdout.hasPrefix("OK \(directory)/\(older)"), "\(verifyDir)")

            let drill = try CLI.run(["drill", older, "--database-url", database.url], environment: fromEnvironment)
            #expect(drill.status == 0 && drill.stdout.contains("Drill of \(directory)/\(older)"), "\(drill)")
            #expect(try String(contentsOfFile: directory + "/drills.jsonl", encoding: .utf8).contains(older), "logged beside the archive")
            try TestDatabase.withUnused { target in
                let restore = try CLI.run(["restore", newer, "--dir", directory, "--target-url", target.url, "--verify"])
                #expect(restore.status == 0 && restore.stdout.contains("verified: every table"), "\(restore)")
            }

            // A path with --dir is still refused (--dir would be ignored); a bare name with it is not.
            let path = try CLI.run(["verify", directory + "/" + newer, "--dir", directory])
            #expect(path.status == 64 && path.stderr.contains("with an archive path it does not apply"), "\(path)")

            // Found nowhere: where it looked (and where that came from), and the close names there.
            let typo = String(newer.dropLast(".gz".count))
            let missing = try CLI.run(["verify", typo], environment: fromEnvironment)
            #expect(missing.status == 1, "\(missing)")
            #expect(missing.stderr.contains("no archive named \(typo)") && missing.stderr.contains("the current directory (")
                    && missing.stderr.contains("\(directory) (from RGW_BACKUP_DIR)"), "\(missing)")
            #expect(missing.stderr.contains("Close matches: \(directory)/\(newer)"), "\(missing)")
            #expect(!missing.stderr.contains("list shows"), "not circular: \(missing)")
            let missingDir = try CLI.run(["restore", "nothing_like_any_archive", "--dir", directory, "--target-url", database.url])
            #expect(missingDir.status == 1 && missingDir.stderr.contains("\(directory) (from --dir)") && !missingDir.stderr.contains("Close matches"), "\(missingDir)")
            #expect(missingDir.stderr.contains("Give the archive's path, or its name with --dir"), "\(missingDir)")
        }
    }

    @Test func rekeyTakesABareNameFromDir() throws {
        let keys = try TestKeys.make()
        defer { try? FileManager.default.removeItem(atPath: keys.directory) }
        try TestDatabase.withMigrated { source in
            let directory = try TestArchives.temporaryDirectory(), rekeyed = try TestArchives.temporaryDirectory()
            defer { for path in [directory, rekeyed] { try? FileManager.default.removeItem(atPath: path) } }
            let report = try TestArchives.backup(source, directory: directory, keys: BackupKeys(recipients: [try AgeRecipient(keys.recipient)]))
            let name = Self.name(report)
            let rekey = try CLI.run(["rekey", name, "--dir", directory, "--identity", keys.identity, "--recipient", keys.otherRecipient, "--to", rekeyed])
            #expect(rekey.status == 0 && rekey.stdout.hasPrefix("Rekeyed \(directory)/\(name)") && rekey.stdout.contains("for 1 recipient"), "\(rekey)")
            #expect(FileManager.default.fileExists(atPath: rekeyed + "/" + name))
        }
    }

    @Test func aBareNameResolvesInAnS3PrefixAndAnEmptyPrefixNamesTheOnesBesideIt() throws {
        let server = try MotoServer.shared()
        let client = try server.freshBucket()
        try TestDatabase.withMigrated { source in
            let environment = MotoServer.awsEnvironment.merging(["RGW_DATABASE_URL": source.url, "AWS_ENDPOINT_URL_S3": server.endpoint]) { $1 }
            let dir = "s3://\(client.bucket)/nightly"
            #expect(try CLI.run(["backup", "--dir", dir], environment: environment).status == 0)
            let name = try #require(try S3Store(client: client, prefix: "nightly").list().first { $0.name.hasSuffix(".sql.gz") }?.name)

            let verify = try CLI.run(["verify", name], environment: environment.merging(["RGW_BACKUP_DIR": dir]) { $1 })
            #expect(verify.status == 0 && verify.stdout.hasPrefix("OK \(dir)/\(name)"), "\(verify)")

            // Where a value came from, in a usage error too.
            let inPlace = try CLI.run(["restore", "--latest", "--convox-app", "rgw-none", "--in-place"], environment: environment.merging(["RGW_BACKUP_DIR": dir]) { $1 })
            #expect(inPlace.status == 64 && inPlace.stderr.contains("\(dir) (from RGW_BACKUP_DIR) is in S3"), "\(inPlace)")

            // `nighty`: nothing there; restore and drill --latest exit 1 naming what is beside it.
            let typo = ["RGW_BACKUP_DIR": "s3://\(client.bucket)/nighty"]
            let restore = try CLI.run(["restore", "--latest", "--target-url", source.cluster.url(database: "rgw_never_typo")], environment: environment.merging(typo) { $1 })
            #expect(restore.status == 1, "\(restore)")
            #expect(restore.stderr.contains("s3://\(client.bucket)/nighty (from RGW_BACKUP_DIR)") && restore.stderr.contains("\(dir) (1 archive: rack_gateway_backup_*)"), "\(restore)")
            #expect(!restore.stderr.contains("(from --dir)"), "\(restore)")
            let drill = try CLI.run(["drill", "--latest", "--dir", "s3://\(client.bucket)/nighty"], environment: environment)
            #expect(drill.status == 1 && drill.stderr.contains("(from --dir)") && drill.stderr.contains("\(dir) (1 archive"), "\(drill)")
            // list: an empty location is no error (it is also the state before the first backup),
            // but stderr names the archives near it.
            let list = try CLI.run(["list"], environment: environment.merging(typo) { $1 })
            #expect(list.status == 0 && list.stdout.contains("No archives in s3://\(client.bucket)/nighty (from RGW_BACKUP_DIR)"), "\(list)")
            #expect(list.stderr.contains("holds no archives") && list.stderr.contains("\(dir) (1 archive"), "\(list)")
            // The bucket without the prefix: the prefix under it is named.
            let root = try CLI.run(["list", "--dir", "s3://\(client.bucket)"], environment: environment)
            #expect(root.status == 0 && root.stderr.contains("\(dir) (1 archive"), "\(root)")
            // The folder given as the archive (the trial's `restore s3://b/nightly`): said so, with --latest --dir for it.
            let folder = try CLI.run(["verify", dir], environment: environment)
            #expect(folder.status == 1 && folder.stderr.contains("\(dir) is a folder of archives (1 archive), not an archive")
                    && folder.stderr.contains("--latest --dir \(dir)"), "\(folder)")
            // An endpoint with a path (the trial's AWS_ENDPOINT_URL_S3=http://host:port/nightly): the path is named.
            let pathed = try CLI.run(["list", "--dir", dir], environment: environment.merging(["AWS_ENDPOINT_URL_S3": server.endpoint + "/nightly"]) { $1 })
            #expect(pathed.status == 1 && pathed.stderr.contains("The S3 endpoint has a path (/nightly)"), "\(pathed)")
        }
    }

    @Test func aLocalTypoNamesTheDirectoriesBesideItAndWhereTheValueCameFrom() throws {
        try TestDatabase.withMigrated { database in
            let parent = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: parent) }
            let nightly = parent + "/nightly"
            let made = try TestArchives.backup(database, directory: nightly)
            let typo = parent + "/nighty"

            let missing = try CLI.run(["restore", "--latest", "--target-url", database.cluster.url(database: "rgw_never_typo")], environment: ["RGW_BACKUP_DIR": typo])
            #expect(missing.status == 1, "\(missing)")
            #expect(missing.stderr.contains("\(typo) (from RGW_BACKUP_DIR) does not exist") && !missing.stderr.contains("(from --dir)"), "\(missing)")
            #expect(missing.stderr.contains("\(nightly) (1 archive: rack_gateway_backup_*)") && missing.stderr.contains("Set RGW_BACKUP_DIR"), "\(missing)")

            try FileManager.default.createDirectory(atPath: typo, withIntermediateDirectories: true)
            let drill = try CLI.run(["drill", "--latest", "--dir", typo, "--database-url", database.url])
            #expect(drill.status == 1 && drill.stderr.contains("no archive in \(typo) (from --dir)") && drill.stderr.contains(nightly + " (1 archive"), "\(drill)")
            let verify = try CLI.run(["verify", "--latest", "--dir", typo])
            #expect(verify.status == 1 && verify.stderr.contains(nightly + " (1 archive"), "\(verify)")
            // A bare name in the misspelt directory: the same hint (the trial of issue 29 got none).
            let bare = try CLI.run(["verify", URL(fileURLWithPath: made.file).lastPathComponent, "--dir", typo])
            #expect(bare.status == 1 && bare.stderr.contains("holds no archives") && bare.stderr.contains(nightly + " (1 archive"), "\(bare)")
            let list = try CLI.run(["list", "--dir", typo])
            #expect(list.status == 0 && list.stdout.contains("No archives in \(typo) (from --dir)") && list.stderr.contains(nightly + " (1 archive"), "\(list)")
            let json = try CLI.run(["list", "--dir", typo, "--json"])
            let listed = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [Any]
            #expect(json.status == 0 && listed?.isEmpty == true, "\(json)")
            // Nothing near it (in a directory of its own: other tests' archives are beside a temporary directory): no note.
            let scratch = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: scratch) }
            let lonely = scratch + "/only"
            try FileManager.default.createDirectory(atPath: lonely, withIntermediateDirectories: true)
            let quiet = try CLI.run(["list", "--dir", lonely])
            #expect(quiet.status == 0 && quiet.stderr.isEmpty, "\(quiet)")
        }
    }

    @Test func verifyLatestVerifiesTheNewestAndFailsWhenItIsCorrupt() throws {
        try TestDatabase.withMigrated { database in
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let (older, newer) = try Self.twoArchives(database, directory: directory)
            let good = try CLI.run(["verify", "--latest"], environment: ["RGW_BACKUP_DIR": directory])
            #expect(good.status == 0 && good.stdout.hasPrefix("OK \(directory)/\(newer)"), "\(good)")

            try TestArchives.tamper(directory + "/" + newer, sidecarToo: false) { data in data[data.count / 2] ^= 0xFF }
            let corrupt = try CLI.run(["verify", "--latest", "--dir", directory])
            #expect(corrupt.status == 2 && corrupt.stderr.contains(newer) && corrupt.stderr.contains("the newest archive"), "\(corrupt)")
            #expect(!corrupt.output.contains(older), "no older archive is verified in its place: \(corrupt)")
            let json = try CLI.run(["verify", "--latest", "--dir", directory, "--json"])
            #expect(json.status == 2 && json.stdout.contains("\"ok\" : false") && json.stdout.contains(newer), "\(json)")
            // Recorded: list marks it.
            let list = try CLI.run(["list", "--dir", directory])
            #expect(list.stdout.split(separator: "\n").first { $0.contains(newer) }?.contains("VERIFY-FAILED") == true, "\(list)")

            let both = try CLI.run(["verify", "--latest", newer, "--dir", directory])
            #expect(both.status == 64, "\(both)")
        }
    }

    @Test func listHasAHeaderRowAndMarksDrilledAndDrillFailedArchives() throws {
        try TestDatabase.withMigrated { database in
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let (older, newer) = try Self.twoArchives(database, directory: directory)
            func line(_ output: String, _ name: String) -> String { output.split(separator: "\n").first { $0.contains(name) }.map(String.init) ?? "" }

            let passed = try CLI.run(["drill", directory + "/" + older, "--database-url", database.url])
            #expect(passed.status == 0, "\(passed)")
            // A drill whose migrations check fails (the application's migrate command exits 1).
            let failed = try CLI.run(["drill", directory + "/" + newer, "--database-url", database.url, "--migrate-command", "false"])
            #expect(failed.status == 2, "\(failed)")
            // The message names the failed check; the fix does not condemn an archive that restored
            // and matched (the migrate step may be the drill's environment).
            #expect(failed.stderr.contains("FAILED: 1 check failed (migrations)"), "\(failed.stderr)")
            #expect(failed.stderr.contains("the migrations check failed: read its line") && !failed.stderr.contains("Do not count on"), "\(failed.stderr)")

            let list = try CLI.run(["list", "--dir", directory])
            #expect(list.status == 0, "\(list)")
            let header = list.stdout.split(separator: "\n").first.map(String.init) ?? ""
            #expect(header.hasPrefix("TIME (UTC)") && header.contains("SIZE") && header.contains("ARCHIVE") && header.contains("CONTENTS") && header.hasSuffix("MARKS"), "\(list)")
            // The columns line up under the header.
            let archiveColumn = try #require(header.range(of: "ARCHIVE")).lowerBound.utf16Offset(in: header)
            #expect(line(list.stdout, older).range(of: older)?.lowerBound.utf16Offset(in: line(list.stdout, older)) == archiveColumn, "\(list)")
            #expect(line(list.stdout, older).contains("drilled") && !line(list.stdout, older).contains("DRILL-FAILED"), "\(list)")
            #expect(line(list.stdout, newer).contains("DRILL-FAILED") && !line(list.stdout, newer).hasSuffix("drilled"), "\(list)")
            let json = try CLI.run(["list", "--dir", directory, "--json"])
            let entries = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]])
            let byFile = Dictionary(entries.map { ($0["file"] as? String ?? "", $0) }, uniquingKeysWith: { first, _ in first })
            #expect(byFile[newer]?["drill_failed"] as? Bool == true && byFile[newer]?["drilled"] as? Bool == false, "\(json)")
            #expect(byFile[older]?["drill_failed"] as? Bool == false && byFile[older]?["drilled"] as? Bool == true, "\(json)")
            #expect(!json.stdout.contains("TIME (UTC)"), "no header in JSON")

            // The last drill counts: the newer one passes now.
            #expect(try CLI.run(["drill", directory + "/" + newer, "--database-url", database.url]).status == 0)
            let after = try CLI.run(["list", "--dir", directory])
            #expect(line(after.stdout, newer).hasSuffix("drilled") && !line(after.stdout, newer).contains("DRILL-FAILED"), "\(after)")
        }
    }

    /// Ctrl-C at a y/N question ends the run within seconds (the trial of issue 29 found it waiting
    /// for Enter: the exit flushed every stream, stdin's too, whose lock the blocked read held).
    @Test func ctrlCAtAQuestionExitsAtOnceAndChangesNothing() throws {
        try Self.withBackup { source, directory, backup in
            try TestDatabase.with { target in
                try target.psql("CREATE TABLE keep_me (id int); INSERT INTO keep_me VALUES (42)")
                let started = Date()
                let asked = try TerminalTests.atTerminal(["restore", backup.file, "--target-url", target.url, "--clean"],
                                                         environment: ["PTY_RUN_INTERRUPT_AFTER": "[y/N] "])
                let text = asked.screen.lines.joined(separator: "\n")
                #expect(asked.status == 130 && Date().timeIntervalSince(started) < 15, "\(Date().timeIntervalSince(started)) s: \(text)")
                #expect(text.contains("SIGINT"), "\(text)")
                #expect(try target.psql("SELECT id FROM keep_me").contains("42"), "untouched")
            }
        }
    }

    /// A restore without --target-url goes into the configured database: a refusal of it says so
    /// and points beside it first (the trial of issue 29 followed "pass --clean" onto the live one).
    @Test func aRefusalOfTheConfiguredDatabaseSaysItIsTheConfiguredOne() throws {
        try Self.withBackup { source, directory, backup in
            let configured = try CLI.run(["restore", backup.file], environment: ["RGW_DATABASE_URL": source.url])
            #expect(configured.status == 1 && configured.stderr.contains("\(source.name) is the configured database (from RGW_DATABASE_URL)")
                    && configured.stderr.contains("pass --target-url with a new database's name"), "\(configured)")
            let named = try CLI.run(["restore", backup.file, "--target-url", source.url])
            #expect(named.status == 1 && !named.stderr.contains("configured database") && named.stderr.contains("pass --clean"), "\(named)")
        }
    }

    /// An unreadable archive's reason is said below the table: it does not widen every row (the
    /// trial of issue 29 saw each row wrap at 120 columns).
    @Test func anUnreadableArchiveDoesNotWidenTheListing() throws {
        try Self.withBackup { source, directory, backup in
            let broken = directory + "/rack_gateway_backup_20200101T000000Z.sql.gz"
            let data = try Data(contentsOf: URL(fileURLWithPath: backup.file))
            try data.prefix(data.count / 2).write(to: URL(fileURLWithPath: broken))
            let list = try CLI.run(["list", "--dir", directory])
            let lines = list.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            let rows = lines.prefix { !$0.isEmpty }
            #expect(list.status == 0 && rows.count == 3 && rows.allSatisfy { $0.count < 120 }, "\(list)")
            #expect(rows.contains { $0.contains("UNREADABLE (below)") } && lines.contains { $0.hasPrefix("rack_gateway_backup_20200101T000000Z.sql.gz is unreadable: ") }, "\(list)")
            // verify of it fails (exit 2) and is recorded: list then marks it VERIFY-FAILED.
            let verify = try CLI.run(["verify", broken])
            #expect(verify.status == 2, "\(verify)")
            let after = try CLI.run(["list", "--dir", directory])
            #expect(after.stdout.split(separator: "\n").contains { $0.contains("20200101T000000Z") && $0.contains("VERIFY-FAILED") }, "\(after)")
        }
    }

    /// A drill that restored nothing measured no RTO: it says so instead of "0.0 s".
    @Test func aDrillThatRestoredNothingMeasuredNoRTO() throws {
        try Self.withBackup { source, directory, backup in
            try TestArchives.tamper(backup.file, sidecarToo: false) { data in data[data.count / 2] ^= 0xFF }
            let drill = try CLI.run(["drill", backup.file, "--database-url", source.url])
            #expect(drill.status == 2 && drill.stdout.contains("RTO not measured (no restore finished)") && !drill.stdout.contains("RTO (measured restore) 0.0 s"), "\(drill)")
            // Another directory: a second backup in the same second would have the same name.
            let other = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: other) }
            let good = try TestArchives.backup(source, directory: other)
            let passed = try CLI.run(["drill", good.file, "--database-url", source.url])
            #expect(passed.status == 0 && passed.stdout.contains("RTO (measured restore) "), "\(passed)")
        }
    }

    @Test func answeringNoIsAPlainLineNotAnErrorAndOneObjectIsSingular() throws {
        try Self.withBackup { source, directory, backup in
            try TestDatabase.with { target in
                try target.psql("CREATE TABLE keep_me (id int); INSERT INTO keep_me VALUES (42)")
                let declined = try TerminalTests.atTerminal(["restore", backup.file, "--target-url", target.url, "--clean"], environment: ["PTY_RUN_INPUT": "n\n"])
                let text = declined.screen.lines.joined(separator: "\n")
                #expect(declined.status == 1, "the documented status of not_confirmed: \(text)")
                #expect(text.contains("(1 object)") && !text.contains("(1 objects)"), "\(text)")
                // (The pty echoes the queued "n" before the question is asked: the line ends with the answer.)
                #expect(declined.screen.lines.last?.hasSuffix("[y/N] Not confirmed; nothing was changed.") == true, "\(text)")
                #expect(!text.contains("error:"), "a person who said no made no error: \(text)")
                #expect(try target.psql("SELECT id FROM keep_me").contains("42"), "untouched")
                // Without a terminal there is no one to ask: that is an error, with the fix.
                let unasked = try CLI.run(["restore", backup.file, "--target-url", target.url, "--clean"])
                #expect(unasked.status == 1 && unasked.stderr.contains("error: not confirmed") && unasked.stderr.contains("--yes"), "\(unasked)")
            }
        }
    }

    @Test func countsOfOneAreSingularAndCloseNamesAreFound() {
        #expect(Plural.of(1, "object") == "1 object" && Plural.of(0, "object") == "0 objects" && Plural.of(2, "batch", plural: "batches") == "2 batches")
        let names = ["rack_gateway_backup_20261125T050407Z.sql.gz", "rack_gateway_backup_20261124T050407Z.sql.gz", "other_20200101T000000Z.sql.gz"]
        #expect(ArchiveLocation.closeMatches(to: "rack_gateway_backup_20261125T050407Z", among: names).first == names[0])
        #expect(ArchiveLocation.closeMatches(to: "rack_gateway_backup_20261125t050407z.sql.gz", among: names) == [names[0], names[1]])
        #expect(ArchiveLocation.closeMatches(to: "nothing", among: names).isEmpty)
        #expect(ArchiveLocation.editDistance("nighty", "nightly") == 1)
    }

    /// A migrated database, a scratch directory and one backup of it there.
    static func withBackup(_ body: (TestDatabase, String, BackupReport) throws -> Void) throws {
        try TestDatabase.withMigrated { source in
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            try body(source, directory, try TestArchives.backup(source, directory: directory))
        }
    }
}
