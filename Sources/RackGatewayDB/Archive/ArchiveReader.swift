import Compression
import Foundation

/// Reads an archive: the trailer from the end, the manifest it points to, and members by offset.
public final class ArchiveReader: @unchecked Sendable {
    public let path: String
    public let fileSize: Int
    public let trailer: ArchiveTrailer
    public let manifest: ArchiveManifest
    private let fd: Int32
    /// Instead of a local file: an object in a store (S3), read with ranged requests.
    private let object: (store: ArchiveStore, name: String)?

    public static let headerFirstLine = "-- rack-gateway-db archive format "

    public convenience init(path: String) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw ToolError(.failed, "cannot open \(path): \(String(cString: strerror(errno)))")
        }
        var info = stat()
        fstat(fd, &info)
        try self.init(path: path, fd: fd, object: nil, size: Int(info.st_size))
    }

    /// Read `name` in `store`: the trailer and manifest with ranged reads from the end.
    public convenience init(store: ArchiveStore, name: String) throws {
        guard let size = try store.size(name) else {
            throw ToolError(.failed, "\(store.location)/\(name) does not exist")
        }
        try self.init(path: "\(store.location)/\(name)", fd: -1, object: (store, name), size: size)
    }

    private init(path: String, fd: Int32, object: (store: ArchiveStore, name: String)?, size: Int) throws {
        self.path = path
        self.fd = fd
        self.object = object
        fileSize = size
        do {
            let tail = fileSize >= ArchiveTrailer.memberLength
                ? try Self.range(fd: fd, object: object, path: path, offset: size - ArchiveTrailer.memberLength, count: ArchiveTrailer.memberLength)
                : []
            guard let trailer = ArchiveTrailer.parse(tail[...]) else {
                let head = (try? Self.range(fd: fd, object: object, path: path, offset: 0, count: min(size, 64 * 1024))) ?? []
                throw Self.explainMissingTrailer(head: head, path: path, fileSize: size)
            }
            self.trailer = trailer
            let manifestEnd = trailer.manifestOffset + trailer.manifestLength
            guard trailer.manifestLength > 0, manifestEnd == size - ArchiveTrailer.memberLength else {
                throw ToolError(.archiveCorrupt, "\(path): the trailer points to a manifest at offset \(trailer.manifestOffset) of length \(trailer.manifestLength), which does not end where the trailer starts (offset \(size - ArchiveTrailer.memberLength)); the archive is corrupt")
            }
            let member = try Self.range(fd: fd, object: object, path: path, offset: trailer.manifestOffset, count: trailer.manifestLength)
            var text = [UInt8]()
            do {
                let inflater = try GzipStreamInflater()
                try inflater.inflate(member[...], into: &text)
                guard inflater.finishedMember else { throw CompressionError(operation: "gunzip", message: "member is incomplete") }
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
                                fix: "Use a rack-gateway-db release that knows that format, or restore it with gunzip -c | psql.")
            }
            manifest = try ArchiveManifest.parse(line: text)
        } catch {
            if fd >= 0 { close(fd) }
            throw error
        }
    }

    deinit { if fd >= 0 { close(fd) } }

    /// Whether reads go over the network to a store (and are worth streaming ahead).
    public var isRemote: Bool { object != nil }

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
        if let object {
            try object.store.stream(object.name, offset: offset, count: count, sink: sink)
        } else {
            try streamInPieces(offset: offset, count: count, read: { try readBytes(offset: $0, count: $1) }, sink: sink)
        }
    }

    public func readBytes(offset: Int, count: Int) throws -> [UInt8] {
        var buffer = [UInt8]()
        try readBytes(offset: offset, count: count, into: &buffer)
        return buffer
    }

    /// The same into a buffer the caller reuses (its count becomes `count`).
    public func readBytes(offset: Int, count: Int, into buffer: inout [UInt8]) throws {
        if let object {
            buffer = try object.store.read(object.name, offset: offset, count: count)
        } else {
            try Self.read(fd: fd, offset: offset, count: count, path: path, into: &buffer)
        }
    }

    static func range(fd: Int32, object: (store: ArchiveStore, name: String)?, path: String, offset: Int, count: Int) throws -> [UInt8] {
        if let object { return try object.store.read(object.name, offset: offset, count: count) }
        return try read(fd: fd, offset: offset, count: count, path: path)
    }

    /// The digest the `.sha256` sidecar records, or nil when there is none.
    public func sidecarDigest() -> String? {
        guard let object else { return ArchiveName.sidecarDigest(ofArchive: path) }
        guard let size = try? object.store.size(object.name + ".sha256"),
              let bytes = try? object.store.read(object.name + ".sha256", offset: 0, count: size) else { return nil }
        return String(decoding: bytes, as: UTF8.self).split(separator: " ").first.map { String($0).lowercased() }
    }

    static func read(fd: Int32, offset: Int, count: Int, path: String) throws -> [UInt8] {
        var buffer = [UInt8]()
        try read(fd: fd, offset: offset, count: count, path: path, into: &buffer)
        return buffer
    }

    static func read(fd: Int32, offset: Int, count: Int, path: String, into buffer: inout [UInt8]) throws {
        buffer.resize(to: count)
        var done = 0
        while done < count {
            let result = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + done, count - done, off_t(offset + done)) }
            if result < 0 {
                if errno == EINTR { continue }
                throw ToolError(.failed, "cannot read \(path): \(String(cString: strerror(errno)))")
            }
            if result == 0 {
                throw ToolError(.archiveCorrupt, "\(path) ends at \(offset + done) bytes, before the \(count) bytes expected at offset \(offset); it is truncated")
            }
            done += result
        }
    }

    /// No trailer: tell an unfinished backup, a foreign file and a truncated or damaged archive apart.
    static func explainMissingTrailer(head: [UInt8], path: String, fileSize: Int) -> ToolError {
        if path.hasSuffix(".partial") {
            return ToolError(.failed, "\(path) is an unfinished backup (.partial): a backup is writing it or was interrupted; it is not an archive",
                             fix: "Wait for the running backup, or delete the file if none runs.")
        }
        // pg_dump files are restored from disk only (psql and pg_restore read files).
        let remoteFix = path.hasPrefix("s3://") ? "If it is a pg_dump file, copy it down first (aws s3 cp) and restore the local file." : nil
        guard head.count >= 2, head[0] == 0x1f, head[1] == 0x8b else {
            return ToolError(.failed, "\(path) is not a rack-gateway-db archive (not a gzip file)", fix: remoteFix)
        }
        var text = [UInt8]()
        if let inflater = try? GzipStreamInflater() { try? inflater.inflate(head[...], into: &text) }
        if String(decoding: text.prefix(200), as: UTF8.self).hasPrefix(headerFirstLine) {
            return ToolError(.mismatch, "\(path) is a rack-gateway-db archive without its trailer: it is truncated or its end is damaged (\(fileSize) bytes)",
                             fix: "Do not restore it; use an older archive (rack-gateway-db list).")
        }
        return ToolError(.failed, "\(path) is a gzip file but not a rack-gateway-db archive (a foreign .sql.gz?)",
                         fix: remoteFix ?? "Restore a plain pg_dump file with: gunzip -c FILE | psql -v ON_ERROR_STOP=1")
    }
}
