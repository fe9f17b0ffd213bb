import RGWCompression
import Foundation

/// Reads an archive in a store: the trailer from the end, the manifest it points to (its
/// `{format, format_version}` envelope first), and members by offset.
public final class ArchiveReader: @unchecked Sendable {
    public let archive: ArchiveLocation
    /// What messages call it: a path or an s3:// URL.
    public var path: String { archive.path }
    public var fileSize: Int { object.size }
    public let trailer: ArchiveTrailer
    public let manifest: ArchiveManifest
    /// How the members are compressed, as the trailer tells (and the manifest agrees).
    public let codec: MemberCodec
    private let object: StoreReader

    /// A local file.
    public convenience init(path: String) throws {
        try self.init(ArchiveLocation(path: path))
    }

    public convenience init(store: ArchiveStore, name: String) throws {
        try self.init(ArchiveLocation(store: store, name: name))
    }

    public init(_ archive: ArchiveLocation) throws {
        self.archive = archive
        guard let object = try archive.store.open(archive.name) else {
            throw ToolError(.failed, "\(archive.path) does not exist", fix: "Give an existing archive (rack-gateway-db list shows them).")
        }
        self.object = object
        let size = object.size
        let path = archive.path
        let tailLength = min(size, ArchiveTrailer.memberLength)
        let tail = try object.read(offset: size - tailLength, count: tailLength)
        guard let (trailer, codec) = ArchiveTrailer.find(in: tail[...]) else {
            let head = (try? object.read(offset: 0, count: min(size, 64 * 1024))) ?? []
            throw Self.explainMissingTrailer(head: head, path: path, fileSize: size, remote: archive.localPath == nil)
        }
        self.trailer = trailer
        self.codec = codec
        let trailerStart = size - ArchiveTrailer.length(for: codec)
        let manifestEnd = trailer.manifestOffset + trailer.manifestLength
        guard trailer.manifestLength > 0, manifestEnd == trailerStart else {
            throw ToolError(.archiveCorrupt, "\(path): the trailer points to a manifest at offset \(trailer.manifestOffset) of length \(trailer.manifestLength), which does not end where the trailer starts (offset \(trailerStart)); the archive is corrupt")
        }
        let member = try object.read(offset: trailer.manifestOffset, count: trailer.manifestLength)
        let text: [UInt8]
        do {
            text = try MemberDecompressor(codec: codec).decompressWhole(member[...])
        } catch let error as CompressionError {
            throw ToolError(.archiveCorrupt, "\(path): the manifest member at offset \(trailer.manifestOffset) is corrupt (\(error.message))")
        }
        // The envelope first: a newer format may change anything else.
        let envelope = try ArchiveManifest.envelope(line: text)
        guard envelope.format == ArchiveManifest.formatName else {
            throw ToolError(.archiveCorrupt, "\(path): the manifest is of format \"\(envelope.format)\", not \"\(ArchiveManifest.formatName)\"")
        }
        guard envelope.formatVersion == ArchiveManifest.currentFormatVersion else {
            throw ToolError(.formatUnsupported, "\(path) is archive format v\(envelope.formatVersion); this rack-gateway-db reads v\(ArchiveManifest.currentFormatVersion)",
                            fix: "Use a rack-gateway-db release that knows that format, or restore it with \(codec.stockDecompress) | psql.")
        }
        manifest = try ArchiveManifest.parse(line: text)
        guard manifest.memberCodec == codec else {
            throw ToolError(.archiveCorrupt, "\(path): the manifest says its members are \(manifest.codec ?? "gzip") but the file's trailer is \(codec); the archive is corrupt")
        }
    }

    /// Whether reads go over the network (and are worth streaming ahead).
    public var isRemote: Bool { archive.localPath == nil }

    /// Each of `members` (in file order) whole, in one streaming read over the range they span;
    /// bytes between them are skipped. `body` returns false to stop early.
    public func forEachMember(_ members: [ArchiveManifest.Member], _ body: @escaping (ArchiveManifest.Member, [UInt8]) throws -> Bool) throws {
        guard let first = members.first, let last = members.last else { return }
        var index = 0
        var position = first.offset
        var current: [UInt8] = []
        current.reserveCapacity(first.length)
        var failure: Error?
        try stream(offset: first.offset, count: last.offset + last.length - first.offset) { bytes in
            var rest = bytes[...]
            while !rest.isEmpty && index < members.count {
                let gap = members[index].offset - position
                if gap > 0 {
                    let skip = min(gap, rest.count)
                    rest = rest.dropFirst(skip)
                    position += skip
                    continue
                }
                let take = min(rest.count, members[index].length - current.count)
                current.append(contentsOf: UnsafeRawBufferPointer(rebasing: rest.prefix(take)))
                rest = rest.dropFirst(take)
                position += take
                if current.count == members[index].length {
                    do {
                        guard try body(members[index], current) else { return false }
                    } catch {
                        failure = error
                        return false
                    }
                    index += 1
                    current = []
                    if index < members.count { current.reserveCapacity(members[index].length) }
                }
            }
            return true
        }
        if let failure { throw failure }
    }

    /// Bytes `offset..<offset+count` into `sink` as they come (one streaming read from a store).
    public func stream(offset: Int, count: Int, sink: @escaping (UnsafeRawBufferPointer) -> Bool) throws {
        try object.stream(offset: offset, count: count, sink: sink)
    }

    public func readBytes(offset: Int, count: Int) throws -> [UInt8] {
        try object.read(offset: offset, count: count)
    }

    /// The same into a buffer the caller reuses (its count becomes `count`).
    public func readBytes(offset: Int, count: Int, into buffer: inout [UInt8]) throws {
        try object.read(offset: offset, count: count, into: &buffer)
    }

    /// The digest the `.sha256` sidecar records, or nil when there is none.
    public func sidecarDigest() -> String? {
        (try? archive.store.get(ArchiveName.sidecar(of: archive.name))).flatMap { $0.flatMap(ArchiveName.sidecarDigest) }
    }

    /// No trailer: tell an unfinished backup, a foreign file and a truncated or damaged archive apart.
    static func explainMissingTrailer(head: [UInt8], path: String, fileSize: Int, remote: Bool) -> ToolError {
        if path.hasSuffix(".partial") {
            return ToolError(.failed, "\(path) is an unfinished backup (.partial): a backup is writing it or was interrupted; it is not an archive",
                             fix: "Wait for the running backup, or delete the file if none runs.")
        }
        // pg_dump files are restored from disk only (psql and pg_restore read files).
        let remoteFix = remote ? "If it is a pg_dump file, copy it down first (aws s3 cp) and restore the local file." : nil
        guard let codec = MemberCodec.detect(head[...]) else {
            return ToolError(.failed, "\(path) is not a rack-gateway-db archive (not a gzip or zstd file)", fix: remoteFix)
        }
        let text = decompressedPrefix(of: head[...], limit: 200)
        if String(decoding: text, as: UTF8.self).hasPrefix(ArchiveHeader.firstLinePrefix) {
            return ToolError(.mismatch, "\(path) is a rack-gateway-db archive without its trailer: it is truncated or its end is damaged (\(fileSize) bytes)",
                             fix: "Do not restore it; use an older archive (rack-gateway-db list).")
        }
        return ToolError(.failed, "\(path) is a \(codec) file but not a rack-gateway-db archive (a foreign \(ArchiveName.suffix(for: codec))?)",
                         fix: remoteFix ?? "Restore a plain pg_dump file with: \(codec.stockDecompress) FILE | psql -v ON_ERROR_STOP=1")
    }
}
