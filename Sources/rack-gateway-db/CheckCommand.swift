import Foundation
import ArgumentParser
import RGWPostgres
import RackGatewayDB

struct CheckCommand: ToolCommand {
    var outputOptions: OutputOptions { global.output }

    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Check connectivity, TLS, server version, pg_dump, migrations and backup privileges.",
        discussion: """
            Exits 1 when any check fails; warnings alone exit 0. With --max-backup-age, also checks that the \
            newest good archive in --dir (readable, not suspect, verified) is younger, else exits 2 (for \
            monitors; the metrics then carry its time, rgw_backup_newest_good_timestamp_seconds, 0 when \
            there is none). Where copies.jsonl in --dir records copies from it, also one copies item per \
            destination with its newest verified copy, failing (exit 2) when the newest good archive's copy \
            there FAILED or is no longer the file copied, or the newest verified copy there is of an archive \
            older than --max-backup-age (a copy not made yet is pending, not a failure). Archives in --dir \
            marked VERIFY-FAILED are a warning item (verify-failed; exit unchanged) and the gauge \
            rgw_backup_verify_failed_archives.
            """)

    @OptionGroup var global: GlobalOptions
    @OptionGroup var migrationOptions: MigrationOptions
    @OptionGroup var directoryOptions: DirectoryOptions
    @OptionGroup var notifications: NotificationOptions
    var notificationOptions: NotificationOptions? { notifications }

    @Option(name: .customLong("max-backup-age"), help: ArgumentHelp("Fail (exit 2) when the newest good archive in --dir is older, e.g. 26h.", valueName: "age"))
    var maxBackupAge: String?

    @OptionGroup var metrics: MetricsOptions

    func validate() throws {
        if let maxBackupAge { _ = try MaintCommand.duration(maxBackupAge, "--max-backup-age") }
        if directoryOptions.dir != nil && maxBackupAge == nil { throw ValidationError("--dir goes with --max-backup-age (check reads archives only for the backup age)") }
    }

    /// The newest good archive's age against `--max-backup-age`: an item, and whether it is too old;
    /// then, where copies.jsonl in --dir records copies from it, one `copies` item per destination.
    func backupAgeItems(clock: RunClock) throws -> (items: [HealthCheck.Item], stale: Bool)? {
        guard let maxBackupAge else { return nil }
        let limit = try MaintCommand.duration(maxBackupAge, "--max-backup-age")
        var directory = try directoryOptions.archiveDirectory(clock: clock)
        directory.readsCopies = true
        let entries = try directory.entries()
        let newest = entries.first(where: directory.isGood)
        // A damaged archive is evidence (prune keeps it), not a stale backup: a warning that does not
        // change check's exit, and its own gauge and alert (RackGatewayArchiveVerifyFailed).
        let failed = entries.filter(\.verificationFailed)
        let damaged = failed.isEmpty ? [] : [HealthCheck.Item(name: "verify-failed", status: .warn, detail: "\(Plural.of(failed.count, "archive")) in \(directory.directory) VERIFY-FAILED "
            + "(do not restore \(failed.count == 1 ? "it" : "them"); rack-gateway-db verify --dir \(directory.directory) NAME says what is wrong, "
            + "and a copy elsewhere that verifies replaces it: rack-gateway-db copy --from OTHER --to \(directory.directory) NAME): "
            + failed.prefix(5).map(\.file).joined(separator: ", ") + (failed.count > 5 ? ", ..." : ""))]
        let copies = ArchiveCopy.freshness(entries: entries, newestGood: newest, destinations: ArchiveCopy.Index(store: directory.store).destinations,
                                          limit: limit, now: clock.now()).map { freshness in
            var item = HealthCheck.Item(name: "copies", status: freshness.fresh ? .ok : .fail, detail: freshness.detail)
            item.copy = freshness
            return item
        }
        // A time, not an age: `time() - ...` in PromQL keeps growing when the checks stop; 0 (1970)
        // when there is no good archive, so no older file's healthy value survives.
        MetricsRecorder.record([
            .init("rgw_backup_newest_good_timestamp_seconds", "Unix time of the newest good archive (readable, not suspect, verified), 0 when there is none: alert on time() minus this.",
                  newest?.time.timeIntervalSince1970 ?? 0),
            .init("rgw_backup_verify_failed_archives", "Archives in --dir marked VERIFY-FAILED at their current version (a verify or verify --sample found them damaged): check warns of them.",
                  Double(failed.count)),
            .init("rgw_copy_destinations", "Destinations copies.jsonl in --dir records copies to (copy, backup --copy-to).", Double(copies.count)),
            .init("rgw_copy_stale_destinations", "Of those, the ones whose newest good archive's copy FAILED or changed, or whose newest verified copy is of an archive older than --max-backup-age: check names them.",
                  Double(copies.filter { $0.status == .fail }.count)),
        ])
        guard let newest else {
            return ([HealthCheck.Item(name: "backups", status: .fail, detail: "no good archive in \(directory.directory) (readable, not suspect, verified)")] + damaged + copies, true)
        }
        let age = clock.now().timeIntervalSince(newest.time)
        let text = "newest good archive \(newest.file) is \(ProgressDisplay.duration(age)) old (limit \(maxBackupAge))"
        return ([HealthCheck.Item(name: "backups", status: age > limit ? .fail : .ok, detail: text)] + damaged + copies, age > limit || copies.contains { $0.status == .fail })
    }

    func run(_ context: RunContext) throws {
        do {
            try metrics.start("check", labels: ["database": "unknown"].merging(maxBackupAge == nil ? [:] : ["dir": directoryOptions.metricsLabel]) { $1 },
                              context: context)
            let settings = try global.connectionSettings(context)
            MetricsRecorder.label("database", settings.databaseName ?? "unknown")
            var report = HealthCheck(settings: settings, migrations: try migrationOptions.load(),
                                     logger: context.logger).run()
            let backups = try backupAgeItems(clock: context.clock)
            if let backups { report.items += backups.items }
            Notifications.keep(report, summary: "\(report.target): " + report.items.map { "\($0.name) \($0.status.rawValue)" }.joined(separator: ", "))
            if global.json {
                try Reporting.printJSON(report)
            } else {
                print("Checking \(report.target)")
                for item in report.items {
                    print("  \(item.status.rawValue.uppercased().padding(toLength: 4, withPad: " ", startingAt: 0))  \(item.name): \(item.detail)")
                }
            }
            if !report.ok {
                // Only the backup age (or a copy's) failing: exit 2, for monitors; anything else failing: 1.
                let failing = report.items.filter { $0.status == .fail }
                let onlyStale = failing.allSatisfy { $0.name == "backups" || $0.name == "copies" } && backups?.stale == true
                var fixes: [String] = []
                if failing.contains(where: { $0.name == "backups" }) { fixes.append("Find out why no good backup was made since, and make one now (backup, then verify --latest).") }
                let stale = failing.compactMap { $0.copy?.destination }
                if !stale.isEmpty {
                    let from = directoryOptions.isS3 ? directoryOptions.chosen : (try? directoryOptions.directory) ?? directoryOptions.chosen
                    fixes.append("Find out why the copy failed or did not run, and copy the newest archive there (what is there already is skipped): "
                                 + stale.map { "rack-gateway-db copy --from \(from) --to \($0) --latest" }.joined(separator: "; "))
                }
                let fix = onlyStale ? fixes.joined(separator: " ")
                    : report.connectionFailure?.fix ?? report.restoreMarkFix ?? "Fix what the failing items say, then run check again."
                // The message without the advice the fix gives (the connection item's text has both, for a person's list).
                let items = failing.map { "\($0.name): " + ($0.name == "connection" ? report.connectionFailure?.message ?? $0.detail : $0.detail) }
                throw ToolError(onlyStale ? .backupStale : report.connectionFailure?.code ?? .failed, "check failed: " + items.joined(separator: "; "), fix: fix)
            }
        }
    }
}
