import Foundation
import Testing
import TestSupport
import RackGatewayDB

/// The reproducers `scripts/fuzz` found (`Tests/Fixtures/fuzz/reproducers/*/case.json`, one per class
/// of finding, made by `scripts/fuzz --export-reproducer`), each run through the built binary with the
/// fuzzer's oracle: beside the intact archive of the corpus, with a `verifications.jsonl` that says the
/// file verified as it was before its bits changed, no command crashes, hangs or takes more than
/// 128 MB; `verify` refuses (exit 1 or 2, with an error) what must be refused and accepts what is
/// intact; `list` does not call it verified, `prune --keep-last 1 --dry-run` keeps the intact
/// archive and `check --max-backup-age` does not take it as the newest good archive; and `restore`
/// exits non-zero and runs none of the commands planted in it.
@Suite("fuzz reproducers", .serialized)
struct FuzzReproducerTests {
    struct Recipe: Decodable {
        var head: String
        var unit: String
        var count: Int
        var tail: String
    }

    struct Case: Decodable {
        var finding: String
        var found: String
        var mutation: String
        var archive: String
        var intact: String
        var identity: Bool
        var verifyKey: Bool
        var mustRefuse: Bool
        var mustAccept: Bool
        var decides: Bool
        var keylessBlind: Bool
        var restore: Bool
        var generate: [String: Recipe]
    }

    /// A child's end, as wait4 tells it.
    struct Measured: CustomStringConvertible {
        var status: Int32?
        var signal: Int32?
        var timedOut: Bool
        var maxRSSKiB: Int
        var stdout: String
        var stderr: String
        var description: String {
            let end = timedOut ? "timed out" : signal.map { "killed by signal \($0)" } ?? "exit \(status ?? -1)"
            return "\(end), max RSS \(maxRSSKiB / 1024) MB\nstdout:\n\(stdout.prefix(2000))\nstderr:\n\(stderr.prefix(2000))"
        }
    }

    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/fuzz").path
    /// Where the reproducers' planted commands (`\! touch`, `COPY ... TO PROGRAM 'touch ...'`) write.
    static let markerDirectory = "/tmp/rgw-fuzz-marker"
    static let rssLimitKiB = 128 * 1024
    static let timeout: Double = 60

    static func names() -> [String] {
        let directory = fixtures + "/reproducers"
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { FileManager.default.fileExists(atPath: "\(directory)/\($0)/case.json") }.sorted()
    }

    /// Run the built binary with a timeout and measure its maximum RSS through `scripts/fuzz --measure`,
    /// as the campaign does: a child forked from this large test process would count its RSS too
    /// (Linux keeps a process's high-water mark across exec).
    static func run(_ arguments: [String], in directory: String) throws -> Measured {
        let script = URL(fileURLWithPath: fixtures).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("scripts/fuzz").path
        let environment = CLI.baseEnvironment().merging(["RGW_LOG_LEVEL": "error", "TERM": "dumb"]) { _, new in new }
        let output = try ChildProcess(executable: "python3", arguments: [script, "--measure", String(timeout), directory, CLI.executable] + arguments,
                                      environment: environment, inheritEnvironment: false).run()
        guard output.status == 0, let report = json(output.stdout) as? [String: Any] else {
            throw ToolError(.failed, "scripts/fuzz --measure failed: exit \(output.status) \(output.stderr)")
        }
        return Measured(status: (report["status"] as? Int).map(Int32.init), signal: (report["signal"] as? Int).map(Int32.init),
                        timedOut: report["timed_out"] as? Bool ?? false, maxRSSKiB: report["max_rss_kib"] as? Int ?? 0,
                        stdout: (try? String(contentsOfFile: directory + "/stdout", encoding: .utf8)) ?? "",
                        stderr: (try? String(contentsOfFile: directory + "/stderr", encoding: .utf8)) ?? "")
    }

    /// No crash (a signal, or an exit status of 128 or more), no hang, RSS within the bound.
    static func expectSane(_ result: Measured, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(!result.timedOut, "\(what) hangs: \(result)", sourceLocation: sourceLocation)
        #expect(result.signal == nil && (result.status ?? 0) < 128, "\(what) crashes: \(result)", sourceLocation: sourceLocation)
        #expect(result.maxRSSKiB <= rssLimitKiB, "\(what) takes \(result.maxRSSKiB / 1024) MB: \(result)", sourceLocation: sourceLocation)
    }

    static func json(_ text: String) -> Any? { try? JSONSerialization.jsonObject(with: Data(text.utf8)) }

    @Test(arguments: names())
    func reproducer(_ name: String) throws {
        let source = Self.fixtures + "/reproducers/" + name
        let testCase = try CLI.decode(Case.self, String(contentsOfFile: source + "/case.json", encoding: .utf8))
        let work = try TestArchives.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: work) }
        let backups = work + "/backups"
        try FileManager.default.createDirectory(atPath: backups, withIntermediateDirectories: true)
        let files = FileManager.default
        for file in try files.contentsOfDirectory(atPath: Self.fixtures + "/intact") {
            try files.copyItem(atPath: Self.fixtures + "/intact/" + file, toPath: backups + "/" + file)
        }
        for file in try files.contentsOfDirectory(atPath: source) where file != "case.json" {
            try files.copyItem(atPath: source + "/" + file, toPath: backups + "/" + file)
        }
        // The 64 MB sidecars are kept as recipes, made here.
        for (suffix, recipe) in testCase.generate {
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: { files.createFile(atPath: $0, contents: nil); return $0 }(backups + "/" + testCase.archive + suffix)))
            try handle.write(contentsOf: Data(recipe.head.utf8))
            let block = Data(String(repeating: recipe.unit, count: 4096).utf8)
            var written = 0
            while written + 4096 <= recipe.count {
                try handle.write(contentsOf: block)
                written += 4096
            }
            try handle.write(contentsOf: Data(String(repeating: recipe.unit, count: recipe.count - written).utf8))
            try handle.write(contentsOf: Data(recipe.tail.utf8))
            try handle.close()
        }
        let identity = work + "/identity.txt"
        try files.copyItem(atPath: Self.fixtures + "/identity.txt", toPath: identity)
        chmod(identity, 0o600)
        var keys: [String] = []
        if testCase.identity { keys += ["--identity", identity] }
        if testCase.verifyKey { keys += ["--verify-key", Self.fixtures + "/minisign.pub"] }
        let archive = backups + "/" + testCase.archive
        let context = "\(name) (\(testCase.mutation); found: \(testCase.found))"

        // list, prune and check first, while verifications.jsonl holds the record of the file as it was.
        let list = try Self.run(["list", "--dir", backups, "--json"], in: work)
        Self.expectSane(list, "list of \(context)")
        if testCase.decides, list.status == 0, let entries = Self.json(list.stdout) as? [[String: Any]] {
            let entry = entries.first { $0["file"] as? String == testCase.archive }
            #expect(entry?["verified"] as? Bool != true, "list says \(context) is verified")
        }
        let prune = try Self.run(["prune", "--dir", backups, "--keep-last", "1", "--dry-run", "--json"], in: work)
        Self.expectSane(prune, "prune of \(context)")
        if testCase.decides && !testCase.keylessBlind, prune.status == 0,
           let decisions = (Self.json(prune.stdout) as? [String: Any])?["decisions"] as? [[String: Any]] {
            let intact = decisions.first { $0["file"] as? String == testCase.intact }
            #expect(intact?["keep"] as? Bool != false, "prune --keep-last 1 would delete the intact archive beside \(context): \(prune)")
        }
        let check = try Self.run(["check", "--dir", backups, "--max-backup-age", "100d", "--json", "--database-url", "postgres://fuzz@127.0.0.1:1/none"], in: work)
        Self.expectSane(check, "check of \(context)")
        if testCase.decides && !testCase.keylessBlind {
            #expect(!check.stdout.contains("newest good archive \(testCase.archive) "), "check takes \(context) as the newest good archive: \(check)")
        }

        let verify = try Self.run(["verify", archive] + keys, in: work)
        Self.expectSane(verify, "verify of \(context)")
        if testCase.mustRefuse {
            #expect(verify.status == 1 || verify.status == 2, "verify of \(context): \(verify)")
            #expect(verify.stderr.contains("error"), "verify of \(context) says what is wrong: \(verify)")
        }
        if testCase.mustAccept {
            #expect(verify.status == 0, "verify refuses the intact archive of \(context): \(verify)")
        }

        if testCase.restore {
            try? files.removeItem(atPath: Self.markerDirectory)
            try files.createDirectory(atPath: Self.markerDirectory, withIntermediateDirectories: true)
            chmod(Self.markerDirectory, 0o1777)  // the server's user may write there (COPY ... TO PROGRAM)
            defer { try? files.removeItem(atPath: Self.markerDirectory) }
            try TestDatabase.withUnused { target in
                let restore = try Self.run(["restore", archive, "--target-url", target.url] + keys, in: work)
                Self.expectSane(restore, "restore of \(context)")
                if verify.status != 0 {
                    #expect(restore.status != 0, "restore of \(context) exits 0 where verify refuses it: \(restore)")
                }
                let markers = (try? files.contentsOfDirectory(atPath: Self.markerDirectory)) ?? []
                #expect(markers.isEmpty, "restore of \(context) ran a command planted in it (\(markers))")
            }
        }
    }
}
