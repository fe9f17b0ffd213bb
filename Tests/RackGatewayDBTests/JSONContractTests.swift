import Foundation
import RGWPostgres
import Testing
import TestSupport
@testable import RackGatewayDB
@testable import rack_gateway_db

/// JSON that programs can rely on (issue 30, item 5): every failure of every command under
/// `--json` has `code`, `message`, `fix` and `exit_status` as separate fields, with a distinct code
/// for each kind of failure, each produced here for real (a wrong password against a real cluster,
/// a closed port, a bucket moto does not have, a 403 from the fault proxy, no credentials, a
/// missing archive, a flipped byte, a held lock, a failed drill, a failed pipeline step); every
/// time in every report is ISO 8601 UTC. (The README's code table against `ToolError.Code`:
/// `ErrorCodeDocumentTests`.)
@Suite("JSON for programs: error codes and times")
struct JSONContractTests {
    /// The `error` object of a failed run's one JSON document, read as a program would, after
    /// checking what every failure must have: its code, a message, a fix that is not folded into
    /// the message, and the exit status the process exited with.
    @discardableResult
    static func failure(_ result: CLI.Result, code: String, status: Int32, fix: String? = nil,
                        sourceLocation: SourceLocation = #_sourceLocation) throws -> (document: [String: Any], error: [String: Any]) {
        #expect(result.status == status, "\(result)", sourceLocation: sourceLocation)
        let document = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any],
                                    "one JSON object on stdout: \(result)", sourceLocation: sourceLocation)
        let error = try #require(document["error"] as? [String: Any], "an error object: \(result.stdout)", sourceLocation: sourceLocation)
        #expect(error["code"] as? String == code, "\(result)", sourceLocation: sourceLocation)
        #expect(error["exit_status"] as? Int == Int(status), "\(result.stdout)", sourceLocation: sourceLocation)
        let message = error["message"] as? String ?? ""
        let fixText = error["fix"] as? String ?? ""
        #expect(!message.isEmpty && !fixText.isEmpty, "a message and a fix: \(result.stdout)", sourceLocation: sourceLocation)
        #expect(!message.contains(fixText) && !message.contains("\n"), "the fix is not in the message: \(result.stdout)", sourceLocation: sourceLocation)
        if let fix { #expect(fixText.contains(fix), "\(result.stdout)", sourceLocation: sourceLocation) }
        return (document, error)
    }

    /// A small migrated database with some rows, backed up into a directory of its own.
    static func withArchive(_ body: (TestDatabase, String, String) throws -> Void) throws {
        try TestDatabase.withMigrated { source in
            try source.psql("INSERT INTO users (email) SELECT 'u' || i || '@example.com' FROM generate_series(1, 200) i")
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let archive = try TestArchives.backup(source, directory: directory, chunkSize: 16 * 1024).file
            try body(source, directory, archive)
        }
    }

    /// Errors that reach the CLI as they are: their advice is the fix, never part of the message,
    /// and S3's error codes map to the tool's as the README's table says.
    @Test func postgreSQLsAndS3sAdviceIsTheFixAndTheirCodesMap() {
        let server = ToolError(reporting: PostgresError(kind: .server, sqlState: "42501", message: "permission denied for table users", hint: "Grant SELECT."))
        #expect(server.code == .failed && server.message == "permission denied for table users (SQLSTATE 42501)" && server.fix == "Grant SELECT.", "\(server)")
        var refused = PostgresError(kind: .connection, message: "FATAL:  password authentication failed for user \"u\"", target: "u@h:5432/db")
        refused.connectionFailure = .authentication
        let auth = ToolError(reporting: refused)
        #expect(auth.code == .databaseAuthFailed && !auth.message.contains("Check") && auth.fix == PostgresError.ConnectionFailure.authentication.fix, "\(auth)")
        #expect(String(describing: refused).hasSuffix("(check the user name and password in the database URL or PGPASSWORD)"), "a person's one line keeps its advice")
        let expected: [(String, Int, ToolError.Code)] = [
            ("NoSuchBucket", 404, .bucketNotFound), ("NoSuchKey", 404, .archiveNotFound), ("AccessDenied", 403, .accessDenied),
            ("AllAccessDisabled", 403, .accessDenied), ("", 403, .accessDenied), ("ExpiredToken", 400, .credentialsMissing),
            ("InvalidAccessKeyId", 403, .credentialsMissing), ("SignatureDoesNotMatch", 403, .credentialsMissing), ("InternalError", 500, .failed),
        ]
        for (code, status, tool) in expected {
            let failure = S3Client.Failure(status: status, code: code, message: "m", operation: "ListObjectsV2 s3://b/", bucket: "b")
            let reported = ToolError(reporting: failure)
            #expect(reported.code == tool && reported.fix == failure.hint && !reported.message.contains("\n"), "\(code) \(status): \(reported)")
        }
    }

    @Test func aCommandLineTheParserRefusesIsUsageInJSONToo() throws {
        let both = try CLI.run(["verify", "--json"])
        let (_, error) = try Self.failure(both, code: "usage", status: 64, fix: "rack-gateway-db help")
        #expect((error["message"] as? String)?.contains("give an archive or --latest") == true, "\(error)")
        let unknown = try CLI.run(["list", "--json", "--jobz", "2"])
        try Self.failure(unknown, code: "usage", status: 64)
        #expect(unknown.stderr.contains("Unknown option '--jobz'"), "the parser's own message and usage stay on stderr: \(unknown)")
        let help = try CLI.run(["list", "--help", "--json"])
        #expect(help.status == 0 && !help.stdout.contains("\"error\""), "\(help)")
    }

    // MARK: archives

    @Test func aMissingArchiveIsArchiveNotFound() throws {
        try Self.withArchive { source, directory, archive in
            let name = URL(fileURLWithPath: archive).lastPathComponent
            let typo = name.replacingOccurrences(of: "_backup_", with: "_bakup_")
            let verify = try CLI.run(["verify", typo, "--dir", directory, "--json"])
            let (_, error) = try Self.failure(verify, code: "archive_not_found", status: 1, fix: "Close matches: \(archive)")
            #expect((error["message"] as? String)?.contains("no archive named \(typo)") == true, "\(error)")
            try TestDatabase.withUnused { target in
                let restore = try CLI.run(["restore", directory + "/" + typo, "--target-url", target.url, "--json"])
                try Self.failure(restore, code: "archive_not_found", status: 1)
            }
            let empty = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: empty) }
            let latest = try CLI.run(["drill", "--latest", "--dir", empty, "--json"], environment: ["RGW_DATABASE_URL": source.url])
            try Self.failure(latest, code: "archive_not_found", status: 1)
        }
    }

    @Test func aFlippedByteIsArchiveCorruptAndAnUnsignedArchiveSignatureInvalid() throws {
        try Self.withArchive { source, directory, archive in
            let keys = try TestKeys.make()
            defer { try? FileManager.default.removeItem(atPath: keys.directory) }
            let unsigned = try CLI.run(["verify", archive, "--verify-key", keys.publicKeyFile, "--json"])
            try Self.failure(unsigned, code: "signature_invalid", status: 2)

            let manifest = try ArchiveReader(path: archive).manifest
            let member = try #require(manifest.members.last { $0.kind == .data })
            try TestArchives.tamper(archive, sidecarToo: false) { $0[member.offset + member.length / 2] ^= 0x55 }
            let verify = try CLI.run(["verify", archive, "--json"])
            let (report, _) = try Self.failure(verify, code: "archive_corrupt", status: 2, fix: "Do not restore it")
            #expect(report["ok"] as? Bool == false && report["sha256"] is String, "the verify report with its error: \(verify.stdout)")
            try TestDatabase.withUnused { target in
                let restore = try CLI.run(["restore", archive, "--target-url", target.url, "--json"])
                try Self.failure(restore, code: "archive_corrupt", status: 2)
            }
        }
    }

    @Test func aDrillWhoseCheckFailsIsDrillFailedInItsReport() throws {
        try Self.withArchive { source, directory, archive in
            let manifest = try ArchiveReader(path: archive).manifest
            let member = try #require(manifest.members.last { $0.kind == .data })
            // The sidecar rewritten to match: the archive check passes and the restore finds it.
            try TestArchives.tamper(archive, sidecarToo: true) { $0[member.offset + member.length / 2] ^= 0x5A }
            let drill = try CLI.run(["drill", archive, "--json", "--database-url", source.url])
            let (report, error) = try Self.failure(drill, code: "drill_failed", status: 2)
            let checks = try #require(report["checks"] as? [[String: Any]], "the drill's report: \(drill.stdout)")
            #expect(checks.contains { $0["name"] as? String == "restore" && $0["ok"] as? Bool == false }, "\(checks)")
            #expect(report["ok"] as? Bool == false && (error["message"] as? String)?.contains("FAILED") == true, "\(drill.stdout)")
        }
    }

    @Test func aHeldLockIsLockHeld() throws {
        try TestDatabase.withMigrated { source in
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let lock = try DirectoryLock.acquire(directory: directory, name: ".rack_gateway_backup.lock", what: "test holder", since: Date())
            defer { lock.release() }
            let backup = try CLI.run(["backup", "--dir", directory, "--json"], environment: ["RGW_DATABASE_URL": source.url])
            let (_, error) = try Self.failure(backup, code: "lock_held", status: 3, fix: "Wait for that run to finish")
            #expect((error["message"] as? String)?.contains("test holder") == true, "\(error)")
        }
    }

    // MARK: the database

    @Test func aWrongPasswordIsDatabaseAuthFailedAndAClosedPortDatabaseUnreachable() throws {
        let cluster = try TestCluster.shared()
        try TestDatabase.withMigrated { source in
            let secret = "Wr0ng-\(UUID().uuidString.prefix(8))"
            let url = cluster.url(database: source.name, password: secret)
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let backup = try CLI.run(["backup", "--dir", directory, "--json"], environment: ["RGW_DATABASE_URL": url])
            let (_, error) = try Self.failure(backup, code: "database_auth_failed", status: 1, fix: "Check the user name and password")
            #expect((error["message"] as? String)?.contains("password authentication failed") == true, "\(error)")
            #expect(!backup.output.contains(secret), "the password is in no output")

            // check makes its report, and the failure is in it.
            let check = try CLI.run(["check", "--json"], environment: ["RGW_DATABASE_URL": url])
            let (report, checkError) = try Self.failure(check, code: "database_auth_failed", status: 1, fix: "Check the user name and password")
            #expect(report["ok"] as? Bool == false && report["items"] is [Any], "\(check.stdout)")
            // The advice is the fix, not also the message's end (the trial: "... (check the user name and password ...)").
            #expect((checkError["message"] as? String).map { $0.contains("password authentication failed") && !$0.contains("check the user name") } == true, "\(checkError)")
            #expect(!check.output.contains(secret))
        }
        let closed = "postgres://postgres:pw@127.0.0.1:\(try TestCluster.freePort())/rack_gateway?connect_timeout=3"
        let backup = try CLI.run(["backup", "--dir", NSTemporaryDirectory() + "/rgw-unreachable-\(UUID().uuidString)", "--json"],
                                 environment: ["RGW_DATABASE_URL": closed])
        let (_, error) = try Self.failure(backup, code: "database_unreachable", status: 1, fix: "Check the host and port")
        #expect((error["message"] as? String)?.contains("Connection refused") == true, "\(error)")
    }

    // MARK: S3

    /// Issue 31: an archive in a bucket that does not exist is that, as `list` says it, for every
    /// command that names an archive (it was "no archive named NAME: not in s3://bucket/prefix").
    @Test func anArchiveInAMissingBucketSaysTheBucketDoesNotExist() throws {
        let moto = try MotoServer.shared()
        let aws = MotoServer.awsEnvironment.merging(["AWS_ENDPOINT_URL_S3": moto.endpoint]) { $1 }
        let missing = "rgw-none-\(UUID().uuidString.prefix(8).lowercased())"
        let archive = "s3://\(missing)/nightly/rack_gateway_backup_20261201T000000Z.sql.gz"
        let nowhere = "postgres://postgres:pw@127.0.0.1:\(try TestCluster.freePort())/rack_gateway?connect_timeout=3"
        for arguments in [["inspect", archive], ["inspect", "rack_gateway_backup_20261201T000000Z.sql.gz", "--dir", "s3://\(missing)/nightly"],
                          ["extract", archive, "--table", "public.users"], ["diff", archive, "--database-url", nowhere],
                          ["restore", archive, "--target-url", try TestCluster.shared().url(database: "rgw_never")]] {
            let run = try CLI.run(arguments, environment: aws)
            #expect(run.status == 1 && run.stderr.contains("bucket \(missing) does not exist") && !run.stderr.contains(": not in s3://"), "\(arguments): \(run)")
        }
        // A restore checks its target's server before it reads the archive (from S3, a download):
        // an unreachable one is said first.
        let unreachable = try CLI.run(["restore", archive, "--target-url", nowhere], environment: aws)
        #expect(unreachable.status == 1 && unreachable.stderr.contains("cannot connect to PostgreSQL") && !unreachable.stderr.contains("bucket"), "\(unreachable)")
        let json = try CLI.run(["inspect", archive, "--json"], environment: aws)
        let (_, error) = try Self.failure(json, code: "bucket_not_found", status: 1, fix: "Check the bucket's name")
        #expect((error["message"] as? String)?.contains("bucket \(missing) does not exist") == true, "\(error)")
    }

    @Test func s3FailuresHaveTheirOwnCodes() throws {
        let moto = try MotoServer.shared()
        let bucket = try moto.freshBucket().bucket
        let aws = MotoServer.awsEnvironment.merging(["AWS_ENDPOINT_URL_S3": moto.endpoint]) { $1 }

        let missing = "rgw-none-\(UUID().uuidString.prefix(8).lowercased())"
        let noBucket = try CLI.run(["list", "--dir", "s3://\(missing)/nightly", "--json"], environment: aws)
        let (_, error) = try Self.failure(noBucket, code: "bucket_not_found", status: 1, fix: "Bucket \(missing) does not exist")
        #expect((error["message"] as? String)?.contains("NoSuchBucket") == true, "\(error)")

        // moto lets everyone in: the fault proxy in front of it answers as S3 does.
        let proxy = try FaultProxy(upstream: moto.endpoint)
        let proxied = aws.merging(["AWS_ENDPOINT_URL_S3": proxy.endpoint]) { $1 }
        try proxy.set([.init(method: "GET", times: -1, action: "denied")])
        let denied = try CLI.run(["list", "--dir", "s3://\(bucket)/nightly", "--json"], environment: proxied)
        try Self.failure(denied, code: "access_denied", status: 1, fix: "s3:ListBucket on arn:aws:s3:::\(bucket)")
        try proxy.set([.init(method: "GET", times: -1, action: "expired")])
        let expired = try CLI.run(["list", "--dir", "s3://\(bucket)/nightly", "--json"], environment: proxied)
        try Self.failure(expired, code: "credentials_missing", status: 1, fix: "have expired")

        // No credentials anywhere: no variables, no files, no instance metadata.
        let home = try TestArchives.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: home) }
        let none = try CLI.run(["list", "--dir", "s3://\(bucket)/nightly", "--json"],
                               environment: ["HOME": home, "AWS_ENDPOINT_URL_S3": moto.endpoint, "AWS_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true",
                                             "AWS_SHARED_CREDENTIALS_FILE": home + "/credentials", "AWS_CONFIG_FILE": home + "/config"])
        let (_, nothing) = try Self.failure(none, code: "credentials_missing", status: 1, fix: "Set AWS_ACCESS_KEY_ID")
        #expect((nothing["message"] as? String)?.contains("no AWS credentials found") == true, "\(nothing)")
    }

    // MARK: the pipeline

    @Test func aFailedPipelineStepIsPipelineStepFailedWithTheStep() throws {
        let rack = try FakeRack(count: 2)
        defer { rack.remove() }
        try Self.withArchive { live, directory, archive in
            defer {
                if let admin = try? Connection(settings: try live.cluster.adminSettings),
                   let rows = try? admin.query("SELECT datname FROM pg_database WHERE datname LIKE $1", [live.name + "\\_%"]).rows {
                    for row in rows { _ = try? admin.execute("DROP DATABASE IF EXISTS \(SQL.identifier(row[0]!)) WITH (FORCE)") }
                }
            }
            let result = try CLI.run(["restore", archive, "--convox-app", rack.app, "--yes", "--database-url", live.url, "--json"],
                                     environment: rack.environment(["FAKE_CONVOX_FAIL_SCALE_TO": "0"]))
            let (report, error) = try Self.failure(result, code: "pipeline_step_failed", status: 1)
            #expect(error["step"] as? String == "scale down" && report["failed_step"] as? String == "scale down", "\(result.stdout)")
            #expect((error["message"] as? String)?.contains("stopped at scale down") == true && report["steps"] is [Any], "\(result.stdout)")
            #expect(try rack.count() == 2)
        }
    }

    // MARK: times

    /// Every time-like field anywhere in `value` (keys ending in `_at`, `_from`, `_on`; `time`, `timestamp`,
    /// `since`, `until`, `date`): its path and value, for those that are not an ISO 8601 UTC time
    /// (`2026-12-04T16:49:06Z`, fractions allowed) or a day (`2026-12-04`).
    static func badTimes(_ value: Any, path: String = "") -> [String] {
        switch value {
        case let object as [String: Any]:
            return object.sorted { $0.key < $1.key }.flatMap { key, field -> [String] in
                let here = path + "." + key
                let timeLike = key.hasSuffix("_at") || key.hasSuffix("_from") || key.hasSuffix("_on") || ["time", "timestamp", "since", "until", "date"].contains(key)
                if timeLike && !(field is [String: Any]) && !(field is [Any]) && !(field is NSNull) {
                    let text = field as? String ?? ""
                    let iso = text.range(of: #"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}:\d{2}(\.\d+)?Z)?$"#, options: .regularExpression) != nil
                    return iso ? [] : ["\(here) = \(field)"]
                }
                return badTimes(field, path: here)
            }
        case let list as [Any]:
            return list.enumerated().flatMap { badTimes($1, path: path + "[\($0)]") }
        default:
            return []
        }
    }

    @Test func everyTimeInEveryJSONReportIsISO8601UTC() throws {
        try Self.withArchive { source, directory, archive in
            let environment = ["RGW_DATABASE_URL": source.url, "RGW_BACKUP_DIR": directory]
            let name = URL(fileURLWithPath: archive).lastPathComponent
            let list = try CLI.run(["list", "--json"], environment: environment)
            let entries = try #require(try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [[String: Any]], "\(list)")
            // The archive's name says when it was taken; list's `time` says the same (not seconds since 2001).
            let stamp = String(name.split(separator: "_").last!.prefix(16))
            let taken = "\(stamp.prefix(4))-\(stamp.dropFirst(4).prefix(2))-\(stamp.dropFirst(6).prefix(2))T\(stamp.dropFirst(9).prefix(2)):\(stamp.dropFirst(11).prefix(2)):\(stamp.dropFirst(13).prefix(2))Z"
            #expect(entries.first?["time"] as? String == taken, "\(list.stdout)")
            try TestDatabase.withUnused { target in
                let runs: [[String]] = [
                    ["list", "--json"], ["backup", "--prefix", "again", "--json"], ["verify", "--latest", "--json"], ["drill", archive, "--json"],
                    ["restore", archive, "--target-url", target.url, "--json"], ["prune", "--keep-last", "5", "--dry-run", "--json"],
                    ["status", "--json"], ["migrate", "--json"], ["check", "--max-backup-age", "26h", "--json"], ["maint", "connections", "--json"],
                    ["maint", "size", "--json"], ["maint", "audit-volume", "--json"], ["maint", "sessions-cleanup", "--dry-run", "--json"],
                    ["report", "--format", "json"],
                ]
                for arguments in runs {
                    let result = try CLI.run(arguments, environment: environment)
                    #expect(result.status == 0, "\(arguments): \(result)")
                    let document = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8))
                    #expect(Self.badTimes(document).isEmpty, "\(arguments): \(Self.badTimes(document))")
                }
            }
        }
    }
}
