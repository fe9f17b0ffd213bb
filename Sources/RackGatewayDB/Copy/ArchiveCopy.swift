import Foundation

/// What `copies.jsonl` (CopyLog) at a location says of one archive there, for `list`, `report` and
/// `check`: where it was copied to (the location is the copy's source), or what it is a copy of
/// (the location is the destination), with the latest outcome and how far it is trusted now.
public struct ArchiveCopy: Codable, Sendable, Equatable {
    public enum Direction: String, Codable, Sendable {
        /// The archive here was copied to `location`.
        case to
        /// The archive here is a copy of `location`'s.
        case from
    }

    /// How far the entry is trusted now.
    public enum State: String, Codable, Sendable {
        /// A copy here (`from`) whose file is still, by its `ArchiveStore.version`, the one verified
        /// when it was copied.
        case verified
        /// A copy at the other location (`to`), as the log recorded it: this location cannot see
        /// that file, so it is reported as recorded at `copiedAt`.
        case recorded
        /// The file here is no longer the one the entry is about: a copy here rewritten since it
        /// was verified (its version differs), or an archive here whose size or SHA-256 is not the
        /// one copied. Not a good copy until `copy` reads it again.
        case changed
        /// The latest copy failed (it did not verify at the destination, or could not be made).
        case failed
    }

    public var direction: Direction
    /// The other location: the destination (`to`) or the source (`from`), as the log names it.
    public var location: String
    public var state: State
    public var outcome: CopyLog.Outcome
    /// When the copy was made, skipped or failed, ISO 8601 UTC.
    public var copiedAt: String
    /// What was checked at the destination (CopyLog.Entry.checks).
    public var checks: [String]
    public var retainUntil: String?
    public var problems: [String]?

    /// A verified copy, as far as this location knows.
    public var good: Bool { state == .verified || state == .recorded }

    /// `copies.jsonl` of one location, read once, by archive file name.
    public struct Index: Sendable {
        /// The latest entry per archive and destination (CopyLog.latest), by archive file name.
        let entries: [String: [CopyLog.Entry]]
        /// The location as the store names it, normalized (`sameLocation`).
        let here: String
        /// Whether the log holds any entry: without one, `list`, `report` and `check` show nothing of
        /// copies (a directory that was never copied reads as it did before).
        public var isEmpty: Bool { entries.isEmpty }

        public init(store: ArchiveStore) {
            entries = Dictionary(grouping: CopyLog.latest(store: store), by: \.file)
            here = ArchiveCopy.normalized(store.location)
        }

        /// The copies of `object` (a file at this location), sorted by direction and location; nil
        /// when the log is empty. `sidecarDigest` reads the archive's `.sha256` sidecar (asked only
        /// when this location is the source of a copy of it, once).
        public func copies(of object: StoreEntry, sidecarDigest: () -> String?) -> [ArchiveCopy]? {
            guard !isEmpty else { return nil }
            var digest: String??
            func sidecar() -> String? {
                if let digest { return digest }
                digest = .some(sidecarDigest())
                return digest!
            }
            return (entries[object.name] ?? []).map { entry in
                let direction = direction(of: entry, version: object.version)
                let state: State
                if entry.outcome == .failed {
                    state = .failed
                } else if direction == .from {
                    // The entry's version is this file's: trusted while it is still the same.
                    state = entry.version != nil && entry.version == object.version ? .verified : .changed
                } else {
                    // The entry's version is the destination's: what is checked here is that this
                    // archive is the one that was copied.
                    state = entry.size == object.size && entry.sha256 == sidecar() ? .recorded : .changed
                }
                return ArchiveCopy(direction: direction, location: direction == .to ? entry.destination : entry.source, state: state,
                                   outcome: entry.outcome, copiedAt: entry.copiedAt, checks: entry.checks, retainUntil: entry.retainUntil,
                                   problems: entry.problems)
            }.sorted { ($0.direction.rawValue, $0.location) < ($1.direction.rawValue, $1.location) }
        }

        /// Whether this location is the entry's destination (`from`: the file here is the copy) or
        /// its source (`to`). The log is only written at the two ends, so an entry that does not
        /// name this location as its destination is about a copy from here; when neither end is
        /// named as the store names itself (a path given another way), the entry's version decides.
        func direction(of entry: CopyLog.Entry, version: String?) -> Direction {
            if ArchiveCopy.normalized(entry.destination) == here { return .from }
            if ArchiveCopy.normalized(entry.source) == here { return .to }
            return entry.version != nil && entry.version == version ? .from : .to
        }

        /// The destinations copies were made to from here (any archive, any outcome, archives
        /// deleted here since included), sorted.
        public var destinations: [String] {
            Array(Set(entries.values.joined().filter { direction(of: $0, version: nil) == .to }.map(\.destination))).sorted()
        }
    }

    /// A location as the log and the store may write it: `s3://bucket/prefix` without a trailing
    /// slash, a directory as an absolute path without symbolic links.
    public static func normalized(_ location: String) -> String {
        var text = location
        while text.count > 1 && text.hasSuffix("/") { text.removeLast() }
        if text.hasPrefix("s3://") { return text }
        return URL(fileURLWithPath: text).standardizedFileURL.resolvingSymlinksInPath().path
    }

    /// The short state for `list`'s COPIES column: `2 copies`, `copy FAILED`, `1 copy,1 CHANGED`;
    /// of a copy here, `copy` (verified), `copy CHANGED` or `copy FAILED`; `-` when none.
    public static func column(_ copies: [ArchiveCopy]) -> String {
        let to = copies.filter { $0.direction == .to }, from = copies.filter { $0.direction == .from }
        var parts: [String] = []
        let good = to.filter(\.good).count, failed = to.filter { $0.state == .failed }.count, changed = to.filter { $0.state == .changed }.count
        if good > 0 { parts.append(Plural.of(good, "copy", plural: "copies")) }
        if failed > 0 { parts.append(good == 0 && changed == 0 && failed == 1 ? "copy FAILED" : "\(failed) FAILED") }
        if changed > 0 { parts.append(good == 0 && failed == 0 && changed == 1 ? "copy CHANGED" : "\(changed) CHANGED") }
        for copy in from {
            parts.append(copy.state == .verified ? "copy" : copy.state == .failed ? "copy FAILED" : "copy CHANGED")
        }
        return parts.isEmpty ? "-" : parts.joined(separator: ",")
    }

    /// One sentence of what this entry says, for the lines under `list`'s table and the report:
    /// "copied to s3://b/p and verified there 2026-12-04 03:20 UTC (as recorded)".
    public var sentence: String {
        let when = EvidenceReport.display(copiedAt)
        let problem = (problems ?? []).first.map { ": \($0)" } ?? ""
        switch (direction, state) {
        case (.to, .recorded): return "copied to \(location) and verified there \(when) (as recorded)"
        case (.to, .failed): return "copy to \(location) FAILED \(when)\(problem)"
        case (.to, .changed): return "copied to \(location) \(when), but its size or SHA-256 here is not the one copied: the copy is of an earlier file"
        case (.from, .verified): return "a copy of \(location), verified here \(when)"
        case (.from, .failed): return "copy from \(location) FAILED \(when)\(problem)"
        case (.from, _): return "a copy of \(location) verified here \(when), changed here since (not trusted until copy reads it again)"
        case (.to, .verified): return "copied to \(location) \(when)"
        }
    }
}

extension ArchiveCopy {
    /// `check --max-backup-age` at a copy's source: per destination copies.jsonl here names, the
    /// newest archive with a verified copy there and when that copy was made; not fresh when the
    /// newest good archive has no verified copy there (missing, failed, or of an earlier file) or
    /// the newest copy was made longer ago than the limit.
    public struct Freshness: Codable, Sendable, Equatable {
        public var destination: String
        /// The newest archive here with a verified copy at the destination, and when it was copied.
        public var newestArchive: String?
        public var newestCopiedAt: String?
        /// What became of the newest good archive's copy there (nil: none was recorded).
        public var newestGoodArchiveCopy: State?
        public var fresh: Bool
        /// One line for `check`: the newest copy and, when not fresh, why.
        public var detail: String
    }

    /// The freshness of each of `destinations` (those copies.jsonl here names, `Index.destinations`:
    /// an archive deleted here since still names its destination) against the archives here
    /// (`entries`, newest first) and `newestGood` (the newest good archive, nil when there is none).
    public static func freshness(entries: [ArchiveDirectory.Entry], newestGood: ArchiveDirectory.Entry?, destinations: [String],
                                 limit: Double, now: Date) -> [Freshness] {
        let copies = entries.flatMap { entry in (entry.copies ?? []).filter { $0.direction == .to }.map { (entry: entry, copy: $0) } }
        return Array(Set(destinations + copies.map(\.copy.location))).sorted().map { destination in
            let these = copies.filter { $0.copy.location == destination }
            let newest = these.first { $0.copy.good }
            let copiedAt = newest.flatMap { EvidenceReport.parseTime($0.copy.copiedAt) }
            let ofNewestGood = newestGood.flatMap { good in these.first { $0.entry.file == good.file }?.copy }
            var problems: [String] = []
            // Not yet copied is not a failure by itself (a `copy` job on its own schedule runs after
            // the backup): the destination is stale when its newest verified copy is of an archive
            // taken longer than the limit ago, as the location itself is by `--max-backup-age`. A copy
            // that failed, or a file that is no longer the one copied, is one at once.
            var pending: String?
            if let newestGood {
                switch ofNewestGood?.state {
                case nil: pending = "the newest good archive \(newestGood.file) has no copy there yet"
                case .failed?: problems.append("the newest good archive \(newestGood.file): " + ofNewestGood!.sentence)
                case .changed?: problems.append("the newest good archive \(newestGood.file) is not the file that was copied there (its size or SHA-256 changed)")
                default: break
                }
            }
            let taken = newest.map { now.timeIntervalSince($0.entry.time) }
            if newest == nil {
                problems.append("no archive here has a verified copy there")
            } else if let taken, taken > limit {
                problems.append("its newest verified copy is of an archive taken \(ProgressDisplay.duration(taken)) ago (over \(ProgressDisplay.duration(limit)))")
            }
            let age = copiedAt.map { now.timeIntervalSince($0) }
            let newestText = newest.map { "newest verified copy \($0.entry.file), copied \(EvidenceReport.display($0.copy.copiedAt))"
                + (age.map { " (\(ProgressDisplay.duration(max(0, $0))) ago)" } ?? "") } ?? "no verified copy"
            let notes = problems.isEmpty ? pending.map { "; " + $0 } ?? "" : "; STALE: " + (problems + (pending.map { [$0] } ?? [])).joined(separator: "; ")
            return Freshness(destination: destination, newestArchive: newest?.entry.file, newestCopiedAt: newest?.copy.copiedAt,
                             newestGoodArchiveCopy: ofNewestGood?.state, fresh: problems.isEmpty,
                             detail: "to \(destination): \(newestText)" + notes)
        }
    }
}
