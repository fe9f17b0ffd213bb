import RGWCompression
import Foundation
import RGWPostgres

/// Where the application's WORM anchors are: `AUDIT_ANCHOR_BUCKET` + `AUDIT_ANCHOR_CHAIN_ID` (the
/// app's own variables), or `--audit-anchors s3://bucket/chain-id`.
public struct AuditAnchorSource: Sendable, Equatable {
    public var bucket: String
    public var chainID: String
    /// `--s3-endpoint`, else the AWS environment's.
    public var endpoint: String?

    public init(bucket: String, chainID: String, endpoint: String? = nil) {
        self.bucket = bucket
        self.chainID = chainID
        self.endpoint = endpoint
    }

    /// From `--audit-anchors` when given, else the app's variables; nil when neither is set.
    public static func resolve(option: String?, environment: [String: String], endpoint: String?) throws -> AuditAnchorSource? {
        if let option {
            guard case .s3(let bucket, let prefix) = try StoreLocation.parse(option), option.hasPrefix("s3://"), !prefix.isEmpty else {
                throw ToolError(.usage, "--audit-anchors \(option): expected s3://bucket/chain-id")
            }
            return AuditAnchorSource(bucket: bucket, chainID: prefix, endpoint: endpoint)
        }
        guard let bucket = environment["AUDIT_ANCHOR_BUCKET"], !bucket.isEmpty else { return nil }
        guard let chain = environment["AUDIT_ANCHOR_CHAIN_ID"], !chain.isEmpty else {
            throw ToolError(.usage, "AUDIT_ANCHOR_BUCKET is set but AUDIT_ANCHOR_CHAIN_ID is not",
                            fix: "Set AUDIT_ANCHOR_CHAIN_ID as the application has it, or pass --audit-anchors s3://bucket/chain-id.")
        }
        return AuditAnchorSource(bucket: bucket, chainID: chain, endpoint: endpoint)
    }

    public var description: String { "s3://\(bucket)/\(chainID)" }
}

/// The drill's check against the WORM anchors: the newest anchor written at or before the backup's
/// snapshot must name an event the restore has, with the same hash, and the anchors' chain of
/// `prev_anchor_hash` (SHA-256 of the previous anchor object's bytes) must hold back to the oldest
/// one read (at most `depth`).
struct AuditAnchorCheck {
    static let name = "audit anchors"
    var source: AuditAnchorSource
    var environment: [String: String]
    /// The run's clock, for the S3 client that reads the anchors.
    var clock: RunClock
    var depth = 24
    /// How many months of keys are listed back from the snapshot's month.
    var months = 2
    /// `drill --existing-url`: the database's last chain_index. An anchor naming a later event was
    /// written after the time the database was restored to, so it is passed over.
    var upTo: Int64?

    struct Anchor {
        var key: String
        var bytes: [UInt8]
        var lastSeq: Int64
        var lastHash: String
        var timestamp: Date
        var previousHash: String?
    }

    /// `<chain>/YYYY/MM/DD/HH/anchor-YYYYMMDDTHH.json`: the keys of one month, newest first.
    static func monthPrefix(_ chain: String, _ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let parts = calendar.dateComponents([.year, .month], from: date)
        return String(format: "%@/%04d/%02d/", chain, parts.year!, parts.month!)
    }

    static func lastSecondOfPreviousMonth(_ date: Date) -> Date {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let start = calendar.date(from: calendar.dateComponents([.year, .month], from: date))!
        return start.addingTimeInterval(-1)
    }

    /// The hour an anchor key names, or nil when the key is not an anchor's.
    static func hour(ofKey key: String) -> String? {
        guard let name = key.split(separator: "/").last, name.hasPrefix("anchor-"), name.hasSuffix(".json") else { return nil }
        let stamp = name.dropFirst("anchor-".count).dropLast(".json".count)
        guard stamp.count == 11, stamp.dropFirst(8).first == "T" else { return nil }
        return String(stamp)
    }

    static func hourStamp(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd'T'HH"
        return formatter.string(from: date)
    }

    static func parse(key: String, bytes: [UInt8]) throws -> Anchor {
        func bad(_ why: String) -> ToolError { ToolError(.mismatch, "anchor \(key) is not a valid anchor: \(why)") }
        guard let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else { throw bad("not a JSON object") }
        guard let seq = (object["last_seq"] as? NSNumber)?.int64Value else { throw bad("no last_seq number") }
        guard let hash = object["last_hash"] as? String, !hash.isEmpty else { throw bad("no last_hash") }
        guard let ts = object["ts_utc"] as? String, let time = ISO8601DateFormatter.anchorTime(ts) else { throw bad("no RFC 3339 ts_utc") }
        return Anchor(key: key, bytes: bytes, lastSeq: seq, lastHash: hash.lowercased(), timestamp: time,
                      previousHash: (object["prev_anchor_hash"] as? String).map { $0.lowercased() })
    }

    func run(_ connection: Connection, snapshot: Date) -> DrillCheck {
        do {
            return try check(connection, snapshot: snapshot)
        } catch let error as ToolError where error.category == .mismatch {
            return DrillCheck(name: Self.name, ok: false, detail: error.message)
        } catch {
            return DrillCheck(name: Self.name, ok: false,
                              detail: "could not read the anchors in \(source.description): \(error); check AUDIT_ANCHOR_BUCKET, AUDIT_ANCHOR_CHAIN_ID (or --audit-anchors) and that this role may list and read the bucket")
        }
    }

    func check(_ connection: Connection, snapshot: Date) throws -> DrillCheck {
        let client = try StoreLocation.s3Client(bucket: source.bucket, endpoint: source.endpoint, environment: environment, clock: clock)
        let limit = Self.hourStamp(snapshot)
        var keys: [String] = []
        var month = snapshot
        for _ in 0..<months {
            keys += try client.list(prefix: Self.monthPrefix(source.chainID, month)).map(\.key)
                .filter { Self.hour(ofKey: $0).map { $0 <= limit } ?? false }
            if keys.count > depth { break }
            month = Self.lastSecondOfPreviousMonth(month)
        }
        keys = Array(Set(keys)).sorted(by: >)
        // The newest anchor written at or before the snapshot (its hour's may be written after it).
        var chosen: Anchor?
        var index = 0
        while index < keys.count, index < depth {
            let anchor = try Self.parse(key: keys[index], bytes: try client.getObject(key: keys[index]))
            index += 1
            if anchor.timestamp <= snapshot, upTo.map({ anchor.lastSeq <= $0 }) ?? true { chosen = anchor; break }
        }
        guard let newest = chosen else {
            return DrillCheck(name: Self.name, ok: true, detail: "no anchor in \(source.description) written at or before the snapshot (\(ISO8601DateFormatter().string(from: snapshot))) in the \(months) months listed; nothing to compare", checked: false)
        }
        let restored = try connection.query("SELECT encode(event_hash, 'hex') FROM audit.audit_event WHERE chain_index = $1::bigint",
                                            [String(newest.lastSeq)]).rows.first?[0] ?? nil
        guard let restored else {
            return DrillCheck(name: Self.name, ok: false, detail: "anchor \(newest.key) names chain_index \(newest.lastSeq), which the restored audit.audit_event does not have")
        }
        guard restored == newest.lastHash else {
            return DrillCheck(name: Self.name, ok: false, detail: "anchor \(newest.key): the restored event at chain_index \(newest.lastSeq) has event_hash \(restored.prefix(16))..., the anchor \(newest.lastHash.prefix(16))...")
        }
        // Walk back: each anchor's prev_anchor_hash is the SHA-256 of the one before it.
        var current = newest
        var read = 1
        while read < depth, index < keys.count {
            let older = try Self.parse(key: keys[index], bytes: try client.getObject(key: keys[index]))
            index += 1
            read += 1
            let hasher = SHA256()
            hasher.update(older.bytes)
            let digest = SHA256.hex(hasher.finalize())
            guard let expected = current.previousHash else {
                return DrillCheck(name: Self.name, ok: false, detail: "anchor \(current.key) has no prev_anchor_hash although \(older.key) came before it")
            }
            guard expected == digest else {
                return DrillCheck(name: Self.name, ok: false, detail: "anchor \(current.key): prev_anchor_hash \(expected.prefix(16))... is not the SHA-256 of \(older.key) (\(digest.prefix(16))...): an anchor was altered or removed")
            }
            current = older
        }
        return DrillCheck(name: Self.name, ok: true,
                          detail: "anchor \(newest.key) (chain_index \(newest.lastSeq)) matches the restored event; \(Plural.of(read, "anchor")) linked back to \(current.key)")
    }
}

extension ISO8601DateFormatter {
    /// RFC 3339 with or without fractional seconds.
    static func anchorTime(_ text: String) -> Date? {
        let plain = ISO8601DateFormatter()
        if let date = plain.date(from: text) { return date }
        return ISO8601DateFormatter.withFractions.date(from: text)
    }
}
