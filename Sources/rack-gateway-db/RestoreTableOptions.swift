import ArgumentParser
import Foundation
import RGWPostgres
import RackGatewayDB

/// `restore --table` / `--schema` and what goes with them: one group, so that none of them is
/// accepted and ignored by a full restore, and the full restore's own options are refused with them.
struct TableRestoreModeOptions: ParsableArguments {
    @Option(name: .customLong("table"), help: ArgumentHelp("Restore only this table (repeatable): its columns, defaults, owned sequences at their archived values, keys, checks, indexes and comments; foreign keys only to tables restored with it. Into a database that may hold anything else.", valueName: "schema.name"))
    var tables: [String] = []

    @Option(name: .customLong("schema"), help: ArgumentHelp("Restore every table of this schema (repeatable), as --table does.", valueName: "name"))
    var schemas: [String] = []

    @Option(name: .customLong("into-schema"), help: ArgumentHelp("With --table/--schema: create the tables in this schema (new, or empty) instead of where they were, and print the SQL that copies the rows the live tables lack back.", valueName: "name"))
    var intoSchema: String?

    @Flag(name: .customLong("with-triggers"), help: "With --table/--schema: also create the tables' triggers and rules.")
    var withTriggers = false

    @Flag(name: .customLong("with-privileges"), help: "With --table/--schema: also restore the tables' owners, grants, row security and policies (the roles must exist).")
    var withPrivileges = false

    @Option(name: .customLong("copy-back-sql"), help: ArgumentHelp("With --into-schema: also write the copy-back SQL to this file (mode 0600).", valueName: "file"))
    var copyBackFile: String?

    var active: Bool { !tables.isEmpty || !schemas.isEmpty }

    func validate() throws {
        if tables.contains(where: \.isEmpty) { throw ValidationError("--table needs a table name, SCHEMA.NAME") }
        if schemas.contains(where: \.isEmpty) { throw ValidationError("--schema needs a schema name") }
        guard !active else {
            if copyBackFile != nil && intoSchema == nil {
                throw ValidationError("--copy-back-sql goes with --into-schema (without it the tables are restored where they were, and there is nothing to copy back)")
            }
            return
        }
        let given = [(intoSchema != nil, "--into-schema"), (withTriggers, "--with-triggers"), (withPrivileges, "--with-privileges"),
                     (copyBackFile != nil, "--copy-back-sql")]
        if let (_, name) = given.first(where: { $0.0 }) {
            throw ValidationError("\(name) goes with --table or --schema (a restore of some tables); a full restore creates everything")
        }
    }

    func options(maintenanceWorkMem: String?, allowDowngrade: Bool) -> TableRestoreOptions {
        var options = TableRestoreOptions()
        options.tables = tables
        options.schemas = schemas
        options.intoSchema = intoSchema
        options.withTriggers = withTriggers
        options.withPrivileges = withPrivileges
        options.maintenanceWorkMem = maintenanceWorkMem
        options.allowDowngrade = allowDowngrade
        return options
    }
}

extension RestoreCommand {
    /// The full restore's options that a table restore does not take, as typed, with why.
    var fullRestoreOnly: [(Bool, String)] {
        [(pipeline.convoxApp != nil, "--convox-app (the pipeline restores a whole database)"),
         (clean, "--clean (a table restore drops nothing; it refuses tables that exist: see --into-schema)"),
         (verify, "--verify (a table restore checks every table's rows and fingerprint as it loads them)"),
         (createMissingRoles, "--create-missing-roles (a table restore sets no owners or grants unless --with-privileges, and then the roles must exist)"),
         (jobsOption.jobs != nil, "--jobs (a table restore loads in one transaction, on one connection)")]
    }

    /// `restore ARCHIVE --table ...`: the selected tables in one transaction; with `--into-schema`
    /// the copy-back SQL after the summary (as SQL comments, so the whole output runs in psql).
    func runTables(_ context: RunContext, settings: ConnectionSettings) throws {
        let logger = context.logger
        let (archive, chosen) = try choice.resolve(directoryOptions, logger: logger, clock: context.clock)
        if let local = archive.localPath, chosen == nil, try DumpFormat.detect(path: local) != .archive {
            throw ToolError(.usage, "\(archive.path) is a pg_dump, and --table/--schema restore tables of rack-gateway-db archives",
                            fix: "For a custom or directory pg_dump use pg_restore -t; for SQL, restore it whole into a new database.")
        }
        let reader = try chosen?.reader ?? archive.reader()
        let restore = try TableRestore(target: try RestoreTarget(settings: settings), reader: reader,
                                       options: tableMode.options(maintenanceWorkMem: maintenanceWorkMem, allowDowngrade: allowDowngrade),
                                       logger: logger, context: context)
        if dryRun {
            let plan = try restore.plan()
            Notifications.keep(plan, summary: "dry run of a table restore into \(settings.description), nothing was changed")
            if global.json { try Reporting.printJSON(plan) } else { plan.lines.forEach { print($0) } }
            if let refusal = plan.refusal { throw ToolError(.failed, "the restore would be refused as asked: \(refusal)") }
            return
        }
        let started = context.clock.now(), stopwatch = Stopwatch()
        func record(ok: Bool, error: String?) {
            let line = RestoreLog.Line(startedAt: UTCTime.iso8601(started), archive: archive.name, app: nil, mode: "table", dryRun: false, ok: ok,
                                       error: error, durationSeconds: stopwatch.elapsed, target: settings.description)
            try? JSONLines.append(line, to: RestoreLog.fileName, in: archive.store)
        }
        let report: TableRestoreReport
        do {
            report = try stall.watching("the table restore into \(settings.description)", context: context, progress: restore.progress, server: settings,
                                        applications: "rack-gateway-db restore") {
                try restore.run()
            }
            if let file = tableMode.copyBackFile, let sql = report.copyBackSQL { try TableRestore.write(copyBackSQL: sql, to: file) }
        } catch {
            record(ok: false, error: (error as? ToolError)?.message ?? String(describing: error))
            throw error
        }
        record(ok: true, error: nil)
        let names = report.tables.map(\.table)
        Notifications.keep(report, summary: "restored \(Plural.of(names.count, "table")) (\(names.prefix(5).joined(separator: ", "))) of \(URL(fileURLWithPath: report.file).lastPathComponent) into \(report.target) in \(String(format: "%.1f", report.durationSeconds)) s")
        if global.json { return try Reporting.printJSON(report) }
        // As SQL comments: the output as a whole is the copy-back script.
        let prefix = report.copyBackSQL == nil ? "" : "-- "
        print("\(prefix)Restored \(Plural.of(report.tables.count, "table")) of \(report.file) into \(report.target) in \(String(format: "%.1f", report.durationSeconds)) s (one transaction)")
        for table in report.tables {
            let place = table.restoredAs == table.table ? "" : " as \(table.restoredAs)"
            print("\(prefix)  \(table.table)\(place): \(Plural.of(table.rows, "row")), \(ProgressDisplay.bytes(table.bytes)) of COPY text")
        }
        if !report.sequences.isEmpty {
            let named = report.sequences.count <= 3 ? ": " + report.sequences.joined(separator: ", ") : " (--json names them)"
            print("\(prefix)  \(Plural.of(report.sequences.count, "sequence")) at the archived values\(named)")
        }
        if !report.createdSchemas.isEmpty { print("\(prefix)  created schema \(report.createdSchemas.joined(separator: ", "))") }
        print("\(prefix)  read \(ProgressDisplay.bytes(report.bytesRead)) of the archive's \(ProgressDisplay.bytes(report.archiveBytes))")
        for item in report.leftOut.prefix(10) { print("\(prefix)  left out: \(item)") }
        if report.leftOut.count > 10 { print("\(prefix)  left out: \(report.leftOut.count - 10) more (--json lists them all)") }
        if let sql = report.copyBackSQL {
            if let file = tableMode.copyBackFile { print("-- The copy-back SQL (also written to \(file)):") }
            print("")
            print(sql, terminator: "")
        }
    }
}
