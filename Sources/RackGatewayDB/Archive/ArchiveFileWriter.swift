import Compression
import Foundation

/// Writes an archive file: members appended under a lock (one writer), offsets and sizes recorded,
/// SHA-256 computed as the bytes go out. The file is `<name>.partial` (mode 0600) until `publish`
/// fsyncs it, renames it, fsyncs the directory and writes the `.sha256` sidecar. `discard` removes
/// the partial file; nothing incomplete ever has the final name.
public final class ArchiveFileWriter: @unchecked Sendable {
    public let directory: String
    public let fileName: String
    public var finalPath: String { directory + "/" + fileName }
    public var partialPath: String { finalPath + ".partial" }

    private let lock = NSLock()
    private var fd: Int32
    /// Instead of a local file: an object store's writer (an S3 multipart upload), published by
    /// the store and its sidecar put next to it.
    private var remote: (writer: StoreWriter, store: ArchiveStore)?
    private var offset = 0
    private let sha = SHA256()
    private var members: [ArchiveManifest.Member] = []
    private var finished = false

    /// Where the archive goes, as a store (to look at the archives already there).
    public func store() throws -> ArchiveStore {
        try remote?.store ?? LocalStore(directory: directory)
    }

    public init(directory: String, fileName: String) throws {
        self.directory = directory
        self.fileName = fileName
        let path = directory + "/" + fileName
        if FileManager.default.fileExists(atPath: path) {
            throw ToolError(.failed, "\(path) already exists; not overwriting it", fix: "Wait a second and run again, or use another --prefix.")
        }
        fd = open(path + ".partial", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            let code = errno
            if code == EEXIST {
                throw ToolError(.failed, "\(path).partial exists: another backup is writing it, or one was interrupted",
                                fix: "If no backup is running, remove \(path).partial and run again.")
            }
            throw ToolError(.failed, "cannot create \(path).partial: \(String(cString: strerror(code)))",
                            fix: "Check that \(directory) exists and is writable.")
        }
        fchmod(fd, 0o600)
        Interruption.register(partialPath)
    }

    /// Write into `store` (an S3 bucket): nothing appears under `fileName` until `publish`;
    /// `discard`, or Ctrl-C, aborts the upload.
    public init(store: ArchiveStore, fileName: String) throws {
        directory = store.location
        self.fileName = fileName
        if try store.size(fileName) != nil {
            throw ToolError(.failed, "\(store.location)/\(fileName) already exists; not overwriting it", fix: "Wait a second and run again, or use another --prefix.")
        }
        fd = -1
        let writer = try store.create(fileName)
        remote = (writer, store)
        Interruption.onInterrupt("upload \(fileName)") { writer.discard() }
    }

    deinit { if fd >= 0 { close(fd) } }

    public var bytesWritten: Int { lock.withLock { offset } }
    public var recordedMembers: [ArchiveManifest.Member] { lock.withLock { members } }

    /// Append one complete gzip member; its CRC32 and size are read from the member's own trailer.
    @discardableResult
    public func append(member bytes: ArraySlice<UInt8>, kind: ArchiveManifest.MemberKind, table: Int? = nil, rows: Int? = nil) throws -> ArchiveManifest.Member {
        precondition(bytes.count >= 18)
        let footer = GzipFooter(endOf: bytes)!
        lock.lock()
        defer { lock.unlock() }
        let record = ArchiveManifest.Member(index: members.count, kind: kind, offset: offset, length: bytes.count,
                                            size: Int(footer.size), crc32: footer.crc32, table: table, rows: rows)
        try writeAll(bytes)
        members.append(record)
        return record
    }

    /// Append raw bytes that are not a recorded member (the manifest and the trailer).
    public func appendUnrecorded(_ bytes: ArraySlice<UInt8>) throws -> Int {
        lock.lock()
        defer { lock.unlock() }
        let start = offset
        try writeAll(bytes)
        return start
    }

    private func writeAll(_ bytes: ArraySlice<UInt8>) throws {
        if let remote {
            try remote.writer.append(bytes)
        } else if let code = Self.writeFully(fd, bytes) {
            throw Self.writeError(code, path: partialPath, directory: directory)
        }
        sha.update(bytes)
        offset += bytes.count
    }

    /// `write` until every byte is out (retrying short writes and EINTR); the errno of a failure.
    static func writeFully(_ fd: Int32, _ bytes: ArraySlice<UInt8>) -> Int32? {
        bytes.withUnsafeBytes { raw -> Int32? in
            var written = 0
            while written < raw.count {
                let result = write(fd, raw.baseAddress! + written, raw.count - written)
                if result < 0 {
                    if errno == EINTR { continue }
                    return errno
                }
                written += result
            }
            return nil
        }
    }

    static func writeError(_ code: Int32, path: String, directory: String) -> ToolError {
        switch code {
        case ENOSPC, EDQUOT:
            return ToolError(.failed, "disk full while writing \(path)", fix: "Free space in \(directory) or write the backup elsewhere with --dir.")
        case EFBIG:
            return ToolError(.failed, "file size limit reached while writing \(path) (ulimit -f or the filesystem's maximum)",
                             fix: "Raise the limit (ulimit -f unlimited) or write the backup elsewhere with --dir.")
        default:
            return ToolError(.failed, "cannot write \(path): \(String(cString: strerror(code)))")
        }
    }

    /// fsync, rename to the final name, fsync the directory, then write `<name>.sha256`. Returns the SHA-256.
    /// fsync, rename to the final name, fsync the directory; then (with `sidecar`) write
    /// `<name>.sha256`. Returns the file's SHA-256.
    @discardableResult
    public func publish(sidecar: Bool = true) throws -> String {
        lock.lock()
        defer { lock.unlock() }
        if let remote {
            try remote.writer.publish()
            finished = true
            Interruption.removeOnInterrupt("upload \(fileName)")
            let digest = SHA256.hex(sha.finalize())
            if sidecar { try remote.store.put(fileName + ".sha256", Array("\(digest)  \(fileName)\n".utf8)) }
            return digest
        }
        guard fsync(fd) == 0 else { throw Self.writeError(errno, path: partialPath, directory: directory) }
        close(fd)
        fd = -1
        guard rename(partialPath, finalPath) == 0 else {
            throw ToolError(.failed, "cannot rename \(partialPath) to \(fileName): \(String(cString: strerror(errno)))")
        }
        finished = true
        Interruption.unregister(partialPath)
        Self.syncDirectory(directory)
        let digest = SHA256.hex(sha.finalize())
        if sidecar {
            try Self.writeSmallFileAtomically(directory: directory, name: fileName + ".sha256", contents: "\(digest)  \(fileName)\n")
        }
        return digest
    }

    /// Remove the partial file (after a failure). Safe to call more than once.
    public func discard() {
        lock.lock()
        defer { lock.unlock() }
        if let remote {
            if !finished { remote.writer.discard() }
            Interruption.removeOnInterrupt("upload \(fileName)")
            return
        }
        if fd >= 0 { close(fd); fd = -1 }
        if !finished { unlink(partialPath) }
        Interruption.unregister(partialPath)
    }

    static func syncDirectory(_ directory: String) {
        let dirFD = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dirFD >= 0 {
            fsync(dirFD)
            close(dirFD)
        }
    }

    /// Write a small file (sidecar, metrics, report) as `.partial`, fsync, rename: mode 0600.
    public static func writeSmallFileAtomically(directory: String, name: String, contents: String) throws {
        let path = directory + "/" + name
        let temporary = path + ".partial"
        unlink(temporary)
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw ToolError(.failed, "cannot create \(temporary): \(String(cString: strerror(errno)))") }
        fchmod(fd, 0o600)
        if let code = writeFully(fd, Array(contents.utf8)[...]) {
            close(fd)
            unlink(temporary)
            throw writeError(code, path: temporary, directory: directory)
        }
        fsync(fd)
        close(fd)
        guard rename(temporary, path) == 0 else {
            unlink(temporary)
            throw ToolError(.failed, "cannot rename \(temporary): \(String(cString: strerror(errno)))")
        }
        syncDirectory(directory)
    }
}
