import Foundation
import Logging
import RGWPostgres

/// What `restore --table` / `--schema` restores and how.
public struct TableRestoreOptions: Sendable {
    /// `SCHEMA.NAME` (or a bare name one schema has), as given.
    public var tables: [String] = []
    /// Every table of these schemas.
    public var schemas: [String] = []
    /// Create everything in this schema instead of where it was: as given, read as SQL reads a name
    /// (`Recovered` is recovered, `"Recovered"` is Recovered).
    public var intoSchema: String?
    public var withTriggers = false
    public var withPrivileges = false

    public init() {}
}

public struct TableRestoreReport: Codable, Sendable {
    public struct Table: Codable, Sendable {
        /// The table in the archive, `schema.name`.
        public var table: String
        /// Where it was created, `schema.name`.
        public var restoredAs: String
        public var rows: Int
        public var bytes: Int
    }

    public var file: String
    public var target: String
    public var database: String
    /// Always `table`: a partial restore (restores.jsonl and the evidence report say so).
    public var mode = "table"
    public var intoSchema: String?
    /// Whether this run created `intoSchema` (or, without it, the tables' own schemas it created).
    public var createdSchemas: [String]
    public var tables: [Table]
    /// The sequences set to their archived values, `schema.name` where they were created.
    public var sequences: [String]
    /// The selected tables' objects not created, with why (triggers, grants, foreign keys to tables not restored).
    public var leftOut: [String]
    /// Restored where they were: the foreign keys between the restored tables and tables of the target
    /// that were not restored (both ways), put back and validated in the restore's transaction.
    public var foreignKeysPutBack: [String] = []
    /// The archive's stored bytes read for this restore (manifest, schema and the tables' members).
    public var bytesRead: Int
    public var archiveBytes: Int
    public var archiveCreatedAt: String?
    public var phases: [RestorePhase]
    public var durationSeconds: Double
    /// With `--into-schema`: the SQL that copies the rows missing from the live tables back.
    public var copyBackSQL: String?
    /// With `--into-schema`: the statement that drops the side schema once the rows are back (until
    /// then it holds copies of the rows, secrets included, and every backup includes it).
    public var dropSchemaSQL: String?

    /// What to do with the side schema afterwards, for a person (nil without `--into-schema`).
    public var sideSchemaNotice: [String]? {
        guard let intoSchema, let dropSchemaSQL else { return nil }
        return ["Schema \(intoSchema) holds copies of the restored rows (secrets included) and is in every backup until it is dropped.",
                "Once the rows you need are back: \(dropSchemaSQL)"]
    }
}

/// `restore --table ... --dry-run`: what would be created and read, and the target's refusal if any.
public struct TableRestorePlan: Codable, Sendable {
    public var file: String
    public var target: String
    public var intoSchema: String?
    public var schemasToCreate: [String]
    public var tables: [TableRestoreReport.Table]
    public var sequences: [String]
    /// The archive's entries that would be created (`TABLE users`, `INDEX users_email_idx`, ...).
    public var creates: [String]
    public var leftOut: [String]
    public var bytesToRead: Int
    public var archiveBytes: Int
    /// Why the restore would be refused as asked (a table that exists, NEW not empty); nil when it would go ahead.
    public var refusal: String?
    /// What to do about `refusal`.
    public var refusalFix: String?
    /// Restored where they were: the foreign keys to and from the target's other tables that would be
    /// put back (if their rows validate).
    public var foreignKeysToPutBack: [String] = []

    /// The refusal as the real run raises it (the same code, message and fix).
    public var refusalError: ToolError? { refusal.map { ToolError(.tableExists, $0, fix: refusalFix) } }

    /// The plan for a person.
    public var lines: [String] {
        var lines = ["Would restore \(Plural.of(tables.count, "table")) of \(file) into \(target) (--dry-run: nothing was changed):"]
        for table in tables {
            let place = table.restoredAs == table.table ? "" : " as \(table.restoredAs)"
            lines.append("  \(table.table)\(place): \(Plural.of(table.rows, "row")), \(ProgressDisplay.bytes(table.bytes)) of COPY text")
        }
        if !sequences.isEmpty { lines.append("  \(Plural.of(sequences.count, "sequence")) at the archived values") }
        if !schemasToCreate.isEmpty { lines.append("  would create schema \(schemasToCreate.joined(separator: ", "))") }
        lines.append("  \(Plural.of(creates.count, "schema entry", plural: "schema entries")) to create; would read \(ProgressDisplay.bytes(bytesToRead)) of the archive's \(ProgressDisplay.bytes(archiveBytes))")
        lines += foreignKeysToPutBack.map { "  would put back foreign key: \($0) (if its rows validate)" }
        lines += leftOut.map { "  left out: \($0)" }
        lines.append(refusal.map { "  REFUSED: \($0)" } ?? "  the target allows it")
        return lines
    }
}

/// `restore ARCHIVE --table SCHEMA.NAME ... [--schema NAME ...] [--into-schema NEW]`: the selected
/// tables of an archive into a database that may hold anything else, in one transaction (a failure
/// leaves nothing). Only the manifest, the schema members and the selected tables' data members are
/// read (ranged reads, also from S3 and through age), each member checked as it is read and each
/// table's rows and fingerprint at its end (`TableExtractor`).
///
/// Without `--into-schema` the tables are created where they were, refused when any exists. With it,
/// everything is created in schema NEW (which must not exist or be empty), the names of the restored
/// tables and sequences rewritten to NEW and every other name left pointing where it did, and the
/// report carries the copy-back SQL (`CopyBackSQL`).
public final class TableRestore: @unchecked Sendable {
    public let target: RestoreTarget
    public let reader: ArchiveReader
    public let options: TableRestoreOptions
    public let logger: Logger
    public let progress: RestoreProgress
    public let context: RunContext
    /// The selected tables, in the archive's order.
    public let tables: [ArchiveManifest.Table]

    public init(target: RestoreTarget, reader: ArchiveReader, options: TableRestoreOptions, logger: Logger,
                progress: RestoreProgress = RestoreProgress(), context: RunContext? = nil) throws {
        self.context = context ?? .detached(logger: logger)
        self.target = RestoreTarget(checked: target, cancellation: self.context.cancellation)
        self.reader = reader
        self.logger = logger
        self.progress = progress
        var options = options
        if let given = options.intoSchema {
            if given.isEmpty { throw ToolError(.usage, "--into-schema needs a schema name") }
            guard let into = TableSelection.Name.schema(given: given) else {
                throw ToolError(.usage, "--into-schema \(given) is not a schema name as SQL reads one: a name with capitals, spaces or other characters is written in double quotes",
                                fix: "Quote it as SQL does, e.g. --into-schema '\(SQL.identifier(given.replacingOccurrences(of: "\"", with: "")))', or give a plain name such as recovered.")
            }
            options.intoSchema = into
        }
        self.options = options
        tables = try Self.select(options, in: reader)
        if let into = options.intoSchema {
            let shown = TableSelection.Name.sql(into)
            if into.hasPrefix("pg_") || into == "information_schema" {
                throw ToolError(.usage, "--into-schema \(shown) is a system schema's name", fix: "Give a new schema's name, e.g. --into-schema recovered.")
            }
            if let same = tables.first(where: { $0.schema == into }) {
                throw ToolError(.usage, "--into-schema \(shown) is where \(TableSelection.Name(same.schema, same.name).sql) is: the restored tables would take the live ones' names",
                                fix: "Give a new schema's name, e.g. --into-schema recovered.")
            }
        }
    }

    /// The tables `--table` and `--schema` name, in the archive's order; a name the archive does not
    /// hold is one usage error listing its nearest tables (or schemas).
    static func select(_ options: TableRestoreOptions, in reader: ArchiveReader) throws -> [ArchiveManifest.Table] {
        var chosen: Set<String> = []
        for name in options.tables {
            chosen.insert(try TableExtractor(reader: reader, table: name, format: .copy).table.qualifiedName)
        }
        let all = reader.manifest.tables
        for schema in options.schemas {
            let found = all.filter { $0.schema == schema }
            guard !found.isEmpty else {
                let schemas = Array(Set(all.map(\.schema))).sorted()
                let near = ArchiveLocation.nearest(to: schema, among: schemas).prefix(5)
                throw ToolError(.usage, "\(reader.path) holds no table in schema \(schema); its schemas with tables: \(near.joined(separator: ", "))",
                                fix: "Give one of them to --schema (rack-gateway-db inspect ARCHIVE lists every table).")
            }
            chosen.formUnion(found.map(\.qualifiedName))
        }
        // An extension's configuration table holds only the rows the extension did not make.
        if let partial = all.first(where: { chosen.contains($0.qualifiedName) && $0.filter != nil }) {
            throw ToolError(.usage, "\(partial.qualifiedName) is an extension's configuration table; the archive holds only some of its rows",
                            fix: "Restore the whole archive into a new database instead, or extract its rows (rack-gateway-db extract).")
        }
        return all.filter { chosen.contains($0.qualifiedName) }
    }

    /// Where a table of the archive is created.
    func destination(_ name: TableSelection.Name) -> TableSelection.Name {
        TableSelection.Name(options.intoSchema ?? name.schema, name.name)
    }

    /// The selected tables' entries of the archive's schema; a table whose inheritance parent is
    /// not selected is refused.
    func select() throws -> TableSelection {
        let preData = try DumpScript(try text(of: .preData), section: "pre-data")
        let postData = try DumpScript(try text(of: .postData), section: "post-data")
        let selection = TableSelection(tables: Set(tables.map { TableSelection.Name($0.schema, $0.name) }), preData: preData, postData: postData,
                                       withTriggers: options.withTriggers, withPrivileges: options.withPrivileges)
        if let (table, parent) = selection.unselectedParents.first {
            throw ToolError(.usage, "\(table.sql) inherits from \(parent.sql), which is not restored: alone it would become a child of the target's \(parent.sql)",
                            fix: "Restore them together: add --table \(parent.sql).")
        }
        return selection
    }

    /// `--dry-run`: what the restore would create and read, and whether the target would refuse it,
    /// read without changing anything (no schema, lock or table).
    public func plan() throws -> TableRestorePlan {
        let selection = try select()
        guard let connection = try target.connectIfExists() else { throw missingDatabase }
        try checkVersions(connection)
        var refusal: ToolError?
        var schemas: [String] = []
        do {
            schemas = try checkTarget(connection, selection: selection)
        } catch let error as ToolError where error.code == .tableExists {
            refusal = error
        }
        var leftOut = selection.leftOut
        var putBack: [String] = []
        if options.intoSchema == nil {
            try putBackForeignKeys(connection, selection: selection, leftOut: &leftOut, putBack: &putBack, dryRun: true)
        }
        let manifest = reader.manifest
        return TableRestorePlan(
            file: reader.path, target: target.settings.description, intoSchema: options.intoSchema.map(TableSelection.Name.sql),
            schemasToCreate: schemas.map(TableSelection.Name.sql),
            tables: tables.map { .init(table: TableSelection.Name($0.schema, $0.name).sql, restoredAs: destination(TableSelection.Name($0.schema, $0.name)).sql, rows: $0.rows, bytes: $0.bytes) },
            sequences: manifest.sequences.filter { selection.sequences.contains(TableSelection.Name($0.schema, $0.name)) }
                .map { destination(TableSelection.Name($0.schema, $0.name)).sql },
            creates: (selection.preData + selection.postData).map(\.label), leftOut: leftOut,
            bytesToRead: bytesRead, archiveBytes: reader.fileSize, refusal: refusal?.message, refusalFix: refusal?.fix,
            foreignKeysToPutBack: putBack)
    }

    /// An archive of a newer PostgreSQL than the target's is refused (a table restore does not try it).
    func checkVersions(_ connection: Connection) throws {
        do {
            try PostgresVersions.checkRestore(archiveServer: reader.manifest.serverVersionNum, targetServer: connection.serverVersionNumber, allowDowngrade: false)
        } catch let error as ToolError {
            throw ToolError(error.code, error.message, fix: "Restore the tables into a server of that version or newer, or restore the whole archive there with --allow-downgrade and copy the rows across.")
        }
    }

    var missingDatabase: ToolError {
        ToolError(.failed, "database \(target.database) does not exist on \(target.settings.description); restore --table restores into an existing database",
                  fix: "Give --target-url an existing database, or create it first (createdb \(target.database)).")
    }

    public func run() throws -> TableRestoreReport {
        let stopwatch = Stopwatch()
        var phases: [RestorePhase] = []
        func timed<R>(_ name: String, _ body: () throws -> R) throws -> R {
            let phase = Stopwatch()
            let result = try body()
            phases.append(RestorePhase(name: name, seconds: phase.elapsed))
            return result
        }
        let manifest = reader.manifest
        progress.begin(phase: "reading the schema")
        let selection = try timed("schema") { try select() }
        let names = selection.tables
        let rewriter = options.intoSchema.map { SchemaRewriter(relations: names.union(selection.sequences), into: $0) }
        logger.info("table restore started", metadata: ["file": "\(reader.path)", "target": "\(target.settings.description)",
                                                        "tables": "\(tables.map(\.qualifiedName).joined(separator: ","))"])

        progress.begin(phase: "checking the target")
        guard let connection = try target.connectIfExists() else { throw missingDatabase }
        try checkVersions(connection)
        let lock = try RestoreLock.acquire([.target(target.database)], on: target)
        defer { lock.release() }
        try DumpSession.apply(to: connection)
        let filter = try SessionSettingFilter(connection)

        try connection.execute("BEGIN")
        var committed = false
        defer { if !committed { _ = try? connection.execute("ROLLBACK") } }
        let createdSchemas = try timed("target") {
            let schemas = try checkTarget(connection, selection: selection)
            for schema in schemas { try connection.execute("CREATE SCHEMA \(SQL.identifier(schema))") }
            return schemas
        }

        func run(_ entry: DumpScript.Entry, section: String) throws {
            for setting in entry.settings where try filter.keep(setting, section: section, line: entry.headerLine) {
                try connection.execute(setting)
            }
            for (statement, line) in entry.statements {
                let text = rewriter?.rewrite(statement) ?? statement
                do {
                    try connection.execute(text)
                } catch let error as PostgresError {
                    throw ToolError(.failed, "\(section) \(entry.label) (line \(line)) failed: \(error.description); nothing was restored\n  \(text.prefix(200))",
                                    fix: ArchiveLoader.fixForSchemaError(error))
                }
            }
        }
        progress.begin(phase: "pre-data", steps: selection.preData.count)
        try timed("pre-data") {
            for entry in selection.preData {
                try run(entry, section: "pre-data")
                progress.stepDone()
            }
        }

        var restored: [TableRestoreReport.Table] = []
        var created: [TableSelection.Name] = []
        progress.beginData(chunks: tables.reduce(0) { $0 + $1.chunks.count }, bytes: tables.reduce(0) { $0 + $1.bytes })
        try timed("data") {
            for table in tables {
                let into = destination(TableSelection.Name(table.schema, table.name))
                let extractor = try TableExtractor(reader: reader, table: table.qualifiedName, format: .copy)
                var sent = 0
                // The extractor hands over one member's rows at a time, in the table's order.
                var memberRows = table.chunks.map { manifest.members[$0].rows ?? 0 }[...]
                // Created in this transaction: a plain table is loaded frozen (`TableLoad`); a
                // partitioned one refuses FREEZE.
                let plain = try connection.query("SELECT c.relkind = 'r' FROM pg_catalog.pg_class c WHERE c.oid = $1::regclass",
                                                 [SQL.qualified(into.schema, into.name)]).scalar == "t"
                let copied: Int
                do {
                    let statement = DataChunk.copyInStatement(schema: into.schema, name: into.name, columns: table.columns) + (plain ? " (FREEZE)" : "")
                    copied = try connection.copyIn(statement) { stream in
                        try extractor.run { bytes in
                            try self.context.checkStopped()
                            try stream.write(bytes)
                            sent += bytes.count
                            self.progress.chunkDone(rows: memberRows.popFirst() ?? 0, bytes: bytes.count)
                        }
                    }
                } catch let error as PostgresError {
                    throw ToolError(.failed, "loading \(TableSelection.Name(table.schema, table.name).sql) into \(into.sql) failed: \(error.description); nothing was restored")
                }
                guard copied == table.rows else {
                    throw ToolError(.mismatch, "the server loaded \(copied) rows of \(table.qualifiedName), whose members hold \(table.rows); nothing was restored",
                                    fix: ArchiveLoader.corruptFix)
                }
                restored.append(.init(table: TableSelection.Name(table.schema, table.name).sql, restoredAs: into.sql, rows: copied, bytes: sent))
                created.append(into)
            }
        }

        let sequences = manifest.sequences.filter { selection.sequences.contains(TableSelection.Name($0.schema, $0.name)) }
        try timed("sequences") {
            for sequence in sequences {
                let into = destination(TableSelection.Name(sequence.schema, sequence.name))
                try connection.query("SELECT pg_catalog.setval($1::regclass, $2::bigint, $3::boolean)",
                                     [SQL.qualified(into.schema, into.name), sequence.value, sequence.isCalled ? "true" : "false"])
            }
        }
        progress.begin(phase: "post-data", steps: selection.postData.count)
        try timed("post-data") {
            for entry in selection.postData {
                try run(entry, section: "post-data")
                progress.stepDone()
            }
        }
        var leftOut = selection.leftOut
        var putBack: [String] = []
        if options.intoSchema == nil {
            try timed("foreign keys") { try putBackForeignKeys(connection, selection: selection, leftOut: &leftOut, putBack: &putBack) }
        }
        try timed("analyze") {
            // On PostgreSQL 18 the archive's statistics of each table (under its new name) in place
            // of ANALYZE, each under a savepoint: a failed import is a warning and ANALYZE instead.
            let statistics = connection.serverVersionNumber >= 180000 ? try statisticsByTable() : [:]
            for (table, into) in zip(tables, created) {
                if let calls = statistics[SQL.qualified(table.schema, table.name)], ArchiveStatistics.standsInForAnalyze(calls, table: table) {
                    let renamed = calls.map { call in
                        ArchiveStatistics.Call(call.function, call.arguments.map {
                            $0.name == "schemaname" ? .init($0.name, into.schema) : $0.name == "relname" ? .init($0.name, into.name) : $0
                        })
                    }
                    try connection.execute("SAVEPOINT rgw_statistics")
                    guard let why = try ArchiveStatistics.importTable(renamed, connection) else {
                        try connection.execute("RELEASE SAVEPOINT rgw_statistics")
                        continue
                    }
                    try connection.execute("ROLLBACK TO SAVEPOINT rgw_statistics")
                    logger.warning("the statistics of a table could not be imported; it is analyzed instead",
                                   metadata: ["table": "\(into.sql)", "why": "\(why)"])
                }
                try connection.execute("ANALYZE \(SQL.qualified(into.schema, into.name))")
            }
        }
        var copyBack: String?
        if let into = options.intoSchema {
            copyBack = try CopyBackSQL(connection: connection, tables: tables.map { TableSelection.Name($0.schema, $0.name) }, into: into,
                                       archive: reader.archive.name, createdAt: manifest.createdAt).text()
        }
        try context.checkStopped()
        try connection.execute("COMMIT")
        committed = true

        let report = TableRestoreReport(
            file: reader.path, target: target.settings.description, database: target.database, intoSchema: options.intoSchema.map(TableSelection.Name.sql),
            createdSchemas: createdSchemas.map(TableSelection.Name.sql), tables: restored,
            sequences: sequences.map { destination(TableSelection.Name($0.schema, $0.name)).sql },
            leftOut: leftOut, foreignKeysPutBack: putBack, bytesRead: bytesRead, archiveBytes: reader.fileSize, archiveCreatedAt: manifest.createdAt,
            phases: phases, durationSeconds: stopwatch.elapsed, copyBackSQL: copyBack,
            dropSchemaSQL: options.intoSchema.map { "DROP SCHEMA \(TableSelection.Name.sql($0)) CASCADE;" })
        logger.info("table restore finished", metadata: ["file": "\(reader.path)", "target": "\(target.settings.description)",
                                                         "seconds": "\(String(format: "%.1f", report.durationSeconds))"])
        return report
    }

    /// Restored where they were: the foreign keys between the restored tables and the target's other
    /// tables (a restored table's to a table it has; a table it has to a restored one, as a `DROP ...
    /// CASCADE` took them), each added and validated under a savepoint. One that fails (a table or
    /// column missing, a row without its parent) stays out, listed with the error and its SQL.
    /// `dryRun`: only whether the other table exists (nothing is added).
    func putBackForeignKeys(_ connection: Connection, selection: TableSelection, leftOut: inout [String], putBack: inout [String], dryRun: Bool = false) throws {
        let candidates = selection.outgoingForeignKeys.map { ($0.entry, Optional($0.leftOut)) } + selection.incomingForeignKeys.map { ($0, nil as String?) }
        for (entry, listed) in candidates {
            guard let owner = entry.table ?? entry.schema.map({ ($0, entry.name.components(separatedBy: " ").first ?? "") }),
                  let referenced = DumpScript.referencedTable(entry) else { continue }
            let ownerName = TableSelection.Name(owner.schema, owner.name), referencedName = TableSelection.Name(referenced.schema, referenced.name)
            let other = listed == nil ? ownerName : referencedName
            // One line, as it is listed: pg_dump breaks the statement before ADD CONSTRAINT.
            let sql = entry.statements.map { $0.text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: " ") }
                .joined(separator: " ")
            let exists = try connection.query("SELECT pg_catalog.to_regclass($1) IS NOT NULL", [SQL.qualified(other.schema, other.name)]).scalar == "t"
            var failure: String?
            if !exists {
                failure = "\(other.sql) does not exist in the target"
            } else if !dryRun {
                try connection.execute("SAVEPOINT rgw_foreign_key")
                do {
                    for statement in entry.statements { try connection.execute(statement.text) }
                    try connection.execute("RELEASE SAVEPOINT rgw_foreign_key")
                } catch let error as PostgresError {
                    try connection.execute("ROLLBACK TO SAVEPOINT rgw_foreign_key")
                    failure = error.description.split(whereSeparator: \.isNewline).joined(separator: " ")
                }
            }
            let label = "\(entry.label) (\(ownerName.sql) references \(referencedName.sql))"
            if let failure {
                if let listed, let index = leftOut.firstIndex(of: listed) { leftOut.remove(at: index) }
                leftOut.append("\(label): not put back, \(failure); to add it once that is fixed: \(sql)")
            } else {
                if let listed, let index = leftOut.firstIndex(of: listed) { leftOut.remove(at: index) }
                putBack.append(label)
            }
        }
    }

    /// The stored bytes this restore reads: the schema members and the tables' data members (the
    /// manifest was read when the archive was opened).
    var bytesRead: Int {
        let members = reader.manifest.members
        return members.filter { $0.kind == .preData || $0.kind == .postData }.reduce(0) { $0 + $1.length }
            + tables.flatMap(\.chunks).reduce(0) { $0 + members[$1].length }
    }

    /// The target checked, read only: with `--into-schema`, NEW must not exist or hold nothing;
    /// without it, no table or sequence to create may exist. Returns the schemas to create.
    func checkTarget(_ connection: Connection, selection: TableSelection) throws -> [String] {
        let existing = Set(try connection.query("SELECT nspname FROM pg_catalog.pg_namespace").rows.compactMap { $0[0] })
        if let into = options.intoSchema {
            if existing.contains(into) {
                let objects = try connection.query("""
                    SELECT kind || ' ' || name FROM (
                        SELECT 'relation' AS kind, c.relname::text AS name FROM pg_catalog.pg_class c WHERE c.relnamespace = $1::regnamespace
                        UNION ALL SELECT 'function', p.proname::text FROM pg_catalog.pg_proc p WHERE p.pronamespace = $1::regnamespace
                        UNION ALL SELECT 'type', t.typname::text FROM pg_catalog.pg_type t WHERE t.typnamespace = $1::regnamespace
                            AND t.typrelid = 0 AND t.typelem = 0
                    ) o ORDER BY 1
                    """, [SQL.identifier(into)]).rows.compactMap { $0[0] }
                guard objects.isEmpty else {
                    throw ToolError(.tableExists, "schema \(TableSelection.Name.sql(into)) of \(target.settings.description) is not empty (\(Plural.of(objects.count, "object")): \(objects.prefix(5).joined(separator: ", "))); nothing was changed",
                                    fix: "Give --into-schema a new schema's name, or drop this one after checking what it holds (DROP SCHEMA \(TableSelection.Name.sql(into)) CASCADE).")
                }
                return []
            }
            return [into]
        }
        let relations = selection.tables.union(selection.sequences).sorted()
        var taken: [String] = []
        for relation in relations where existing.contains(relation.schema) {
            if try connection.query("SELECT pg_catalog.to_regclass($1) IS NOT NULL", [SQL.qualified(relation.schema, relation.name)]).scalar == "t" {
                taken.append(relation.sql)
            }
        }
        guard taken.isEmpty else {
            throw ToolError(.tableExists, "\(taken.joined(separator: ", ")) already exist\(taken.count == 1 ? "s" : "") in \(target.settings.description); nothing was changed",
                            fix: "Restore beside them into a new schema with --into-schema NAME (e.g. --into-schema recovered): the output then has the SQL that copies missing rows back.")
        }
        return Set(selection.tables.map(\.schema)).filter { !existing.contains($0) }.sorted()
    }

    /// The decompressed text of the one member of `kind`, read by a ranged read and checked
    /// (CRC32, size) like any member.
    func text(of kind: ArchiveManifest.MemberKind) throws -> String {
        guard let member = reader.manifest.members.first(where: { $0.kind == kind }) else { return "" }
        let loader = ArchiveLoader(reader: reader, settings: target.settings, jobs: 1, maintenanceWorkMem: nil, logger: logger, progress: progress)
        var compressed: [UInt8] = []
        var text: [UInt8] = []
        try loader.decompress(member, compressed: &compressed, into: &text)
        return String(decoding: text, as: UTF8.self)
    }

    /// The archive's statistics member's calls per table (qualified name); none without one.
    func statisticsByTable() throws -> [String: [ArchiveStatistics.Call]] {
        guard reader.manifest.members.contains(where: { $0.kind == .statistics }) else { return [:] }
        switch ArchiveStatistics.parse(try text(of: .statistics)) {
        case .success(let statistics): return statistics.byTable
        case .failure(let problem):
            throw ToolError(.mismatch, "\(reader.path): \(problem.description); nothing was restored", fix: ArchiveLoader.corruptFix)
        }
    }

    /// The copy-back SQL written to `path`, mode 0600, whole or not at all.
    public static func write(copyBackSQL: String, to path: String) throws {
        let url = URL(fileURLWithPath: path)
        try LocalFile.writeAtomically(directory: url.deletingLastPathComponent().path, name: url.lastPathComponent, contents: Array(copyBackSQL.utf8))
    }
}
