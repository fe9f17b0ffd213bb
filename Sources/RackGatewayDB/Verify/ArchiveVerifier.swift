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
    /// row counts and fingerprints are checked again while they load.
    public func preflight(_ reader: ArchiveReader) throws -> Report {
        let stopwatch = Stopwatch()
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
                      durationSeconds: stopwatch.elapsed)
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
        func describe(_ member: ArchiveManifest.Member) -> String { Self.describe(member, in: manifest) }

        let sha = SHA256()
        var position = 0
        let decompressor = try MemberDecompressor(codec: reader.codec)
        var rows = [Int](repeating: 0, count: manifest.tables.count)
        var fingerprints = [UInt64](repeating: 0, count: manifest.tables.count)
        var chunks = [[Int]](repeating: [], count: manifest.tables.count)
        var largeObjectBytes = 0
        var largeObjectSum: UInt64 = 0
        // The members that follow each other from the start of the file, in one streaming read.
        var contiguous: [ArchiveManifest.Member] = []
        for member in manifest.members {
            guard member.offset == position, member.offset + member.length <= reader.fileSize else { break }
            contiguous.append(member)
            position += member.length
        }
        try reader.forEachMember(contiguous) { member, bytes in
            sha.update(bytes)
            let text: [UInt8]
            do {
                text = try decompressor.decompress(bytes[...], uncompressedSize: member.size)
            } catch let error as CompressionError {
                problem("\(describe(member)): \(error.message)")
                return true
            }
            // gzip records its text's CRC32 in the member (libdeflate checked the two agree); a
            // zstd frame checks its own XXH64, so the manifest's CRC32 is computed from the text.
            let crc = reader.codec == .gzip ? GzipFooter(endOf: bytes)?.crc32 ?? 0 : CRC32.checksum(text)
            if crc != member.crc32 { problem("\(describe(member)): CRC32 \(crc) but the manifest says \(member.crc32)") }
            logger?.debug("member read", metadata: ["member.index": "\(member.index)", "member.kind": "\(member.kind.rawValue)",
                                                     "member.bytes": "\(member.length)", "member.crc_ok": "\(crc == member.crc32)"])
            if member.kind == .header, let why = ArchiveLayout.headerProblem(String(decoding: text, as: UTF8.self)) {
                problem("\(describe(member)): \(why)")
            } else if member.kind == .sequences, let why = ArchiveLayout.sequencesProblem(String(decoding: text, as: UTF8.self), manifest: manifest) {
                problem("\(describe(member)): \(why)")
            } else if member.kind == .data {
                guard let table = member.table, table >= 0, table < manifest.tables.count else { return true }
                chunks[table].append(member.index)
                let expected = manifest.tables[table]
                let expectedHeader = DataChunk.copyHeader(schema: expected.schema, name: expected.name, columns: expected.columns)
                switch DataChunk.scan(text, expectedHeader: expectedHeader) {
                case .success(let (count, sum)):
                    rows[table] += count
                    fingerprints[table] &+= sum
                    if let recorded = member.rows, recorded != count {
                        problem("\(describe(member)): \(count) rows but the manifest says \(recorded)")
                    }
                case .failure(let message):
                    problem("\(describe(member)): \(message)")
                }
            } else if member.kind == .largeObjects {
                switch LargeObjects.scan(text) {
                case .success(let (_, bytes, sum)):
                    largeObjectBytes += bytes
                    largeObjectSum &+= sum
                case .failure(let message):
                    problem("\(describe(member)): \(message)")
                }
            }
            return true
        }
        if problems.isEmpty, let recorded = manifest.largeObjects {
            if largeObjectBytes != recorded.bytes { problem("large objects: \(largeObjectBytes) bytes in their members but the manifest says \(recorded.bytes)") }
            if ArchiveManifest.fingerprintText(largeObjectSum) != recorded.fingerprint {
                problem("large objects: fingerprint \(ArchiveManifest.fingerprintText(largeObjectSum)) of their members but the manifest says \(recorded.fingerprint)")
            }
        } else if problems.isEmpty, largeObjectBytes > 0 {
            problem("large-object members, but the manifest records no large objects")
        }
        if problems.isEmpty {
            for (index, table) in manifest.tables.enumerated() {
                if rows[index] != table.rows {
                    problem("table \(table.qualifiedName): \(rows[index]) rows in its chunks but the manifest says \(table.rows)")
                }
                let fingerprint = ArchiveManifest.fingerprintText(fingerprints[index])
                if fingerprint != table.fingerprint {
                    problem("table \(table.qualifiedName): fingerprint \(fingerprint) of its rows but the manifest says \(table.fingerprint)")
                }
                if chunks[index] != table.chunks {
                    problem("table \(table.qualifiedName): chunk list \(table.chunks) but its members are \(chunks[index])")
                }
            }
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
                      durationSeconds: stopwatch.elapsed)
    }
}
