import RGWCompression
import Foundation
import RGWPostgres

/// Restores the dumps people already have with PostgreSQL's own tools: plain SQL (and `pg_dump |
/// gzip`) through `psql -v ON_ERROR_STOP=1 --single-transaction`, fed on its stdin through
/// `PsqlScriptGuard` so that no meta-command pg_dump does not write can run; custom, directory and tar dumps
/// through `pg_restore --exit-on-error` (`-j` where the format allows). Connection settings go to
/// the child through the environment, never its argv.
struct ForeignDumpLoader {
    let path: String
    let format: DumpFormat
    let target: RestoreTarget
    let jobs: Int
    let environment: [String: String]

    func run() throws {
        var childEnvironment = target.settings.childEnvironment
        childEnvironment["PGAPPNAME"] = "rack-gateway-db restore"
        switch format {
        case .plainSQL, .gzipSQL:
            let psql = try PostgresTools.locate("psql", environment: environment).get()
            let key = PsqlScriptGuard.psqlRestricts(version: psql.version) ? PsqlScriptGuard.randomKey() : nil
            try runPsql(arguments: [], environment: childEnvironment, feeding: try scriptProducer(gzip: format == .gzipSQL, restrictKey: key))
        case .custom, .directory, .tar:
            let tool = try PostgresTools.locate("pg_restore", environment: environment).get()
            var arguments = ["--exit-on-error", "--no-password", "-d", "dbname=" + ConnectionSettings.quoteConninfoValue(target.database)]
            if format != .tar && jobs > 1 { arguments += ["-j", String(jobs)] }
            var child = ChildProcess(executable: tool.path, arguments: arguments + [path], environment: childEnvironment)
            child.cancellation = target.settings.cancellation
            let output = try child.run()
            guard output.status == 0 else {
                throw ToolError(.failed, "pg_restore of \(path) failed (exit \(output.status)): \(Self.lastLines(output.stderr))",
                                fix: "Fix the cause above (a missing role, an older pg_restore than the dump), then restore again with --clean.")
            }
        case .archive:
            preconditionFailure("archives load through ArchiveLoader")
        }
    }

    func runPsql(arguments: [String], environment childEnvironment: [String: String], feeding producer: (() throws -> [UInt8]?)?) throws {
        let tool = try PostgresTools.locate("psql", environment: environment).get()
        var child = ChildProcess(executable: tool.path, arguments: [
            "-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction", "--no-password", "-o", "/dev/null",
        ] + arguments, environment: childEnvironment)
        child.cancellation = target.settings.cancellation
        let output = try child.run(feeding: producer)
        guard output.status == 0 else {
            throw ToolError(.failed, "psql of \(path) failed (exit \(output.status)); its single transaction was rolled back: \(Self.lastLines(output.stderr))",
                            fix: "Fix the cause above (often a missing role or extension), then restore again.")
        }
    }

    /// Feeds psql the script (decompressed for `gzip`) about 1 MiB at a time, each piece scanned by
    /// `PsqlScriptGuard` before any of it is handed on; a refused script, or a truncated or corrupt
    /// gzip file, throws, which kills psql before it can commit. A script without its own
    /// `\restrict` starts with one of `restrictKey` (psql then refuses meta-commands too). Compressed
    /// input is inflated 4 KiB at a time, so a piece stays within a few MiB however well it compresses.
    func scriptProducer(gzip: Bool, restrictKey: String?) throws -> () throws -> [UInt8]? {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw ToolError(.failed, "cannot open \(path): \(String(cString: strerror(errno)))")
        }
        let inflater = gzip ? try GzipStreamInflater() : nil
        let path = self.path
        var scan = PsqlScriptGuard(source: path, restrictKey: restrictKey)
        var input: [UInt8] = []
        var position = 0
        var finished = false
        return {
            var output: [UInt8] = []
            while !finished && output.count < 1 << 20 {
                if position == input.count {
                    input = [UInt8](handle.readData(ofLength: 1 << 20))
                    position = 0
                }
                if input.isEmpty {
                    finished = true
                    try? handle.close()
                    if let inflater, !inflater.finishedMember {
                        throw ToolError(.mismatch, "\(path) is truncated: its gzip stream ends in the middle; nothing was committed")
                    }
                    output += try scan.finish()
                    break
                }
                guard let inflater else {
                    output += try scan.scan(input)
                    position = input.count
                    continue
                }
                let end = min(input.count, position + 4096)
                var text: [UInt8] = []
                do {
                    try inflater.inflate(input[position..<end], into: &text)
                } catch let error as CompressionError {
                    throw ToolError(.mismatch, "\(path) is corrupt (\(error.message)); nothing was committed")
                }
                position = end
                output += try scan.scan(text)
            }
            return output.isEmpty && finished ? nil : output
        }
    }

    static func lastLines(_ text: String) -> String {
        text.split(separator: "\n").suffix(6).joined(separator: "\n")
    }
}
