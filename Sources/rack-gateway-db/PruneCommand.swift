import ArgumentParser
import Foundation
import RackGatewayDB

struct PruneCommand: ToolCommand {
    var outputOptions: OutputOptions { output }

    static let configuration = CommandConfiguration(
        commandName: "prune",
        abstract: "Delete archives outside a retention policy (with their .sha256); never the newest one that verifies.",
        discussion: "The Rack Gateway policy: --keep-daily 7 --keep-weekly 4 --keep-monthly 12 --keep-yearly 7. Times are the archives' UTC timestamps. SUSPECT archives, and those whose verify failed (list's VERIFY-FAILED), are evidence of what happened to the data: kept whatever the policy says for --keep-suspect-days (35), unless --delete-suspect. Each decision gives its reason (outside-policy, suspect-kept-as-evidence, verify-failed-kept-as-evidence, ...). What prune deletes is recorded in prunes.jsonl (each archive's time and its verified, drilled, suspect and verify-failed state), which report reads.")

    @OptionGroup var directoryOptions: DirectoryOptions

    @Option(name: .customLong("keep-last"), help: "Keep the newest N good archives.") var keepLast = 0
    @Option(name: .customLong("keep-daily"), help: "Keep the newest good archive of each of the last N UTC days that have one.") var keepDaily = 0
    @Option(name: .customLong("keep-weekly"), help: "Keep the newest good archive of each of the last N weeks that have one.") var keepWeekly = 0
    @Option(name: .customLong("keep-monthly"), help: "Keep the newest good archive of each of the last N months that have one.") var keepMonthly = 0
    @Option(name: .customLong("keep-yearly"), help: "Keep the newest good archive of each of the last N years that have one.") var keepYearly = 0

    @Flag(name: .customLong("delete-suspect"), help: "Let the policy delete SUSPECT and VERIFY-FAILED archives too (they are kept by default).")
    var deleteSuspect = false
    @Option(name: .customLong("keep-suspect-days"), help: ArgumentHelp("Keep SUSPECT and VERIFY-FAILED archives younger than N days, whatever the policy says (default: 35).", valueName: "n"))
    var keepSuspectDays: Int?

    @Flag(name: .customLong("dry-run"), help: "Show what would be deleted; delete nothing.")
    var dryRun = false

    @OptionGroup var output: OutputOptions
    @OptionGroup var metrics: MetricsOptions
    @OptionGroup var notifications: NotificationOptions
    var notificationOptions: NotificationOptions? { notifications }
    var json: Bool { output.json }

    var policy: RetentionPolicy {
        RetentionPolicy(last: keepLast, daily: keepDaily, weekly: keepWeekly, monthly: keepMonthly, yearly: keepYearly)
    }

    func validate() throws {
        guard [keepLast, keepDaily, keepWeekly, keepMonthly, keepYearly].allSatisfy({ $0 >= 0 }) else {
            throw ValidationError("--keep-* values must not be negative")
        }
        if deleteSuspect && keepSuspectDays != nil {
            throw ValidationError("--keep-suspect-days does not go with --delete-suspect (which deletes SUSPECT archives whatever their age): give one of them")
        }
        if let keepSuspectDays, keepSuspectDays < 0 { throw ValidationError("--keep-suspect-days must not be negative") }
        guard !policy.isEmpty else {
            throw ValidationError("give a policy, e.g. --keep-daily 7 --keep-weekly 4 --keep-monthly 12 --keep-yearly 7")
        }
        if dryRun && metrics.given { throw ValidationError("--metrics-file and --pushgateway report a prune; --dry-run deletes nothing") }
    }

    struct Report: Encodable {
        var dryRun: Bool
        var decisions: [Pruner.Decision]
        var deleted: [String]
    }

    func run(_ context: RunContext) throws {
        do {
            // Prune reads no database: its one label is the directory.
            if !dryRun { try metrics.start("prune", labels: ["dir": directoryOptions.metricsLabel], context: context) }
            var directory = try directoryOptions.archiveDirectory(clock: context.clock)
            // --dry-run writes nothing into the directory, verifications.jsonl included.
            directory.recordsVerifications = !dryRun
            var pruner = Pruner(directory: directory, policy: policy)
            pruner.deleteSuspect = deleteSuspect
            pruner.keepSuspectDays = keepSuspectDays ?? Pruner.defaultKeepSuspectDays
            let (plan, evidence) = try pruner.planWithEvidence()
            let logger = context.logger
            for decision in plan {
                logger.debug("retention decision", metadata: ["archive.file": "\(decision.file)", "keep": "\(decision.keep)",
                                                              "reasons": "\(decision.reasons.joined(separator: ","))"])
            }
            let deleted = dryRun ? [] : try pruner.apply(plan)
            MetricsRecorder.record([
                .init("rgw_prune_deleted_archives", "Archives the last prune deleted.", Double(deleted.count)),
                .init("rgw_prune_kept_archives", "Archives the last prune kept.", Double(plan.filter(\.keep).count)),
            ])
            // What report shows as the retention policy in force, and each day's deleted archive.
            if !dryRun {
                try PruneLog.record(policy: policy, kept: plan.filter(\.keep).count, deleted: deleted, store: pruner.directory.store, at: context.clock.now(),
                                    archives: deleted.compactMap { evidence[$0] }, deleteSuspect: deleteSuspect,
                                    keepSuspectDays: deleteSuspect ? nil : pruner.keepSuspectDays)
            }
            Notifications.keep(Report(dryRun: dryRun, decisions: plan, deleted: deleted), summary: dryRun ? "dry run, \(Plural.of(plan.filter { !$0.keep }.count, "archive")) would be deleted"
                               : "deleted \(Plural.of(deleted.count, "archive")), kept \(plan.filter(\.keep).count)")
            if json {
                try Reporting.printJSON(Report(dryRun: dryRun, decisions: plan, deleted: deleted))
                return
            }
            for decision in plan {
                let verb = decision.keep ? "keep  " : (dryRun ? "would delete" : "delete")
                print("\(verb)  \(decision.file)  \(decision.reasons.joined(separator: ","))")
            }
            let count = plan.filter { !$0.keep }.count
            print(dryRun ? "\(Plural.of(count, "archive")) would be deleted (dry run)." : "Deleted \(Plural.of(deleted.count, "archive")).")
        }
    }
}
