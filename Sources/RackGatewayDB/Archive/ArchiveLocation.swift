import Foundation
import RGWCompression

/// An archive to read: a name in a store (a local directory or an S3 prefix). Its logs
/// (`verifications.jsonl`, `drills.jsonl`, `restores.jsonl`) live next to it, in the same store.
public struct ArchiveLocation: Sendable {
    public let store: ArchiveStore
    /// The object's name in `store`.
    public let name: String
    /// What it is read with: the identities that decrypt it, the key it must be signed with.
    public var keys: ArchiveKeys

    /// A local file: its directory is the store.
    public init(path: String, keys: ArchiveKeys = ArchiveKeys()) {
        let url = URL(fileURLWithPath: path).standardizedFileURL
        store = LocalStore(directory: url.deletingLastPathComponent().path)
        name = url.lastPathComponent
        self.keys = keys
    }

    public init(store: ArchiveStore, name: String, keys: ArchiveKeys = ArchiveKeys()) {
        self.store = store
        self.name = name
        self.keys = keys
    }

    public var isEncrypted: Bool { ArchiveName.isEncrypted(name) }

    /// The SHA-256 of the object as stored (no key needed), in one read of it.
    public func storedSHA256() throws -> String {
        guard let object = try store.open(name) else { throw ToolError(.archiveNotFound, "\(path) does not exist") }
        return try StoredDigests(object, blake2b: false).sha256
    }

    /// The digest the `.sha256` sidecar records, or nil when there is none (or it is unreadable,
    /// over `ArchiveName.digestLimit` or not a `sha256sum` line: nothing confirms the archive).
    public func sidecarDigest() -> String? {
        (try? recordedDigest()) ?? nil
    }

    /// The same, throwing when the sidecar is there but over its size limit.
    public func recordedDigest() throws -> String? {
        try store.getSidecar(ArchiveName.sidecar(of: name), limit: ArchiveName.digestLimit).flatMap(ArchiveName.sidecarDigest)
    }

    /// What `list`, `prune` and the shrink check need: from the manifest when the archive can be
    /// read (plain, or encrypted with an identity given), else from the `.summary.json` beside it,
    /// whose numbers are bounded by the stored archive's size (`storedSize`, as a listing found it).
    public func summary(storedSize: Int) throws -> ArchiveSummary {
        if !isEncrypted || !keys.identities.isEmpty {
            return ArchiveSummary(manifest: try reader().manifest, archive: name)
        }
        let sidecar = ArchiveName.summary(of: name)
        guard let bytes = try store.getSidecar(sidecar, limit: ArchiveName.summaryLimit) else {
            throw ToolError(.failed, "\(path) is encrypted and has no \(sidecar) to read without its key", fix: "Give --identity FILE to read the archive itself.")
        }
        return try ArchiveSummary.parse(bytes, path: "\(store.location)/\(sidecar)", storedSize: storedSize)
    }

    /// What reports and messages call it: the path, or `s3://bucket/prefix/name`.
    public var path: String { "\(store.location)/\(name)" }
    /// The file's path on this machine, for the stock tools that read files; nil in a remote store.
    public var localPath: String? { store.localPath(name) }

    public func reader() throws -> ArchiveReader { try ArchiveReader(self) }
}

extension ArchiveStore {
    /// A sidecar (`.sha256`, `.minisig`, `.summary.json`) whole, or nil when there is none; one
    /// over `limit` bytes is refused (exit 2) before it is read: they are small, and a large one
    /// is not ours.
    public func getSidecar(_ name: String, limit: Int) throws -> [UInt8]? {
        guard let reader = try open(name) else { return nil }
        guard reader.size <= limit else {
            throw ToolError(.archiveCorrupt, "\(location)/\(name) is \(reader.size) bytes, over the \(limit) bytes such a file of ours can take: it is not ours or it is damaged",
                            fix: "Delete or replace it (backup writes it beside the archive).")
        }
        return reader.size == 0 ? [] : try reader.read(offset: 0, count: reader.size)
    }
}

extension ArchiveLocation {
    /// The names among `names` close to `name` (a typo, another case, the suffix left off), nearest
    /// first, at most `limit`: for the message about an archive that is not there.
    public static func closeMatches(to name: String, among names: [String], limit: Int = 5) -> [String] {
        let typed = name.lowercased()
        let typedStem = ArchiveName.stem(typed)
        let allowed = max(2, typed.count / 8)
        let scored = names.compactMap { candidate -> (String, Int)? in
            let lowered = candidate.lowercased()
            let distance = editDistance(typed, lowered)
            if distance <= allowed { return (candidate, distance) }
            // The suffix left off or another one given: the same archive stem.
            if ArchiveName.stem(lowered) == typedStem || lowered.hasPrefix(typed) { return (candidate, allowed) }
            return nil
        }
        return scored.sorted { $0.1 != $1.1 ? $0.1 < $1.1 : $0.0 < $1.0 }.prefix(limit).map(\.0)
    }

    /// All of `names`, nearest to `name` first (ties by name).
    static func nearest(to name: String, among names: [String]) -> [String] {
        let typed = name.lowercased()
        return names.map { ($0, editDistance(typed, $0.lowercased())) }.sorted { $0.1 != $1.1 ? $0.1 < $1.1 : $0.0 < $1.0 }.map(\.0)
    }

    /// Levenshtein distance: insertions, deletions and substitutions, one character each.
    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        guard !a.isEmpty else { return b.count }
        guard !b.isEmpty else { return a.count }
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            swap(&previous, &current)
        }
        return previous[b.count]
    }
}

extension ArchiveLocation {
    /// A place an archive was looked for, as a message names it (`the current directory (/home/x)`,
    /// `s3://b/nightly (from RGW_BACKUP_DIR)`).
    public struct Place {
        public var store: ArchiveStore
        public var label: String

        public init(store: ArchiveStore, label: String) {
            self.store = store
            self.label = label
        }
    }

    /// The error for an archive `name` found in none of `places`: where it was looked for, and the
    /// archives there whose names are close to it (as paths to give instead), else `fix`.
    /// A place that holds no archives at all (a typo like `nighty`; the current directory aside) is
    /// named as such, with the locations near it that hold some.
    /// A bucket that does not exist is that error, as `list` reports it (issue 31: it was "no
    /// archive named NAME", which sends a person looking for the archive instead of the bucket).
    public static func notFound(_ name: String, in places: [Place], fix: String) -> ToolError {
        var matches: [String] = [], empty: [String] = []
        let current = URL(fileURLWithPath: FileManager.default.currentDirectoryPath).standardizedFileURL.path
        for place in places {
            let listed: [StoreEntry]
            do { listed = try place.store.list() } catch let failure as S3Client.Failure where failure.toolCode == .bucketNotFound {
                return ToolError(.bucketNotFound, "no archive named \(name) can be in \(place.label): bucket \(failure.bucket) does not exist (\(failure.summary))",
                                 fix: "Check the bucket's name (in the archive's s3:// address, --dir or RGW_BACKUP_DIR) and its region (AWS_REGION).", cause: failure)
            } catch {
                listed = []
            }
            let names = listed.map(\.name).filter { ArchiveName.timestamp(of: $0) != nil }
            matches += closeMatches(to: name, among: names).map { "\(place.store.location)/\($0)" }
            let isCurrent = (place.store as? LocalStore).map { URL(fileURLWithPath: $0.directory).standardizedFileURL.path == current } ?? false
            if names.isEmpty && !isCurrent {
                let nearby = ArchiveDirectory.nearby(place.store)
                let trimmed = name.hasSuffix("/") ? String(name.dropLast()) : name
                if let folder = nearby.first(where: { $0.location == "\(place.store.location)/\(trimmed)" }) {
                    // The name given is itself a folder of archives (`restore s3://b/nightly`).
                    return ToolError(.archiveNotFound, "\(folder.location) is a folder of archives (\(Plural.of(folder.archives, "archive"))), not an archive",
                                     fix: "Give one of them by its name, as `rack-gateway-db list --dir \(folder.location)` shows them (\(folder.location)/NAME), "
                                        + "or its newest good one with --latest --dir \(folder.location) in place of \(folder.location).")
                }
                if !nearby.isEmpty { empty.append("\(place.label) holds no archives. " + ArchiveDirectory.hint(beside: nearby)) }
            }
        }
        let looked = places.map(\.label).joined(separator: " nor in ")
        return ToolError(.archiveNotFound, "no archive named \(name): not in \(looked)",
                         fix: !matches.isEmpty ? "Close matches: \(matches.prefix(5).joined(separator: ", "))." : empty.isEmpty ? fix : empty.joined() + fix)
    }
}
