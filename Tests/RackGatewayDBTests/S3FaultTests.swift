import Foundation
import RGWPostgres
import RackGatewayDB
import Testing
import TestSupport

/// S3 under faults (through the fault-injecting proxy in front of moto), the credential chain, and
/// Object Lock with server-side encryption.
@Suite("S3 faults, credentials and Object Lock")
struct S3FaultTests {
    /// A database whose archive at level 1 takes several 5 MiB parts.
    static func withMultiPartSource(_ body: (TestDatabase) throws -> Void) throws {
        try TestDatabase.withSampleData(events: 40000) { source in
            try body(source)
        }
    }

    static func backup(_ source: TestDatabase, into store: S3Store) throws -> BackupReport {
        var options = BackupOptions(store: store, jobs: 2, compressors: 2)
        options.compressionLevel = 1
        return try BackupRunner(settings: try source.settings, options: options, logger: .quiet).run()
    }

    @Test func aFailedPartAndThrottlingAreRetriedAndTheBackupSucceeds() throws {
        let moto = try MotoServer.shared()
        let bucket = try moto.freshBucket().bucket
        let proxy = try FaultProxy(upstream: moto.endpoint)
        try proxy.set([
            .init(method: "PUT", query: "partNumber", skip: 1, times: 1, action: "500"),
            .init(method: "PUT", query: "partNumber", skip: 1, times: 2, action: "slowdown"),
        ])
        let client = proxy.client(bucket: bucket)
        let store = S3Store(client: client, prefix: "nightly", partSize: 5 << 20)
        try Self.withMultiPartSource { source in
            let report = try Self.backup(source, into: store)
            let name = URL(fileURLWithPath: report.file).lastPathComponent
            let requests = try proxy.requests()
            #expect(requests.filter { $0.action == "500" }.count == 1, "one part got a 500")
            #expect(requests.filter { $0.action == "slowdown" }.count == 2, "throttled twice")
            #expect(requests.filter { $0.query.contains("partNumber") && $0.action == nil }.count >= 2)
            let verification = try ArchiveVerifier().verify(reader: try ArchiveReader(store: store, name: name))
            #expect(verification.ok && verification.sidecar == "ok", "\(verification.problems)")
            #expect(try client.listMultipartUploads().isEmpty)
        }
    }

    @Test func aConnectionCutForGoodAbortsTheUploadAndLeavesNothing() throws {
        let moto = try MotoServer.shared()
        let bucket = try moto.freshBucket().bucket
        let proxy = try FaultProxy(upstream: moto.endpoint)
        // From the second part on, every part upload loses its connection mid-body.
        try proxy.set([.init(method: "PUT", query: "partNumber", skip: 1, times: -1, action: "cut")])
        var client = proxy.client(bucket: bucket)
        client.maxAttempts = 3
        let store = S3Store(client: client, prefix: "nightly", partSize: 5 << 20)
        try Self.withMultiPartSource { source in
            let error = try #require(throws: ToolError.self) { _ = try Self.backup(source, into: store) }
            #expect(error.message.contains("UploadPart") && error.message.contains("after 3 attempts"), "\(error)")
            #expect(try proxy.requests().filter { $0.action == "cut" }.count == 3, "the part was tried three times")
            #expect(try store.list().isEmpty, "no archive, no sidecar, no lease under the prefix")
            #expect(try client.listMultipartUploads().isEmpty, "the multipart upload was aborted")
        }
    }

    @Test func expiredOrDeniedCredentialsFailAtOnceWithAClearMessageAndNoSecret() throws {
        let moto = try MotoServer.shared()
        let bucket = try moto.freshBucket().bucket
        let proxy = try FaultProxy(upstream: moto.endpoint)
        try TestDatabase.withMigrated { source in
            let secret = "sEcReT-\(UUID().uuidString.prefix(8))"
            let environment = ["RGW_DATABASE_URL": source.url, "AWS_ENDPOINT_URL_S3": proxy.endpoint, "AWS_ACCESS_KEY_ID": "AKIATEST",
                               "AWS_SECRET_ACCESS_KEY": secret, "AWS_SESSION_TOKEN": "tok-\(secret)", "RGW_S3_FIRST_BACKOFF": "0.01"]
            for (action, words) in [("expired", ["credentials have expired"]), ("denied", ["denied", bucket])] {
                try proxy.set([.init(times: -1, action: action)])
                try proxy.clearLog()
                let backup = try CLI.run(["backup", "--dir", "s3://\(bucket)/nightly"], environment: environment)
                #expect(backup.status == 1, "\(backup)")
                for word in words { #expect(backup.stderr.contains(word), "\(action): \(backup)") }
                #expect(!backup.output.contains(secret), "no secret or session token in the output")
                #expect(try proxy.requests().filter { $0.action == action }.count <= 2, "a permanent error is not retried")
            }
            try proxy.set([])
            let missing = try CLI.run(["list", "--dir", "s3://no-such-bucket-\(UUID().uuidString.prefix(6).lowercased())"],
                                      environment: ["AWS_ENDPOINT_URL_S3": moto.endpoint, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"])
            #expect(missing.status == 1 && missing.stderr.contains("does not exist"), "\(missing)")
        }
    }

    @Test func roleCredentialsComeFromWebIdentityTheContainerEndpointAndInstanceMetadata() throws {
        let moto = try MotoServer.shared()
        let bucket = try moto.freshBucket().bucket
        let proxy = try FaultProxy(upstream: moto.endpoint)
        let tokenFile = NSTemporaryDirectory() + "/rgw-web-identity-\(UUID().uuidString)"
        try "eyJhbGciOiJSUzI1NiJ9.test.token".write(toFile: tokenFile, atomically: true, encoding: .utf8)
        defer { unlink(tokenFile) }
        let base = ["AWS_ENDPOINT_URL_S3": proxy.endpoint, "AWS_EC2_METADATA_DISABLED": "true"]
        let cases: [(String, [String: String], (String) -> Bool)] = [
            ("web identity", ["AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/rgw-backup", "AWS_WEB_IDENTITY_TOKEN_FILE": tokenFile,
                              "AWS_ENDPOINT_URL_STS": moto.endpoint], { $0.hasPrefix("ASIA") }),
            ("container", ["AWS_CONTAINER_CREDENTIALS_FULL_URI": proxy.endpoint + "/_ecs/credentials",
                           "AWS_CONTAINER_AUTHORIZATION_TOKEN": "ecs-secret"], { $0 == "ECSACCESSKEY" }),
            ("instance metadata", ["AWS_EC2_METADATA_DISABLED": "false", "AWS_EC2_METADATA_SERVICE_ENDPOINT": proxy.endpoint], { $0 == "IMDSACCESSKEY" }),
        ]
        for (name, variables, expected) in cases {
            try proxy.clearLog()
            let client = try StoreLocation.s3Client(bucket: bucket, endpoint: nil, environment: base.merging(variables) { $1 }, clock: SystemClock())
            try client.putObject(key: "probe-\(name.replacingOccurrences(of: " ", with: "-"))", data: Array(name.utf8))
            let request = try #require(try proxy.requests().last)
            #expect(request.keyId.map(expected) == true && request.token, "\(name): signed with \(request.keyId ?? "nothing"), token \(request.token)")
        }
        // Through the CLI: a backup to S3 with the role from web identity, and no key or token printed.
        try TestDatabase.withMigrated { source in
            let environment = base.merging(cases[0].1) { $1 }.merging(["RGW_DATABASE_URL": source.url]) { $1 }
            let backup = try CLI.run(["backup", "--dir", "s3://\(bucket)/role", "--json"], environment: environment)
            #expect(backup.status == 0, "\(backup)")
            #expect(try proxy.requests().contains { $0.path.contains("/role/") && $0.keyId?.hasPrefix("ASIA") == true })
            #expect(!backup.output.contains("ASIA") && !backup.output.contains("SessionToken"), "\(backup.output)")
        }
    }

    @Test func lockedArchivesAreEncryptedAndSurvivePrune() throws {
        let moto = try MotoServer.shared()
        let name = "rgw-lock-\(UUID().uuidString.prefix(8).lowercased())"
        let client = S3Client(endpoint: moto.endpoint, region: "us-east-1", bucket: name, accessKey: "test", secretKey: "test", pathStyle: true, clock: SystemClock())
        try client.createBucket(objectLock: true)
        let environment = ["AWS_ENDPOINT_URL_S3": moto.endpoint, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"]
        try TestDatabase.withMigrated { source in
            let dir = "s3://\(name)/nightly"
            let env = environment.merging(["RGW_DATABASE_URL": source.url]) { $1 }
            let first = try CLI.run(["backup", "--dir", dir, "--object-lock-days", "2", "--object-lock-mode", "compliance", "--sse", "AES256", "--json"], environment: env)
            #expect(first.status == 0, "\(first)")
            let store = S3Store(client: client, prefix: "nightly")
            let archive = try #require(try store.list().first { $0.name.hasSuffix(".sql.gz") }).name
            for object in [archive, archive + ".sha256"] {
                let until = try #require(try client.retainUntil(key: "nightly/" + object), "\(object) is locked")
                #expect(abs(until.timeIntervalSinceNow - 2 * 86_400) < 600, "\(until)")
                #expect(try client.head(key: "nightly/" + object)?["x-amz-server-side-encryption"] == "AES256")
            }
            let usage = try CLI.run(["backup", "--dir", "/tmp/rgw-not-s3", "--sse", "AES256"], environment: env)
            #expect(usage.status == 64, "\(usage)")
            Thread.sleep(forTimeInterval: 1.1)
            #expect(try CLI.run(["backup", "--dir", dir], environment: env).status == 0)
            let prune = try CLI.run(["prune", "--dir", dir, "--keep-last", "1"], environment: env)
            #expect(prune.status == 0 && prune.stdout.contains("keep    \(archive)  locked-until-"), "\(prune)")
            #expect(try store.list().contains { $0.name == archive }, "the locked archive is still there")
        }
    }

    /// A signed archive of about 1.2 MB in moto, and the environment that reads it through the fault
    /// proxy at 160 KB/s (a download of seconds).
    struct SlowArchive {
        let dir: String
        let slow: [String: String]
        let keys: TestKeys
        let archive: String
        let source: TestDatabase
        let proxy: FaultProxy
    }

    static func withASignedArchiveBehindASlowLink(_ body: (SlowArchive) throws -> Void) throws {
        let moto = try MotoServer.shared()
        let client = try moto.freshBucket()
        let proxy = try FaultProxy(upstream: moto.endpoint)
        let keys = try TestKeys.make()
        defer { try? FileManager.default.removeItem(atPath: keys.directory) }
        try TestDatabase.withMigrated { source in
            let dir = "s3://\(client.bucket)/nightly"
            // Random text, so the archive stays about 1.2 MB compressed.
            _ = try source.psql("INSERT INTO users (email) SELECT md5(random()::text) || md5(random()::text) || i || '@example.com' FROM generate_series(1, 30000) i")
            let environment = MotoServer.awsEnvironment.merging(["RGW_DATABASE_URL": source.url, "AWS_ENDPOINT_URL_S3": moto.endpoint]) { $1 }
            let backup = try CLI.run(["backup", "--dir", dir, "--sign-key", keys.signKey], environment: environment)
            try #require(backup.status == 0, "\(backup)")
            let archive = try #require(try S3Store(client: client, prefix: "nightly").list().map(\.name).first { $0.hasSuffix(".sql.gz") })
            let size = try #require(try S3Store(client: client, prefix: "nightly").size(archive))
            try #require(size > 600_000, "at 160 KB/s the download takes seconds: \(size) bytes")
            try proxy.set([.init(method: "GET", times: -1, action: "trickle")])
            try body(SlowArchive(dir: dir, slow: environment.merging(["AWS_ENDPOINT_URL_S3": proxy.endpoint]) { $1 }, keys: keys, archive: archive,
                                 source: source, proxy: proxy))
        }
    }

    /// `signal` to `run` half a second into its trickling `method` request for a path ending in
    /// `pathSuffix` (the transfer under way); its result, and the seconds it took to end after the signal.
    static func signalMidTransfer(_ run: RunningCLI, proxy: FaultProxy, method: String, pathSuffix: String, signal: Int32) throws -> (CLI.Result, Double) {
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline, run.process.isRunning,
              !(try proxy.requests()).contains(where: { $0.method == method && $0.path.hasSuffix(pathSuffix) && $0.action == "trickle" }) {
            Thread.sleep(forTimeInterval: 0.05)
        }
        Thread.sleep(forTimeInterval: 0.5)
        #expect(run.process.isRunning, "still transferring when the signal comes: \(run.stderr)")
        let sent = Date()
        run.signal(signal)
        let result = run.finish(seconds: 30)
        return (result, Date().timeIntervalSince(sent))
    }

    /// A stopped run ends its S3 transfer at once (issue 33's trial: Ctrl-C during the download of
    /// `restore --latest` waited for the transfer and ended through the signal path's fallback,
    /// "it had nothing to undo", never saying what was stopped). Over a slow link (160 KB/s),
    /// Ctrl-C in the download of `restore --latest --verify-key`, SIGTERM in the drill's and SIGHUP
    /// in the pipeline's end the run within a second or so, saying nothing was changed, with nothing
    /// on the target and no `convox` call.
    @Test func aSignalEndsAnS3DownloadAtOnce() throws {
        try Self.withASignedArchiveBehindASlowLink { slowArchive in
            let (dir, slow, keys, archive, proxy) = (slowArchive.dir, slowArchive.slow, slowArchive.keys, slowArchive.archive, slowArchive.proxy)
            let rack = try FakeRack(count: 2)
            defer { rack.remove() }
            try TestDatabase.withUnused { target in
                let runs: [(String, [String], Int32)] = [
                    ("restore", ["restore", "--latest", "--dir", dir, "--verify-key", keys.publicKey, "--target-url", target.url], SIGINT),
                    ("drill", ["drill", "--latest", "--dir", dir, "--verify-key", keys.publicKey], SIGTERM),
                    ("pipeline", ["restore", "--latest", "--dir", dir, "--verify-key", keys.publicKey, "--convox-app", rack.app, "--yes"], SIGHUP),
                ]
                for (command, arguments, signal) in runs {
                    try proxy.clearLog()
                    let run = try RunningCLI(arguments, environment: command == "pipeline" ? slow.merging(rack.environment()) { $1 } : slow)
                    let (result, took) = try Self.signalMidTransfer(run, proxy: proxy, method: "GET", pathSuffix: archive, signal: signal)
                    #expect(result.status == 128 + signal, "\(command): \(result)")
                    #expect(took < 1.8, "\(command): ended \(took) s after the signal, not by the 2 s fallback: \(result)")
                    #expect(!result.stderr.contains("it had nothing to undo"), "\(command): ended by the fallback: \(result)")
                    #expect(result.stderr.contains("fetched and checked: nothing was changed"), "\(command): \(result)")
                    #expect(result.stderr.contains("nothing was changed; no scratch database was created") == (command == "drill"), "\(command): \(result)")
                }
                #expect(try !target.exists, "nothing was created on the target")
                #expect(try rack.count() == 2 && String(contentsOfFile: rack.log, encoding: .utf8).isEmpty, "the pipeline made no convox call")
            }
        }
    }

    /// From S3, `--latest`'s download is part of the restore's duration and of the drill's RTO (the
    /// person trial: a 43 s restore said "in 3.7 s", a drill "RTO 3.2 s", the download left out).
    @Test func theDownloadIsPartOfTheRestoreAndTheDrillsRTO() throws {
        try Self.withASignedArchiveBehindASlowLink { slowArchive in
            let (dir, slow, keys) = (slowArchive.dir, slowArchive.slow, slowArchive.keys)
            try TestDatabase.withUnused { target in
                let started = Date()
                let restore = try CLI.run(["restore", "--latest", "--dir", dir, "--verify-key", keys.publicKey, "--target-url", target.url, "--json"],
                                          environment: slow)
                let wall = Date().timeIntervalSince(started)
                #expect(restore.status == 0, "\(restore)")
                // Which archive is being fetched is said before the wait (a log line here; a line above the bar at a terminal).
                #expect(restore.stderr.contains("fetching \(dir)/\(slowArchive.archive) ("), "\(restore)")
                let report = try CLI.decode(RestoreReport.self, restore.stdout)
                let fetch = try #require(report.phases.first, "\(report)")
                #expect(fetch.name == "fetch and archive check (--latest)" && fetch.seconds > 4, "the download (about 7 s): \(report.phases)")
                #expect(report.durationSeconds > 0.8 * wall && report.durationSeconds <= wall, "\(report.durationSeconds) s of \(wall) s")
                #expect(report.signatureChecked == true, "the restore's report says the signature was checked")
                target.drop()
            }
            let started = Date()
            let drill = try CLI.run(["drill", "--latest", "--dir", dir, "--verify-key", keys.publicKey, "--json"], environment: slow)
            let wall = Date().timeIntervalSince(started)
            #expect(drill.status == 0, "\(drill)")
            let report = try CLI.decode(DrillReport.self, drill.stdout)
            #expect(report.restoreSeconds > 4 && report.restorePhases.first?.name == "fetch and archive check (--latest)", "\(report.restorePhases)")
            #expect(report.durationSeconds > 0.8 * wall && report.durationSeconds <= wall && report.durationSeconds >= report.restoreSeconds,
                    "\(report.durationSeconds) s of \(wall) s, RTO \(report.restoreSeconds) s")

            // The Convox pipeline, the real 3 a.m. recovery, too (the re-trial: 47 s said as 7.9 s).
            let rack = try FakeRack(count: 2)
            defer { rack.remove() }
            let piped = Date()
            let pipeline = try CLI.run(["restore", "--latest", "--dir", dir, "--verify-key", keys.publicKey, "--convox-app", rack.app, "--yes", "--json"],
                                       environment: slow.merging(rack.environment()) { $1 })
            let pipelineWall = Date().timeIntervalSince(piped)
            #expect(pipeline.status == 0, "\(pipeline)")
            let piping = try CLI.decode(PipelineReport.self, pipeline.stdout)
            #expect((piping.fetchSeconds ?? 0) > 4 && piping.durationSeconds > 0.8 * pipelineWall && piping.durationSeconds <= pipelineWall,
                    "fetch \(piping.fetchSeconds ?? 0) s, \(piping.durationSeconds) s of \(pipelineWall) s")
        }
    }

    /// A backup to S3 stopped while it uploads ends at once and says what it left: nothing under the
    /// archive's name, no multipart upload (the person trial: it said only "interrupted ... during
    /// S3 PutObject of ...", and its fix pointed at the message for what was left).
    @Test func aBackupStoppedWhileItUploadsSaysNothingIsLeft() throws {
        let moto = try MotoServer.shared()
        let client = try moto.freshBucket()
        let proxy = try FaultProxy(upstream: moto.endpoint)
        try proxy.set([.init(method: "PUT", times: -1, action: "trickle")])
        try TestDatabase.withMigrated { source in
            _ = try source.psql("INSERT INTO users (email) SELECT md5(random()::text) || md5(random()::text) || i || '@example.com' FROM generate_series(1, 30000) i")
            let dir = "s3://\(client.bucket)/nightly"
            let run = try RunningCLI(["backup", "--dir", dir], environment: MotoServer.awsEnvironment.merging(
                ["RGW_DATABASE_URL": source.url, "AWS_ENDPOINT_URL_S3": proxy.endpoint]) { $1 })
            let (result, took) = try Self.signalMidTransfer(run, proxy: proxy, method: "PUT", pathSuffix: ".sql.gz", signal: SIGINT)
            #expect(result.status == 130 && took < 3, "\(result)")
            #expect(result.stderr.contains("during S3 PutObject") && result.stderr.contains("the unfinished archive was removed: nothing is left under \(dir)/"), "\(result)")
            #expect(try S3Store(client: client, prefix: "nightly").list().filter { $0.name.contains(".sql.gz") }.isEmpty, "no archive")
            #expect(try client.listMultipartUploads(prefix: "nightly/").isEmpty, "no upload left")
        }
    }

    /// A download that S3 keeps refusing (HTTP 500) waits between its attempts; a stopped run ends that
    /// wait too, instead of sleeping out a backoff of up to `maxBackoff` seconds.
    @Test func aStoppedRunEndsTheWaitBeforeTheNextAttempt() throws {
        let moto = try MotoServer.shared()
        let bucket = try moto.freshBucket()
        try bucket.putObject(key: "nightly/a.sql.gz", data: [UInt8](repeating: 1, count: 1000))
        let proxy = try FaultProxy(upstream: moto.endpoint)
        try proxy.set([.init(method: "GET", times: -1, action: "500")])
        let cancellation = Cancellation()
        var client = S3Client(endpoint: proxy.endpoint, region: "us-east-1", bucket: bucket.bucket, accessKey: "test", secretKey: "test", pathStyle: true,
                              clock: SystemClock(cancellation: cancellation))
        (client.firstBackoff, client.maxBackoff, client.maxAttempts) = (30, 60, 6)
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.5) { cancellation.cancel(.signal(SIGINT)) }
        let started = Date()
        let error = try #require(throws: ToolError.self) { _ = try client.getObject(key: "nightly/a.sql.gz") }
        #expect(error.code == .interrupted && Date().timeIntervalSince(started) < 3, "\(Date().timeIntervalSince(started)) s: \(error)")
    }

    /// A stopped backup ends the part it is uploading at once, and the multipart upload is
    /// aborted: nothing under the archive's name, no upload left to pay for.
    @Test func aStoppedRunEndsTheUploadOfAPartAndAbortsTheUpload() throws {
        let moto = try MotoServer.shared()
        let bucket = try moto.freshBucket().bucket
        let proxy = try FaultProxy(upstream: moto.endpoint)
        try proxy.set([.init(method: "PUT", query: "partNumber", times: -1, action: "trickle")])
        let cancellation = Cancellation()
        let client = S3Client(endpoint: proxy.endpoint, region: "us-east-1", bucket: bucket, accessKey: "test", secretKey: "test", pathStyle: true,
                              clock: SystemClock(cancellation: cancellation))
        let store = S3Store(client: client, prefix: "nightly", partSize: 5 << 20)
        let writer = try store.create("stopped.sql.gz")
        // One full part (50 s at 160 KB/s) goes to the uploader; the signal comes a second later.
        try writer.append(ArraySlice([UInt8](repeating: 7, count: (5 << 20) + 1)))
        Thread.sleep(forTimeInterval: 1)
        let sent = Date()
        cancellation.cancel(.signal(SIGINT))
        let error = try #require(throws: ToolError.self) { try writer.publish() }
        #expect(Date().timeIntervalSince(sent) < 3, "the part's upload stopped: \(error)")
        #expect(error.code == .interrupted && error.message.contains("during S3 UploadPart"), "\(error)")
        writer.discard()
        #expect(try client.listMultipartUploads(prefix: "nightly/").isEmpty, "the upload is aborted, though the run was stopped")
        #expect(try store.list().isEmpty, "nothing under a name")

        // An archive smaller than a part goes up in one PUT when it is published: stopped the same way.
        try proxy.set([.init(method: "PUT", times: -1, action: "trickle")])
        let small = Cancellation()
        let smallStore = S3Store(client: S3Client(endpoint: proxy.endpoint, region: "us-east-1", bucket: bucket, accessKey: "test", secretKey: "test",
                                                  pathStyle: true, clock: SystemClock(cancellation: small)), prefix: "nightly", partSize: 5 << 20)
        let one = try smallStore.create("small.sql.gz")
        try one.append(ArraySlice([UInt8](repeating: 7, count: 1 << 20)))
        DispatchQueue.global().asyncAfter(deadline: .now() + 1) { small.cancel(.signal(SIGTERM)) }
        let started = Date()
        let put = try #require(throws: ToolError.self) { try one.publish() }
        #expect(Date().timeIntervalSince(started) < 4, "the PUT (6 s at 160 KB/s) stopped: \(put)")
        #expect(put.code == .interrupted && put.message.contains("during S3 PutObject"), "\(put)")
        one.discard()
        #expect(try store.list().isEmpty, "nothing under a name")
    }
}
