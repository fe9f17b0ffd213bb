import Foundation
import RackGatewayDB
import Testing
import TestSupport

/// Issue 28, finding 3: a verified archive whose bits change on disk (same size, sidecar untouched)
/// was still listed `verified`, and `prune --keep-last 1` kept it and deleted the older good one.
@Suite("prune and list trust an archive only as it is now")
struct PruneTrustTests {
    static func archives(_ directory: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".sql.gz") }.sorted()
    }

    /// Two verified archives, the newer one then changed in place: one byte in its middle, same size.
    static func twoVerifiedArchivesTheNewerChanged(_ body: (_ directory: String, _ older: String, _ newer: String) throws -> Void) throws {
        try TestDatabase.with { source in
            try source.psql("CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT i, repeat('x', 50) FROM generate_series(1, 2000) i")
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let environment = ["RGW_DATABASE_URL": source.url]
            #expect(try CLI.run(["backup", "--dir", directory], environment: environment).status == 0)
            Thread.sleep(forTimeInterval: 1.1)
            #expect(try CLI.run(["backup", "--dir", directory], environment: environment).status == 0)
            let names = try archives(directory)
            try #require(names.count == 2)
            for name in names { #expect(try CLI.run(["verify", directory + "/" + name]).status == 0) }
            let listed = try CLI.run(["list", "--dir", directory])
            #expect(listed.stdout.split(separator: "\n").filter { $0.contains("verified") }.count == 2, "\(listed)")

            let path = directory + "/" + names[1]
            var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
            bytes[bytes.count / 2] ^= 0x5a
            let handle = try #require(FileHandle(forWritingAtPath: path))
            try handle.write(contentsOf: Data(bytes))
            try handle.close()
            try body(directory, names[0], names[1])
        }
    }

    static func line(_ output: String, _ name: String) -> String {
        output.split(separator: "\n").first { $0.contains(name) }.map(String.init) ?? ""
    }

    @Test func aChangedArchiveIsNotListedVerifiedAndPruneKeepsTheOlderGoodOne() throws {
        try Self.twoVerifiedArchivesTheNewerChanged { directory, older, newer in
            let list = try CLI.run(["list", "--dir", directory])
            #expect(list.status == 0 && !Self.line(list.stdout, newer).contains("verified"), "\(list)")
            #expect(Self.line(list.stdout, older).contains("verified"), "\(list)")

            let prune = try CLI.run(["prune", "--dir", directory, "--keep-last", "1"])
            #expect(prune.status == 0, "\(prune)")
            #expect(Self.line(prune.stdout, older).hasPrefix("keep"), "\(prune)")
            #expect(try Self.archives(directory).contains(older), "the intact archive is not deleted")
            let after = try CLI.run(["list", "--dir", directory])
            #expect(Self.line(after.stdout, newer).contains("VERIFY-FAILED"), "\(after)")
        }
    }

    /// Bit rot changes no file time: the recorded verification still matches the file's version, so
    /// `list` trusts it; `prune` reads what it relies on again before deleting.
    @Test func pruneReadsWhatItReliesOnAgainEvenWhenTheFileLooksUnchanged() throws {
        try Self.twoVerifiedArchivesTheNewerChanged { directory, older, newer in
            // The verification record made to match the file's version as it is now.
            let store = LocalStore(directory: directory)
            let version = try #require(try store.version(newer))
            let log = directory + "/" + VerificationLog.fileName
            var lines = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n").map(String.init)
            let index = try #require(lines.lastIndex { $0.contains(newer) })
            var object = try #require(try JSONSerialization.jsonObject(with: Data(lines[index].utf8)) as? [String: Any])
            object["version"] = version
            lines[index] = String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
            try (lines.joined(separator: "\n") + "\n").write(toFile: log, atomically: false, encoding: .utf8)
            let list = try CLI.run(["list", "--dir", directory])
            #expect(Self.line(list.stdout, newer).contains("verified"), "the record is trusted while the file looks unchanged: \(list)")

            let logBefore = try String(contentsOfFile: log, encoding: .utf8)
            let dryRun = try CLI.run(["prune", "--dir", directory, "--keep-last", "1", "--dry-run"])
            #expect(dryRun.status == 0 && Self.line(dryRun.stdout, older).hasPrefix("keep"), "\(dryRun)")
            // --dry-run writes nothing into the directory: the check it made is not recorded.
            #expect(try String(contentsOfFile: log, encoding: .utf8) == logBefore, "a dry run wrote verifications.jsonl")
            let prune = try CLI.run(["prune", "--dir", directory, "--keep-last", "1"])
            #expect(prune.status == 0 && Self.line(prune.stdout, older).hasPrefix("keep"), "\(prune)")
            #expect(try Self.archives(directory).contains(older))
            #expect(Self.line(try CLI.run(["list", "--dir", directory]).stdout, newer).contains("VERIFY-FAILED"))
        }
    }
}
