import Foundation
import RGWCompression
@testable import RackGatewayDB
import Testing
import TestSupport

/// From S3, `restore --latest` and `drill --latest` with `--verify-key` fetch the archive's bytes
/// once: the command opens the archive into a local spool whose bytes were hashed for the signature
/// and the sidecar, and every layer below reads that opened archive. Counted as the response bytes
/// of the GETs of the archive's key through the proxy in front of moto. Before, the `--latest`
/// choice, the drill, the restore and the load each opened it by name: 4 times for the drill, 3 for
/// the restore. Without a key the sidecar's SHA-256 is a pass of its own before the load (twice).
@Suite("From S3, an archive's bytes are fetched once")
struct FetchOnceTests {
    @Test func latestFetchesTheArchiveOnceWithAndWithoutAVerifyKey() throws {
        let moto = try MotoServer.shared()
        let bucket = try moto.freshBucket().bucket
        let proxy = try FaultProxy(upstream: moto.endpoint)
        let keys = try TestKeys.make()
        defer { try? FileManager.default.removeItem(atPath: keys.directory) }
        try TestDatabase.withMigrated { source in
            // Random text, so that the archive is far larger than its trailer and manifest.
            _ = try source.psql("INSERT INTO users (email) SELECT md5(random()::text) || md5(random()::text) || i || '@example.com' FROM generate_series(1, 30000) i")
            let dir = "s3://\(bucket)/nightly"
            let spools = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: spools) }
            let environment = MotoServer.awsEnvironment.merging(["RGW_DATABASE_URL": source.url, "AWS_ENDPOINT_URL_S3": proxy.endpoint, "TMPDIR": spools]) { $1 }
            let backup = try CLI.run(["backup", "--dir", dir, "--sign-key", keys.signKey], environment: environment)
            #expect(backup.status == 0, "\(backup)")
            let store = S3Store(client: proxy.client(bucket: bucket), prefix: "nightly")
            let name = try #require(try store.list().first { $0.name.hasSuffix(".sql.gz") }?.name)
            let reader = try ArchiveReader(store: store, name: name)
            let size = reader.storedSize
            // What an opening reads by ranges besides the archive itself: the trailer member and the
            // manifest it points to. `--latest` lists the directory (one opening) and opens the one it
            // chooses (another, from the spool when a signature was checked).
            let opening = ArchiveTrailer.memberLength + reader.trailer.manifestLength
            #expect(size > 8 * opening, "the archive (\(size) bytes) dwarfs its trailer and manifest (\(opening))")

            func fetched(_ arguments: [String]) throws -> (CLI.Result, Int) {
                try proxy.clearLog()
                let result = try CLI.run(arguments + ["--dir", dir], environment: environment)
                let bytes = try proxy.requests().filter { $0.method == "GET" && $0.path == "/\(bucket)/nightly/\(name)" }.map(\.bytes).reduce(0, +)
                return (result, bytes)
            }
            for key: [String] in [[], ["--verify-key", keys.publicKey]] {
                // Once with a key; without one, the SHA-256 pass and the load.
                let allowed = (key.isEmpty ? 2 : 1) * size + 2 * opening
                let (drill, drillBytes) = try fetched(["drill", "--latest", "--database-url", source.url] + key)
                #expect(drill.status == 0 && drill.stdout.contains("Drill PASSED"), "\(drill)")
                #expect(drillBytes <= allowed, "drill --latest \(key.first ?? "") fetched \(drillBytes) bytes of an archive of \(size) (at most \(allowed))")
                let restoreBytes = try TestDatabase.withUnused { target in
                    let (restore, restoreBytes) = try fetched(["restore", "--latest", "--target-url", target.url, "--verify"] + key)
                    #expect(restore.status == 0 && restore.stdout.contains("verified: every table"), "\(restore)")
                    #expect(restoreBytes <= allowed, "restore --latest \(key.first ?? "") fetched \(restoreBytes) bytes of an archive of \(size) (at most \(allowed))")
                    return restoreBytes
                }
                // The spool has no name once it is created: nothing is left behind in TMPDIR.
                #expect(try FileManager.default.contentsOfDirectory(atPath: spools).filter { $0.hasPrefix("rgw-spool-") }.isEmpty)
                print("fetched from S3 (archive \(size) bytes): drill --latest \(key.first ?? "") \(drillBytes), restore --latest \(key.first ?? "") \(restoreBytes)")
            }
        }
    }

    /// The spool holds exactly the bytes the signature was checked over, is private (0600) and
    /// nameless, and a TMPDIR where it cannot be made stops the restore before anything changes,
    /// naming TMPDIR.
    @Test func theSpoolIsTheCheckedBytesAndAnUnusableTMPDIRIsNamed() throws {
        let moto = try MotoServer.shared()
        let client = try moto.freshBucket()
        let keys = try TestKeys.make()
        defer { try? FileManager.default.removeItem(atPath: keys.directory) }
        try TestDatabase.withMigrated { source in
            let dir = "s3://\(client.bucket)/nightly"
            let environment = MotoServer.awsEnvironment.merging(["RGW_DATABASE_URL": source.url, "AWS_ENDPOINT_URL_S3": moto.endpoint]) { $1 }
            let backup = try CLI.run(["backup", "--dir", dir, "--sign-key", keys.signKey], environment: environment)
            #expect(backup.status == 0, "\(backup)")
            let store = S3Store(client: client, prefix: "nightly")
            let name = try #require(try store.list().first { $0.name.hasSuffix(".sql.gz") }?.name)
            let whole = try #require(try store.get(name))

            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let spooled = try SpooledObject(try #require(try store.open(name)), blake2b: true, directory: directory)
            #expect(try spooled.read(offset: 0, count: spooled.size) == whole)
            let sha = SHA256()
            sha.update(whole)
            #expect(spooled.digests.sha256 == SHA256.hex(sha.finalize()) && spooled.digests.blake2b?.count == 64)
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory).isEmpty, "the spool has no name")
            var stats = stat()
            let opened = (Int32(3)..<256).compactMap { fd -> Int32? in
                var link = [CChar](repeating: 0, count: 4096)
                guard readlink("/proc/self/fd/\(fd)", &link, link.count - 1) > 0, String(cString: link).hasPrefix(directory + "/rgw-spool-") else { return nil }
                return fd
            }
            #expect(opened.count == 1 && fstat(opened[0], &stats) == 0 && stats.st_mode & 0o777 == 0o600, "one private spool file, mode \(String(stats.st_mode & 0o777, radix: 8))")

            let location = ArchiveLocation(store: store, name: name, keys: ArchiveKeys(verifyKey: try KeyFiles.verifyKey(keys.publicKey)))
            let reader = try ArchiveReader(location)
            #expect(try reader.storedSHA256() == ArchiveName.sidecarDigest(try #require(try store.get(name + ".sha256"))))

            try TestDatabase.withUnused { target in
                let refused = try CLI.run(["restore", "\(dir)/\(name)", "--verify-key", keys.publicKey, "--target-url", target.url],
                                          environment: environment.merging(["TMPDIR": directory + "/missing"]) { $1 })
                #expect(refused.status == 1 && refused.stderr.contains("TMPDIR") && refused.stderr.contains(directory + "/missing"), "\(refused)")
                #expect(try !target.exists, "nothing created on the target")
            }
        }
    }

    /// `--latest` passes over an older archive the listing found unreadable without reading it whole
    /// (before, its signature was checked over all of it first), and reads the newest (which fails
    /// its signature) and the one it drills once each.
    @Test func latestPassesOverAnUnreadableOlderArchiveWithoutFetchingIt() throws {
        let moto = try MotoServer.shared()
        let bucket = try moto.freshBucket().bucket
        let proxy = try FaultProxy(upstream: moto.endpoint)
        let keys = try TestKeys.make()
        defer { try? FileManager.default.removeItem(atPath: keys.directory) }
        try TestDatabase.withMigrated { source in
            _ = try source.psql("INSERT INTO users (email) SELECT md5(random()::text) || md5(random()::text) || i || '@example.com' FROM generate_series(1, 30000) i")
            let dir = "s3://\(bucket)/nightly"
            let environment = MotoServer.awsEnvironment.merging(["RGW_DATABASE_URL": source.url, "AWS_ENDPOINT_URL_S3": proxy.endpoint]) { $1 }
            for index in 0..<3 {
                if index > 0 { Thread.sleep(forTimeInterval: 1.1) }  // a new archive name
                let backup = try CLI.run(["backup", "--dir", dir, "--sign-key", keys.signKey], environment: environment)
                #expect(backup.status == 0, "\(backup)")
            }
            let client = proxy.client(bucket: bucket)
            let store = S3Store(client: client, prefix: "nightly")
            let names = try store.list().map(\.name).filter { $0.hasSuffix(".sql.gz") }.sorted()
            try #require(names.count == 3)
            let (oldest, middle, newest) = (names[0], names[1], names[2])
            let size = try #require(try store.size(oldest))
            // The middle one loses its second half (its trailer with it); the newest gets a byte flipped.
            let cut = try #require(try store.get(middle))
            try client.putObject(key: "nightly/\(middle)", data: Array(cut.prefix(cut.count / 2)))
            var flipped = try #require(try store.get(newest))
            flipped[flipped.count / 2] ^= 0xFF
            try client.putObject(key: "nightly/\(newest)", data: flipped)

            try proxy.clearLog()
            let drill = try CLI.run(["drill", "--latest", "--dir", dir, "--database-url", source.url, "--verify-key", keys.publicKey], environment: environment)
            #expect(drill.status == 2 && drill.stdout.contains("NEWEST ARCHIVE FAILED: ") && drill.stdout.contains(newest)
                    && drill.stdout.contains("fails its signature check") && drill.stdout.contains("Drill of ") && drill.stdout.contains(oldest), "\(drill)")
            let requests = try proxy.requests().filter { $0.method == "GET" }
            func fetched(_ name: String) -> Int { requests.filter { $0.path == "/\(bucket)/nightly/\(name)" }.map(\.bytes).reduce(0, +) }
            let opening = ArchiveTrailer.memberLength + 64 * 1024
            try #require(cut.count / 2 > 2 * opening, "the cut archive is larger than what a listing reads of it")
            #expect(fetched(middle) <= opening, "the unreadable one: only what the listing read (\(fetched(middle)) bytes)")
            #expect(fetched(newest) <= flipped.count + opening, "the newest: once (\(fetched(newest)) of \(flipped.count) bytes)")
            #expect(fetched(oldest) <= size + 2 * opening, "the one drilled: once (\(fetched(oldest)) of \(size) bytes)")
        }
    }

    /// `rekey` from S3 with `--verify-key` copies the bytes whose signature it checked (the spool),
    /// fetching the source once; before, it opened the source again by name and downloaded it twice.
    @Test func rekeyFromS3CopiesTheCheckedBytesFetchedOnce() throws {
        let moto = try MotoServer.shared()
        let bucket = try moto.freshBucket().bucket
        let proxy = try FaultProxy(upstream: moto.endpoint)
        let keys = try TestKeys.make()
        defer { try? FileManager.default.removeItem(atPath: keys.directory) }
        let copies = try TestArchives.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: copies) }
        try TestDatabase.withMigrated { source in
            _ = try source.psql("INSERT INTO users (email) SELECT md5(random()::text) || md5(random()::text) || i || '@example.com' FROM generate_series(1, 30000) i")
            let dir = "s3://\(bucket)/nightly"
            let environment = MotoServer.awsEnvironment.merging(["RGW_DATABASE_URL": source.url, "AWS_ENDPOINT_URL_S3": proxy.endpoint]) { $1 }
            let backup = try CLI.run(["backup", "--dir", dir, "--recipient", keys.recipient, "--sign-key", keys.signKey], environment: environment)
            #expect(backup.status == 0, "\(backup)")
            let store = S3Store(client: proxy.client(bucket: bucket), prefix: "nightly")
            let name = try #require(try store.list().first { $0.name.hasSuffix(".sql.gz.age") }?.name)
            let original = try #require(try store.get(name))
            try proxy.clearLog()
            let rekey = try CLI.run(["rekey", "\(dir)/\(name)", "--identity", keys.identity, "--recipient", keys.otherRecipient, "--to", copies,
                                     "--verify-key", keys.publicKey], environment: environment)
            #expect(rekey.status == 0, "\(rekey)")
            let fetched = try proxy.requests().filter { $0.method == "GET" && $0.path == "/\(bucket)/nightly/\(name)" }.map(\.bytes).reduce(0, +)
            // Besides the object once: the age header and the reads through it of the final chunk,
            // the trailer and the manifest (from the spool, so nothing more).
            #expect(fetched <= original.count + 64 * 1024, "rekey fetched \(fetched) bytes of an archive of \(original.count)")
            let verify = try CLI.run(["verify", copies + "/" + name, "--identity", keys.otherIdentity])
            #expect(verify.status == 0, "\(verify)")
        }
    }
}
