import Foundation
import RGWCompression
import RGWPostgres
import Testing
import TestSupport
@testable import RackGatewayDB

/// One conformance suite that both stores pass: a local directory and an S3 bucket (moto).
@Suite("archive stores: one conformance suite")
struct ArchiveStoreTests {
    static func conformance(_ store: ArchiveStore) throws {
        // Written in pieces across a multipart boundary; invisible until published.
        let data = (0..<(6 << 20) + 1234).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 11) }
        let writer = try store.create("a.sql.gz")
        var offset = 0
        for size in [1, 1 << 20, 3 << 20, 2 << 20 + 1000] {
            try writer.append(data[offset..<min(offset + size, data.count)][...])
            offset = min(offset + size, data.count)
        }
        try writer.append(data[offset...])
        #expect(try store.size("a.sql.gz") == nil, "\(store.location): nothing under the final name before publish")
        #expect(try store.list().isEmpty)
        try writer.publish()
        #expect(try store.size("a.sql.gz") == data.count)
        #expect(try store.read("a.sql.gz", offset: 0, count: 16) == Array(data[0..<16]))
        #expect(try store.read("a.sql.gz", offset: data.count - 124, count: 124) == Array(data[(data.count - 124)...]), "a byte range from the end")
        #expect(throws: ToolError.self) { try store.read("a.sql.gz", offset: data.count - 10, count: 20) }

        // A discarded writer leaves nothing under any name.
        let abandoned = try store.create("b.sql.gz")
        try abandoned.append(data[...])
        abandoned.discard()
        #expect(try store.size("b.sql.gz") == nil)

        try store.put("a.sql.gz.sha256", Array("abc  a.sql.gz\n".utf8))
        #expect(try store.list().map { [$0.name, String($0.size)] } == [["a.sql.gz", String(data.count)], ["a.sql.gz.sha256", "14"]])
        // A version that the listing and a lookup agree on, and that a rewrite of the bytes changes.
        let version = try store.version("a.sql.gz")
        let listedVersion = try store.list().first?.version
        #expect(version != nil && version == listedVersion)
        try store.put("a.sql.gz.sha256", Array("abd  a.sql.gz\n".utf8))
        let sidecarVersion = try store.list().last?.version
        try store.put("a.sql.gz.sha256", Array("abc  a.sql.gz\n".utf8))
        let rewrittenVersion = try store.version("a.sql.gz.sha256")
        #expect(sidecarVersion != nil && rewrittenVersion != sidecarVersion)

        // Leases are exclusive and name the holder.
        let lease = try store.lease(".lock", holder: "backup pid 42", at: Date())
        let second = try #require(throws: ToolError.self) { _ = try store.lease(".lock", holder: "backup pid 43", at: Date()) }
        #expect(second.category == .locked && second.message.contains("backup pid 42"), "\(second)")
        if store is S3Store {
            // A lease a killed run left: when it expires, and how to clear it once the run is gone.
            #expect(second.message.contains(" until 20") && second.fix?.contains("aws s3 rm \(store.location)/.lock") == true, "\(second)")
        }
        lease.release()
        try store.lease(".lock", holder: "backup pid 44", at: Date()).release()
        // Of runs racing for a free lease, exactly one gets it; the others are told it is held.
        let racers = LockedList<Result<StoreLease, Error>>()
        DispatchQueue.concurrentPerform(iterations: 6) { racer in
            racers.add(Result { try store.lease(".lock", holder: "prune pid \(racer)", at: Date()) })
        }
        let outcomes = racers.items
        let winners = outcomes.compactMap { try? $0.get() }
        #expect(winners.count == 1, "\(store.location): \(winners.count) of 6 racing runs got the lease")
        #expect(outcomes.allSatisfy { outcome in
            if case .failure(let error) = outcome { return (error as? ToolError)?.category == .locked } else { return true }
        }, "\(outcomes)")
        winners.forEach { $0.release() }

        try store.delete("a.sql.gz")
        try store.delete("a.sql.gz.sha256")
        #expect(try store.list().isEmpty)

        // Logs: lines appended by concurrent runs are all kept, whole.
        let errors = FirstError()
        DispatchQueue.concurrentPerform(iterations: 6) { writer in
            for line in 0..<4 {
                do { try store.appendLine("log.jsonl", Array("{\"writer\":\(writer),\"line\":\(line)}\n".utf8)) } catch { errors.record(error) }
            }
        }
        #expect(errors.error == nil, "\(String(describing: errors.error))")
        let lines = String(decoding: try #require(try store.get("log.jsonl")), as: UTF8.self).split(separator: "\n")
        #expect(Set(lines).count == 24 && lines.count == 24, "\(store.location): \(lines.count) lines")
        try store.delete("log.jsonl")

        // The archive writer and reader run over the store, as backup, verify and restore do.
        try archiveRoundTrip(store)
    }

    /// An archive written by `ArchiveWriter` (members, manifest, trailer, sidecar) reads back
    /// through `ArchiveReader` from the same store; an existing name is never overwritten.
    static func archiveRoundTrip(_ store: ArchiveStore) throws {
        let compressor = try GzipMemberCompressor(level: 1)
        let writer = try ArchiveWriter(store: store, name: "x_20260101T000000Z.sql.gz")
        try writer.append(member: try compressor.compress(Array("-- rack-gateway-db archive format 1\n".utf8))[...], kind: .header)
        try writer.append(member: try compressor.compress(Array("SELECT 1;\n".utf8))[...], kind: .preData)
        // The rest of the documented order (ArchiveLayout), which opening the archive checks.
        try writer.append(member: try compressor.compress(Array(ArchiveLayout.sequencesText([]).utf8))[...], kind: .sequences)
        try writer.append(member: try compressor.compress(Array("\n".utf8))[...], kind: .postData)
        #expect(try store.size(writer.name) == nil, "unpublished")
        let manifest = ArchiveManifest(toolVersion: "t", createdAt: "c", completedAt: "c", database: "d", serverVersion: "15", serverVersionNum: 150000,
                                       pgDumpVersion: "15", snapshot: "s", sessionSettings: [:], schemaMigrations: [], roles: ["app"],
                                       members: writer.recordedMembers, tables: [], sequences: [], suspect: nil)
        let digest = try writer.finish(manifest: manifest, clock: SystemClock()) { try compressor.compress($0) }
        let reader = try ArchiveReader(store: store, name: writer.name)
        #expect(reader.manifest == manifest && reader.sidecarDigest() == digest && reader.fileSize == writer.bytesWritten)
        #expect(reader.path == "\(store.location)/\(writer.name)")
        let sha = SHA256()
        try reader.stream(offset: 0, count: reader.fileSize) { sha.update($0); return true }
        #expect(SHA256.hex(sha.finalize()) == digest)
        let preData = reader.manifest.members[1]
        var text = [UInt8]()
        try GzipStreamInflater().inflate(try reader.readBytes(offset: preData.offset, count: preData.length)[...], into: &text)
        #expect(String(decoding: text, as: UTF8.self) == "SELECT 1;\n", "a member read back by its recorded offset")
        #expect(throws: ToolError.self) { _ = try ArchiveWriter(store: store, name: writer.name) }
        if let path = store.localPath(writer.name) {
            #expect(FileManager.default.fileExists(atPath: path) && reader.isRemote == false)
        } else {
            #expect(reader.isRemote)
        }
        try store.delete(writer.name)
        try store.delete(writer.name + ".sha256")
        try store.syncDirectory()
        #expect(try store.list().isEmpty)
    }

    @Test func localDirectory() throws {
        let directory = try TestArchives.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try Self.conformance(LocalStore(directory: directory + "/archives"))
    }

    @Test func s3Bucket() throws {
        let client = try MotoServer.shared().freshBucket()
        try Self.conformance(S3Store(client: client, prefix: "nightly/", partSize: 5 << 20))
        // The prefix keeps other keys out of the listing.
        try client.putObject(key: "elsewhere/x", data: [1])
        #expect(try S3Store(client: client, prefix: "nightly").list().isEmpty)
    }
}

@Suite("store locations")
struct StoreLocationTests {
    @Test func directoriesAndS3URLs() throws {
        #expect(try StoreLocation.parse("/var/backups") == .local("/var/backups"))
        #expect(try StoreLocation.parse("s3://rgw-backups/nightly/prod/") == .s3(bucket: "rgw-backups", prefix: "nightly/prod"))
        #expect(try StoreLocation.parse("s3://rgw-backups") == .s3(bucket: "rgw-backups", prefix: ""))
        #expect(throws: ToolError.self) { try StoreLocation.parse("s3://Bad_Bucket/x") }
    }

    @Test func s3SettingsComeFromTheEnvironmentLikeTheSDKs() throws {
        let base = ["AWS_ACCESS_KEY_ID": "AKIA", "AWS_SECRET_ACCESS_KEY": "secret"]
        let aws = try StoreLocation.s3Client(bucket: "b", endpoint: nil, environment: base.merging(["AWS_DEFAULT_REGION": "eu-west-1"]) { $1 }, clock: SystemClock())
        #expect(aws.endpoint == "https://s3.eu-west-1.amazonaws.com" && !aws.pathStyle && aws.url(key: "k") == "https://b.s3.eu-west-1.amazonaws.com/k")
        let local = try StoreLocation.s3Client(bucket: "b", endpoint: nil, environment: base.merging(["AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9000", "AWS_REGION": "us-west-2", "AWS_DEFAULT_REGION": "eu-west-1"]) { $1 }, clock: SystemClock())
        #expect(local.region == "us-west-2" && local.pathStyle && local.url(key: "a b") == "http://127.0.0.1:9000/b/a%20b")
        let flag = try StoreLocation.s3Client(bucket: "b", endpoint: "http://minio:9000/", environment: base, clock: SystemClock())
        #expect(flag.endpoint == "http://minio:9000")
        let missing = try #require(throws: ToolError.self) { _ = try StoreLocation.s3Client(bucket: "b", endpoint: nil, environment: ["AWS_EC2_METADATA_DISABLED": "true"], clock: SystemClock()) }
        #expect(missing.description.contains("AWS_ACCESS_KEY_ID") && missing.message.contains("s3://b"), "\(missing)")
        let token = try StoreLocation.s3Client(bucket: "b", endpoint: nil, environment: base.merging(["AWS_SESSION_TOKEN": "tok"]) { $1 }, clock: SystemClock())
        #expect(try token.credentials.current().sessionToken == "tok" && token.credentials.source == "environment")
    }
}

/// `backup` into S3 (moto), read back with the reference client and stock tools.
@Suite("backup into S3")
struct BackupToS3Tests {
    @Test func anArchiveUploadedInPartsIsByteIdenticalAndRestoresWithStockTools() throws {
        let server = try MotoServer.shared()
        let client = try server.freshBucket()
        let store = S3Store(client: client, prefix: "nightly", partSize: 5 << 20)
        try TestDatabase.withSampleData(events: 40000) { source in
            var options = BackupOptions(store: store, jobs: 2, compressors: 2)
            options.compressionLevel = 1  // more than one 5 MiB part
            let report = try BackupRunner(settings: try source.settings, options: options, logger: .quiet).run()
            let name = URL(fileURLWithPath: report.file).lastPathComponent
            #expect(report.file == "s3://\(client.bucket)/nightly/\(name)")
            #expect(report.sizeBytes > 5 << 20, "the upload took several parts")
            #expect(try store.list().map(\.name) == [name, name + ".sha256"], "the archive and its sidecar, nothing else (no lease left)")
            // Verified in place with ranged reads: the trailer and manifest from the end, then every member.
            let remote = try ArchiveReader(store: store, name: name)
            let verification = try ArchiveVerifier().verify(reader: remote)
            #expect(verification.ok && verification.sidecar == "ok", "\(verification.problems)")
            #expect(try ArchiveVerifier().preflight(remote).ok)

            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            for object in [name, name + ".sha256"] {
                let copy = try Shell.run("/usr/bin/env", ["python3", "-m", "awscli", "--endpoint-url", server.endpoint, "s3", "cp",
                                                          "s3://\(client.bucket)/nightly/\(object)", directory + "/" + object], environment: MotoServer.awsEnvironment)
                #expect(copy.status == 0, "\(copy.stderr)")
            }
            let check = try Shell.run("/bin/sh", ["-c", #"cd "$1" && sha256sum -c "$2""#, "sh", directory, name + ".sha256"])
            #expect(check.status == 0, "\(check.stdout)\(check.stderr)")
            #expect(try ArchiveVerifier().verify(path: directory + "/" + name).ok)
            let manifest = try ArchiveReader(path: directory + "/" + name).manifest
            try TestDatabase.with { restored in
                try TestArchives.restoreWithStockTools(directory + "/" + name, into: restored)
                #expect(try TestArchives.fingerprintMismatches(manifest, in: restored) == [])
            }
            // The other way: an archive the AWS CLI copied up restores straight from the bucket.
            for object in [name, name + ".sha256"] {
                let copy = try Shell.run("/usr/bin/env", ["python3", "-m", "awscli", "--endpoint-url", server.endpoint, "s3", "cp",
                                                          directory + "/" + object, "s3://\(client.bucket)/copied/\(object)"], environment: MotoServer.awsEnvironment)
                #expect(copy.status == 0, "\(copy.stderr)")
            }
            try TestDatabase.withUnused { target in
                var options = RestoreOptions(jobs: 2)
                options.verify = true
                let runner = RestoreRunner(target: try RestoreTarget(settings: try ConnectionSettings(conninfo: target.url)), options: options, logger: .quiet)
                let report = try runner.run(archive: ArchiveLocation(store: S3Store(client: client, prefix: "copied"), name: name))
                #expect(report.verified && report.mismatches.isEmpty && report.rows == manifest.totalRows)
            }
        }
    }

    @Test func aFailedBackupLeavesNoObject() throws {
        let client = try MotoServer.shared().freshBucket()
        let store = S3Store(client: client, prefix: "", partSize: 5 << 20)
        try BackupTests.withRowLevelSecurityRole { _, url in
            var options = BackupOptions(store: store, jobs: 2, compressors: 2)
            let settings = try ConnectionSettings(conninfo: url)
            #expect(throws: ToolError.self) { try BackupRunner(settings: settings, options: options, logger: .quiet).run() }
            #expect(try store.list().isEmpty, "no archive, no sidecar, no lease")
        }
    }

    @Test func theCLIBacksUpToS3AndVerifiesThere() throws {
        let server = try MotoServer.shared()
        let client = try server.freshBucket()
        try TestDatabase.withMigrated { source in
            try source.psql("INSERT INTO users (email) SELECT 'u' || i || '@example.com' FROM generate_series(1, 500) i")
            let environment = MotoServer.awsEnvironment.merging(["RGW_DATABASE_URL": source.url, "AWS_ENDPOINT_URL_S3": server.endpoint]) { $1 }
            let backup = try CLI.run(["backup", "--dir", "s3://\(client.bucket)/nightly", "--json"], environment: environment)
            #expect(backup.status == 0, "\(backup)")
            #expect(!backup.output.contains("AWS_SECRET") && !backup.output.contains("test:test"))
            let name = try #require(try S3Store(client: client, prefix: "nightly").list().first { $0.name.hasSuffix(".sql.gz") }?.name)
            let verify = try CLI.run(["verify", "s3://\(client.bucket)/nightly/\(name)"], environment: environment)
            #expect(verify.status == 0 && verify.stdout.contains("sidecar ok"), "\(verify)")
            let dir = "s3://\(client.bucket)/nightly"
            let list = try CLI.run(["list", "--dir", dir], environment: environment)
            #expect(list.status == 0 && list.stdout.contains(name) && list.stdout.contains("verified"), "\(list)")
            // --latest reads the listing, the drill and the restore read the object with ranged GETs.
            let drill = try CLI.run(["drill", "--latest", "--dir", dir, "--database-url", source.url], environment: environment)
            #expect(drill.status == 0 && drill.stdout.contains("PASS"), "\(drill)")
            let drilled = try CLI.run(["list", "--dir", dir], environment: environment)
            #expect(drilled.stdout.contains("verified,drilled"), "\(drilled)")
            try TestDatabase.withUnused { target in
                let restore = try CLI.run(["restore", "--latest", "--dir", dir, "--target-url", target.url, "--verify"], environment: environment)
                #expect(restore.status == 0 && restore.stdout.contains("verified: every table"), "\(restore)")
            }
            // A pg_dump file in the bucket is not restored in place; the message says to fetch it.
            try client.putObject(key: "nightly/plain.sql", data: Array("SELECT 1;\n".utf8))
            let foreign = try CLI.run(["restore", "\(dir)/plain.sql", "--target-url", source.cluster.url(database: "rgw_never_s3")], environment: environment)
            #expect(foreign.status == 1 && foreign.stderr.contains("copy it down first"), "\(foreign)")
            try client.deleteObject(key: "nightly/plain.sql")
            let logs = try S3Store(client: client, prefix: "nightly").list().map(\.name)
            #expect(logs.contains("verifications.jsonl") && logs.contains("drills.jsonl"), "\(logs)")
            // A second backup a second later; prune keeps the newest and deletes the older with its sidecar.
            Thread.sleep(forTimeInterval: 1.1)
            #expect(try CLI.run(["backup", "--dir", dir], environment: environment).status == 0)
            let prune = try CLI.run(["prune", "--dir", dir, "--keep-last", "1"], environment: environment)
            #expect(prune.status == 0 && prune.stdout.contains("delete  \(name)"), "\(prune)")
            let left = try S3Store(client: client, prefix: "nightly").list().map(\.name).filter { $0.hasSuffix(".sql.gz") || $0.hasSuffix(".sha256") }
            #expect(left.count == 2 && !left.contains(name) && !left.contains(name + ".sha256"), "\(left)")
            let noKeys = try CLI.run(["backup", "--dir", "s3://\(client.bucket)/nightly"], environment: ["RGW_DATABASE_URL": source.url, "AWS_EC2_METADATA_DISABLED": "true"])
            #expect(noKeys.status == 1 && noKeys.stderr.contains("AWS_ACCESS_KEY_ID"), "\(noKeys)")
        }
    }
}
