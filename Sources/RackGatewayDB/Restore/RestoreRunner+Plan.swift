import Foundation
import RGWPostgres

/// `restore --dry-run` without Convox: everything the restore would check, and what it would
/// change, read without changing anything.
public struct RestoreDryRun: Codable, Sendable {
    public var file: String
    public var format: DumpFormat
    /// The archive check: structure, checksums, signature; "not applicable" for a pg_dump file.
    public var archiveCheck: String
    public var target: String
    public var database: String
    /// `create` (it does not exist), `drop and recreate` (--clean over objects), `load into the
    /// existing empty database`, or `refused`.
    public var targetAction: String
    public var targetObjects: Int
    public var tables: Int?
    public var rows: Int?
    public var bytes: Int?
    public var roles: [String]
    public var missingRoles: [String]
    /// What happens to the missing roles: created NOLOGIN with --create-missing-roles.
    public var rolesAction: String
    public var jobs: Int
    /// How the tables would get their planner statistics after the builds: `import planner
    /// statistics (N tables), ANALYZE the rest` on PostgreSQL 18 and newer from an archive that
    /// holds them, else `ANALYZE`.
    public var statistics: String = "ANALYZE"
    /// Why the restore as asked would be refused; nil when it would go ahead.
    public var refusal: String?
    /// What to do about `refusal`.
    public var refusalFix: String?
    /// The real run's code for `refusal` (`database_exists`, ...).
    public var refusalCode: ToolError.Code?
    public var wouldRestore: Bool { refusal == nil }

    /// The refusal as the real run raises it (the same code and fix), said as what would happen.
    public var refusalError: ToolError? {
        refusal.map { ToolError(refusalCode ?? .failed, "the restore would be refused as asked: \($0)", fix: refusalFix) }
    }

    /// The plan as lines for a person.
    public var lines: [String] {
        var lines = ["Dry run: nothing was changed. Restoring \(file) (\(format.rawValue)) into \(target) would:"]
        lines.append("  archive check: \(archiveCheck)")
        lines.append("  target \(database): \(targetAction)" + (targetObjects > 0 ? " (it holds \(Plural.of(targetObjects, "object")))" : ""))
        if let tables, let rows, let bytes {
            lines.append("  load \(tables) tables, \(rows) rows, \(bytesText(bytes)) of COPY text over \(Plural.of(jobs, "connection")); then indexes, constraints, \(statistics)")
        }
        lines.append("  roles: " + (roles.isEmpty ? "none referenced" : "\(roles.count) referenced (\(roles.joined(separator: ", ")))") + "; \(rolesAction)")
        if let refusal { lines.append("  REFUSED as asked: \(refusal)" + (refusalFix.map { "\n    \($0)" } ?? "")) }
        return lines
    }

    func bytesText(_ bytes: Int) -> String { ProgressDisplay.bytes(bytes) }
}

extension RestoreRunner {
    /// What `run` would do, from the same checks, changing nothing (no lock, no role, no database,
    /// no mark). An archive that does not verify throws as `run` would.
    public func plan(archive: ArchiveLocation, preflight: ArchiveVerifier.Report? = nil) throws -> RestoreDryRun {
        try plan(archive: archive, opened: nil, preflight: preflight)
    }

    /// The same for an archive already opened (`--latest`'s choice).
    public func plan(reader: ArchiveReader, preflight: ArchiveVerifier.Report? = nil) throws -> RestoreDryRun {
        try plan(archive: reader.archive, opened: reader, preflight: preflight)
    }

    func plan(archive: ArchiveLocation, opened: ArchiveReader?, preflight: ArchiveVerifier.Report?) throws -> RestoreDryRun {
        var checked: ArchiveVerifier.Report?
        let (format, reader) = try checkArchive(archive, opened: opened, preflight: preflight) { body in
            let report = try body()
            checked = report
            return report
        }
        let manifest = reader?.manifest
        let check = checked ?? preflight
        let inspection = try inspectTarget(roles: manifest?.roles ?? [], archiveServer: manifest?.serverVersionNum)
        let action: String
        if inspection.refusal != nil {
            action = "refused"
        } else if inspection.existing == nil {
            action = "create"
        } else if inspection.objects.count > 0 {
            action = "drop and recreate (--clean" + (options.clean ? "; asks first unless --yes)" : ")")
        } else {
            action = "load into the existing empty database"
        }
        let missing = inspection.missingRoles
        let rolesAction = missing.isEmpty ? "all exist"
            : "missing: \(missing.joined(separator: ", "))" + (options.createMissingRoles ? ", would be created NOLOGIN" : ", refused without --create-missing-roles")
        var statistics = "ANALYZE"
        if let reader, inspection.server.serverVersionNumber >= 180000, reader.manifest.members.contains(where: { $0.kind == .statistics }) {
            let loader = ArchiveLoader(reader: reader, settings: target.settings, jobs: options.jobs, maintenanceWorkMem: nil, logger: logger, progress: progress)
            try loader.checkLayout()
            let count = loader.statisticsToImport(inspection.server).count
            if count > 0 { statistics = "import planner statistics (\(Plural.of(count, "table"))), ANALYZE the rest" }
        }
        return RestoreDryRun(
            file: archive.path, format: format,
            archiveCheck: reader == nil ? "not applicable (a \(format.rawValue) pg_dump has no manifest)"
                : check.map { "structure and SHA-256 \($0.sha256.prefix(16))... match (sidecar \($0.sidecar))" } ?? "passed",
            target: target.settings.description, database: target.database, targetAction: action, targetObjects: inspection.objects.count,
            tables: manifest?.tables.count, rows: manifest?.totalRows, bytes: manifest?.totalBytes,
            roles: manifest?.roles ?? [], missingRoles: missing, rolesAction: rolesAction, jobs: options.jobs,
            statistics: statistics, refusal: inspection.refusal?.message, refusalFix: inspection.refusal?.fix, refusalCode: inspection.refusal?.code)
    }
}
