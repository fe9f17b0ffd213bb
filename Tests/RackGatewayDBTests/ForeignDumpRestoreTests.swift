import RGWCompression
import Foundation
import Logging
import RGWPostgres
import Testing
import TestSupport
@testable import RackGatewayDB

/// Plain and custom-format pg_dump files: restored through psql and pg_restore.
@Suite("restore of pg_dump files")
struct ForeignDumpRestoreTests {
    @Test func foreignDumpsRestoreThroughPsqlAndPgRestore() throws {
        try TestDatabase.with { source in
            try source.psql(TestArchives.featureSchema)
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let manifest = try ArchiveReader(path: try TestArchives.backup(source, directory: directory).file).manifest
            let environment = try source.settings.childEnvironment
            let dumps: [(String, String, DumpFormat)] = [
                ("plain.sql", #"pg_dump --no-password -f "$1""#, .plainSQL),
                ("dump.gz", #"pg_dump --no-password | gzip > "$1""#, .gzipSQL),
                ("dump.custom", #"pg_dump --no-password -Fc -f "$1""#, .custom),
                ("dump.dir", #"pg_dump --no-password -Fd -j 2 -f "$1""#, .directory),
            ]
            for (name, command, format) in dumps {
                let path = directory + "/" + name
                let made = try Shell.run("/bin/sh", ["-c", command, "sh", path], environment: environment)
                #expect(made.status == 0, "\(made.stderr)")
                #expect(try DumpFormat.detect(path: path) == format)
                try TestDatabase.withUnused { target in
                    let report = try RestoreTests.restore(path, into: target, verify: false)
                    #expect(report.format == format)
                    #expect(try TestArchives.fingerprintMismatches(manifest, in: target) == [])
                }
            }
            // A truncated gzip dump: psql is stopped before it can commit; the target holds nothing.
            let truncated = directory + "/truncated.gz"
            let whole = try Data(contentsOf: URL(fileURLWithPath: directory + "/dump.gz"))
            try whole.prefix(whole.count / 2).write(to: URL(fileURLWithPath: truncated))
            try TestDatabase.withUnused { target in
                let result = try CLI.run(["restore", truncated, "--target-url", target.url])
                #expect(result.status == 2 && result.stderr.contains("truncated"), "\(result)")
                #expect(try target.psql("SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'feat'").contains("0"))
            }
        }
    }
}
