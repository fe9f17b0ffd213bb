import Foundation
import RGWCompression
import RGWPostgres
import Testing
import TestSupport
@testable import RackGatewayDB

/// `backup --compress zstd`: an archive of zstd frames that stock tools restore with `zstd -dc | psql`,
/// and that verify, restore, drill, list and S3 take as they take a gzip one.
@Suite("zstd archives")
struct ZstdArchiveTests {
    static func onlyArchive(in directory: String) throws -> String {
        let names = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(ArchiveName.zstdSuffix) }
        #expect(names.count == 1, "\(names)")
        return directory + "/" + (names.first ?? "none")
    }

    @Test func aZstdArchiveRestoresWithZstdAndPsqlAndWithTheToolLikePgRestore() throws {
        try TestDatabase.withSampleData(events: 3000) { source in
            try source.psql(TestArchives.featureSchema)
            let digests = try DatabaseOracle.tableDigests(source)
            let reference = try FeatureZooTests.referenceSchema(source)
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let backup = try CLI.run(["backup", "--database-url", source.url, "--dir", directory, "--compress", "zstd:3"])
            #expect(backup.status == 0, "\(backup)")
            let file = try Self.onlyArchive(in: directory)
            #expect(try FileManager.default.attributesOfItem(atPath: file)[.posixPermissions] as? Int == 0o600)
            let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: file)))
            #expect(MemberCodec.detect(bytes[...]) == .zstd && MemberCodec.detect(bytes.suffix(ArchiveTrailer.zstdMemberLength)) == .zstd)
            let reader = try ArchiveReader(path: file)
            #expect(reader.codec == .zstd && reader.manifest.codec == "zstd")
            #expect(reader.manifest.members.count > 3)

            // The stock tools: zstd's own checksums, then the script's header names the command.
            let check = try Shell.run("/usr/bin/env", ["zstd", "-q", "-t", file])
            #expect(check.status == 0, "\(check.stderr)")
            let header = try Shell.runChecked("/bin/sh", ["-c", #"zstd -q -dc "$1" | head -12"#, "sh", file])
            #expect(header.hasPrefix("-- rack-gateway-db archive format \(ArchiveManifest.currentFormatVersion)\n"), "\(header)")
            #expect(header.contains("--   zstd -dc \(URL(fileURLWithPath: file).lastPathComponent) | psql -v ON_ERROR_STOP=1"), "\(header)")
            try TestDatabase.with { stock in
                try TestArchives.restoreWithStockTools(file, into: stock)
                #expect(try DatabaseOracle.tableDigests(stock) == digests)
                #expect(try TestArchives.schemaDump(stock) == reference)
            }

            let verify = try CLI.run(["verify", file])
            #expect(verify.status == 0 && verify.stdout.hasPrefix("OK "), "\(verify)")
            try TestDatabase.withUnused { target in
                let restore = try CLI.run(["restore", file, "--target-url", target.url, "--verify"])
                #expect(restore.status == 0 && restore.stdout.contains("verified: every table"), "\(restore)")
                #expect(try DatabaseOracle.tableDigests(target) == digests)
                #expect(try TestArchives.schemaDump(target) == reference)
            }
            let drill = try CLI.run(["drill", file, "--database-url", source.url, "--jobs", "2"])
            #expect(drill.status == 0, "\(drill)")
            let list = try CLI.run(["list", "--dir", directory])
            #expect(list.status == 0 && list.stdout.contains(URL(fileURLWithPath: file).lastPathComponent), "\(list)")
        }
    }

    @Test func aDamagedZstdFrameFailsVerifyAndRestoreWithExit2() throws {
        try TestDatabase.withSampleData(events: 3000) { source in
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let report = try TestArchives.backup(source, directory: directory, chunkSize: 64 * 1024, codec: .zstd)
            let manifest = try ArchiveReader(path: report.file).manifest
            let data = try #require(manifest.members.first { $0.kind == .data && $0.length > 200 })
            // A byte inside the frame's compressed blocks; the sidecar rewritten, so only the frame's
            // own checks and the manifest's can catch it.
            try TestArchives.tamper(report.file, sidecarToo: true) { bytes in bytes[data.offset + data.length / 2] ^= 0x5a }
            let verify = try CLI.run(["verify", report.file])
            #expect(verify.status == 2 && verify.stderr.contains("member \(data.index) (data)") && verify.stderr.contains("corrupt"), "\(verify)")
            try TestDatabase.withUnused { target in
                let restore = try CLI.run(["restore", report.file, "--target-url", target.url])
                #expect(restore.status == 2, "\(restore)")
                #expect(restore.stderr.contains("corrupt") || restore.stderr.contains("does not match"), "\(restore)")
            }
            // A cut-off end: no trailer, and the start tells it is an archive.
            try TestArchives.tamper(report.file, sidecarToo: false) { bytes in bytes.removeLast(40) }
            let truncated = try CLI.run(["verify", report.file])
            #expect(truncated.status == 2 && truncated.stderr.contains("without its trailer"), "\(truncated)")
        }
    }

    @Test func aZstdArchiveGoesToS3AndRestoresFromThere() throws {
        let server = try MotoServer.shared()
        let client = try server.freshBucket()
        let store = S3Store(client: client, prefix: "nightly", partSize: 5 << 20)
        try TestDatabase.withSampleData(events: 20000) { source in
            var options = BackupOptions(store: store, jobs: 2, compressors: 2)
            options.codec = .zstd
            options.compressionLevel = 1
            let report = try BackupRunner(settings: try source.settings, options: options, logger: .quiet).run()
            let name = URL(fileURLWithPath: report.file).lastPathComponent
            #expect(name.hasSuffix(".sql.zst") && report.file == "s3://\(client.bucket)/nightly/\(name)")
            let remote = try ArchiveReader(store: store, name: name)
            #expect(remote.codec == .zstd)
            let verification = try ArchiveVerifier().verify(reader: remote)
            #expect(verification.ok && verification.sidecar == "ok", "\(verification.problems)")
            #expect(try ArchiveDirectory(store: store, clock: SystemClock()).entries().map(\.file) == [name])
            try TestDatabase.withUnused { target in
                let restore = try CLI.run(["restore", "--dir", "s3://\(client.bucket)/nightly", "--latest", "--target-url", target.url, "--verify"],
                                          environment: MotoServer.awsEnvironment.merging(["AWS_ENDPOINT_URL_S3": server.endpoint]) { $1 })
                #expect(restore.status == 0 && restore.stdout.contains("verified: every table"), "\(restore)")
                #expect(try TestArchives.fingerprintMismatches(remote.manifest, in: target) == [])
            }
        }
    }
}
