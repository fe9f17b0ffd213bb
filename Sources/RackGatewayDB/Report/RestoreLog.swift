import Foundation

/// `restores.jsonl` beside the archive restored: one line per restore that changed (or tried to
/// change) a database, the Convox pipeline's (its whole `PipelineReport`) and a plain `restore`'s
/// (this `Line`), which `report` lists. No password: the target is `user@host:port/dbname`.
public enum RestoreLog {
    public static let fileName = "restores.jsonl"

    /// The fields `report` reads; a pipeline's line has them too (and more).
    public struct Line: Codable, Sendable {
        public var startedAt: String?
        public var archive: String
        /// The Convox app (the pipeline); absent for a plain restore.
        public var app: String?
        /// `swap` or `in-place` (the pipeline), `plain` (restore into a database).
        public var mode: String
        public var dryRun: Bool
        public var ok: Bool
        public var error: String?
        public var durationSeconds: Double
        /// Where a plain restore went, without the password.
        public var target: String?

        public init(startedAt: String?, archive: String, app: String?, mode: String, dryRun: Bool, ok: Bool, error: String?,
                    durationSeconds: Double, target: String?) {
            self.startedAt = startedAt
            self.archive = archive
            self.app = app
            self.mode = mode
            self.dryRun = dryRun
            self.ok = ok
            self.error = error
            self.durationSeconds = durationSeconds
            self.target = target
        }
    }

    public static func read(store: ArchiveStore) -> [Line] { JSONLines.read(Line.self, from: fileName, in: store) }
}
