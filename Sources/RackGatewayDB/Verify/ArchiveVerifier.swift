import RGWCompression
import Foundation
import Logging

/// Checks an archive without a database: trailer, manifest, that the members cover the file without
/// gaps, every member's CRC32 and size, each data chunk's COPY framing, per-table row counts and
/// fingerprints recomputed from the rows, and the `.sha256` sidecar.
public struct ArchiveVerifier {
    public struct Report: Codable, Sendable {
        public var file: String
        public var ok: Bool
        public var problems: [String]
        public var members: Int
        public var tables: Int
        public var rows: Int
        public var bytes: Int
        public var fileSize: Int
        public var sha256: String
        public var sidecar: String
        public var durationSeconds: Double
        /// The archive format's version (2 since the statistics member; a release that reads only
        /// version 1 refuses it), and whether it holds the source's planner statistics.
        public var formatVersion: Int? = nil
        public var plannerStatistics: Bool? = nil
        /// The `.minisig` was checked against --verify-key before anything was read (a reader opened
        /// with a key has; one that failed it never opened).
        public var signatureChecked: Bool? = nil
    }

    public init() {}

    static func describe(_ member: ArchiveManifest.Member, in manifest: ArchiveManifest) -> String {
        var text = "member \(member.index) (\(member.kind.rawValue)) at offset \(member.offset)"
        if let table = member.table, table >= 0, table < manifest.tables.count { text += " of table \(manifest.tables[table].qualifiedName)" }
        return text
    }

    /// The fast check `restore` and `drill` make before changing anything (the structure was
    /// checked when the reader opened the archive, `ArchiveLayout.structuralProblems`): the file's SHA-256 against its `.sha256` sidecar (the file is byte for byte what `backup` wrote).
    /// Without a sidecar every member is checked instead (`verify`'s full pass). Members' CRC32,
    /// row counts and fingerprints are checked again while they load. From a remote store the pass
    /// downloads the archive into a spool the load then reads (`ArchiveReader.spoolForLoad`; when
    /// $TMPDIR has no room, `logger` warns that it is read twice).
    public func preflight(_ reader: ArchiveReader, logger: Logger? = nil) throws -> Report {
        let stopwatch = Stopwatch()
        // From a remote store this pass is the download the load then reads (`spoolForLoad`).
        if let twice = try reader.spoolForLoad() {
            logger?.warning("\(twice)")
        }
        guard let recorded = reader.sidecarDigest() else {
            var report = try verify(reader: reader)
            report.problems.removeAll { $0.hasSuffix(Self.missingSidecarSuffix) }
            report.ok = report.problems.isEmpty
            return report
        }
        var problems: [String] = []
        let digest = try reader.storedSHA256()
        if digest != recorded {
            problems.append("\(reader.path).sha256 says \(recorded) but the file's SHA-256 is \(digest): the archive changed since it was written")
        }
        let manifest = reader.manifest
        return Report(file: reader.path, ok: problems.isEmpty, problems: problems, members: manifest.members.count,
                      tables: manifest.tables.count, rows: manifest.totalRows, bytes: manifest.totalBytes,
                      fileSize: reader.storedSize, sha256: digest, sidecar: digest == recorded ? "ok" : "mismatch",
                      durationSeconds: stopwatch.elapsed, formatVersion: manifest.formatVersion,
                      plannerStatistics: manifest.members.contains { $0.kind == .statistics },
                      signatureChecked: reader.signatureChecked)
    }

    static let missingSidecarSuffix = "is missing: the archive's checksum cannot be confirmed"

    public func verify(path: String) throws -> Report {
        try verify(reader: try ArchiveReader(path: path))
    }

    public func verify(reader: ArchiveReader, logger: Logger? = nil) throws -> Report {
        let stopwatch = Stopwatch()
        let path = reader.path
        let manifest = reader.manifest
        // The structure was checked when the reader opened the archive.
        var problems: [String] = []
        func problem(_ text: String) { if problems.count < 50 { problems.append(text) } }

        let sha = SHA256()
        var position = 0
        var checks = try MemberChecks(manifest: manifest, codec: reader.codec, logger: logger)
        // The members that follow each other from the start of the file, in one streaming read.
        var contiguous: [ArchiveManifest.Member] = []
        for member in manifest.members {
            guard member.offset == position, member.offset + member.length <= reader.fileSize else { break }
            contiguous.append(member)
            position += member.length
        }
        try reader.forEachMember(contiguous) { member, bytes in
            sha.update(bytes)
            for text in checks.check(member, bytes) { problem(text) }
            return true
        }
        if problems.isEmpty {
            for text in checks.largeObjectProblems() { problem(text) }
        }
        if problems.isEmpty {
            for text in checks.tableProblems(manifest.tables.indices) { problem(text) }
        }

        // The rest of the file (manifest and trailer) for the SHA-256; of an encrypted archive, the
        // SHA-256 of the file as stored, in a read of its own (every chunk was authenticated above).
        var digest = ""
        var sidecar = "not checked"
        if position == reader.trailer.manifestOffset {
            if reader.isEncrypted {
                digest = try reader.storedSHA256()
            } else {
                sha.update(try reader.readBytes(offset: position, count: reader.fileSize - position))
                digest = SHA256.hex(sha.finalize())
            }
            let sidecarPath = path + ".sha256"
            let recorded: String?
            do { recorded = try reader.archive.recordedDigest() } catch let error as ToolError {
                problem(error.message)
                recorded = nil
            }
            if let recorded {
                if recorded == digest {
                    sidecar = "ok"
                } else {
                    sidecar = "mismatch"
                    problem("\(sidecarPath) says \(recorded) but the file's SHA-256 is \(digest)")
                }
            } else {
                sidecar = "missing"
                problem("\(sidecarPath) \(Self.missingSidecarSuffix)")
            }
        }
        if reader.isEncrypted, problems.isEmpty {
            // The summary the backup host reads without the key must say what the manifest says. A
            // missing one is no fault of the archive (a file encrypted with age itself has none).
            let name = ArchiveName.summary(of: reader.archive.name)
            do {
                if let bytes = try reader.archive.store.getSidecar(name, limit: ArchiveName.summaryLimit) {
                    for difference in try ArchiveSummary.parse(bytes, path: name, storedSize: reader.storedSize).differences(from: manifest) { problem("\(name): \(difference)") }
                }
            } catch let error as ToolError { problem(error.message) }
        }
        return Report(file: path, ok: problems.isEmpty, problems: problems, members: manifest.members.count,
                      tables: manifest.tables.count, rows: manifest.totalRows, bytes: manifest.totalBytes,
                      fileSize: reader.storedSize, sha256: digest, sidecar: sidecar,
                      durationSeconds: stopwatch.elapsed, formatVersion: manifest.formatVersion,
                      plannerStatistics: manifest.members.contains { $0.kind == .statistics },
                      signatureChecked: reader.signatureChecked)
    }
}

/// The checks of one member's bytes, the one place they are made for the full verify
/// (`ArchiveVerifier.verify`) and the sample (`SampleVerifier`): decompression to the recorded size,
/// the CRC32, the header's and the sequences' text, a data chunk's COPY framing and rows, a
/// large-object member's framing. Rows and fingerprints are summed per table, and large objects over
/// their members, for the checks made once every member they cover was read (`tableProblems`,
/// `largeObjectProblems`).
struct MemberChecks {
    let manifest: ArchiveManifest
    let codec: MemberCodec
    let logger: Logger?
    private let decompressor: MemberDecompressor
    private(set) var rows: [Int]
    private(set) var fingerprints: [UInt64]
    /// Per table, the indexes of the data members read that belong to it, in the order read.
    private(set) var chunks: [[Int]]
    private var largeObjectBytes = 0
    private var largeObjectSum: UInt64 = 0

    init(manifest: ArchiveManifest, codec: MemberCodec, logger: Logger? = nil) throws {
        self.manifest = manifest
        self.codec = codec
        self.logger = logger
        decompressor = try MemberDecompressor(codec: codec)
        rows = [Int](repeating: 0, count: manifest.tables.count)
        fingerprints = [UInt64](repeating: 0, count: manifest.tables.count)
        chunks = [[Int]](repeating: [], count: manifest.tables.count)
    }

    /// What is wrong with `member`, whose stored bytes are `bytes` (empty when it is as written).
    mutating func check(_ member: ArchiveManifest.Member, _ bytes: [UInt8]) -> [String] {
        func describe(_ member: ArchiveManifest.Member) -> String { ArchiveVerifier.describe(member, in: manifest) }
        var problems: [String] = []
        let text: [UInt8]
        do {
            text = try decompressor.decompress(bytes[...], uncompressedSize: member.size)
        } catch let error as CompressionError {
            return ["\(describe(member)): \(error.message)"]
        } catch {
            return ["\(describe(member)): \(error)"]
        }
        // gzip records its text's CRC32 in the member (libdeflate checked the two agree); a
        // zstd frame checks its own XXH64, so the manifest's CRC32 is computed from the text.
        let crc = codec == .gzip ? GzipFooter(endOf: bytes)?.crc32 ?? 0 : CRC32.checksum(text)
        if crc != member.crc32 { problems.append("\(describe(member)): CRC32 \(crc) but the manifest says \(member.crc32)") }
        logger?.debug("member read", metadata: ["member.index": "\(member.index)", "member.kind": "\(member.kind.rawValue)",
                                                 "member.bytes": "\(member.length)", "member.crc_ok": "\(crc == member.crc32)"])
        if member.kind == .header, let why = ArchiveLayout.headerProblem(String(decoding: text, as: UTF8.self)) {
            problems.append("\(describe(member)): \(why)")
        } else if member.kind == .sequences, let why = ArchiveLayout.sequencesProblem(String(decoding: text, as: UTF8.self), manifest: manifest) {
            problems.append("\(describe(member)): \(why)")
        } else if member.kind == .statistics, let why = ArchiveLayout.statisticsProblem(String(decoding: text, as: UTF8.self)) {
            problems.append("\(describe(member)): \(why)")
        } else if member.kind == .data {
            guard let table = member.table, table >= 0, table < manifest.tables.count else { return problems }
            chunks[table].append(member.index)
            let expected = manifest.tables[table]
            let expectedHeader = DataChunk.copyHeader(schema: expected.schema, name: expected.name, columns: expected.columns)
            switch DataChunk.scan(text, expectedHeader: expectedHeader) {
            case .success(let (count, sum)):
                rows[table] += count
                fingerprints[table] &+= sum
                if let recorded = member.rows, recorded != count {
                    problems.append("\(describe(member)): \(count) rows but the manifest says \(recorded)")
                }
            case .failure(let message):
                problems.append("\(describe(member)): \(message)")
            }
        } else if member.kind == .largeObjects {
            switch LargeObjects.scan(text) {
            case .success(let (_, bytes, sum)):
                largeObjectBytes += bytes
                largeObjectSum &+= sum
            case .failure(let message):
                problems.append("\(describe(member)): \(message)")
            }
        }
        return problems
    }

    /// The totals of the large objects against the manifest's, once every large-object member was read.
    func largeObjectProblems() -> [String] {
        if let recorded = manifest.largeObjects {
            var problems: [String] = []
            if largeObjectBytes != recorded.bytes { problems.append("large objects: \(largeObjectBytes) bytes in their members but the manifest says \(recorded.bytes)") }
            if ArchiveManifest.fingerprintText(largeObjectSum) != recorded.fingerprint {
                problems.append("large objects: fingerprint \(ArchiveManifest.fingerprintText(largeObjectSum)) of their members but the manifest says \(recorded.fingerprint)")
            }
            return problems
        }
        return largeObjectBytes > 0 ? ["large-object members, but the manifest records no large objects"] : []
    }

    /// Each of `tables`' rows, fingerprint and chunk list against the manifest, once every one of its
    /// data members was read.
    func tableProblems(_ tables: some Sequence<Int>) -> [String] {
        var problems: [String] = []
        for index in tables {
            let table = manifest.tables[index]
            if rows[index] != table.rows {
                problems.append("table \(table.qualifiedName): \(rows[index]) rows in its chunks but the manifest says \(table.rows)")
            }
            let fingerprint = ArchiveManifest.fingerprintText(fingerprints[index])
            if fingerprint != table.fingerprint {
                problems.append("table \(table.qualifiedName): fingerprint \(fingerprint) of its rows but the manifest says \(table.fingerprint)")
            }
            if chunks[index] != table.chunks {
                problems.append("table \(table.qualifiedName): chunk list \(table.chunks) but its members are \(chunks[index])")
            }
        }
        return problems
    }
}
