import RGWCompression
@testable import RackGatewayDB
import Foundation
import Testing

@Suite("XXH64 and SHA-256 against reference values")
struct ChecksumTests {
    // Values from the reference implementation (python xxhash 3.x, which wraps xxhash.h).
    static let xxh64Vectors: [(String, UInt64)] = [
        ("", 0xef46db3751d8e999),
        ("a", 0xd24ec4f1a98c6e5b),
        ("abc", 0x44bc2cf5ad770999),
        ("Nobody inspects the spammish repetition", 0xfbcea83c8a378bf1),
        (String(repeating: "x", count: 31), 0x60dd0d01083b99f0),
        (String(repeating: "y", count: 32), 0x64da1f1d3495ce66),
        (String(repeating: "z", count: 37), 0x8fef2fa6ee2d279c),
    ]

    @Test(arguments: xxh64Vectors)
    func xxh64(input: String, expected: UInt64) {
        #expect(XXH64.hash(Array(input.utf8)) == expected)
    }

    @Test func xxh64LongInputAndSeed() {
        let bytes = (0..<3).flatMap { _ in (0..<256).map { UInt8($0) } }
        #expect(XXH64.hash(bytes) == 0x8e03c838c596036f)
        #expect(XXH64.hash(Array("abc".utf8), seed: 42) == 0x13c1d910702770e6)
    }

    @Test(arguments: [
        ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        ("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
    ])
    func sha256(input: String, expected: String) {
        let hasher = SHA256()
        hasher.update(Array(input.utf8))
        #expect(SHA256.hex(hasher.finalize()) == expected)
    }

    @Test func sha256MillionAsInUnevenPieces() {
        let hasher = SHA256()
        let piece = [UInt8](repeating: UInt8(ascii: "a"), count: 999)
        var fed = 0
        while fed < 1_000_000 {
            let count = min(piece.count - (fed % 7), 1_000_000 - fed)
            hasher.update(piece[0..<count])
            fed += count
        }
        #expect(SHA256.hex(hasher.finalize()) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }
}

@Suite("Archive names")
struct ArchiveNameTests {
    @Test func fileNameAndTimestampRoundTripInUTC() throws {
        let date = Date(timeIntervalSince1970: 1_795_600_000)  // 2026-11-24T...Z
        let name = ArchiveName.fileName(prefix: "rack_gateway_backup", date: date)
        #expect(name.range(of: #"^rack_gateway_backup_\d{8}T\d{6}Z\.sql\.gz$"#, options: .regularExpression) != nil)
        #expect(ArchiveName.timestamp(of: name) == date)
        #expect(ArchiveName.timestamp(of: "my_prefix_with_underscores_20240102T030405Z.sql.gz") != nil)
        #expect(ArchiveName.timestamp(of: name + ".partial") == nil)
        #expect(ArchiveName.timestamp(of: "rack_gateway_backup_2024.sql.gz") == nil)
        let zstd = ArchiveName.fileName(prefix: "p", date: date, codec: .zstd)
        #expect(zstd.hasSuffix(".sql.zst") && ArchiveName.timestamp(of: zstd) == date && ArchiveName.stem(zstd) == ArchiveName.stem(ArchiveName.fileName(prefix: "p", date: date)))
    }

    @Test func utcTimesMatchFoundationsFormattersWithoutThem() throws {
        let date = Date(timeIntervalSince1970: 1_795_600_000.25)
        let iso = ISO8601DateFormatter()
        iso.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        #expect(UTCTime.iso8601(date) == iso.string(from: date))
        #expect(UTCTime.iso8601(Date(timeIntervalSince1970: 0)) == "1970-01-01T00:00:00.000Z")
        #expect(UTCTime.stamp(date) == "20261125T094640Z")
        #expect(UTCTime.parseStamp("20261125T094640Z") == Date(timeIntervalSince1970: 1_795_600_000))
        #expect(UTCTime.parseStamp("20240229T235959Z") != nil, "a leap day")
        for bad in ["20230229T000000Z", "20261324T000000Z", "20261124T250000Z", "20261124 070640Z", "2026112T070640Z", "+0261124T070640Z"] {
            #expect(UTCTime.parseStamp(bad) == nil, "\(bad)")
        }
    }
}
