import Foundation
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
        #expect(try store.list() == [StoreEntry(name: "a.sql.gz", size: data.count), StoreEntry(name: "a.sql.gz.sha256", size: 14)])

        // Leases are exclusive and name the holder.
        let lease = try store.lease(".lock", holder: "backup pid 42")
        let second = try #require(throws: ToolError.self) { _ = try store.lease(".lock", holder: "backup pid 43") }
        #expect(second.category == .locked && second.message.contains("backup pid 42"), "\(second)")
        lease.release()
        try store.lease(".lock", holder: "backup pid 44").release()

        try store.delete("a.sql.gz")
        try store.delete("a.sql.gz.sha256")
        #expect(try store.list().isEmpty)
    }

    @Test func localDirectory() throws {
        let directory = try BackupTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try Self.conformance(try LocalStore(directory: directory + "/archives"))
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
        let aws = try StoreLocation.s3Client(bucket: "b", endpoint: nil, environment: base.merging(["AWS_DEFAULT_REGION": "eu-west-1"]) { $1 })
        #expect(aws.endpoint == "https://s3.eu-west-1.amazonaws.com" && !aws.pathStyle && aws.url(key: "k") == "https://b.s3.eu-west-1.amazonaws.com/k")
        let local = try StoreLocation.s3Client(bucket: "b", endpoint: nil, environment: base.merging(["AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9000", "AWS_REGION": "us-west-2", "AWS_DEFAULT_REGION": "eu-west-1"]) { $1 })
        #expect(local.region == "us-west-2" && local.pathStyle && local.url(key: "a b") == "http://127.0.0.1:9000/b/a%20b")
        let flag = try StoreLocation.s3Client(bucket: "b", endpoint: "http://minio:9000/", environment: base)
        #expect(flag.endpoint == "http://minio:9000")
        let missing = try #require(throws: ToolError.self) { _ = try StoreLocation.s3Client(bucket: "b", endpoint: nil, environment: [:]) }
        #expect(missing.message.contains("AWS_ACCESS_KEY_ID"))
    }
}
