import Foundation
import Testing
import TestSupport
@testable import RackGatewayDB

/// The S3 client against moto on loopback, checked with the reference client (`aws s3`).
@Suite("S3 client against moto")
struct S3ClientTests {
    @Test func objectsRangesListingAndDeletion() throws {
        let s3 = try MotoServer.shared().freshBucket()
        let data = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        try s3.putObject(key: "archives/a b+c.sql.gz", data: data)
        #expect(try s3.getObject(key: "archives/a b+c.sql.gz") == data)
        #expect(try s3.getObject(key: "archives/a b+c.sql.gz", offset: 99_990, count: 10) == Array(data[99_990...]))
        #expect(try s3.size(key: "archives/a b+c.sql.gz") == 100_000)
        #expect(try s3.size(key: "archives/missing") == nil)
        try s3.putObject(key: "archives/second", data: [1, 2, 3])
        try s3.putObject(key: "other/third", data: [])
        #expect(try s3.list(prefix: "archives/").map(\.key) == ["archives/a b+c.sql.gz", "archives/second"])
        try s3.deleteObject(key: "archives/second")
        #expect(try s3.list(prefix: "archives/").map(\.key) == ["archives/a b+c.sql.gz"])
        #expect(throws: S3Client.Failure.self) { try s3.getObject(key: "archives/second") }
    }

    @Test func multipartUploadsCompleteOrAbortLeavingNothing() throws {
        let server = try MotoServer.shared()
        let s3 = try server.freshBucket()
        let part = [UInt8](repeating: 7, count: 5 << 20)
        let upload = try s3.createMultipartUpload(key: "big")
        let etags = [try s3.uploadPart(key: "big", uploadID: upload, number: 1, data: part),
                     try s3.uploadPart(key: "big", uploadID: upload, number: 2, data: [1, 2, 3])]
        try s3.completeMultipartUpload(key: "big", uploadID: upload, parts: etags)
        #expect(try s3.size(key: "big") == part.count + 3)

        // The reference client reads what this one wrote, byte for byte.
        let directory = try TestArchives.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let copy = try Shell.run("/usr/bin/env", ["python3", "-m", "awscli", "--endpoint-url", server.endpoint, "s3", "cp", "s3://\(s3.bucket)/big", directory + "/big"],
                                 environment: ["AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"])
        #expect(copy.status == 0, "\(copy.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: directory + "/big")) == Data(part + [1, 2, 3]))

        let aborted = try s3.createMultipartUpload(key: "never")
        _ = try s3.uploadPart(key: "never", uploadID: aborted, number: 1, data: part)
        try s3.abortMultipartUpload(key: "never", uploadID: aborted)
        #expect(try s3.size(key: "never") == nil, "nothing under the final key")
    }

    @Test func aMissingBucketIsAClearFailure() throws {
        let server = try MotoServer.shared()
        let good = try server.freshBucket()
        var missing = good
        missing.bucket = "no-such-bucket-\(UUID().uuidString.prefix(6).lowercased())"
        let failure = try #require(throws: S3Client.Failure.self) { try missing.putObject(key: "x", data: [1]) }
        #expect(failure.status == 404 && failure.code == "NoSuchBucket", "\(failure)")
        #expect(!failure.description.contains("test:test"))
    }
}
