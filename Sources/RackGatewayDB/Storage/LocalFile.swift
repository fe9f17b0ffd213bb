import Foundation

/// The POSIX file operations under `LocalStore` and the small files the tool writes next to it
/// (metrics, reports): full writes, `pread` ranges, fsync of a directory, atomic small files.
enum LocalFile {
    /// `write` until every byte is out (retrying short writes and EINTR); the errno of a failure.
    static func writeFully(_ fd: Int32, _ bytes: ArraySlice<UInt8>) -> Int32? {
        bytes.withUnsafeBytes { writeFully(fd, $0) }
    }

    static func writeFully(_ fd: Int32, _ raw: UnsafeRawBufferPointer) -> Int32? {
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

    /// A write failure named for the operator: disk full and the file size limit say what to do.
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

    /// Bytes `offset..<offset+count` of `fd` into `buffer` (its count becomes `count`); a file that
    /// ends first is truncated.
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

    /// fsync a directory, so that a rename or unlink in it survives a crash.
    static func syncDirectory(_ directory: String) {
        let dirFD = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dirFD >= 0 {
            fsync(dirFD)
            close(dirFD)
        }
    }

    /// Write a small file (sidecar, metrics, report) as `.partial`, fsync, rename: mode 0600 unless
    /// `mode` says otherwise (metrics: 0644).
    static func writeAtomically(directory: String, name: String, contents: [UInt8], mode: mode_t = 0o600) throws {
        let path = directory + "/" + name
        let temporary = path + ".partial"
        unlink(temporary)
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard fd >= 0 else { throw ToolError(.failed, "cannot create \(temporary): \(String(cString: strerror(errno)))") }
        fchmod(fd, mode)
        if let code = writeFully(fd, contents[...]) {
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
