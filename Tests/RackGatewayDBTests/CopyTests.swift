import Foundation
import RGWPostgres
import RackGatewayDB
import Testing
import TestSupport

/// `copy` and `backup --copy-to` (issue 32): archives copied between a local directory and two moto
/// buckets, verified at the destination, skipped when they are there already, resumed after a cut
/// connection, refused when the source is damaged, locked with Object Lock, copied encrypted and
/// signed by a host with no key, and a backup whose copy is refused (exit 4, copy_failed).
@Suite("copy and backup --copy-to")
struct CopyTests {
    /// Two archives (a second apart) of a database whose archive at level 1 takes several 5 MiB
    /// parts, made once; each test copies them into a directory of its own.
    static let fixture: Result<String, Error> = Result {
        let directory = try TestArchives.temporaryDirectory()
        try TestDatabase.withSampleData(events: 40000) { source in
            for index in 0..<2 {
                if index > 0 { Thread.sleep(forTimeInterval: 1.1) }
                var options = BackupOptions(store: LocalStore(directory: directory), jobs: 2, compressors: 2)
                options.compressionLevel = 1
                _ = try BackupRunner(settings: try source.settings, options: options, logger: .quiet).run()
            }
        }
        return directory
    }

    /// A directory of its own holding the fixture's two archives and their sidecars; their names, oldest first.
    static func archives() throws -> (directory: String, names: [String]) {
        let source = try fixture.get()
        let directory = try TestArchives.temporaryDirectory()
        for name in try FileManager.default.contentsOfDirectory(atPath: source) where !name.hasPrefix(".") && !name.hasSuffix(".jsonl") {
            try FileManager.default.copyItem(atPath: source + "/" + name, toPath: directory + "/" + name)
        }
        let names = try ArchiveCopier.archives(in: LocalStore(directory: directory)).map(\.name)
        #expect(names.count == 2)
        return (directory, names)
    }

    static func environment(_ endpoint: String) -> [String: String] {
        ["AWS_ENDPOINT_URL_S3": endpoint, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "RGW_S3_FIRST_BACKOFF": "0.01"]
    }

    /// `path`, made (a local destination must exist: copy never makes it).
    static func directory(_ path: String) throws -> String {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    static func report(_ result: CLI.Result) throws -> ArchiveCopier.Report { try CLI.decode(ArchiveCopier.Report.self, result.stdout) }

    /// Every archive of `names` in `store` verifies in full, its sidecar included.
    static func expectVerified(_ names: [String], in store: ArchiveStore, sourceLocation: SourceLocation = #_sourceLocation) throws {
        for name in names {
            let check = try ArchiveVerifier().verify(reader: try ArchiveReader(store: store, name: name))
            #expect(check.ok && check.sidecar == "ok", "\(store.location)/\(name): \(check.problems)", sourceLocation: sourceLocation)
        }
    }

    @Test func localToS3ToS3ToLocalThenSkipsWhatIsThereAndReplacesADamagedCopy() throws {
        let moto = try MotoServer.shared()
        let (first, second) = (try moto.freshBucket(), try moto.freshBucket())
        let (directory, names) = try Self.archives()
        let environment = Self.environment(moto.endpoint)
        let back = try Self.directory(try TestArchives.temporaryDirectory() + "/back")

        // local -> S3 -> S3 -> local, each verified where it landed.
        for (from, to) in [(directory, "s3://\(first.bucket)/nightly"), ("s3://\(first.bucket)/nightly", "s3://\(second.bucket)/offsite/db"),
                           ("s3://\(second.bucket)/offsite/db", back)] {
            let copy = try CLI.run(["copy", "--from", from, "--to", to, "--json"], environment: environment)
            #expect(copy.status == 0, "\(from) -> \(to): \(copy)")
            let report = try Self.report(copy)
            #expect(report.copied == 2 && report.skipped == 0 && report.failed == 0, "\(copy.stdout)")
            #expect(report.archives.allSatisfy { $0.checks == ["sha256", "trailer", "manifest"] && $0.notChecked.isEmpty }, "\(copy.stdout)")
        }
        let firstStore = S3Store(client: first, prefix: "nightly")
        let secondStore = S3Store(client: second, prefix: "offsite/db")
        for store in [firstStore, secondStore, LocalStore(directory: back)] as [ArchiveStore] {
            try Self.expectVerified(names, in: store)
            #expect(CopyLog.entries(store: store).filter { $0.outcome == .copied && $0.destination == store.location }.count == 2, "\(store.location)")
        }
        // The source recorded where its archives went.
        #expect(CopyLog.entries(store: LocalStore(directory: directory)).map(\.destination) == Array(repeating: firstStore.location, count: 2))
        for name in names {
            var info = stat()
            #expect(stat(back + "/" + name, &info) == 0 && info.st_mode & 0o777 == 0o600)
            #expect(!FileManager.default.fileExists(atPath: back + "/" + name + ".partial"))
        }

        // Again, through a proxy that counts: nothing is uploaded or read of the archives.
        let proxy = try FaultProxy(upstream: moto.endpoint)
        let versions = try names.map { try secondStore.version($0) }
        let again = try CLI.run(["copy", "--from", "s3://\(first.bucket)/nightly", "--to", "s3://\(second.bucket)/offsite/db", "--json"],
                                environment: Self.environment(proxy.endpoint))
        #expect(again.status == 0, "\(again)")
        let skipped = try Self.report(again)
        #expect(skipped.skipped == 2 && skipped.copied == 0 && skipped.bytesCopied == 0 && skipped.archives.allSatisfy(\.trusted), "\(again.stdout)")
        #expect(again.stdout.contains("\"outcome\" : \"skipped\""))
        let requests = try proxy.requests()
        let uploads = requests.filter { request in ["PUT", "POST"].contains(request.method) && names.contains { request.path.hasSuffix("/" + $0) } }
        #expect(uploads.isEmpty, "nothing uploaded: \(uploads.map(\.path))")
        #expect(requests.map(\.bytes).reduce(0, +) < 100_000, "no archive read: \(requests.map(\.bytes).reduce(0, +)) bytes")
        #expect(try names.map { try secondStore.version($0) } == versions)

        // A copy damaged at the destination (one byte flipped) is found by the next copy and replaced.
        var damaged = try second.getObject(key: "offsite/db/" + names[0])
        damaged[damaged.count / 2] ^= 0x5a
        try second.putObject(key: "offsite/db/" + names[0], data: damaged)
        let third = try CLI.run(["copy", "--from", "s3://\(first.bucket)/nightly", "--to", "s3://\(second.bucket)/offsite/db"], environment: environment)
        #expect(third.status == 0, "\(third)")
        #expect(third.stdout.contains("replaced \(names[0])") && third.stdout.contains("skipped  \(names[1])"), "\(third.stdout)")
        try Self.expectVerified(names, in: secondStore)
        // A local copy damaged the same way: read again (its version changed), replaced.
        try TestArchives.tamper(back + "/" + names[1], sidecarToo: false) { $0[$0.count / 3] ^= 0x01 }
        let local = try CLI.run(["copy", "--from", directory, "--to", back, "--json"], environment: environment)
        #expect(local.status == 0, "\(local)")
        let replaced = try Self.report(local)
        #expect(replaced.archives.map(\.replaced) == [false, true] && replaced.archives.map(\.outcome) == [.skipped, .copied], "\(local.stdout)")
        try Self.expectVerified(names, in: LocalStore(directory: back))
    }

    @Test func aCutConnectionLeavesNothingAtTheDestinationAndTheNextRunResumes() throws {
        let moto = try MotoServer.shared()
        let bucket = try moto.freshBucket().bucket
        let proxy = try FaultProxy(upstream: moto.endpoint)
        let (directory, names) = try Self.archives()
        let source = LocalStore(directory: directory)
        let partSize = 5 << 20
        let firstParts = (try #require(try source.size(names[0])) + partSize - 1) / partSize
        #expect(firstParts >= 2, "the first archive takes several parts")
        // Every part of the first archive goes through; from the second part of the second archive
        // on, every part upload loses its connection mid-body.
        try proxy.set([.init(method: "PUT", query: "partNumber", skip: firstParts + 1, times: -1, action: "cut")])
        var client = proxy.client(bucket: bucket)
        client.maxAttempts = 2
        let destination = S3Store(client: client, prefix: "copy", partSize: partSize)
        let cut = try ArchiveCopier(from: source, to: destination, context: .detached(logger: .quiet)).copy(names)
        #expect(cut.archives.map(\.outcome) == [.copied, .failed], "\(cut.archives)")
        #expect(cut.archives[1].code == .copyFailed && cut.archives[1].problems.joined().contains("UploadPart"), "\(cut.archives[1])")
        #expect(try proxy.requests().contains { $0.action == "cut" })
        let left = try destination.list().map(\.name)
        #expect(left.contains(names[0]) && !left.contains(names[1]) && !left.contains(names[1] + ".sha256"), "\(left)")
        #expect(try client.listMultipartUploads().isEmpty, "the cut upload was aborted")
        #expect(CopyLog.entries(store: destination).map(\.outcome) == [.copied, .failed])

        // The connection is back: the first is skipped unread, the second copied.
        try proxy.set([])
        let resumed = try ArchiveCopier(from: source, to: destination, context: .detached(logger: .quiet)).copy(names)
        #expect(resumed.archives.map(\.outcome) == [.skipped, .copied] && resumed.archives[0].trusted, "\(resumed.archives)")
        let secondSize = try source.size(names[1])
        #expect(resumed.archives[0].bytesCopied == 0 && resumed.archives[1].bytesCopied == secondSize)
        try Self.expectVerified(names, in: destination)
    }

    @Test func aStopDiscardsTheCopyInFlightAndNamesWhatWasCopied() throws {
        let (directory, names) = try Self.archives()
        let target = try TestArchives.temporaryDirectory()
        let context = RunContext.detached(logger: .quiet)
        // A destination whose writer is stopped (as by Ctrl-C) once the second archive is half written.
        let destination = StoppingStore(inner: LocalStore(directory: target), stopIn: names[1], after: 3 << 20, cancellation: context.cancellation)
        let error = try #require(throws: ToolError.self) { _ = try ArchiveCopier(from: LocalStore(directory: directory), to: destination, context: context).copy(names) }
        #expect(error.code == .interrupted, "\(error)")
        #expect(error.message.contains("at the destination: \(names[0])") && error.message.contains("not copied: \(names[1])"), "\(error.message)")
        let left = try FileManager.default.contentsOfDirectory(atPath: target)
        #expect(left.contains(names[0]) && !left.contains(names[1]) && !left.contains { $0.hasSuffix(".partial") }, "\(left)")
        try Self.expectVerified([names[0]], in: LocalStore(directory: target))
    }

    @Test func aDamagedSourceIsRefusedAndNothingOfItIsLeft() throws {
        let (directory, names) = try Self.archives()
        try TestArchives.tamper(directory + "/" + names[1], sidecarToo: false) { $0[$0.count / 2] ^= 0x20 }
        let target = try Self.directory(try TestArchives.temporaryDirectory() + "/copies")
        let copy = try CLI.run(["copy", "--from", directory, "--to", target, "--json"])
        #expect(copy.status == 2, "\(copy)")
        #expect(copy.stdout.contains("\"code\" : \"archive_corrupt\"") && copy.stderr.contains("does not match its .sha256"), "\(copy)")
        let left = try FileManager.default.contentsOfDirectory(atPath: target)
        #expect(left.contains(names[0]) && !left.contains { $0.hasPrefix(names[1]) }, "\(left)")
        let entries = CopyLog.entries(store: LocalStore(directory: target))
        #expect(entries.map(\.outcome) == [.copied, .failed] && entries[1].problems?.isEmpty == false)
        // The damaged source is marked at the source (list: VERIFY-FAILED), and the fix is no "copy again".
        #expect(VerificationLog.lines(store: LocalStore(directory: directory)).contains { $0.file == names[1] && !$0.ok && ($0.problems ?? []).joined().contains("SHA-256") })
        let listed = try CLI.run(["list", "--dir", directory])
        #expect(listed.stdout.split(separator: "\n").contains { $0.contains(names[1]) && $0.contains("VERIFY-FAILED") }, "\(listed)")
        #expect(!listed.stdout.split(separator: "\n").contains { $0.contains(names[0]) && $0.contains("VERIFY-FAILED") }, "\(listed)")
        #expect(copy.stderr.contains("rack-gateway-db verify --dir \(directory) \(names[1])") && !copy.stderr.contains("run the same copy again"), "\(copy.stderr)")
        // Only what was copied is counted: the first archive's bytes, in its line and the total.
        let copiedSize = try #require(try LocalStore(directory: directory).size(names[0]))
        #expect(copy.stdout.components(separatedBy: "\"bytes_copied\" : \(copiedSize),").count == 3, "\(copy.stdout)")
    }

    @Test func eachDestinationGetsItsOwnObjectLockAndEncryption() throws {
        let moto = try MotoServer.shared()
        let name = "rgw-copy-lock-\(UUID().uuidString.prefix(8).lowercased())"
        let client = S3Client(endpoint: moto.endpoint, region: "us-east-1", bucket: name, accessKey: "test", secretKey: "test", pathStyle: true, clock: SystemClock())
        try client.createBucket(objectLock: true)
        let (directory, names) = try Self.archives()
        let copy = try CLI.run(["copy", "--from", directory, "--to", "s3://\(name)/vault", "--latest", "--object-lock-days", "3",
                                "--object-lock-mode", "compliance", "--sse", "AES256", "--json"], environment: Self.environment(moto.endpoint))
        #expect(copy.status == 0, "\(copy)")
        let report = try Self.report(copy)
        #expect(report.archives.map(\.file) == [names[1]] && report.archives[0].retainUntil != nil, "\(copy.stdout)")
        for object in [names[1], names[1] + ".sha256"] {
            let until = try #require(try client.retainUntil(key: "vault/" + object), "\(object) is locked")
            #expect(abs(until.timeIntervalSinceNow - 3 * 86_400) < 600, "\(until)")
            #expect(try client.head(key: "vault/" + object)?["x-amz-object-lock-mode"] == "COMPLIANCE")
            #expect(try client.head(key: "vault/" + object)?["x-amz-server-side-encryption"] == "AES256")
        }
        #expect(try client.head(key: "vault/" + names[0]) == nil, "--latest copied only the newest")
        #expect(CopyLog.entries(store: S3Store(client: client, prefix: "vault")).first?.retainUntil != nil)
    }

    @Test func anEncryptedSignedArchiveIsCopiedByAKeylessHostAndRestoresFromTheCopy() throws {
        let moto = try MotoServer.shared()
        let bucket = try moto.freshBucket()
        let keys = try TestKeys.make()
        let directory = try TestArchives.temporaryDirectory()
        var results: [CLI.Result] = []
        try TestDatabase.withMigrated { source in
            try source.psql("INSERT INTO users (email) VALUES ('copy@example.com')")
            let backup = try CLI.run(["backup", "--database-url", source.url, "--dir", directory, "--recipient", keys.recipient, "--sign-key", keys.signKey])
            #expect(backup.status == 0, "\(backup)")
            let name = try #require(try ArchiveCopier.archives(in: LocalStore(directory: directory)).first?.name)
            #expect(name.hasSuffix(".age"))
            // The keyless host: no identity, no secret key; the public key only, then nothing at all.
            let environment = Self.environment(moto.endpoint)
            let signed = try CLI.run(["copy", "--from", directory, "--to", "s3://\(bucket.bucket)/dr", "--verify-key", keys.publicKey, "--json"], environment: environment)
            #expect(signed.status == 0, "\(signed)")
            let checked = try #require(try Self.report(signed).archives.first)
            #expect(checked.checks == ["sha256", "signature"], "\(signed.stdout)")
            #expect(checked.notChecked.contains { $0.hasPrefix("manifest") } && checked.notChecked.contains { $0.hasPrefix("trailer") }, "\(signed.stdout)")
            let plain = try CLI.run(["copy", "--from", "s3://\(bucket.bucket)/dr", "--to", try Self.directory(directory + "/second")], environment: environment)
            #expect(plain.status == 0 && plain.stdout.contains("checked sha256; not checked: signature: no --verify-key, trailer: encrypted, no --identity"), "\(plain)")
            results += [backup, signed, plain]
            // The wrong identity: the byte-identical copy is kept, its trailer and manifest not checked,
            // and the run ends with identity_mismatch (exit 1) naming the fix.
            let wrongIdentity = try Self.directory(directory + "/third")
            let unopened = try CLI.run(["copy", "--from", directory, "--to", wrongIdentity, "--identity", keys.otherIdentity], environment: environment)
            #expect(unopened.status == 1 && unopened.stderr.contains("no --identity given opens \(name): copied and its SHA-256 verified") && unopened.stderr.contains("--identity FILE"), "\(unopened)")
            #expect(unopened.stdout.contains("copied   \(name)") && unopened.stdout.contains("trailer: no --identity given opens it"), "\(unopened.stdout)")
            #expect(try Data(contentsOf: URL(fileURLWithPath: wrongIdentity + "/" + name)) == (try Data(contentsOf: URL(fileURLWithPath: directory + "/" + name))))
            #expect(CopyLog.entries(store: LocalStore(directory: wrongIdentity)).map(\.outcome) == [.copied])
            // The wrong public key: refused (exit 2), and the message says the copy it names is deleted.
            let others = try TestKeys.make()
            let badKey = try Self.directory(directory + "/fourth")
            let refused = try CLI.run(["copy", "--from", directory, "--to", badKey, "--verify-key", others.publicKey], environment: environment)
            #expect(refused.status == 2 && refused.stderr.contains("(the copy at \(badKey)/\(name) is deleted)"), "\(refused)")
            #expect(!FileManager.default.fileExists(atPath: badKey + "/" + name))
            results += [unopened, refused]
            for sidecar in [".sha256", ".minisig", ".summary.json"] {
                #expect(try bucket.getObject(key: "dr/" + name + sidecar) == [UInt8](try Data(contentsOf: URL(fileURLWithPath: directory + "/" + name + sidecar))),
                        "\(sidecar) copied byte for byte")
            }
            // Restorable from the copy, by the host that holds the keys.
            let target = try TestDatabase.create()
            defer { target.drop() }
            let restore = try CLI.run(["restore", "s3://\(bucket.bucket)/dr/\(name)", "--target-url", target.url, "--identity", keys.identity,
                                       "--verify-key", keys.publicKey, "--verify"], environment: environment)
            #expect(restore.status == 0 && restore.stdout.contains("verified: every table"), "\(restore)")
            #expect(try target.psql("SELECT count(*) FROM users WHERE email = 'copy@example.com'").trimmingCharacters(in: .whitespacesAndNewlines) == "1")
            results.append(restore)
        }
        keys.expectNoSecret(results)
    }

    @Test func aBackupWhoseCopyIsRefusedSucceedsAndExits4WithNothingLeftThere() throws {
        let moto = try MotoServer.shared()
        let bucket = try moto.freshBucket()
        let proxy = try FaultProxy(upstream: moto.endpoint)
        // The copy's bucket takes its lease (the first PUT) and refuses every write after it.
        try proxy.set([.init(method: "PUT", skip: 1, times: -1, action: "denied"), .init(method: "POST", times: -1, action: "denied")])
        let directory = try TestArchives.temporaryDirectory()
        let second = try Self.directory(try TestArchives.temporaryDirectory() + "/second")
        try TestDatabase.withMigrated { source in
            // A third destination is a bucket that does not exist: nothing at all can be written there.
            let missing = "s3://\(bucket.bucket)-missing/copy"
            let metrics = try TestArchives.temporaryDirectory() + "/rgw_backup.prom"
            let receiver = try HTTPReceiver()
            let backup = try CLI.run(["backup", "--database-url", source.url, "--dir", directory, "--copy-to", "s3://\(bucket.bucket)/copy",
                                      "--copy-to", second, "--copy-to", missing, "--json", "--metrics-file", metrics, "--webhook", receiver.url("/hook")],
                                     environment: Self.environment(proxy.endpoint))
            #expect(backup.status == 4, "\(backup)")
            // The webhook's text (the message's first line) names each failed destination and why.
            let hook = try #require(receiver.requests.last?.json, "\(receiver.requests)")
            let text = try #require(hook["text"] as? String)
            #expect(text.hasPrefix("rack-gateway-db backup done, copy FAILED (exit 4): the backup is written and verified") && text.contains("s3://\(bucket.bucket)/copy: ")
                    && text.contains("AccessDenied") && text.contains("; \(missing): ") && !text.contains("\n"), "\(text)")
            // The metrics: a good backup (its archive is there, verified) with two failed copies, for
            // RackGatewayBackupCopyFailed, not RackGatewayBackupFailed.
            let written = try String(contentsOfFile: metrics, encoding: .utf8)
            #expect(written.contains("rgw_backup_copies_failed{") && written.contains("} 2\n") && written.contains("rgw_backup_last_success_timestamp_seconds{")
                    && !written.contains("rgw_backup_last_failure_timestamp_seconds"), "\(written)")
            #expect(backup.stdout.contains("\"code\" : \"copy_failed\"") && backup.stderr.contains("s3://\(bucket.bucket)/copy"), "\(backup)")
            let report = try CLI.decode(BackupReport.self, backup.stdout)
            let copies = try #require(report.copies)
            #expect(copies.map(\.destination) == ["s3://\(bucket.bucket)/copy", second, missing] && copies.map(\.outcome) == [.failed, .copied, .failed],
                    "\(backup.stdout)")
            // Both failures are recorded at the source, the one whose destination takes nothing too, so
            // that list and check there name them.
            let recorded = CopyLog.latest(store: LocalStore(directory: directory))
            #expect(Set(recorded.filter { $0.outcome == .failed }.map(\.destination)) == ["s3://\(bucket.bucket)/copy", missing], "\(recorded)")
            let listed = try CLI.run(["list", "--dir", directory])
            #expect(listed.stdout.contains("1 copy,2 FAILED") && listed.stdout.contains("copy to \(missing) FAILED"), "\(listed)")
            #expect(copies[0].problems.joined().contains("AccessDenied") && copies[0].code == .accessDenied, "\(copies[0])")
            let name = ArchiveCopier.name(of: report.file)
            try Self.expectVerified([name], in: LocalStore(directory: directory))
            try Self.expectVerified([name], in: LocalStore(directory: second))
            #expect(try S3Store(client: bucket, prefix: "copy").list().isEmpty, "nothing partial, no lease left at the refusing destination")
            #expect(try bucket.listMultipartUploads().isEmpty)

            // RGW_BACKUP_COPY_TO: two destinations, separated by a comma and a space; both verified, exit 0.
            let (third, fourth) = (try TestArchives.temporaryDirectory(), try TestArchives.temporaryDirectory())
            Thread.sleep(forTimeInterval: 1.1)
            // Empty entries and a stray ";" are separators, not a relative directory ";" made wherever the job runs.
            let fromEnvironment = try CLI.run(["backup", "--database-url", source.url, "--dir", directory], environment: ["RGW_BACKUP_COPY_TO": "\(third),, \(fourth)  ;"])
            #expect(fromEnvironment.status == 0 && fromEnvironment.stdout.contains("copied to \(third)") && fromEnvironment.stdout.contains("copied to \(fourth)"),
                    "\(fromEnvironment)")
            #expect(fromEnvironment.stdout.components(separatedBy: "copied to ").count == 3, "two copies: \(fromEnvironment.stdout)")
            for target in [third, fourth] { #expect(try ArchiveCopier.archives(in: LocalStore(directory: target)).count == 1) }

            // A --copy-to directory that does not exist (a disk not mounted): not made, a failed copy
            // (exit 4) recorded at the source, the backup itself good.
            let unmounted = try TestArchives.temporaryDirectory() + "/mnt/usb/rgw"
            Thread.sleep(forTimeInterval: 1.1)
            let toMissing = try CLI.run(["backup", "--database-url", source.url, "--dir", directory, "--copy-to", unmounted])
            #expect(toMissing.status == 4 && toMissing.stderr.contains("\(unmounted) does not exist") && toMissing.stderr.contains("mounted"), "\(toMissing)")
            #expect(!FileManager.default.fileExists(atPath: unmounted))
            let newest = try #require(try ArchiveCopier.archives(in: LocalStore(directory: directory)).last?.name)
            #expect(CopyLog.latest(store: LocalStore(directory: directory)).contains { $0.file == newest && $0.destination == unmounted && $0.outcome == .failed })
        }
    }

    /// A copy whose sidecar cannot be written there (here: a directory in the way of its `.sha256`; in
    /// the trial, a bucket policy denying `*.sha256`) is not left behind: an archive without its
    /// `.sha256` would read as damaged to the next verify and copy.
    @Test func aCopyWhoseSidecarIsRefusedIsNotLeftBehind() throws {
        let (directory, names) = try Self.archives()
        let target = try TestArchives.temporaryDirectory()
        try FileManager.default.createDirectory(atPath: target + "/" + names[1] + ".sha256", withIntermediateDirectories: false)
        let copy = try CLI.run(["copy", "--from", directory, "--to", target, names[1]])
        #expect(copy.status == 4, "\(copy)")
        #expect(copy.stdout.contains("sidecars could not be written") && copy.stdout.contains("(the copy at \(target)/\(names[1]) is deleted)"), "\(copy)")
        #expect(!FileManager.default.fileExists(atPath: target + "/" + names[1]), "the archive is not left without its .sha256")
        #expect(CopyLog.entries(store: LocalStore(directory: directory)).map(\.outcome) == [.failed])
        // The way cleared, the same command copies it.
        try FileManager.default.removeItem(atPath: target + "/" + names[1] + ".sha256")
        let again = try CLI.run(["copy", "--from", directory, "--to", target, names[1]])
        #expect(again.status == 0, "\(again)")
        try Self.expectVerified([names[1]], in: LocalStore(directory: target))
    }

    @Test func aSourceThatRefusesWritesIsAWarningAndTheCopyIsRecordedAtTheDestination() throws {
        let moto = try MotoServer.shared()
        let bucket = try moto.freshBucket()
        let (directory, names) = try Self.archives()
        let source = S3Store(client: bucket, prefix: "readonly")
        _ = try ArchiveCopier(from: LocalStore(directory: directory), to: source, context: .detached(logger: .quiet)).copy([names[0]])
        // Read through a proxy that refuses every write: the source is read-only to this host.
        let proxy = try FaultProxy(upstream: moto.endpoint)
        try proxy.set([.init(method: "PUT", times: -1, action: "denied")])
        let target = try TestArchives.temporaryDirectory()
        let copy = try CLI.run(["copy", "--from", "s3://\(bucket.bucket)/readonly", "--to", target], environment: Self.environment(proxy.endpoint))
        #expect(copy.status == 0 && copy.stdout.contains("copied   \(names[0])"), "\(copy)")
        #expect(copy.stderr.contains("warning: cannot record the copy in s3://\(bucket.bucket)/readonly/copies.jsonl (the source)")
                && copy.stderr.contains("recorded at the destination only"), "\(copy.stderr)")
        #expect(CopyLog.entries(store: LocalStore(directory: target)).map(\.outcome) == [.copied])
        try Self.expectVerified([names[0]], in: LocalStore(directory: target))
    }

    @Test func twoCopiesToOneDestinationExcludeEachOther() throws {
        let (directory, names) = try Self.archives()
        let target = try TestArchives.temporaryDirectory()
        let held = try LocalStore(directory: target).lease(ArchiveCopier.leaseName, holder: "another copy", at: Date())
        let refused = try CLI.run(["copy", "--from", directory, "--to", target])
        held.release()
        #expect(refused.status == 3 && refused.stderr.contains("another copy"), "\(refused)")
        // A copy killed (kill -9) leaves its lease free (the kernel drops the lock) and a .partial,
        // which the next copy, holding the lease, replaces instead of failing on.
        let stale = target + "/" + names[0] + ".partial"
        FileManager.default.createFile(atPath: stale, contents: Data(repeating: 7, count: 1000))
        let afterKill = try CLI.run(["copy", "--from", directory, "--to", target, names[0]])
        #expect(afterKill.status == 0 && afterKill.stdout.contains("copied   \(names[0])"), "\(afterKill)")
        #expect(!FileManager.default.fileExists(atPath: stale))
        try Self.expectVerified([names[0]], in: LocalStore(directory: target))
        for file in try FileManager.default.contentsOfDirectory(atPath: target) where file.hasPrefix(names[0]) { try FileManager.default.removeItem(atPath: target + "/" + file) }
        // The holder as copy words it (pid, host, time) is said once, not twice.
        let copyHeld = try LocalStore(directory: target).lease(ArchiveCopier.leaseName, holder: "copy from \(directory), pid \(getpid()) on \(ProcessInfo.processInfo.hostName), since 2026-12-04T00:00:00.000Z", at: Date())
        let refusedAgain = try CLI.run(["copy", "--from", directory, "--to", target])
        copyHeld.release()
        #expect(refusedAgain.status == 3 && refusedAgain.stderr.components(separatedBy: "pid \(getpid())").count == 2, "\(refusedAgain.stderr)")
        #expect(try ArchiveCopier.archives(in: LocalStore(directory: target)).isEmpty)
        // Two at once: each either copies or is told the other holds the destination; what is there verifies.
        let runs = try (0..<2).map { _ in try RunningCLI(["copy", "--from", directory, "--to", target]) }
        let statuses = runs.map { $0.finish().status }
        #expect(statuses.allSatisfy { $0 == 0 || $0 == 3 } && statuses.contains(0), "\(statuses)")
        try Self.expectVerified(names, in: LocalStore(directory: target))
        #expect(!(try FileManager.default.contentsOfDirectory(atPath: target)).contains { $0.hasSuffix(".partial") })
    }

    @Test func optionsThatDoNotApplyAreUsageErrors() throws {
        let (directory, names) = try Self.archives()
        let target = try TestArchives.temporaryDirectory()
        let cases: [[String]] = [
            ["copy", "--from", directory],
            ["copy", "--to", target],
            ["copy", "--from", directory, "--to", directory],
            ["copy", "--from", directory, "--to", target, "--latest", names[0]],
            ["copy", "--from", directory, "--to", target, "--latest", "--since", "7d"],
            ["copy", "--from", directory, "--to", target, "--since", "soon"],
            ["copy", "--from", directory, "--to", target, "--sse", "AES256"],
            ["copy", "--from", directory, "--to", target, "--object-lock-days", "3"],
            ["copy", "--from", directory, "--to", target, "/tmp/" + names[0]],
            ["backup", "--database-url", "postgres://nobody@127.0.0.1:1/x", "--dir", directory, "--copy-to", directory],
            ["backup", "--database-url", "postgres://nobody@127.0.0.1:1/x", "--dir", directory, "--copy-to", target, "--copy-to", target],
            ["backup", "--database-url", "postgres://nobody@127.0.0.1:1/x", "--dir", directory, "--copy-to", target, "--copy-to", target + "/"],
            ["backup", "--database-url", "postgres://nobody@127.0.0.1:1/x", "--dir", directory, "--copy-to", target, "--copy-to", target + "/./"],
            ["backup", "--database-url", "postgres://nobody@127.0.0.1:1/x", "--dir", directory, "--copy-to", target, "--sse", "AES256"],
        ]
        for arguments in cases {
            let run = try CLI.run(arguments + ["--json"])
            #expect(run.status == 64 && run.stdout.contains("\"code\" : \"usage\""), "\(arguments): \(run)")
        }
        // A relative directory in RGW_BACKUP_COPY_TO (resolved against wherever cron runs the job) is refused.
        let relative = try CLI.run(["backup", "--database-url", "postgres://nobody@127.0.0.1:1/x", "--dir", directory, "--json"],
                                   environment: ["RGW_BACKUP_COPY_TO": "\(target), offsite"])
        #expect(relative.status == 64 && relative.stdout.contains("RGW_BACKUP_COPY_TO names offsite"), "\(relative)")
        // The usage error of an S3-only option says what to do.
        let lock = try CLI.run(["copy", "--from", directory, "--to", target, "--object-lock-days", "3", "--json"])
        let document = try #require(try JSONSerialization.jsonObject(with: Data(lock.stdout.utf8)) as? [String: Any], "\(lock)")
        #expect(((document["error"] as? [String: Any])?["fix"] as? String)?.contains("s3://") == true, "\(lock.stdout)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: target).isEmpty, "nothing copied")
        let missing = try CLI.run(["copy", "--from", directory, "--to", target, "no_such_20260101T000000Z.sql.gz"])
        #expect(missing.status == 1 && missing.stderr.contains("no_such_20260101T000000Z.sql.gz"), "\(missing)")
        // --since by the time in the names: none in the last second... both in the last 30 days.
        let none = try CLI.run(["copy", "--from", directory, "--to", target, "--since", "1s"])
        #expect(none.status == 0 && none.stderr.contains("nothing to copy"), "\(none)")
        let recent = try CLI.run(["copy", "--from", directory, "--to", target, "--since", "30d", "--json"])
        let recentReport = try Self.report(recent)
        #expect(recent.status == 0 && recentReport.archives.map(\.file) == names, "\(recent)")
    }

    /// A local destination that does not exist (an unmounted disk's mount point) is not made: the
    /// copy fails (exit 4), recorded at the source, and nothing is written under it.
    @Test func aMissingLocalDestinationIsRefusedNotMade() throws {
        let (directory, names) = try Self.archives()
        let unmounted = try TestArchives.temporaryDirectory() + "/mnt/usb/rgw"
        let copy = try CLI.run(["copy", "--from", directory, "--to", unmounted, "--latest", "--json"])
        #expect(copy.status == 4 && copy.stdout.contains("\"code\" : \"copy_failed\""), "\(copy)")
        #expect(copy.stderr.contains("\(unmounted) does not exist") && copy.stderr.contains("Mount the disk"), "\(copy.stderr)")
        #expect(!FileManager.default.fileExists(atPath: unmounted), "not made")
        let recorded = CopyLog.latest(store: LocalStore(directory: directory))
        #expect(recorded.map(\.outcome) == [.failed] && recorded.first?.destination == unmounted && recorded.first?.file == names[1], "\(recorded)")
    }

    /// A typo in --from (an empty location) is an error naming the location near it that holds
    /// archives; a --since window with none stays exit 0 (optionsThatDoNotApplyAreUsageErrors).
    @Test func aSourceWithoutArchivesIsAnErrorNamingTheNearbyOne() throws {
        let (directory, _) = try Self.archives()
        let root = try TestArchives.temporaryDirectory()
        try FileManager.default.moveItem(atPath: directory, toPath: root + "/nightly")
        let typo = try Self.directory(root + "/nighty")
        let target = try TestArchives.temporaryDirectory()
        let copy = try CLI.run(["copy", "--from", typo, "--to", target, "--json"])
        #expect(copy.status == 1 && copy.stdout.contains("\"code\" : \"archive_not_found\""), "\(copy)")
        #expect(copy.stderr.contains("\(typo) holds no archives") && copy.stderr.contains(root + "/nightly"), "\(copy.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: target).isEmpty)
    }

    /// A backup stopped (SIGTERM) while its --copy-to copy is under way: the fix is the copy command
    /// to run (the user ran a backup), and nothing is recorded as a failed copy.
    @Test func aBackupStoppedDuringItsCopyPrintsTheCopyCommandAndRecordsNoFailure() throws {
        let moto = try MotoServer.shared()
        let bucket = try moto.freshBucket()
        let proxy = try FaultProxy(upstream: moto.endpoint)
        // The lease (the first PUT) passes; the archive's upload is held for a while.
        try proxy.set([.init(method: "PUT", skip: 1, times: 1, action: "hang")])
        let directory = try TestArchives.temporaryDirectory()
        let destination = "s3://\(bucket.bucket)/copy"
        try TestDatabase.withMigrated { source in
            let run = try RunningCLI(["backup", "--database-url", source.url, "--dir", directory, "--copy-to", destination],
                                     environment: Self.environment(proxy.endpoint))
            let deadline = Date().addingTimeInterval(60)
            while Date() < deadline, !(try proxy.requests()).contains(where: { $0.action == "hang" }) { Thread.sleep(forTimeInterval: 0.05) }
            run.signal(SIGTERM)
            let result = run.finish()
            #expect(result.status == 143, "\(result)")
            let name = try #require(try ArchiveCopier.archives(in: LocalStore(directory: directory)).first?.name)
            #expect(result.stderr.split(separator: "\n").contains { $0.hasSuffix("rack-gateway-db copy --from \(directory) --to \(destination) \(name)") },
                    "the command ends its line, so that a paste of it runs: \(result.stderr)")
            #expect(!result.stderr.contains("Run the same copy again"), "\(result.stderr)")
            #expect(CopyLog.entries(store: LocalStore(directory: directory)).isEmpty, "no failure recorded for a stop")
            try Self.expectVerified([name], in: LocalStore(directory: directory))
        }
    }

    /// `copy --forget`: a destination a one-off copy failed to (check exit 2 for ever after) is
    /// retired at the source, so list and check there no longer name it; a later copy to a forgotten
    /// destination tracks it again; forgetting one never recorded is a usage error.
    @Test func forgetStopsTrackingADestinationUntilALaterCopy() throws {
        let moto = try MotoServer.shared()
        let (directory, names) = try Self.archives()
        let environment = Self.environment(moto.endpoint)
        let denied = "s3://rgw-no-such-bucket-\(UUID().uuidString.prefix(8).lowercased())/nightly"
        let failed = try CLI.run(["copy", "--from", directory, "--to", denied, "--latest"], environment: environment)
        #expect(failed.status == 4 && failed.stderr.contains("does not exist"), "\(failed)")
        try TestDatabase.withMigrated { database in
            let checkEnvironment = environment.merging(["RGW_DATABASE_URL": database.url]) { $1 }
            let stale = try CLI.run(["check", "--dir", directory, "--max-backup-age", "26h"], environment: checkEnvironment)
            #expect(stale.status == 2 && stale.stdout.contains("FAIL  copies: to \(denied)"), "\(stale)")
            // The printed command pastes as it is: nothing glued to --latest.
            // The printed command ends its line: pasted from it to the end of the line, it runs.
            #expect(stale.output.split(separator: "\n").contains { $0.hasSuffix("rack-gateway-db copy --from \(directory) --to \(denied) --latest") }, "\(stale)")
            let forget = try CLI.run(["copy", "--from", directory, "--to", denied, "--forget"], environment: environment)
            #expect(forget.status == 0 && forget.stdout.contains("Forgot \(denied)"), "\(forget)")
            let fresh = try CLI.run(["check", "--dir", directory, "--max-backup-age", "26h"], environment: checkEnvironment)
            #expect(fresh.status == 0 && !fresh.stdout.contains(denied), "\(fresh)")
        }
        let listed = try CLI.run(["list", "--dir", directory])
        #expect(listed.status == 0 && !listed.stdout.contains(denied) && !listed.stdout.contains("FAILED"), "\(listed)")
        // A later copy to a forgotten destination tracks it again.
        let local = try TestArchives.temporaryDirectory()
        #expect(try CLI.run(["copy", "--from", directory, "--to", local]).status == 0)
        #expect(try CLI.run(["copy", "--from", directory, "--to", local, "--forget"]).status == 0)
        #expect(CopyLog.latest(store: LocalStore(directory: directory)).isEmpty)
        let again = try CLI.run(["copy", "--from", directory, "--to", local, "--latest"])
        #expect(again.status == 0, "\(again)")
        #expect(CopyLog.latest(store: LocalStore(directory: directory)).map(\.file) == [names[1]])
        // Nothing recorded to forget, and options that do not apply: usage errors.
        let unknown = try CLI.run(["copy", "--from", directory, "--to", local + "-typo", "--forget"])
        #expect(unknown.status == 64 && unknown.stderr.contains("records no copy to \(local)-typo") && unknown.stderr.contains(local), "\(unknown)")
        #expect(try CLI.run(["copy", "--from", directory, "--to", local, "--forget", "--latest"]).status == 64)
    }

    /// Bit rot at the destination (a byte flipped, the file's size and version as copies.jsonl
    /// recorded them): copy alone trusts it, but once `verify --sample` marked it VERIFY-FAILED, copy
    /// reads it again and replaces it.
    @Test func aCopyVerifyMarkedFailedIsReadAgainAndReplaced() throws {
        let (directory, names) = try Self.archives()
        let usb = try Self.directory(try TestArchives.temporaryDirectory() + "/usb5")
        #expect(try CLI.run(["copy", "--from", directory, "--to", usb]).status == 0)
        let store = LocalStore(directory: usb)
        let before = try #require(try store.version(names[1]))
        try TestArchives.tamper(usb + "/" + names[1], sidecarToo: false) { $0[$0.count / 2] ^= 0x20 }
        let after = try #require(try store.version(names[1]))
        // Bit rot changes no metadata: the version copies.jsonl recorded is the file's again.
        let log = usb + "/" + CopyLog.fileName
        let text = try String(contentsOfFile: log, encoding: .utf8)
        #expect(text.contains(before))
        try text.replacingOccurrences(of: before, with: after).write(toFile: log, atomically: true, encoding: .utf8)
        let trusted = try CLI.run(["copy", "--from", directory, "--to", usb, "--json"])
        let trustedReport = try Self.report(trusted)
        #expect(trusted.status == 0 && trustedReport.archives.allSatisfy(\.trusted), "the rot is invisible to copy alone: \(trusted)")
        let sample = try CLI.run(["verify", "--dir", usb, "--sample", "100"])
        #expect(sample.status == 2, "\(sample)")
        #expect(try CLI.run(["list", "--dir", usb]).stdout.contains("VERIFY-FAILED"))

        let repair = try CLI.run(["copy", "--from", directory, "--to", usb])
        #expect(repair.status == 0, "\(repair)")
        #expect(repair.stdout.contains("replaced \(names[1])") && repair.stdout.contains("VERIFY-FAILED") && repair.stdout.contains("skipped  \(names[0])"),
                "\(repair.stdout)")
        try Self.expectVerified(names, in: store)
        let listed = try CLI.run(["list", "--dir", usb])
        #expect(listed.status == 0 && !listed.stdout.contains("VERIFY-FAILED"), "\(listed)")
    }

    /// Two sources feeding one destination: an intact archive there of the same name (it matches its
    /// own .sha256) is not overwritten (copy_failed naming both digests); a file there that matches
    /// neither (damaged) or has no .sha256 is replaced.
    @Test func anotherIntactArchiveOfTheSameNameIsNotOverwritten() throws {
        let (directory, names) = try Self.archives()
        let usb = try Self.directory(try TestArchives.temporaryDirectory() + "/usb")
        #expect(try CLI.run(["copy", "--from", directory, "--to", usb]).status == 0)
        // src2 holds another valid archive under the first one's name, with its correct sidecar.
        let source2 = try TestArchives.temporaryDirectory()
        try FileManager.default.copyItem(atPath: directory + "/" + names[1], toPath: source2 + "/" + names[0])
        try TestArchives.tamper(source2 + "/" + names[0], sidecarToo: true) { _ in }
        let theirs = try #require(try ArchiveLocation(store: LocalStore(directory: usb), name: names[0]).recordedDigest())
        let ours = try #require(try ArchiveLocation(store: LocalStore(directory: source2), name: names[0]).recordedDigest())
        #expect(theirs != ours)
        let version = try LocalStore(directory: usb).version(names[0])

        let refused = try CLI.run(["copy", "--from", source2, "--to", usb, "--json"])
        #expect(refused.status == 4 && refused.stdout.contains("\"code\" : \"copy_failed\""), "\(refused)")
        let result = try #require(try Self.report(refused).archives.first)
        #expect(result.outcome == .failed && !result.replaced && result.anotherArchive == theirs, "\(refused.stdout)")
        let problem = result.problems.joined()
        #expect(problem.contains(theirs) && problem.contains(ours) && problem.contains("own --to prefix") && problem.contains("not overwritten"), "\(problem)")
        #expect(try LocalStore(directory: usb).version(names[0]) == version, "left as it was")
        try Self.expectVerified(names, in: LocalStore(directory: usb))
        // The destination's log still says its file is the first source's good copy; the second
        // source records the failure.
        #expect(CopyLog.latest(store: LocalStore(directory: usb)).filter { $0.file == names[0] }.map(\.outcome) == [.copied])
        #expect(CopyLog.latest(store: LocalStore(directory: source2)).map(\.outcome) == [.failed])

        // A file there without a .sha256 (a copy cut before its sidecars): replaced, and said so.
        try TestArchives.tamper(usb + "/" + names[1], sidecarToo: false) { $0[$0.count / 2] ^= 0x01 }
        try FileManager.default.removeItem(atPath: usb + "/" + names[1] + ".sha256")
        let noSidecar = try CLI.run(["copy", "--from", directory, "--to", usb, names[1]])
        #expect(noSidecar.status == 0 && noSidecar.stdout.contains("replaced \(names[1])") && noSidecar.stdout.contains("had no .sha256"), "\(noSidecar)")
        try Self.expectVerified(names, in: LocalStore(directory: usb))
    }

    /// A destination that cannot be used (no such bucket) is a failed copy, exit 4, its fix naming
    /// --to; a lease held there says when it expires.
    @Test func aDestinationThatCannotBeUsedExits4AndNamesTo() throws {
        let moto = try MotoServer.shared()
        let bucket = try moto.freshBucket()
        let (directory, _) = try Self.archives()
        let environment = Self.environment(moto.endpoint)
        let missing = "s3://\(bucket.bucket)-missing/nightly"
        let refused = try CLI.run(["copy", "--from", directory, "--to", missing, "--latest", "--json"], environment: environment)
        #expect(refused.status == 4 && refused.stdout.contains("\"code\" : \"copy_failed\""), "\(refused)")
        #expect(refused.output.contains("does not exist") && refused.output.contains("Check --to \(missing)") && !refused.output.contains("in --dir"), "\(refused)")
        #expect(CopyLog.latest(store: LocalStore(directory: directory)).map(\.outcome) == [.failed])

        let held = try S3Store(client: bucket, prefix: "nightly").lease(ArchiveCopier.leaseName, holder: "another copy", at: Date())
        defer { held.release() }
        let locked = try CLI.run(["copy", "--from", directory, "--to", "s3://\(bucket.bucket)/nightly", "--latest"], environment: environment)
        #expect(locked.status == 3 && locked.stderr.contains("its lease expires by itself at 20") && !locked.stderr.contains("itself until"), "\(locked)")
    }

    /// `backup --copy-to s3://...` without AWS credentials: the backup is written, the copy is a
    /// failed copy (exit 4) recorded at the source with the credentials error's message and fix; a
    /// malformed --copy-to stays a usage error before anything runs.
    @Test func aCopyDestinationWithoutCredentialsDoesNotCostTheBackup() throws {
        let directory = try TestArchives.temporaryDirectory()
        let home = try TestArchives.temporaryDirectory()
        let environment = ["AWS_EC2_METADATA_DISABLED": "true", "HOME": home, "AWS_CONFIG_FILE": home + "/config",
                           "AWS_SHARED_CREDENTIALS_FILE": home + "/credentials"]
        try TestDatabase.withMigrated { source in
            let malformed = try CLI.run(["backup", "--database-url", source.url, "--dir", directory, "--copy-to", "s3://Off_Site/nightly"], environment: environment)
            #expect(malformed.status == 64, "\(malformed)")
            #expect(try ArchiveCopier.archives(in: LocalStore(directory: directory)).isEmpty)

            let receiver = try HTTPReceiver()
            let backup = try CLI.run(["backup", "--database-url", source.url, "--dir", directory, "--copy-to", "s3://offsite/nightly", "--json",
                                      "--webhook", receiver.url("/hook")], environment: environment)
            #expect(backup.status == 4 && backup.stdout.contains("\"code\" : \"copy_failed\""), "\(backup)")
            let archives = try ArchiveCopier.archives(in: LocalStore(directory: directory))
            #expect(archives.count == 1)
            try Self.expectVerified(archives.map(\.name), in: LocalStore(directory: directory))
            let copies = try #require(try CLI.decode(BackupReport.self, backup.stdout).copies)
            #expect(copies.map(\.destination) == ["s3://offsite/nightly"] && copies.map(\.outcome) == [.failed], "\(backup.stdout)")
            #expect(copies[0].problems.joined().contains("no AWS credentials"), "\(copies)")
            let recorded = CopyLog.latest(store: LocalStore(directory: directory))
            #expect(recorded.map(\.destination) == ["s3://offsite/nightly"] && recorded.map(\.outcome) == [.failed], "\(recorded)")
            // The webhook's headline: the backup is done, only its copy failed.
            let hook = try #require(receiver.requests.last?.json, "\(receiver.requests)")
            let text = try #require(hook["text"] as? String)
            #expect(text.hasPrefix("rack-gateway-db backup done, copy FAILED (exit 4): the backup is written and verified"), "\(text)")
        }
    }

    /// The whole story with the real commands: `copy` to a directory and a bucket, then what `list` and
    /// `check` of each location say; a byte flipped in the local copy, found by `verify --sample 100`
    /// there (VERIFY-FAILED, exit 2) and by `list` (copy CHANGED), then replaced by `copy` again, after
    /// which both say the copy is good again.
    @Test func listCheckAndASampleOfTheDestinationSeeWhatCopyDid() throws {
        let moto = try MotoServer.shared()
        let bucket = try moto.freshBucket()
        let (directory, names) = try Self.archives()
        let environment = Self.environment(moto.endpoint)
        let local = try Self.directory(try TestArchives.temporaryDirectory() + "/offsite")
        let remote = "s3://\(bucket.bucket)/offsite"
        for destination in [local, remote] {
            let copy = try CLI.run(["copy", "--from", directory, "--to", destination], environment: environment)
            #expect(copy.status == 0, "\(copy)")
        }
        func copies(_ location: String) throws -> [String: [[String: Any]]] {
            let list = try CLI.run(["list", "--dir", location, "--json"], environment: environment)
            #expect(list.status == 0, "\(list)")
            let archives = try #require(try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [[String: Any]], "\(list)")
            var result: [String: [[String: Any]]] = [:]
            for archive in archives { result[URL(fileURLWithPath: archive["file"] as? String ?? "").lastPathComponent] = archive["copies"] as? [[String: Any]] ?? [] }
            return result
        }
        // At the source: each archive's two copies, to the directory and the bucket, as recorded.
        let atSource = try copies(directory)
        for name in names {
            let these = atSource[name] ?? []
            #expect(Set(these.compactMap { $0["location"] as? String }) == [local, remote] && these.allSatisfy { $0["direction"] as? String == "to" },
                    "\(name): \(these)")
        }
        // At each destination: a copy of the source, verified.
        for destination in [local, remote] {
            let atDestination = try copies(destination)
            for name in names {
                let these = atDestination[name] ?? []
                #expect(these.count == 1 && these.first?["direction"] as? String == "from" && these.first?["state"] as? String == "verified"
                        && these.first?["location"] as? String == directory, "\(destination) \(name): \(these)")
            }
        }
        try TestDatabase.withMigrated { database in
            let metrics = try TestArchives.temporaryDirectory() + "/rgw_check.prom"
            let check = try CLI.run(["check", "--dir", directory, "--max-backup-age", "26h", "--metrics-file", metrics],
                                    environment: environment.merging(["RGW_DATABASE_URL": database.url]) { $1 })
            #expect(check.status == 0 && check.stdout.contains("copies: to \(local): newest verified copy \(names[1])")
                    && check.stdout.contains("copies: to \(remote): newest verified copy \(names[1])"), "\(check)")
            let written = try String(contentsOfFile: metrics, encoding: .utf8)
            let values = Dictionary(written.split(separator: "\n").filter { !$0.hasPrefix("#") }.compactMap { line -> (String, String)? in
                guard let brace = line.firstIndex(of: "{"), let space = line.lastIndex(of: " ") else { return nil }
                return (String(line[..<brace]), String(line[line.index(after: space)...]))
            }) { a, _ in a }
            #expect(values["rgw_copy_destinations"] == "2" && values["rgw_copy_stale_destinations"] == "0", "\(written)")
            // A later copy of the newest archive to the bucket FAILED (recorded at the source): that
            // destination is stale at once (exit 2), and the metric says so.
            try CopyLog.append(CopyLog.Entry(file: names[1], source: directory, destination: remote, outcome: .failed, sha256: "", size: 0,
                                             copiedAt: Date(), checks: [], problems: ["403 Forbidden"]), store: LocalStore(directory: directory))
            let stale = try CLI.run(["check", "--dir", directory, "--max-backup-age", "26h", "--metrics-file", metrics],
                                    environment: environment.merging(["RGW_DATABASE_URL": database.url]) { $1 })
            #expect(stale.status == 2 && stale.stdout.contains("FAIL  copies: to \(remote)"), "\(stale)")
            let after = try String(contentsOfFile: metrics, encoding: .utf8)
            #expect(after.split(separator: "\n").contains { $0.hasPrefix("rgw_copy_stale_destinations{") && $0.hasSuffix(" 1") }, "\(after)")
            // check of an S3 location whose copy failed: the fix names that location, not DIR.
            let elsewhere = "s3://\(bucket.bucket)/elsewhere"
            try CopyLog.append(CopyLog.Entry(file: names[1], source: remote, destination: elsewhere, outcome: .failed, sha256: "", size: 0,
                                             copiedAt: Date(), checks: [], problems: ["403 Forbidden"]), store: S3Store(client: bucket, prefix: "offsite"))
            let remoteCheck = try CLI.run(["check", "--dir", remote, "--max-backup-age", "26h"],
                                          environment: environment.merging(["RGW_DATABASE_URL": database.url]) { $1 })
            #expect(remoteCheck.status == 2 && remoteCheck.stderr.contains("rack-gateway-db copy --from \(remote) --to \(elsewhere) --latest"), "\(remoteCheck)")
        }

        // A byte flipped in the middle of the newest archive's local copy.
        let damaged = local + "/" + names[1]
        let size = try #require(try FileManager.default.attributesOfItem(atPath: damaged)[.size] as? Int)
        let handle = try #require(FileHandle(forUpdatingAtPath: damaged))
        try handle.seek(toOffset: UInt64(size / 2))
        let byte = try #require(try handle.read(upToCount: 1)?.first)
        try handle.seek(toOffset: UInt64(size / 2))
        try handle.write(contentsOf: Data([byte ^ 0x55]))
        try handle.close()
        let changed = try copies(local)[names[1]] ?? []
        #expect(changed.first?["state"] as? String == "changed", "\(changed)")
        let sample = try CLI.run(["verify", "--dir", local, "--sample", "100"], environment: environment)
        #expect(sample.status == 2 && sample.stderr.contains(names[1]), "\(sample)")
        let listed = try CLI.run(["list", "--dir", local], environment: environment)
        #expect(listed.stdout.split(separator: "\n").contains { $0.contains(names[1]) && $0.contains("VERIFY-FAILED") }, "\(listed)")

        // copy again finds it and replaces it; the destination's list and a full sample agree.
        let again = try CLI.run(["copy", "--from", directory, "--to", local, "--json"], environment: environment)
        #expect(again.status == 0, "\(again)")
        let report = try Self.report(again)
        #expect(report.copied == 1 && report.skipped == 1, "\(again.stdout)")
        #expect((try copies(local)[names[1]] ?? []).first?["state"] as? String == "verified")
        let resampled = try CLI.run(["verify", "--dir", local, "--sample", "100"], environment: environment)
        #expect(resampled.status == 0, "\(resampled)")
        let relisted = try CLI.run(["list", "--dir", local], environment: environment)
        #expect(!relisted.stdout.contains("VERIFY-FAILED"), "\(relisted)")
    }

}

/// A destination that stops the run (as Ctrl-C does) once `after` bytes of `stopIn` are written.
final class StoppingStore: ArchiveStore, @unchecked Sendable {
    let inner: LocalStore
    let stopIn: String
    let after: Int
    let cancellation: Cancellation

    init(inner: LocalStore, stopIn: String, after: Int, cancellation: Cancellation) {
        (self.inner, self.stopIn, self.after, self.cancellation) = (inner, stopIn, after, cancellation)
    }

    var location: String { inner.location }
    func create(_ name: String) throws -> StoreWriter {
        let writer = try inner.create(name)
        return name == stopIn ? Stopping(writer, after: after, cancellation: cancellation) : writer
    }
    func open(_ name: String) throws -> StoreReader? { try inner.open(name) }
    func list() throws -> [StoreEntry] { try inner.list() }
    func delete(_ name: String) throws { try inner.delete(name) }
    func put(_ name: String, _ contents: [UInt8]) throws { try inner.put(name, contents) }
    func lease(_ name: String, holder: String, at time: Date) throws -> StoreLease { try inner.lease(name, holder: holder, at: time) }
    func appendLine(_ name: String, _ line: [UInt8]) throws { try inner.appendLine(name, line) }
    func version(_ name: String) throws -> String? { try inner.version(name) }
    func localPath(_ name: String) -> String? { inner.localPath(name) }

    final class Stopping: StoreWriter, @unchecked Sendable {
        let inner: StoreWriter
        let after: Int
        let cancellation: Cancellation
        var written = 0
        init(_ inner: StoreWriter, after: Int, cancellation: Cancellation) { (self.inner, self.after, self.cancellation) = (inner, after, cancellation) }
        func append(_ bytes: ArraySlice<UInt8>) throws {
            try inner.append(bytes)
            written += bytes.count
            if written >= after { _ = cancellation.cancel(.signal(SIGINT)) }
        }
        func publish() throws { try inner.publish() }
        func discard() { inner.discard() }
    }
}
