import ArgumentParser
import Foundation
import Testing
import RGWCompression
@testable import RackGatewayDB
@testable import rack_gateway_db

/// The core's pure parts, table by table, without a server.
@Suite("retention policy (restic's buckets, UTC)")
struct RetentionPolicyUnitTests {
    static func date(_ text: String) -> Date { ISO8601DateFormatter().date(from: text)! }

    /// Newest first, as `prune` hands them over: two a day for the first days, then one a week.
    static let times: [Date] = [
        "2026-12-01T03:00:00Z", "2026-11-30T15:00:00Z", "2026-11-30T03:00:00Z", "2026-11-29T03:00:00Z",
        "2026-11-28T03:00:00Z", "2026-11-21T03:00:00Z", "2026-11-14T03:00:00Z", "2026-10-31T03:00:00Z",
        "2026-09-30T03:00:00Z", "2025-12-31T03:00:00Z", "2024-06-01T03:00:00Z",
    ].map(date)

    @Test(arguments: [
        (RetentionPolicy(last: 2), [["last"], ["last"], [], [], [], [], [], [], [], [], []]),
        (RetentionPolicy(daily: 3), [["daily"], ["daily"], [], ["daily"], [], [], [], [], [], [], []]),
        // ISO weeks: Mon 2026-11-30 to Sun 2026-12-06 is one; the 28th and 29th are in the one before.
        (RetentionPolicy(weekly: 3), [["weekly"], [], [], ["weekly"], [], ["weekly"], [], [], [], [], []]),
        (RetentionPolicy(monthly: 4), [["monthly"], ["monthly"], [], [], [], [], [], ["monthly"], ["monthly"], [], []]),
        (RetentionPolicy(yearly: 7), [["yearly"], [], [], [], [], [], [], [], [], ["yearly"], ["yearly"]]),
        (RetentionPolicy(last: 1, daily: 2, monthly: 2), [["last", "daily", "monthly"], ["daily", "monthly"], [], [], [], [], [], [], [], [], []]),
    ])
    func bucketsKeepTheNewestOfEach(policy: RetentionPolicy, expected: [[String]]) {
        #expect(policy.reasons(for: Self.times) == expected)
    }

    @Test func anEmptyPolicyIsEmptyAndKeepsNothing() {
        #expect(RetentionPolicy().isEmpty)
        let reasons = RetentionPolicy().reasons(for: Self.times)
        #expect(reasons.allSatisfy { $0.isEmpty })
    }
}

@Suite("durations, block ranges, Prometheus files, S3 answers (no server)")
struct SupportUnitTests {
    @Test(arguments: [("30d", 2_592_000.0), ("12h", 43_200), ("90m", 5_400), ("45s", 45), ("2w", 1_209_600), ("17", 17), ("0.5h", 1_800)])
    func durationsParse(text: String, seconds: Double) {
        #expect(MaintenanceDuration.parse(text) == seconds)
    }

    @Test(arguments: ["", "d", "-1d", "3x", "ten"])
    func badDurationsDoNot(text: String) {
        #expect(MaintenanceDuration.parse(text) == nil)
    }

    static func manifest(rows: [Int], filter: [String?]? = nil) -> ArchiveManifest {
        ArchiveManifest(toolVersion: "t", createdAt: "", completedAt: "", database: "d", serverVersion: "15", serverVersionNum: 150_000,
                        pgDumpVersion: "15", snapshot: "", sessionSettings: [:], schemaMigrations: [], roles: [], members: [],
                        tables: rows.enumerated().map { index, count in
                            ArchiveManifest.Table(schema: "s", name: "t\(index)", columns: ["a"], rows: count, bytes: count * 10, chunks: [],
                                                  fingerprint: "", filter: filter?[index])
                        }, sequences: [])
    }

    @Test func bigTablesSplitIntoBlockRangesThatCoverThemAndSmallOnesStayWhole() {
        let manifest = Self.manifest(rows: [10, 1000, 5])
        let pieces = LiveFingerprint.pieces(manifest, blocks: [10, 10_000, 5000], parts: 4, splitAbove: 4096)
        #expect(pieces.first?.table == 1, "the biggest table first")
        let big = pieces.filter { $0.table == 1 }.map { $0.blocks! }
        #expect(big.count == 4 && big.first?.lowerBound == 0 && big.last?.upperBound == Int.max, "\(big)")
        for (a, b) in zip(big, big.dropFirst()) { #expect(a.upperBound == b.lowerBound, "no gap, no overlap") }
        #expect(pieces.filter { $0.table == 2 }.count == 4, "5000 blocks is above the split size too")
        #expect(pieces.filter { $0.table == 0 }.map(\.blocks) == [nil])
        // A filtered table (extension configuration) is never split: its filter and a block range do not mix.
        let filtered = LiveFingerprint.pieces(Self.manifest(rows: [1], filter: ["WHERE x"]), blocks: [9000], parts: 4)
        #expect(filtered.map(\.blocks) == [nil])
    }

    @Test func prometheusFilesReplaceTheirGaugesAndKeepTheRest() throws {
        let path = NSTemporaryDirectory() + "/rgw-unit-\(UUID().uuidString.prefix(8)).prom"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let file = PrometheusFile(path: path)
        try file.update(RunMetrics(command: "backup", labels: ["database": "x"], gauges: [.init("rgw_a", "A.", 1), .init("rgw_b", "B.", 2.5)]))
        try file.update(RunMetrics(command: "backup", labels: ["database": "x\"y"], gauges: [.init("rgw_b", "B.", 3), .init("rgw_c", "C.", 4)]))
        // Only the same name with the same label set is replaced: another database's sample stays (issue 31).
        try file.update(RunMetrics(command: "backup", labels: ["database": "x"], gauges: [.init("rgw_a", "A.", 7)]))
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(text == """
            # HELP rgw_a A.
            # TYPE rgw_a gauge
            rgw_a{database="x"} 7
            # HELP rgw_b B.
            # TYPE rgw_b gauge
            rgw_b{database="x"} 2.5
            rgw_b{database="x\\"y"} 3
            # HELP rgw_c C.
            # TYPE rgw_c gauge
            rgw_c{database="x\\"y"} 4

            """)
        // Readable by node_exporter's own user (issue 30): metrics hold no secret.
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        #expect(mode == 0o644)
    }

    @Test func runMetricsCarryTheOutcomeAndThePushgatewayGroupsByCommandAndDatabase() throws {
        let metrics = RunMetrics(command: "backup", labels: ["database": "app/prod", "dir": "s3://b/p"], gauges: [.init("rgw_backup_rows", "Rows.", 5)])
        let at = Date(timeIntervalSince1970: 1_800_000_000)
        #expect(metrics.finished(.success, at: at).gauges.map(\.name) == ["rgw_backup_rows", "rgw_backup_last_success_timestamp_seconds"])
        #expect(metrics.finished(.failure, at: at).gauges.map(\.name) == ["rgw_backup_rows", "rgw_backup_last_failure_timestamp_seconds"])
        #expect(metrics.finished(.suspect, at: at).gauges.map(\.name) == ["rgw_backup_rows"], "a suspect backup is no success")
        #expect(metrics.finished(.success, at: at).text(omitting: Pushgateway.groupingLabels).hasSuffix("rgw_backup_last_success_timestamp_seconds 1800000000\n"))
        var gateway = Pushgateway(url: "https://push:secret@gw.example:9091/")
        // A slash in the database's name cannot go in a path segment as it is: base64, URL-safe.
        #expect(gateway.groupURL(for: metrics) == "https://push:secret@gw.example:9091/metrics/job/rack_gateway_db/command/backup/database@base64/YXBwL3Byb2Q=/dir@base64/czM6Ly9iL3A=")
        #expect(gateway.displayURL == "https://push:***@gw.example:9091/")
        gateway.url = "http://gw:9091"
        #expect(gateway.groupURL(for: RunMetrics(command: "prune", labels: ["dir": "/x"])) == "http://gw:9091/metrics/job/rack_gateway_db/command/prune/dir@base64/L3g=")
        // drill --existing-url: databases of one name on two servers are two groups (person-trial 3, item 1).
        #expect(gateway.groupURL(for: RunMetrics(command: "drill_existing", labels: ["database": "a", "dir": "/x", "server": "h:1"]))
                == "http://gw:9091/metrics/job/rack_gateway_db/command/drill_existing/database@base64/YQ==/dir@base64/L3g=/server@base64/aDox")
    }

    @Test(arguments: [
        (500, "InternalError", true, nil), (503, "SlowDown", true, nil), (429, "", true, nil), (400, "RequestTimeout", true, nil),
        (404, "NoSuchBucket", false, "does not exist"), (400, "ExpiredToken", false, "expired"), (403, "AccessDenied", false, "denied"),
        (403, "SignatureDoesNotMatch", false, "not valid"), (301, "PermanentRedirect", false, "another region"), (403, "Weird", false, "denied"),
        (409, "BucketNotEmpty", false, nil),
    ] as [(Int, String, Bool, String?)])
    func s3AnswersAreClassified(status: Int, code: String, retryable: Bool, hint: String?) {
        let failure = S3Client.Failure(status: status, code: code, message: "m", operation: "PutObject s3://b/k", bucket: "b")
        #expect(failure.isRetryable == retryable)
        if let hint { #expect(failure.hint?.contains(hint) == true, "\(String(describing: failure.hint))") } else { #expect(failure.hint == nil) }
    }

    @Test func s3ListingsAndErrorsParse() {
        let listing = Array("""
            <ListBucketResult><IsTruncated>true</IsTruncated><Contents><Key>a/1.sql.gz</Key><Size>10</Size></Contents>\
            <Contents><Key>a/&amp;2</Key><Size>20</Size></Contents><NextContinuationToken>tok</NextContinuationToken></ListBucketResult>
            """.utf8)
        let fields = XMLFields(listing, names: ["Key", "Size", "IsTruncated", "NextContinuationToken"])
        #expect(fields.all("Key") == ["a/1.sql.gz", "a/&2"] && fields.all("Size") == ["10", "20"])
        #expect(fields.first("IsTruncated") == "true" && fields.first("NextContinuationToken") == "tok")
        let error = XMLFields(Array("<Error><Code>NoSuchKey</Code><Message>gone</Message></Error>".utf8), names: ["Code", "Message"])
        #expect(error.first("Code") == "NoSuchKey" && error.first("Message") == "gone")
    }
}

@Suite("shrink check (no server)")
struct ShrinkCheckUnitTests {
    @Test func aHalvedTableAVanishedOneAndTheTotalAreCalledOutSmallTablesAreNot() {
        let previous = SupportUnitTests.manifest(rows: [1000, 500, 50, 200])
        var now = SupportUnitTests.manifest(rows: [400, 500, 1]).tables
        now[1].bytes = 5000
        let problems = ShrinkCheck(maxShrink: 0.5).problems(tables: now, previous: ArchiveSummary(manifest: previous, archive: "p"))
        #expect(problems.contains { $0.contains("s.t0") && $0.contains("1000") })
        #expect(problems.contains { $0.contains("table s.t3 vanished") })
        #expect(!problems.contains { $0.contains("s.t2") }, "fewer than \(ShrinkCheck.minimumRows) rows before: not compared")
        #expect(ShrinkCheck(maxShrink: 1).problems(tables: now, previous: ArchiveSummary(manifest: previous, archive: "p")).filter { !$0.contains("vanished") }.isEmpty)
        #expect(ShrinkCheck(maxShrink: 0.5).problems(tables: previous.tables, previous: ArchiveSummary(manifest: previous, archive: "p")).isEmpty)
    }
}

@Suite("--help of every command against its snapshot")
struct HelpSnapshotTests {
    static let commands: [(String, ParsableCommand.Type)] = [
        ("root", RackGatewayDBCommand.self), ("migrate", MigrateCommand.self), ("status", StatusCommand.self),
        ("reset-db", ResetDBCommand.self), ("check", CheckCommand.self), ("backup", BackupCommand.self),
        ("verify", VerifyCommand.self), ("rekey", RekeyCommand.self), ("copy", CopyCommand.self), ("list", ListCommand.self), ("prune", PruneCommand.self), ("report", ReportCommand.self),
        ("restore", RestoreCommand.self), ("drill", DrillCommand.self), ("maint", MaintCommand.self),
        ("diff", DiffCommand.self),
        ("maint-audit-prune", MaintCommand.AuditPrune.self),
        ("inspect", InspectCommand.self), ("extract", ExtractCommand.self),
    ]

    static var directory: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("help").path
    }

    /// `RGW_UPDATE_HELP_SNAPSHOTS=1 swift test --filter HelpSnapshotTests` rewrites them after an intended change.
    @Test(arguments: commands.map(\.0))
    func helpMatchesItsSnapshot(name: String) throws {
        let command = try #require(Self.commands.first { $0.0 == name }?.1)
        let help = RackGatewayDBCommand.helpMessage(for: command, columns: 100)
        let path = Self.directory + "/\(name).txt"
        if ProcessInfo.processInfo.environment["RGW_UPDATE_HELP_SNAPSHOTS"] == "1" {
            try FileManager.default.createDirectory(atPath: Self.directory, withIntermediateDirectories: true)
            try help.write(toFile: path, atomically: true, encoding: .utf8)
        }
        let snapshot = try String(contentsOfFile: path, encoding: .utf8)
        #expect(help == snapshot, "help of \(name) changed: run with RGW_UPDATE_HELP_SNAPSHOTS=1 if intended")
    }
}

@Suite("build cost ordering (no server)")
struct BuildCostUnitTests {
    static func entry(_ type: String, _ statement: String) -> DumpScript.Entry {
        DumpScript.Entry(type: type, name: "x", statements: [(statement, 1)], settings: [])
    }

    @Test func longTextKeysOnBigTablesGoFirstThenExpressionsThenPlainKeys() {
        let model = BuildCostModel(bytes: [BuildCostModel.key("audit", "audit_event"): 1_000_000, BuildCostModel.key("public", "users"): 10_000],
                                   localeColumns: [BuildCostModel.key("audit", "audit_event"): ["user_email"]])
        let text = Self.entry("INDEX", "CREATE INDEX a ON audit.audit_event USING btree (user_email, \"timestamp\")")
        let expression = Self.entry("INDEX", "CREATE INDEX b ON audit.audit_event USING btree (lower(action))")
        let plain = Self.entry("CONSTRAINT", "ALTER TABLE ONLY audit.audit_event ADD CONSTRAINT p PRIMARY KEY (id)")
        let small = Self.entry("INDEX", "CREATE INDEX c ON public.users USING btree (email)")
        let foreign = Self.entry("FK CONSTRAINT", "ALTER TABLE ONLY public.users ADD CONSTRAINT f FOREIGN KEY (x) REFERENCES public.t(id)")
        #expect(model.cost(of: text) == 3_000_000, "a locale-collated string key weighs +2")
        #expect(model.cost(of: expression) == 2_000_000, "an expression +1")
        #expect(model.cost(of: plain) == 1_000_000)
        #expect(model.cost(of: small) == 10_000 && model.cost(of: foreign) == 10_000)
        let order = [small, plain, expression, text].sorted { model.cost(of: $0) > model.cost(of: $1) }.map { $0.statements[0].text.prefix(14) }
        #expect(order == ["CREATE INDEX a", "CREATE INDEX b", "ALTER TABLE ON", "CREATE INDEX c"])
    }
}

/// The restore's plan from a manifest, a post-data script and the target's build costs.
@Suite("restore plan")
struct RestorePlanTests {
    static func member(_ index: Int, _ kind: ArchiveManifest.MemberKind, offset: Int, table: Int? = nil) -> ArchiveManifest.Member {
        ArchiveManifest.Member(index: index, kind: kind, offset: offset, length: 10, size: 10, crc32: 0, table: table, rows: table == nil ? nil : 1)
    }

    static let manifest: ArchiveManifest = {
        let table = { (name: String, bytes: Int) in
            ArchiveManifest.Table(schema: "public", name: name, columns: ["id"], rows: 1, bytes: bytes, chunks: [], fingerprint: "0")
        }
        return ArchiveManifest(toolVersion: "t", createdAt: "c", completedAt: "c", database: "d", serverVersion: "15", serverVersionNum: 150000,
                               pgDumpVersion: "15", snapshot: "s", sessionSettings: [:], schemaMigrations: [], roles: [],
                               members: [member(0, .header, offset: 0), member(1, .preData, offset: 10),
                                         member(2, .data, offset: 20, table: 0), member(3, .data, offset: 30, table: 1),
                                         member(4, .data, offset: 40, table: 1), member(5, .largeObjects, offset: 50),
                                         member(6, .sequences, offset: 60), member(7, .postData, offset: 70)],
                               tables: [table("small", 100), table("big", 10_000)], sequences: [], suspect: nil)
    }()

    static let postData = """
        -- Name: e; Type: EVENT TRIGGER; Schema: -; Owner: o
        CREATE EVENT TRIGGER e ON ddl_command_start EXECUTE FUNCTION public.f();
        -- Name: small_pkey; Type: CONSTRAINT; Schema: public; Owner: o
        ALTER TABLE ONLY public.small ADD CONSTRAINT small_pkey PRIMARY KEY (id);
        -- Name: big_pkey; Type: CONSTRAINT; Schema: public; Owner: o
        ALTER TABLE ONLY public.big ADD CONSTRAINT big_pkey PRIMARY KEY (id);
        -- Name: big_fk; Type: FK CONSTRAINT; Schema: public; Owner: o
        ALTER TABLE ONLY public.big ADD CONSTRAINT big_fk FOREIGN KEY (id) REFERENCES public.small(id);
        -- Name: t; Type: TRIGGER; Schema: public; Owner: o
        CREATE TRIGGER t AFTER INSERT ON public.big FOR EACH ROW EXECUTE FUNCTION public.f();
        """

    @Test func theReferencedTableIsReadPastAQuotedColumnList() throws {
        let script = try DumpScript("""
            -- Name: f; Type: FK CONSTRAINT; Schema: s; Owner: o
            ALTER TABLE ONLY s."child"
                ADD CONSTRAINT f FOREIGN KEY ("a) REFERENCES x.y(", b) REFERENCES "Other"."Par ent"(id) ON DELETE CASCADE;
            """, section: "post-data")
        let table = try #require(DumpScript.referencedTable(script.entries[0]))
        #expect(table.schema == "Other" && table.name == "Par ent")
    }

    @Test func dataBiggestTableFirstLocallyFileOrderFromAStoreAndBuildsDearestFirst() throws {
        let script = try DumpScript(Self.postData, section: "post-data")
        let costs = BuildCostModel(bytes: [BuildCostModel.key("public", "small"): 100, BuildCostModel.key("public", "big"): 10_000], localeColumns: [:])
        let local = RestorePlan(manifest: Self.manifest, postData: script, costs: costs, analyzable: ["public.big"], remote: false)
        #expect(local.data.map(\.index) == [3, 4, 2])
        #expect(RestorePlan(manifest: Self.manifest, postData: script, costs: costs, analyzable: [], remote: true).data.map(\.index) == [2, 3, 4])
        #expect(local.largeObjects.map(\.index) == [5] && local.analyzeEarly == ["public.big"])
        #expect(local.tableBuilds.map(\.name) == ["big_pkey", "small_pkey"], "index and constraint builds, the dearest first")
        #expect(local.builds.map(\.phase) == [.rest], "empty phases are left out (the foreign key is queued); event triggers come apart")
        #expect(local.eventTriggers.map(\.name) == ["e"])
        // The foreign key between two tables of the archive goes into the load queue, after both
        // tables' data and the referenced table's builds.
        let foreignKey = try #require(local.queued.first { $0.item.name == "big_fk" })
        #expect(foreignKey.owner == nil && foreignKey.after == [.data(1), .data(0), .builds(0)])
        #expect(local.queued.map(\.item.name) == ["big_pkey", "small_pkey", "big_fk"])
        // Locks as pg_restore assumes them: a constraint locks its table exclusively, a foreign key
        // both tables.
        #expect(local.queued.map(\.locks) == [[1], [0], [1, 0]] && local.queued.allSatisfy(\.exclusive))
        let indexed = try DumpScript("""
            -- Name: big_name; Type: INDEX; Schema: public; Owner: o
            CREATE INDEX big_name ON public.big USING btree (id);
            """, section: "post-data")
        let index = try #require(RestorePlan(manifest: Self.manifest, postData: indexed, costs: costs, analyzable: [], remote: false).queued.first)
        #expect(index.locks == [1] && !index.exclusive, "CREATE INDEX shares its table with other index builds")
    }
}

/// What pg_dump writes about an event trigger (its COMMENT and SECURITY LABEL entries; owner and
/// enabled state are statements of the trigger's own entry) belongs to the event-trigger phase.
@Suite("event triggers and what belongs to them (no server)")
struct EventTriggerPhaseTests {
    static let settings = "SET statement_timeout = 0;\nSELECT pg_catalog.set_config('search_path', '', false);\n\n"

    static func entry(_ name: String, _ type: String, _ statements: String) -> String {
        "--\n-- Name: \(name); Type: \(type); Schema: -; Owner: postgres\n--\n\n\(statements)\n\n\n"
    }

    static let trigger = entry("Log DDL", "EVENT TRIGGER", "CREATE EVENT TRIGGER \"Log DDL\" ON ddl_command_end\n   EXECUTE FUNCTION public.f();\nALTER EVENT TRIGGER \"Log DDL\" DISABLE;\nALTER EVENT TRIGGER \"Log DDL\" OWNER TO other;")
    static let comment = entry("EVENT TRIGGER \"Log DDL\"", "COMMENT", "COMMENT ON EVENT TRIGGER \"Log DDL\" IS 'logs; every DDL';")
    static let label = entry("EVENT TRIGGER \"Log DDL\"", "SECURITY LABEL", "SECURITY LABEL FOR dummy ON EVENT TRIGGER \"Log DDL\" IS 'classified';")
    static let indexComment = entry("INDEX t_pkey", "COMMENT", "COMMENT ON INDEX public.t_pkey IS 'pk';")
    static let policy = entry("t p", "POLICY", "CREATE POLICY p ON public.t USING (false);")
    static let end = "--\n-- PostgreSQL database dump complete\n--\n\n\\unrestrict KEY\n\n"

    @Test func aCommentOrLabelRunsInItsObjectsPhaseAfterIt() throws {
        // As pg_dump writes it: the trigger, then its comment and label.
        let inOrder = try DumpScript(Self.settings + Self.indexComment + Self.trigger + Self.comment + Self.label, section: "post-data")
        #expect(inOrder.entries.map(\.phase) == [.rest, .eventTriggers, .eventTriggers, .eventTriggers])
        #expect(inOrder.entries(in: .rest).map(\.label) == ["COMMENT INDEX t_pkey"], "a comment on an index stays after every index")
        #expect(inOrder.entries(in: .eventTriggers).map(\.type) == ["EVENT TRIGGER", "COMMENT", "SECURITY LABEL"])
        #expect(inOrder.entries[2].owner.map { "\($0.type)/\($0.name)" } == "EVENT TRIGGER/Log DDL", "unquoted, as the trigger's own entry names it")
        #expect(inOrder.entries[1].statements.count == 3, "DISABLE and OWNER TO are the trigger's own statements")
        // An archive with the comment and label before their trigger: they still run after it.
        let early = try DumpScript(Self.settings + Self.comment + Self.policy + Self.label + Self.trigger, section: "post-data")
        #expect(early.entries(in: .rest).map(\.type) == ["POLICY"])
        #expect(early.entries(in: .eventTriggers).map(\.type) == ["EVENT TRIGGER", "COMMENT", "SECURITY LABEL"])
    }

    @Test func theArchiveKeepsEventTriggersAndTheirEntriesLastAfterTheRefreshes() throws {
        let refreshes = SchemaState.refreshText([(schema: "public", name: "mv", owner: "postgres")])
        // pg_dump's order: only the refreshes go in, before the trigger; nothing else changes.
        let dumped = Self.settings + Self.policy + Self.trigger + Self.comment + Self.end
        let arranged = try PgDumpSections.arranging(dumped, refreshes: refreshes)
        #expect(arranged == Self.settings + Self.policy + refreshes + "\n" + Self.trigger + Self.comment + Self.end, "as before: the refreshes' lines before the trigger's header")
        #expect(try PgDumpSections.arranging(dumped, refreshes: "") == dumped)
        #expect(try PgDumpSections.arranging(Self.settings + Self.policy + Self.end, refreshes: refreshes)
                == Self.settings + Self.policy + Self.end + "\n" + refreshes, "no event trigger: the refreshes at the end")
        // A label and a comment before their trigger, an entry after it: the trigger and what is
        // about it move to the end, after the refreshes, each after the trigger, with the settings.
        let scattered = Self.settings + Self.label + Self.policy + Self.trigger + Self.indexComment + Self.comment + Self.end
        let moved = try PgDumpSections.arranging(scattered, refreshes: refreshes)
        let script = try DumpScript(moved, section: "post-data")
        #expect(script.entries.map(\.label) == ["POLICY t p", "COMMENT INDEX t_pkey", "MATERIALIZED VIEW DATA mv", "EVENT TRIGGER Log DDL",
                                                "SECURITY LABEL EVENT TRIGGER \"Log DDL\"", "COMMENT EVENT TRIGGER \"Log DDL\""], "\(moved)")
        #expect(script.entries.allSatisfy { $0.settings.count == 2 })
        #expect(SQLScript(moved).statements.map(\.text) == SQLScript(Self.settings + Self.policy + Self.indexComment + refreshes + Self.settings
                                                                      + Self.trigger + Self.label + Self.comment).statements.map(\.text))
        #expect(moved.hasSuffix(Self.end), "pg_dump's closing lines stay last")
    }
}

/// docs/archive-format.md says what the code writes: the numbers and literals a reader is built from.
@Suite("archive format specification")
struct ArchiveFormatDocumentTests {
    static let text: String = {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("docs/archive-format.md")
        return (try? String(contentsOf: url, encoding: .utf8)) ?? ""
    }()

    @Test func theTrailerHeaderAndOrderAreAsSpecified() throws {
        #expect(Self.text.contains("The last \(ArchiveTrailer.memberLength) bytes of the file"))
        #expect(Self.text.contains("the \(ArchiveTrailer.textLength)-byte text"))
        let trailer = ArchiveTrailer(manifestOffset: 7, manifestLength: 9)
        #expect(Self.text.contains("    -- rack-gateway-db trailer manifest-offset=<20 digits> manifest-length=<20 digits>\\n"))
        #expect(trailer.text == "-- rack-gateway-db trailer manifest-offset=\(String(repeating: "0", count: 19))7 manifest-length=\(String(repeating: "0", count: 19))9\n")
        #expect(Array(trailer.member().prefix(10)) == [0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 0xff])
        // The zstd archive's trailer: a frame of one raw block, as the document spells it byte by byte.
        let zstd = trailer.member(codec: .zstd)
        #expect(zstd.count == ArchiveTrailer.zstdMemberLength && Self.text.contains("the last \(ArchiveTrailer.zstdMemberLength) bytes"))
        #expect(Array(zstd.prefix(9)) == [0x28, 0xb5, 0x2f, 0xfd, 0x20, 0x65, 0x29, 0x03, 0x00] && Self.text.contains("`28 b5 2f fd 20 65 29 03 00`"))
        #expect(ArchiveTrailer.find(in: ([1, 2, 3] + zstd)[...])! == (trailer, .zstd))
        #expect(ArchiveTrailer.find(in: trailer.member()[...])! == (trailer, .gzip))
        #expect(ArchiveTrailer.find(in: Array(zstd.dropLast())[...]) == nil)
        let decoded = try MemberDecompressor(codec: .zstd).decompressWhole(zstd[...])
        #expect(String(decoding: decoded, as: UTF8.self) == trailer.text, "a frame libzstd decodes to the trailer's text")
        #expect(Self.text.contains("    \(ArchiveHeader.firstLinePrefix)\(ArchiveManifest.currentFormatVersion)\n"))
        #expect(Self.text.contains("    \(ArchiveManifest.linePrefix)<json>\\n"))
        #expect(Self.text.contains("`format`: `\"\(ArchiveManifest.formatName)\"`"))
        // The member table lists the kinds in ArchiveLayout's order.
        let kinds = ArchiveLayout.order.map { "`\($0.rawValue)`" }
        let positions = kinds.map { Self.text.range(of: "| \($0) |")?.lowerBound }
        #expect(positions.allSatisfy { $0 != nil } && positions.map { $0! } == positions.map { $0! }.sorted(), "\(kinds)")
        #expect(ArchiveLayout.mayFollow(nil, with: .header) && !ArchiveLayout.mayFollow(nil, with: .preData))
        #expect(ArchiveLayout.mayFollow(.preData, with: .sequences) && ArchiveLayout.mayFollow(.data, with: .data))
        #expect(!ArchiveLayout.mayFollow(.sequences, with: .data) && !ArchiveLayout.mayFollow(.preData, with: .preData))
    }

    @Test func theManifestKeysAreTheDocumentedOnes() throws {
        let manifest = ArchiveManifest(toolVersion: "t", createdAt: "c", completedAt: "c", database: "d", serverVersion: "15", serverVersionNum: 150000,
                                       pgDumpVersion: "15", snapshot: "s", sessionSettings: [:], schemaMigrations: [], roles: [],
                                       members: [], tables: [], sequences: [], suspect: "x",
                                       schemaState: SchemaState(sequencesBehind: [], notValidConstraints: [], invalidIndexes: [], materializedViews: [:]),
                                       databaseProperties: DatabaseProperties(settings: [], comment: nil, grants: nil),
                                       largeObjects: LargeObjects.Summary(count: 0, bytes: 0, fingerprint: "0", metadata: "m"))
        let line = try manifest.line()
        let json = try JSONSerialization.jsonObject(with: Data(line.dropFirst(ArchiveManifest.linePrefix.utf8.count))) as! [String: Any]
        for key in json.keys {
            #expect(Self.text.contains("`\(key)`"), "docs/archive-format.md does not name the manifest key \(key)")
        }
    }
}

/// The README's code table is the list of codes (issue 30): every `ToolError.Code` in it with its
/// exit status, and nothing in it the tool does not have.
@Suite("error codes in the README")
struct ErrorCodeDocumentTests {
    /// The rows of the table under "Exit statuses": `| `code` | status | meaning |`.
    static func readmeCodes() throws -> [(code: String, status: Int32)] {
        let readme = try String(contentsOf: URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("README.md"), encoding: .utf8)
        let section = try #require(readme.components(separatedBy: "## Exit statuses").dropFirst().first?.components(separatedBy: "\n## ").first)
        return section.split(separator: "\n").compactMap { line in
            let cells = line.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
            guard cells.count >= 3, cells[0].hasPrefix("`"), cells[0].hasSuffix("`"), let status = Int32(cells[1]) else { return nil }
            return (String(cells[0].dropFirst().dropLast()), status)
        }
    }

    @Test func theREADMEsCodeTableIsTheListOfCodesWithTheirExitStatuses() throws {
        let rows = try Self.readmeCodes()
        let documented = Set(rows.map(\.code))
        let codes = Set(ToolError.Code.allCases.map(\.rawValue))
        #expect(rows.count == documented.count, "each code once: \(rows)")
        #expect(codes.subtracting(documented).isEmpty, "codes the README's table does not list: \(codes.subtracting(documented).sorted())")
        #expect(documented.subtracting(codes).isEmpty, "codes in the README's table the tool does not have: \(documented.subtracting(codes).sorted())")
        for row in rows {
            guard let code = ToolError.Code(rawValue: row.code) else { continue }
            #expect(Reporting.exitStatus(for: ToolError(code, "x")) == row.status, "\(row.code): the README says \(row.status)")
        }
        for code in ["archive_not_found", "bucket_not_found", "access_denied", "credentials_missing", "database_auth_failed",
                     "database_unreachable", "archive_corrupt", "signature_invalid", "lock_held", "drill_failed", "pipeline_step_failed"] {
            #expect(codes.contains(code), "\(code)")
        }
    }
}

/// The load queue: builds wait for their table's last chunk, ready builds go before chunks in their
/// priority order, and workers wait (not end) while work that may release builds still runs.
@Suite("restore load queue")
struct LoadQueueTests {
    typealias Queue = LoadQueue<String, String>

    /// An index or constraint build: it belongs to `table` and waits for its data.
    static func build(_ name: String, on table: Int?) -> Queue.PlannedBuild {
        .init(item: name, owner: table, after: table.map { [.data($0)] } ?? [])
    }

    /// A worker that finds nothing it may take waits (on a thread of its own, not one of Swift's few
    /// cooperative threads, which a waiting `take` would hold); once `item` is done it gets
    /// `expected`, and after that the queue is empty.
    static func waiterGets(_ expected: String, once item: Queue.Item, on queue: Queue) async throws {
        let answered = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var taken: Queue.Item?
        Thread.detachNewThread {
            taken = queue.take()
            answered.signal()
        }
        try await Task.sleep(nanoseconds: 50_000_000)
        queue.done(item)
        answered.wait()
        let next = try #require(taken)
        #expect(name(next) == expected)
        queue.done(next)
        #expect(queue.take() == nil)
    }

    static func name(_ item: Queue.Item) -> String {
        switch item {
        case .chunk(let chunk, _): chunk
        case .build(let build, _): build
        }
    }

    @Test func buildsBecomeReadyWithTheirTablesLastChunk() {
        let queue = Queue(chunks: [("big 1", 0), ("big 2", 0), ("small 1", 1)],
                          builds: [Self.build("big text index", on: 0), Self.build("big pkey", on: 0), Self.build("small pkey", on: 1),
                                   Self.build("view index", on: nil)])
        var order: [String] = []
        while let item = queue.take() {
            order.append(Self.name(item))
            queue.done(item)
        }
        #expect(order == ["view index", "big 1", "big 2", "big text index", "big pkey", "small 1", "small pkey"])
    }

    @Test func aWorkerWaitsForBuildsThatAChunkInFlightWillRelease() async throws {
        let queue = Queue(chunks: [("only chunk", 0)], builds: [Self.build("its index", on: 0)])
        let first = try #require(queue.take())
        #expect(Self.name(first) == "only chunk")
        // A second worker finds nothing ready yet, but must wait instead of ending.
        try await Self.waiterGets("its index", once: first, on: queue)
    }

    @Test func aForeignKeyWaitsForBothTablesAndTheReferencedTablesBuilds() {
        let queue = Queue(chunks: [("child 1", 0), ("parent 1", 1)], builds: [
            .init(item: "parent pkey", owner: 1, after: [.data(1)]),
            .init(item: "child fk", owner: nil, after: [.data(0), .data(1), .builds(1)]),
        ])
        var order: [String] = []
        while let item = queue.take() {
            order.append(Self.name(item))
            queue.done(item)
        }
        #expect(order == ["child 1", "parent 1", "parent pkey", "child fk"])
    }

    @Test func aBuildWhoseLocksConflictWithARunningOneIsPassedOver() async throws {
        let queue = Queue(chunks: [("small 1", 1)], builds: [
            .init(item: "big index a", owner: 0, after: [], locks: [0]),
            .init(item: "big pkey", owner: 0, after: [], locks: [0], exclusive: true),
            .init(item: "big index b", owner: 0, after: [], locks: [0]),
        ])
        let first = try #require(queue.take())
        #expect(Self.name(first) == "big index a")
        // The primary key would wait for index a's share lock: the other index build of the same
        // table goes first (share locks admit each other), then the chunk.
        let second = try #require(queue.take())
        #expect(Self.name(second) == "big index b")
        let third = try #require(queue.take())
        #expect(Self.name(third) == "small 1")
        queue.done(third)
        queue.done(first)
        // Only the primary key is left, and index b still runs: a worker waits for it.
        try await Self.waiterGets("big pkey", once: second, on: queue)
    }

    @Test func stopEndsEveryWorker() async {
        let queue = Queue(chunks: [("a", 0), ("b", 0)], builds: [Queue.PlannedBuild]())
        let held = queue.take()
        #expect(held != nil)
        queue.stop()
        #expect(queue.take() == nil, "nothing more after a failure")
    }
}

@Suite("time: the monotonic stopwatch and deadline, times from an injected clock (no server)")
struct TimeUnitTests {
    struct FixedClock: RunClock {
        var date: Date
        func now() -> Date { date }
        func sleep(_ seconds: Double) {}
    }

    static let newYear = Date(timeIntervalSince1970: 1_767_225_600)  // 2026-01-01T00:00:00Z

    @Test func aStopwatchCountsUpAndADeadlinePasses() {
        let stopwatch = Stopwatch()
        let deadline = Deadline(after: 0.05)
        #expect(!deadline.hasPassed && deadline.remaining > 0 && deadline.remaining <= 0.05)
        Thread.sleep(forTimeInterval: 0.06)
        #expect(deadline.hasPassed && deadline.remaining == 0)
        #expect(stopwatch.elapsed >= 0.05 && stopwatch.elapsed < 10)
        #expect(Deadline(after: 0).hasPassed && Deadline(after: -1).hasPassed)
    }

    @Test func recordedTimesComeFromTheClockGiven() throws {
        #expect(ArchiveSignature.trustedComment(name: "x.sql.gz", date: Self.newYear) == "timestamp:1767225600\tfile:x.sql.gz\thashed")

        let directory = NSTemporaryDirectory() + "rgw-time-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = LocalStore(directory: directory)
        let lease = try store.lease(".lock", holder: "test", at: Self.newYear)
        let text = try String(contentsOfFile: directory + "/.lock", encoding: .utf8)
        #expect(text.hasPrefix("test, pid ") && text.hasSuffix("since 2026-01-01T00:00:00.000Z\n"), "\(text)")
        lease.release()

        try PruneLog.record(policy: RetentionPolicy(daily: 7), kept: 1, deleted: [], store: store, at: Self.newYear)
        #expect(PruneLog.latest(store: store)?.prunedAt == "2026-01-01T00:00:00.000Z")
        let report = ArchiveVerifier.Report(file: directory + "/a.sql.gz", ok: true, problems: [], members: 0, tables: 0, rows: 0, bytes: 0,
                                            fileSize: 1, sha256: "x", sidecar: "ok", durationSeconds: 0)
        try VerificationLog.record(report, store: store, at: Self.newYear)
        #expect(VerificationLog.load(store: store)["a.sql.gz"]?.verifiedAt == "2026-01-01T00:00:00Z")
        // An empty report's charts end on the report's own day.
        let empty = try EvidenceReport.make(directory: ArchiveDirectory(directory: directory, clock: FixedClock(date: Self.newYear)),
                                            seconds: 86_400, now: Self.newYear)
        #expect(empty.until == "2026-01-01T00:00:00.000Z" && empty.rtoChart.render().contains(">2026-01-01<"))
    }
}

/// Issue 30 trial: a drill's migrations check read "6 migrations of embedded".
@Suite struct MigrationSetDescriptionUnitTests {
    @Test func theEmbeddedSetIsCalledThatAndADirectoryByItsPath() throws {
        #expect(MigrationSet.embedded.described == "the embedded set")
        let set = try MigrationSet(migrations: [Migration(version: "20260101000000", name: "a", sql: "SELECT 1")], origin: "/srv/migrations")
        #expect(set.described == "/srv/migrations")
    }
}

@Suite("restore --table: the entries chosen and the names moved (no server)")
struct TableSelectionUnitTests {
    static let preData = """
        SET statement_timeout = 0;
        SELECT pg_catalog.set_config('search_path', '', false);
        --
        -- Name: users; Type: TABLE; Schema: public; Owner: app
        --

        CREATE TABLE public.users (
            id bigint NOT NULL,
            kind public.kind
        );


        ALTER TABLE public.users OWNER TO app;

        --
        -- Name: users_id_seq; Type: SEQUENCE; Schema: public; Owner: app
        --

        CREATE SEQUENCE public.users_id_seq;


        ALTER TABLE public.users_id_seq OWNER TO app;

        --
        -- Name: users_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: app
        --

        ALTER SEQUENCE public.users_id_seq OWNED BY public.users.id;

        --
        -- Name: users_archive; Type: TABLE; Schema: public; Owner: app
        --

        CREATE TABLE public.users_archive (id bigint);

        --
        -- Name: users id; Type: DEFAULT; Schema: public; Owner: app
        --

        ALTER TABLE ONLY public.users ALTER COLUMN id SET DEFAULT nextval('public.users_id_seq'::regclass);

        --
        -- Name: COLUMN users.kind; Type: COMMENT; Schema: public; Owner: app
        --

        COMMENT ON COLUMN public.users.kind IS 'public.users kind';

        --
        -- Name: TABLE users; Type: ACL; Schema: public; Owner: app
        --

        GRANT SELECT ON TABLE public.users TO reader;
        """
    static let postData = """
        --
        -- Name: users users_pkey; Type: CONSTRAINT; Schema: public; Owner: app
        --

        ALTER TABLE ONLY public.users ADD CONSTRAINT users_pkey PRIMARY KEY (id);

        --
        -- Name: users users_touch; Type: TRIGGER; Schema: public; Owner: app
        --

        CREATE TRIGGER users_touch BEFORE UPDATE ON public.users FOR EACH ROW EXECUTE FUNCTION public.touch();

        --
        -- Name: users_archive users_archive_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: app
        --

        ALTER TABLE ONLY public.users_archive ADD CONSTRAINT users_archive_id_fkey FOREIGN KEY (id) REFERENCES public.users(id);
        """

    @Test func aTablesOwnEntriesAreChosenAndTheRestLeftOutOrIgnored() throws {
        let selection = TableSelection(tables: [TableSelection.Name("public", "users")], preData: try DumpScript(Self.preData, section: "pre-data"),
                                       postData: try DumpScript(Self.postData, section: "post-data"), withTriggers: false, withPrivileges: false)
        #expect(selection.sequences == [TableSelection.Name("public", "users_id_seq")])
        #expect(selection.preData.map(\.label) == ["TABLE users", "SEQUENCE users_id_seq", "SEQUENCE OWNED BY users_id_seq", "DEFAULT users id", "COMMENT COLUMN users.kind"])
        #expect(!selection.preData.flatMap(\.statements).contains { $0.text.contains("OWNER TO") }, "no ownership without --with-privileges")
        #expect(selection.postData.map(\.label) == ["CONSTRAINT users users_pkey"])
        #expect(selection.leftOut == ["ACL TABLE users (no --with-privileges)", "TRIGGER users users_touch (no --with-triggers)"])
        let both = TableSelection(tables: [TableSelection.Name("public", "users"), TableSelection.Name("public", "users_archive")],
                                  preData: try DumpScript(Self.preData, section: "pre-data"), postData: try DumpScript(Self.postData, section: "post-data"),
                                  withTriggers: true, withPrivileges: true)
        #expect(both.postData.map(\.label) == ["CONSTRAINT users users_pkey", "FK CONSTRAINT users_archive users_archive_id_fkey", "TRIGGER users users_touch"])
        #expect(both.leftOut.isEmpty && both.preData.contains { $0.type == "ACL" })
    }

    @Test func onlyTheRestoredRelationsMoveToTheNewSchema() {
        let rewriter = SchemaRewriter(relations: [TableSelection.Name("public", "users"), TableSelection.Name("public", "users_id_seq"),
                                                  TableSelection.Name("Odd Schema", "Mixed Case")], into: "recovered")
        #expect(rewriter.rewrite("ALTER TABLE ONLY public.users ALTER COLUMN id SET DEFAULT nextval('public.users_id_seq'::regclass);")
                == "ALTER TABLE ONLY \"recovered\".users ALTER COLUMN id SET DEFAULT nextval('\"recovered\".users_id_seq'::regclass);")
        #expect(rewriter.rewrite("ALTER SEQUENCE public.users_id_seq OWNED BY public.users.id;")
                == "ALTER SEQUENCE \"recovered\".users_id_seq OWNED BY \"recovered\".users.id;")
        // A longer name, another schema's table of the same name, a type: untouched.
        #expect(rewriter.rewrite("CREATE TABLE public.users_archive (k public.kind, r other.users, s xpublic.users);")
                == "CREATE TABLE public.users_archive (k public.kind, r other.users, s xpublic.users);")
        #expect(rewriter.rewrite("CREATE TABLE \"Odd Schema\".\"Mixed Case\" (id integer);") == "CREATE TABLE \"recovered\".\"Mixed Case\" (id integer);")
        #expect(rewriter.rewrite("CREATE TABLE \"Odd Schema\".\"Mixed Case2\" (id integer);") == "CREATE TABLE \"Odd Schema\".\"Mixed Case2\" (id integer);")
    }
}

extension TableSelectionUnitTests {
    @Test func aChildWithoutItsInheritanceParentIsNamedAndPartitionsAttachOnlyTogether() throws {
        let preData = """
            --
            -- Name: child; Type: TABLE; Schema: public; Owner: app
            --

            CREATE TABLE public.child (
                extra integer
            )
            INHERITS (public.parent, "Odd"."Other Parent");

            --
            -- Name: p2024; Type: TABLE ATTACH; Schema: public; Owner: app
            --

            ALTER TABLE ONLY public.measurements ATTACH PARTITION public.p2024 FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
            """
        let script = try DumpScript(preData, section: "pre-data")
        let empty = try DumpScript("", section: "post-data")
        let alone = TableSelection(tables: [TableSelection.Name("public", "child"), TableSelection.Name("public", "p2024")], preData: script,
                                   postData: empty, withTriggers: false, withPrivileges: false)
        #expect(alone.unselectedParents.map { "\($0.table.qualified) < \($0.parent.qualified)" } == ["public.child < public.parent", "public.child < Odd.Other Parent"])
        #expect(alone.leftOut == ["TABLE ATTACH p2024 (the partition and its partitioned table are restored together only)"])
        let together = TableSelection(tables: [TableSelection.Name("public", "child"), TableSelection.Name("public", "parent"), TableSelection.Name("Odd", "Other Parent"),
                                               TableSelection.Name("public", "p2024"), TableSelection.Name("public", "measurements")],
                                      preData: script, postData: empty, withTriggers: false, withPrivileges: false)
        #expect(together.unselectedParents.isEmpty && together.leftOut.isEmpty && together.preData.map(\.type) == ["TABLE", "TABLE ATTACH"])
    }
}

/// The command `restore --latest` prints for the newest good archive (issue 33's second trial):
/// the archive, --verify-key, --identity and --migrations files by absolute paths, as the command
/// printed after a stop has them, so that pasted from another directory it finds them; an `RWQ...`
/// key, URLs and s3:// paths as given; passwords left out.
@Suite("the printed restore-again command")
struct RestoreAgainCommandUnitTests {
    @Test func filesAreGivenByAbsolutePaths() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("rgw-again-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory + "/keys", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        FileManager.default.createFile(atPath: directory + "/keys/sign.pub", contents: Data("x".utf8))
        FileManager.default.createFile(atPath: directory + "/keys/id.txt", contents: Data("x".utf8))
        let line = ArchiveChoice.commandLine(replacingLatestWith: "backups/rack_gateway_backup_20261201T030000Z.sql.gz", arguments: [
            "rack-gateway-db", "restore", "--latest", "--dir", "backups", "--verify-key", "keys/sign.pub", "--identity=keys/id.txt",
            "--target-url", "postgres://u:secret@h/db",
        ], currentDirectory: directory)
        #expect(line == "rack-gateway-db restore \(directory)/backups/rack_gateway_backup_20261201T030000Z.sql.gz --verify-key \(directory)/keys/sign.pub "
                + "--identity=\(directory)/keys/id.txt --target-url postgres://u@h/db", "\(line)")
        let remote = ArchiveChoice.commandLine(replacingLatestWith: "s3://b/p/rack_gateway_backup_20261201T030000Z.sql.gz", arguments: [
            "rack-gateway-db", "restore", "--latest", "--dir", "s3://b/p", "--verify-key", "RWQexample",
        ], currentDirectory: directory)
        #expect(remote == "rack-gateway-db restore s3://b/p/rack_gateway_backup_20261201T030000Z.sql.gz --verify-key RWQexample", "\(remote)")
        // Keys from RGW_VERIFY_KEY / RGW_AGE_IDENTITY_FILE (againArguments) are added, by absolute
        // path, when the command line does not give them; never twice.
        let fromEnvironment = ArchiveChoice.commandLine(replacingLatestWith: "s3://b/p/A.sql.gz", arguments: [
            "rack-gateway-db", "restore", "--latest", "--identity", "keys/id.txt",
        ], currentDirectory: directory, keys: ["--identity", "\(directory)/keys/id.txt", "--verify-key", "\(directory)/keys/sign.pub"])
        #expect(fromEnvironment == "rack-gateway-db restore s3://b/p/A.sql.gz --identity \(directory)/keys/id.txt --verify-key \(directory)/keys/sign.pub", "\(fromEnvironment)")
    }
}
