import Foundation
import Logging
import Testing
import RGWPostgres
@testable import RackGatewayDB

/// The Convox restore pipeline without a server or a `convox`: for every step k of both plans,
/// "step k fails" → the final state (service count, databases) and the printed recovery.
@Suite("restore pipeline: plans and the executor")
struct PipelinePlanTests {
    struct Failure: Error, CustomStringConvertible {
        var operation: String
        var description: String { "injected failure in \(operation)" }
    }

    /// The rack: one service's desired count; a scale may fail, or fail after setting the count.
    final class FakeServices: ServiceControl, @unchecked Sendable {
        let lock = NSLock()
        var count: Int
        var failing: Set<String> = []
        var calls: [String] = []
        init(count: Int) { self.count = count }

        func fail(_ operation: String) throws {
            try lock.withLock {
                calls.append(operation)
                if failing.contains(operation) { throw Failure(operation: operation) }
            }
        }
        func appStatus() throws -> String { try fail("apps info"); return "running" }
        func services() throws -> [ConvoxClient.Service] {
            try fail("services")
            return lock.withLock { [ConvoxClient.Service(name: "gateway", count: count, min: nil, max: nil)] }
        }
        func processes(service: String) throws -> [ConvoxClient.Process] { try fail("ps"); return [] }
        func scale(_ service: String, count: Int) throws {
            if lock.withLock({ failing.contains("scale \(count) after setting") }) { lock.withLock { self.count = count } }
            try fail("scale \(count)")
            lock.withLock { self.count = count }
        }
        func commandLine(_ arguments: [String]) -> String { (["convox"] + arguments + ["-a", "rgw"]).joined(separator: " ") }
    }

    /// The server: database names and what each holds.
    final class FakeDatabase: PipelineDatabase, @unchecked Sendable {
        let lock = NSLock()
        var databases = ["rgw": "live data"]
        var failing: Set<String> = []
        /// A signal arrives during this operation: the run is stopped and the operation fails, as a
        /// cancelled statement or a terminated child does.
        var interruptedDuring: (operation: String, cancellation: Cancellation)?
        init() {}

        func fail(_ operation: String) throws {
            if let (during, cancellation) = lock.withLock({ interruptedDuring }), during == operation {
                cancellation.cancel(.signal(SIGINT))
                throw Failure(operation: "\(operation) (cancelled)")
            }
            if lock.withLock({ failing.contains(operation) }) { throw Failure(operation: operation) }
        }
        func terminateSessions(of database: String) throws -> String { try fail("terminate"); return "no other sessions" }
        func load(into name: String) throws -> String {
            lock.withLock { databases[name] = "partly restored" }
            try fail("load")
            lock.withLock { databases[name] = "restored" }
            return "restored"
        }
        func safetyBackup() throws -> (file: String, detail: String) { try fail("safety backup"); return ("/b/rgw_pre_restore.sql.gz", "ok") }
        func loadInPlace(dropped: @escaping @Sendable () -> Void) throws -> String {
            try fail("load before drop")
            lock.withLock { databases["rgw"] = "partly restored" }
            dropped()
            try fail("load")
            lock.withLock { databases["rgw"] = "restored" }
            return "restored"
        }
        func migrate(_ database: String) throws -> String { try fail("migrate"); return "nothing pending" }
        func swap(live: String, restored: String, previous: String) throws {
            try fail("swap")
            lock.withLock {
                databases[previous] = databases.removeValue(forKey: live)
                databases[live] = databases.removeValue(forKey: restored)
            }
        }
        func drop(_ database: String) -> Bool { lock.withLock { databases.removeValue(forKey: database) != nil } }
    }

    struct Clock: RunClock {
        func now() -> Date { Date(timeIntervalSince1970: 0) }
        func sleep(_ seconds: Double) {}
    }

    static let quiet = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
    static func context(_ cancellation: Cancellation = Cancellation()) -> RunContext {
        RunContext(logger: quiet, environment: [:], clock: Clock(), cancellation: cancellation)
    }

    static func facts(_ services: FakeServices, _ database: FakeDatabase) -> PipelineFacts {
        PipelineFacts(archive: "/b/a.sql.gz", service: "gateway", live: "rgw", restoreName: "rgw_restore_1", previousName: "rgw_pre_restore_1",
                      count: 3, migration: "apply the pending migrations", safetyDirectory: "/b", stopTimeout: 60, pollInterval: 1,
                      services: services, database: database, clock: Clock())
    }

    /// Run `plan` with `failing` injected; the executor, and the error when the run failed.
    static func run(inPlace: Bool, services: FakeServices, database: FakeDatabase) -> (PipelineExecutor, Error?) {
        let facts = Self.facts(services, database)
        let executor = PipelineExecutor(logger: Self.quiet, context: Self.context())
        do {
            try executor.run(inPlace ? .inPlace(facts) : .swap(facts))
            return (executor, nil)
        } catch {
            return (executor, error)
        }
    }

    @Test func theDryRunPrintsEveryStepOfThePlanInOrder() {
        let facts = Self.facts(FakeServices(count: 3), FakeDatabase())
        #expect(PipelinePlan.swap(facts).steps.map(\.name) == ["scale down", "wait for processes", "terminate sessions", "load", "migrate", "swap", "scale up"])
        #expect(PipelinePlan.inPlace(facts).steps.map(\.name) == ["scale down", "wait for processes", "terminate sessions", "safety backup", "load", "migrate", "scale up"])
        let executor = PipelineExecutor(logger: Self.quiet, context: Self.context())
        executor.plan(.swap(facts))
        #expect(executor.transcript.map(\.detail) == [
            "convox scale gateway --count 0 -a rgw", "wait until `convox ps -s gateway -a rgw` lists no process of gateway (at most 60 s)",
            "terminate the remaining sessions on rgw", "restore /b/a.sql.gz into rgw_restore_1, verify fingerprints",
            "apply the pending migrations",
            #"ALTER DATABASE "rgw" RENAME TO "rgw_pre_restore_1"; ALTER DATABASE "rgw_restore_1" RENAME TO "rgw""#,
            "convox scale gateway --count 3 -a rgw",
        ])
        #expect(executor.transcript.allSatisfy { $0.outcome == "planned" })
        // Issue 29: the dry run names each step as the run does, not `plan 1`.
        #expect(executor.transcript.map(\.name) == PipelinePlan.swap(facts).steps.map(\.name))
    }

    @Test func swapModeStepKFailsBeforeTheSwapLeavesTheLiveDatabaseAndTheCount() {
        // The operation that fails in each step before the point of no return (the swap itself included).
        let failures: [(step: String, services: String?, database: String?)] = [
            ("scale down", "scale 0", nil), ("wait for processes", "ps", nil), ("terminate sessions", nil, "terminate"),
            ("load", nil, "load"), ("migrate", nil, "migrate"), ("swap", nil, "swap"),
        ]
        for failure in failures {
            let (services, database) = (FakeServices(count: 3), FakeDatabase())
            if let operation = failure.services { services.failing = [operation] }
            if let operation = failure.database { database.failing = [operation] }
            let (executor, error) = Self.run(inPlace: false, services: services, database: database)
            #expect(error != nil, "\(failure.step)")
            #expect(executor.transcript.last?.name == failure.step && executor.transcript.last?.outcome == "failed")
            #expect(services.count == 3, "\(failure.step): scaled back")
            #expect(database.databases == ["rgw": "live data"], "\(failure.step): live untouched, the new database dropped: \(database.databases)")
            // The service, the live database, the new database: each said once, nothing left to run.
            let aftermath = executor.state.aftermath
            let loaded = ["load", "migrate", "swap"].contains(failure.step)
            #expect(aftermath.facts == ["gateway was scaled back to 3.",
                                        "The live database rgw is untouched.",
                                        loaded ? "The incomplete rgw_restore_1 was dropped." : "No new database was created."], "\(failure.step): \(aftermath)")
            #expect(aftermath.commands.isEmpty, "\(failure.step): \(aftermath)")
            #expect(executor.state.finalCount == 3)
        }
    }

    @Test func swapModeAFailedScaleBackIsPrintedAsTheCommandToRun() {
        let (services, database) = (FakeServices(count: 3), FakeDatabase())
        services.failing = ["scale 3"]
        database.failing = ["migrate"]
        let (executor, error) = Self.run(inPlace: false, services: services, database: database)
        #expect(error != nil && services.count == 0)
        #expect(executor.state.aftermath == PipelineAftermath(
            facts: ["gateway is at 0, not back at 3.", "The live database rgw is untouched.", "The incomplete rgw_restore_1 was dropped."],
            commands: [PipelineCommands("To bring gateway back up", ["convox scale gateway --count 3 -a rgw"])]))
    }

    @Test func swapModeAFailureAfterTheSwapStrandsAndSaysSo() {
        let (services, database) = (FakeServices(count: 3), FakeDatabase())
        services.failing = ["scale 3"]
        let (executor, error) = Self.run(inPlace: false, services: services, database: database)
        #expect(error != nil && services.count == 0, "nothing undone past the point of no return")
        #expect(database.databases == ["rgw": "restored", "rgw_pre_restore_1": "live data"])
        let aftermath = executor.state.aftermath
        #expect(aftermath.facts == ["gateway is at 0, not back at 3.", "The restore itself finished: rgw is the restored copy, rgw_pre_restore_1 the previous one."])
        #expect(aftermath.commands.first == PipelineCommands("To bring gateway back up", ["convox scale gateway --count 3 -a rgw"]), "the urgent one first")
        #expect(aftermath.commands.dropFirst().first?.commands.contains { $0.contains("RENAME TO") } == true, "the way back")
    }

    @Test func aScaleUpThatFailsAfterSettingTheCountIsHarmless() {
        let (services, database) = (FakeServices(count: 3), FakeDatabase())
        services.failing = ["scale 3 after setting", "scale 3"]
        let (executor, error) = Self.run(inPlace: false, services: services, database: database)
        #expect(error == nil && services.count == 3 && executor.state.finalCount == 3)
        #expect(executor.transcript.last?.name == "scale up" && executor.transcript.last?.outcome == "failed")
        #expect(executor.state.aftermath.commands.first == PipelineCommands("To go back to the previous database", [
            "convox scale gateway --count 0 -a rgw",
            // One statement string (one transaction), the live database's sessions ended first.
            #"psql -d postgres -c 'SELECT count(pg_catalog.pg_terminate_backend(pid, 10000)) FROM pg_catalog.pg_stat_activity WHERE datname = '\''rgw'\'' AND pid <> pg_catalog.pg_backend_pid(); "#
                + #"ALTER DATABASE "rgw" RENAME TO "rgw_restore_1"; ALTER DATABASE "rgw_pre_restore_1" RENAME TO "rgw"'"#,
            "convox scale gateway --count 3 -a rgw",
        ]))
    }

    @Test func inPlaceStepKFails() {
        // Before the live database is dropped: undone. From the drop on: stranded at 0 with the safety backup named.
        let before: [(step: String, services: String?, database: String?)] = [
            ("scale down", "scale 0", nil), ("wait for processes", "ps", nil), ("terminate sessions", nil, "terminate"),
            ("safety backup", nil, "safety backup"), ("load", nil, "load before drop"),
        ]
        for failure in before {
            let (services, database) = (FakeServices(count: 3), FakeDatabase())
            if let operation = failure.services { services.failing = [operation] }
            if let operation = failure.database { database.failing = [operation] }
            let (executor, error) = Self.run(inPlace: true, services: services, database: database)
            #expect(error != nil && executor.transcript.last?.name == failure.step)
            #expect(services.count == 3 && database.databases == ["rgw": "live data"], "\(failure.step)")
            #expect(executor.state.aftermath == PipelineAftermath(facts: ["gateway was scaled back to 3.", "The live database rgw is untouched."]),
                    "\(failure.step): \(executor.state.aftermath)")
        }
        for operation in ["load", "migrate"] {
            let (services, database) = (FakeServices(count: 3), FakeDatabase())
            database.failing = [operation]
            let (executor, error) = Self.run(inPlace: true, services: services, database: database)
            #expect(error != nil && services.count == 0, "\(operation): the service stays down")
            let live = operation == "migrate"
                ? "The live database rgw holds the restored copy, not migrated (the migrate step failed), and is marked FAILED (COMMENT ON DATABASE) so that check fails on it."
                : "The live database rgw was dropped and its restore did not finish."
            #expect(executor.state.aftermath == PipelineAftermath(
                facts: ["The service gateway stays at 0.", live, "The safety backup is /b/rgw_pre_restore.sql.gz."],
                commands: [PipelineCommands("To restore the safety backup, then bring gateway back up", [
                    "rack-gateway-db restore /b/rgw_pre_restore.sql.gz --clean --yes --database-url URL_OF_rgw",
                    "convox scale gateway --count 3 -a rgw",
                ])]), "\(operation): \(executor.state.aftermath)")
        }
        let (services, database) = (FakeServices(count: 3), FakeDatabase())
        services.failing = ["scale 3"]
        let (executor, _) = Self.run(inPlace: true, services: services, database: database)
        #expect(executor.state.aftermath.commands.first == PipelineCommands("To bring gateway back up", ["convox scale gateway --count 3 -a rgw"]))
        #expect(executor.state.aftermath.facts == ["gateway is at 0, not back at 3.", "The restore itself finished: rgw is the restored copy."])
    }

    @Test func compensationRunsOnceWhateverCallsIt() {
        let (services, database) = (FakeServices(count: 3), FakeDatabase())
        database.failing = ["migrate"]
        let facts = Self.facts(services, database)
        let plan = PipelinePlan.swap(facts)
        let executor = PipelineExecutor(logger: Self.quiet, context: Self.context())
        #expect(throws: Failure.self) { try executor.run(plan) }
        let scales = services.calls.filter { $0.hasPrefix("scale") }.count
        #expect(executor.compensate(plan) == executor.state.aftermath, "a Ctrl-C after the failure's compensation does nothing more")
        #expect(services.calls.filter { $0.hasPrefix("scale") }.count == scales)
    }

    @Test func aServiceAtZeroIsNeitherScaledDownNorUp() {
        let (services, database) = (FakeServices(count: 0), FakeDatabase())
        var facts = Self.facts(services, database)
        facts.count = 0
        let executor = PipelineExecutor(logger: Self.quiet, context: Self.context())
        #expect(throws: Never.self) { try executor.run(.swap(facts)) }
        #expect(!services.calls.contains { $0.hasPrefix("scale") } && executor.state.finalCount == 0)
    }

    /// A signal during each step before the swap: what was done is undone on the executor's own
    /// thread (the new database dropped, the service back at its count), the live database is
    /// untouched, and the error is the interruption, naming the step.
    @Test(arguments: ["terminate", "load", "migrate"])
    func aSignalBeforeTheSwapUndoesEverything(_ operation: String) throws {
        let (services, database) = (FakeServices(count: 3), FakeDatabase())
        let cancellation = Cancellation()
        database.interruptedDuring = (operation, cancellation)
        let executor = PipelineExecutor(logger: Self.quiet, context: Self.context(cancellation))
        let error = try #require(throws: ToolError.self) { try executor.run(.swap(Self.facts(services, database))) }
        #expect(error.code == .interrupted)
        #expect(error.message.contains("before the point of no return"))
        #expect(services.count == 3, "the service is back at its remembered count")
        #expect(database.databases == ["rgw": "live data"], "the live database untouched, the new one dropped")
        #expect(executor.state.aftermath.facts.contains("The live database rgw is untouched."))
    }

    /// A signal during the swap's commit (past the point of no return): nothing is undone, the
    /// scale-up still runs, and the recovery says how to go back.
    @Test func aSignalAfterTheSwapUndoesNothingAndStillScalesUp() throws {
        let (services, database) = (FakeServices(count: 3), FakeDatabase())
        let cancellation = Cancellation()
        let executor = PipelineExecutor(logger: Self.quiet, context: Self.context(cancellation))
        var facts = Self.facts(services, database)
        facts.database = SwapThenSignal(inner: database, cancellation: cancellation)
        // Every step ran: the restore succeeded, and the run's end says the signal came after the work.
        #expect(throws: Never.self) { try executor.run(.swap(facts)) }
        #expect(cancellation.isCancelled && services.count == 3)
        #expect(database.databases["rgw"] == "restored" && database.databases["rgw_pre_restore_1"] == "live data")
        #expect(executor.transcript.last?.name == "scale up" && executor.transcript.last?.outcome == "ok")
    }

    /// The swap commits, then the signal comes.
    struct SwapThenSignal: PipelineDatabase {
        let inner: FakeDatabase
        let cancellation: Cancellation
        func terminateSessions(of database: String) throws -> String { try inner.terminateSessions(of: database) }
        func load(into name: String) throws -> String { try inner.load(into: name) }
        func safetyBackup() throws -> (file: String, detail: String) { try inner.safetyBackup() }
        func loadInPlace(dropped: @escaping @Sendable () -> Void) throws -> String { try inner.loadInPlace(dropped: dropped) }
        func migrate(_ database: String) throws -> String { try inner.migrate(database) }
        func swap(live: String, restored: String, previous: String) throws {
            try inner.swap(live: live, restored: restored, previous: previous)
            cancellation.cancel(.signal(SIGTERM))
        }
        func drop(_ database: String) -> Bool { inner.drop(database) }
    }

    /// A run stopped between steps starts no further step.
    @Test func aStoppedRunStartsNoFurtherStep() throws {
        let (services, database) = (FakeServices(count: 3), FakeDatabase())
        let cancellation = Cancellation()
        cancellation.cancel(.signal(SIGHUP))
        let executor = PipelineExecutor(logger: Self.quiet, context: Self.context(cancellation))
        let error = try #require(throws: ToolError.self) { try executor.run(.swap(Self.facts(services, database))) }
        #expect(error.code == .interrupted && error.message.contains("SIGHUP"))
        #expect(executor.transcript.isEmpty && services.calls.isEmpty)
    }

    /// Issue 29: every command the plans print is quoted for the shell, whatever the names hold.
    @Test func printedCommandsAreQuotedForTheShell() {
        #expect(ShellCommand.line(["psql", "postgres://u@h:5/postgres", "-c", #"DROP DATABASE "it's""#]) == #"psql postgres://u@h:5/postgres -c 'DROP DATABASE "it'\''s"'"#)
        #expect(ShellCommand.psql(nil, ["SELECT 1"]) == "psql -d postgres -c 'SELECT 1'")
        #expect(ShellCommand.quoted("") == "''" && ShellCommand.quoted("a b") == "'a b'" && ShellCommand.quoted("$HOME") == "'$HOME'")
        let (services, database) = (FakeServices(count: 3), FakeDatabase())
        var facts = Self.facts(services, database)
        facts.serverURL = "postgres://ops@db.example:5432/postgres?sslmode=require"
        let (executor, _) = { () -> (PipelineExecutor, Error?) in
            let executor = PipelineExecutor(logger: Self.quiet, context: Self.context())
            do { try executor.run(.swap(facts)); return (executor, nil) } catch { return (executor, error) }
        }()
        #expect(executor.state.aftermath.commands.last == PipelineCommands("When satisfied, drop the previous database", [
            #"psql 'postgres://ops@db.example:5432/postgres?sslmode=require' -c 'DROP DATABASE "rgw_pre_restore_1"'"#,
        ]))
    }

    /// Issue 29: new database names take the archive names' date and time digits, lower case
    /// whatever is typed (a valid unquoted identifier), and the archive's age reads as a person says it.
    @Test func newDatabaseNamesAndTheArchivesAge() throws {
        let date = try #require(UTCTime.parseStamp("20261204T031209Z"))
        #expect(RestorePipeline.stamp(date) == "20261204_031209")
        #expect(RestorePipeline.taken("2026-12-04T02:30:00Z", now: try #require(UTCTime.parseStamp("20261204T025300Z"))) == "02:30Z, 23 minutes ago")
        #expect(RestorePipeline.taken("2026-12-02T02:30:00.000Z", now: date) == "2026-12-02 02:30Z, 2 days ago")
        #expect(RestorePipeline.taken("not a time", now: date) == nil)
    }
}
