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
            // pg_dump --create writes \connect to the database it creates: refused, the restore loads into its target.
            let created = directory + "/created.sql"
            #expect(try Shell.run("/bin/sh", ["-c", #"pg_dump --no-password --create -f "$1""#, "sh", created], environment: environment).status == 0)
            try TestDatabase.withUnused { target in
                let result = try CLI.run(["restore", created, "--target-url", target.url])
                #expect(result.status == 1 && result.stderr.contains("\\connect") && result.stderr.contains("--create"), "\(result)")
                #expect(try !target.exists || target.psql("SELECT count(*) FROM pg_namespace WHERE nspname = 'feat'").contains("0"))
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

    /// The shell command a `\!` line in a dump would run: it makes `marker`.
    static func shellLine(_ marker: String) -> String { "\\! touch \(marker)\n" }

    /// Issue 28's recipe: one of our archives with one byte of its first line changed, its trailer
    /// dropped and a `\!` line added (recompressed), beside its now stale `.sha256`. It is ours by its
    /// name or its sidecar: a damaged archive (exit 2), never piped into psql; `verify` says the same.
    @Test func aDamagedArchiveOfOursIsRefusedNotRunAsSQL() throws {
        try TestDatabase.with { source in
            try source.psql(TestArchives.featureSchema)
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let archive = try TestArchives.backup(source, directory: directory).file
            let marker = directory + "/shell-ran"
            let original = try Data(contentsOf: URL(fileURLWithPath: archive))
            let members = original.prefix(original.count - ArchiveTrailer.length(for: .gzip))
            let unpacked = directory + "/unpacked.sql"
            try members.write(to: URL(fileURLWithPath: directory + "/members.gz"))
            #expect(try Shell.run("/bin/sh", ["-c", #"gunzip -c "$1/members.gz" > "$2""#, "sh", directory, unpacked]).status == 0)
            var text = [UInt8](try Data(contentsOf: URL(fileURLWithPath: unpacked)))
            #expect(text.starts(with: Array(ArchiveHeader.firstLinePrefix.utf8)))
            text[3] ^= 0x20
            let firstLineEnd = text.firstIndex(of: 0x0A)! + 1
            text.insert(contentsOf: Array(Self.shellLine(marker).utf8), at: firstLineEnd)
            try Data(text).write(to: URL(fileURLWithPath: unpacked))
            #expect(try Shell.run("/bin/sh", ["-c", #"gzip -c "$1" > "$2""#, "sh", unpacked, archive]).status == 0)
            #expect(FileManager.default.fileExists(atPath: archive + ".sha256"))

            // By its name (and its stale sidecar), then by a sidecar alone under a foreign-looking name.
            let renamed = directory + "/copy.sql.gz"
            try FileManager.default.copyItem(atPath: archive, toPath: renamed)
            try FileManager.default.copyItem(atPath: archive + ".sha256", toPath: renamed + ".sha256")
            for (file, why) in [(archive, "archive pattern"), (renamed, ".sha256")] {
                #expect(try DumpFormat.detect(path: file) == .archive)
                try TestDatabase.withUnused { target in
                    let result = try CLI.run(["restore", file, "--target-url", target.url])
                    #expect(result.status == 2, "\(result)")
                    #expect(result.stderr.contains("damaged") && result.stderr.contains(why), "\(result)")
                    #expect(result.stderr.contains("no longer matches its .sha256"), "\(result)")
                    #expect(!result.stderr.contains("psql") && !result.stderr.contains("gunzip"), "\(result)")
                    #expect(!FileManager.default.fileExists(atPath: marker), "the \\! line ran")
                    #expect(try !target.exists, "the target was created")
                }
                let verify = try CLI.run(["verify", file])
                #expect(verify.status == 2 && verify.stderr.contains("damaged") && !verify.stderr.contains("gunzip"), "\(verify)")
            }
            // The same file with a sidecar that records its digest: still damaged, and it says it matches.
            let digest = try ArchiveLocation(path: renamed).storedSHA256()
            try Data(ArchiveName.sidecarText(digest: digest, archive: "copy.sql.gz")).write(to: URL(fileURLWithPath: renamed + ".sha256"))
            let matching = try CLI.run(["verify", renamed])
            #expect(matching.status == 2 && matching.stderr.contains("still matches its .sha256"), "\(matching)")
            #expect(!FileManager.default.fileExists(atPath: marker))
        }
    }

    /// A genuinely foreign dump (`pg_dump`, plain and `| gzip`, no sidecars, no `\restrict`) with a
    /// `\!` added, at a line's start and after a statement on the same line: refused before psql reads
    /// it; nothing of the dump is committed and the shell command never runs.
    @Test func aForeignDumpWithAShellEscapeIsRefusedBeforePsqlRunsIt() throws {
        try TestDatabase.with { source in
            try source.psql(TestArchives.featureSchema)
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let marker = directory + "/shell-ran"
            let plain = directory + "/plain.sql"
            #expect(try Shell.run("/bin/sh", ["-c", #"pg_dump --no-password -f "$1""#, "sh", plain], environment: try source.settings.childEnvironment).status == 0)
            // Without pg_dump's own \restrict (which psql 15.14 and later obey), as an older pg_dump writes.
            let dump = try String(contentsOfFile: plain, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
                .filter { !$0.hasPrefix("\\restrict ") && !$0.hasPrefix("\\unrestrict ") }.joined(separator: "\n")
            // After the first table is created, so that a statement ran before the refusal.
            let table = try #require(dump.range(of: "CREATE TABLE "))
            let afterTable = try #require(dump[table.upperBound...].range(of: ";\n"))
            // As it is, it restores (psql is given a \restrict of the tool's own first).
            let older = directory + "/older.sql.gz"
            try dump.write(toFile: directory + "/older.sql", atomically: true, encoding: .utf8)
            #expect(try Shell.run("/bin/sh", ["-c", #"gzip -c "$1/older.sql" > "$2""#, "sh", directory, older]).status == 0)
            try TestDatabase.withUnused { target in
                let report = try RestoreTests.restore(older, into: target, verify: false)
                #expect(report.format == .gzipSQL)
                #expect(try target.psql("SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'feat'").trimmingCharacters(in: .whitespacesAndNewlines) != "0")
            }
            let variants = [
                ("line", String(dump[..<afterTable.upperBound]) + Self.shellLine(marker) + String(dump[afterTable.upperBound...])),
                ("same line", String(dump[..<afterTable.lowerBound]) + "; SELECT 1; " + Self.shellLine(marker) + String(dump[afterTable.upperBound...])),
            ]
            for (placement, text) in variants {
                let sql = directory + "/foo.sql"
                try text.write(toFile: sql, atomically: true, encoding: .utf8)
                let gzipped = directory + "/foo.sql.gz"
                #expect(try Shell.run("/bin/sh", ["-c", #"gzip -c "$1" > "$2""#, "sh", sql, gzipped]).status == 0)
                for (file, format) in [(sql, DumpFormat.plainSQL), (gzipped, .gzipSQL)] {
                    #expect(try DumpFormat.detect(path: file) == format)
                    try TestDatabase.withUnused { target in
                        let result = try CLI.run(["restore", file, "--target-url", target.url])
                        #expect(result.status == 1 && result.stderr.contains("meta-command \\!"), "\(placement), \(format): \(result)")
                        // The file itself is what is wrong: no advice to restore it again, only the drop.
                        #expect(!result.stderr.contains("To restore again over it") && result.stderr.contains("DROP DATABASE"), "\(placement), \(format): \(result)")
                        #expect(!FileManager.default.fileExists(atPath: marker), "\(placement), \(format): the \\! line ran")
                        #expect(try !target.exists || target.psql("SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'feat'").contains("0"),
                                "\(placement), \(format): something was committed")
                    }
                }
            }
        }
    }
}
