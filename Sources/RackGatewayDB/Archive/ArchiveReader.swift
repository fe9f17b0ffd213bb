import Compression
import Foundation

/// Reads an archive: the trailer from the end, the manifest it points to, and members by offset.
public final class ArchiveReader {
    public let path: String
    public let fileSize: Int
    public let trailer: ArchiveTrailer
    public let manifest: ArchiveManifest
    private let fd: Int32

    public static let headerFirstLine = "-- rack-gateway-db archive format "

    public init(path: String) throws {
        self.path = path
        fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw ToolError(.failed, "cannot open \(path): \(String(cString: strerror(errno)))")
        }
        var info = stat()
        fstat(fd, &info)
        fileSize = Int(info.st_size)
        do {
            let tail = fileSize >= ArchiveTrailer.memberLength
                ? try Self.read(fd: fd, offset: fileSize - ArchiveTrailer.memberLength, count: ArchiveTrailer.memberLength, path: path)
                : []
            guard let trailer = ArchiveTrailer.parse(tail[...]) else {
                throw Self.explainMissingTrailer(fd: fd, path: path, fileSize: fileSize)
            }
            self.trailer = trailer
            let manifestEnd = trailer.manifestOffset + trailer.manifestLength
            guard trailer.manifestLength > 0, manifestEnd == fileSize - ArchiveTrailer.memberLength else {
                throw ToolError(.mismatch, "\(path): the trailer points to a manifest at offset \(trailer.manifestOffset) of length \(trailer.manifestLength), which does not end where the trailer starts (offset \(fileSize - ArchiveTrailer.memberLength)); the archive is corrupt")
            }
            let member = try Self.read(fd: fd, offset: trailer.manifestOffset, count: trailer.manifestLength, path: path)
            var text = [UInt8]()
            do {
                let inflater = try GzipStreamInflater()
                try inflater.inflate(member[...], into: &text)
                guard inflater.finishedMember else { throw CompressionError(operation: "gunzip", message: "member is incomplete") }
            } catch let error as CompressionError {
                throw ToolError(.mismatch, "\(path): the manifest member at offset \(trailer.manifestOffset) is corrupt (\(error.message))")
            }
            manifest = try ArchiveManifest.parse(line: text)
            guard manifest.formatVersion == ArchiveManifest.currentFormatVersion else {
                throw ToolError(.failed, "\(path) is archive format v\(manifest.formatVersion); this rack-gateway-db reads v\(ArchiveManifest.currentFormatVersion)",
                                fix: "Use a rack-gateway-db release that knows that format, or restore it with gunzip -c | psql.")
            }
        } catch {
            close(fd)
            throw error
        }
    }

    deinit { close(fd) }

    public func readBytes(offset: Int, count: Int) throws -> [UInt8] {
        try Self.read(fd: fd, offset: offset, count: count, path: path)
    }

    /// The same into a buffer the caller reuses (its count becomes `count`).
    public func readBytes(offset: Int, count: Int, into buffer: inout [UInt8]) throws {
        try Self.read(fd: fd, offset: offset, count: count, path: path, into: &buffer)
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
                throw ToolError(.mismatch, "\(path) ends at \(offset + done) bytes, before the \(count) bytes expected at offset \(offset); it is truncated")
            }
            done += result
        }
    }

    /// No trailer: tell an unfinished backup, a foreign file and a truncated or damaged archive apart.
    static func explainMissingTrailer(fd: Int32, path: String, fileSize: Int) -> ToolError {
        if path.hasSuffix(".partial") {
            return ToolError(.failed, "\(path) is an unfinished backup (.partial): a backup is writing it or was interrupted; it is not an archive",
                             fix: "Wait for the running backup, or delete the file if none runs.")
        }
        let head = (try? read(fd: fd, offset: 0, count: min(fileSize, 64 * 1024), path: path)) ?? []
        guard head.count >= 2, head[0] == 0x1f, head[1] == 0x8b else {
            return ToolError(.failed, "\(path) is not a rack-gateway-db archive (not a gzip file)")
        }
        var text = [UInt8]()
        if let inflater = try? GzipStreamInflater() { try? inflater.inflate(head[...], into: &text) }
        if String(decoding: text.prefix(200), as: UTF8.self).hasPrefix(headerFirstLine) {
            return ToolError(.mismatch, "\(path) is a rack-gateway-db archive without its trailer: it is truncated or its end is damaged (\(fileSize) bytes)",
                             fix: "Do not restore it; use an older archive (rack-gateway-db list).")
        }
        return ToolError(.failed, "\(path) is a gzip file but not a rack-gateway-db archive (a foreign .sql.gz?)",
                         fix: "Restore a plain pg_dump file with: gunzip -c FILE | psql -v ON_ERROR_STOP=1")
    }
}
