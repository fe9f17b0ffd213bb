import Foundation
import Logging

/// `verify --sample PERCENT`: re-reads part of every archive in a directory, so that bit rot or a bad
/// deletion in an old archive is found while there is time (restic's `check --read-data-subset`,
/// Kopia's `--verify-files-percent`). Per archive: the trailer and the manifest (as every opening
/// reads them), every member that is not data (header, pre-data, sequences, post-data: small), and
/// data and large-object members chosen until their stored bytes reach PERCENT of all of them's,
/// all by ranged reads (never the whole file, never its SHA-256). Each member read gets the full
/// verify's checks (`MemberChecks`); a table all of whose chunks were read also gets its row count,
/// fingerprint and chunk list checked.
///
/// The choice prefers the members read least recently at the file's current version (the samples
/// and passing full verifies of `verifications.jsonl`; never read comes first), at random among
/// equals, so that consecutive runs of `--sample P` cover the whole archive in ceil(100/P) runs.
public struct SampleVerifier {
    /// What one archive's sample read and found.
    public struct Report: Codable, Sendable {
        public var file: String
        public var ok: Bool
        public var problems: [String]
        public var percent: Double
        public var seed: UInt64
        /// The members read (`MemberSet`: trailer, manifest and schema members too) and how many;
        /// of them the data and large-object members read (`data_members_read`), of the archive's
        /// `data_members` in all.
        public var membersRead: String
        public var membersReadCount: Int
        public var dataMembersRead: Int
        public var dataMembers: Int
        /// Stored bytes of the members read (trailer and manifest not counted), and of the data and
        /// large-object members read, of all of them, and of the file.
        public var bytesRead: Int
        public var dataBytesRead: Int
        public var dataBytes: Int
        public var fileSize: Int
        /// Tables all of whose chunks were read, so their rows and fingerprint were checked.
        public var tablesChecked: Int
        /// The share (0 to 100) of the data members' bytes read at this version of the file, by this
        /// sample and the ones before it (a passing full verify covers all of it).
        public var coveredPercent: Double
        public var durationSeconds: Double
        /// The members in which this sample found problems (`MemberSet`; empty when it found none).
        public var failedMembers: String = ""
        /// The members a failed sample of this version had found damaged, re-read first by this one
        /// (`MemberSet`; empty when there were none).
        public var reReadFirst: String = ""
        /// The failed verdict that stands for the file as it is now (a full verify's or a sample's:
        /// when it ran and what it found), set by `verify --sample`: the archive is still VERIFY-FAILED
        /// and counted as failed whatever this sample found (`ok` says only what this sample found),
        /// until the file changes or a full verify of it passes.
        public var verificationFailedAt: String? = nil
        public var verificationProblems: [String]? = nil

        /// Whether the archive counts as failed in this run: this sample found a problem, or an
        /// earlier failure of the file as it is now stands.
        public var failed: Bool { !ok || verificationFailedAt != nil }
    }

    public let percent: Double
    public let seed: UInt64

    /// `seed` makes the choice repeatable (the same archives and log give the same members); nil
    /// draws one under 2^53, which JSON readers (jq, JavaScript) keep exact, so that it can be given back.
    public init(percent: Double, seed: UInt64?) {
        self.percent = percent
        self.seed = seed ?? UInt64.random(in: 0..<(1 << 53))
    }

    /// Whether `member` is among those sampled by bytes (the rest is always read).
    static func isSampled(_ member: ArchiveManifest.Member) -> Bool { member.kind == .data || member.kind == .largeObjects }

    /// When each data or large-object member of `file` was last read at `version`, by index, from
    /// the log's `lines`: a sample's members at its time, every member at a passing full verify's.
    static func lastRead(_ file: String, version: String?, lines: [VerificationLog.Entry], manifest: ArchiveManifest) -> [Int: String] {
        var result: [Int: String] = [:]
        guard let version else { return result }
        for entry in lines where entry.file == file && entry.version == version {
            if entry.isSample {
                for index in MemberSet.parse(entry.members ?? "") { result[index] = entry.verifiedAt }
            } else if entry.ok && !entry.sha256.isEmpty {
                for member in manifest.members where isSampled(member) { result[member.index] = entry.verifiedAt }
            }
        }
        return result
    }

    /// The data and large-object members to read: least recently read first (never read before any),
    /// at random among equals, until their bytes reach `percent` of all of theirs (the last one may
    /// go over by at most its own size).
    /// `first` (the members a failed sample found damaged) come before all of them.
    func choose(_ manifest: ArchiveManifest, file: String, lastRead: [Int: String], first: Set<Int> = []) -> [ArchiveManifest.Member] {
        var generator = SplitMix64(seed: seed ^ SplitMix64.hash(file))
        let pool = manifest.members.filter(Self.isSampled).shuffled(using: &generator)
        let total = pool.reduce(0) { $0 + $1.length }
        let target = Int((Double(total) * percent / 100).rounded(.up))
        // ISO 8601 times of one format sort as text; "" (never read) first. The shuffle breaks ties.
        func key(_ position: Int) -> (Int, String, Int) { (first.contains(pool[position].index) ? 0 : 1, lastRead[pool[position].index] ?? "", position) }
        let order = pool.indices.sorted { key($0) < key($1) }
        var chosen: [ArchiveManifest.Member] = []
        var bytes = 0
        for position in order where bytes < target {
            chosen.append(pool[position])
            bytes += pool[position].length
        }
        return chosen
    }

    /// The sample of the archive `reader` opened, whose `lines` in `verifications.jsonl` tell what
    /// was read before at `version`. `first` (the members a failed sample of this version found
    /// damaged) are read first, whatever PERCENT. `checkStopped` throws to stop it (Ctrl-C), called
    /// before each member.
    public func sample(_ reader: ArchiveReader, version: String?, lines: [VerificationLog.Entry], first: Set<Int> = [], logger: Logger? = nil,
                       checkStopped: @escaping () throws -> Void = {}) throws -> Report {
        let stopwatch = Stopwatch()
        let manifest = reader.manifest
        let file = reader.archive.name
        let before = Self.lastRead(file, version: version, lines: lines, manifest: manifest)
        let known = Set(manifest.members.map(\.index))
        let reReadFirst = first.intersection(known)
        let chosen = choose(manifest, file: file, lastRead: before, first: reReadFirst)
        let toRead = (manifest.members.filter { !Self.isSampled($0) } + chosen).sorted { $0.offset < $1.offset }
        var problems: [String] = []
        func problem(_ text: String) { if problems.count < 50 { problems.append(text) } }
        var failed = Set<Int>()
        var checks = try MemberChecks(manifest: manifest, codec: reader.codec, logger: logger)
        // Members next to each other in one ranged read; a gap starts another.
        var runs: [[ArchiveManifest.Member]] = []
        for member in toRead {
            if let last = runs.last?.last, last.offset + last.length == member.offset { runs[runs.count - 1].append(member) } else { runs.append([member]) }
        }
        for run in runs {
            do {
                try checkStopped()
                try reader.forEachMember(run) { member, bytes in
                    try checkStopped()
                    let found = checks.check(member, bytes)
                    if !found.isEmpty { failed.insert(member.index) }
                    for text in found { problem(text) }
                    return true
                }
            } catch let error as ToolError where error.code == .archiveCorrupt || error.code == .mismatch {
                // An encrypted chunk that fails authentication, a read past the end: named by the error.
                problem(error.message)
            }
        }
        let read = Set(toRead.map(\.index))
        let complete = manifest.tables.indices.filter { manifest.tables[$0].chunks.allSatisfy(read.contains) }
        // As the full verify: the totals only when every member read was sound (a bad one explains them).
        if problems.isEmpty, manifest.members.filter({ $0.kind == .largeObjects }).allSatisfy({ read.contains($0.index) }) {
            for text in checks.largeObjectProblems() { problem(text) }
        }
        if problems.isEmpty {
            for text in checks.tableProblems(complete) { problem(text) }
        }

        let sampled = manifest.members.filter(Self.isSampled)
        let dataBytes = sampled.reduce(0) { $0 + $1.length }
        let covered = Set(before.keys).union(chosen.map(\.index))
        let coveredBytes = sampled.filter { covered.contains($0.index) }.reduce(0) { $0 + $1.length }
        var report = Report(file: reader.path, ok: problems.isEmpty, problems: problems, percent: percent, seed: seed,
                      membersRead: MemberSet.format(read), membersReadCount: read.count, dataMembersRead: chosen.count, dataMembers: sampled.count,
                      bytesRead: toRead.reduce(0) { $0 + $1.length }, dataBytesRead: chosen.reduce(0) { $0 + $1.length }, dataBytes: dataBytes,
                      fileSize: reader.storedSize, tablesChecked: complete.count,
                      coveredPercent: dataBytes == 0 ? 100 : (Double(coveredBytes) * 100 / Double(dataBytes) * 10).rounded(.down) / 10,
                      durationSeconds: stopwatch.elapsed)
        (report.failedMembers, report.reReadFirst) = (MemberSet.format(failed), MemberSet.format(reReadFirst))
        return report
    }

    /// `--sample`'s PERCENT: a number over 0 and at most 100, with or without `%`; nil otherwise.
    public static func parsePercent(_ text: String) -> Double? {
        let number = text.hasSuffix("%") ? String(text.dropLast()) : text
        guard let value = Double(number), value.isFinite, value > 0, value <= 100 else { return nil }
        return value
    }
}

/// A set of member indexes written compactly for `verifications.jsonl`: `0-3,7,12-15`.
public enum MemberSet {
    public static func format(_ indexes: some Sequence<Int>) -> String {
        var parts: [String] = []
        var range: ClosedRange<Int>?
        func flush() {
            guard let range else { return }
            parts.append(range.count == 1 ? "\(range.lowerBound)" : "\(range.lowerBound)-\(range.upperBound)")
        }
        for index in Set(indexes).sorted() {
            if let current = range, current.upperBound + 1 == index {
                range = current.lowerBound...index
            } else {
                flush()
                range = index...index
            }
        }
        flush()
        return parts.joined(separator: ",")
    }

    /// The indexes `format` wrote; what does not parse is left out.
    public static func parse(_ text: String) -> Set<Int> {
        var result = Set<Int>()
        for part in text.split(separator: ",") {
            let bounds = part.split(separator: "-").compactMap { Int($0) }
            if bounds.count == 1 {
                result.insert(bounds[0])
            } else if bounds.count == 2, bounds[0] <= bounds[1], bounds[1] - bounds[0] < 10_000_000 {
                result.formUnion(bounds[0]...bounds[1])
            }
        }
        return result
    }
}

/// A small seeded generator (SplitMix64): the same seed gives the same choice on every platform.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// FNV-1a of `text`: each archive's choice differs under one seed.
    static func hash(_ text: String) -> UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in text.utf8 { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
        return hash
    }
}
