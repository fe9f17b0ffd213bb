import Foundation
import Logging

/// A remote object downloaded once into a local file, hashed as it arrives (the digests
/// `StoredDigests` computes), then read from that file. Where a signature must be checked before
/// anything of an archive is parsed, the bytes it checked are the bytes then read, and nothing is
/// fetched twice. The spool is created in $TMPDIR (mode 0600) and unlinked at once: it takes the
/// object's size in space there until the reader is released, and is gone when the run ends,
/// however it ends (exit, signal, crash).
final class SpooledObject: StoreReader, @unchecked Sendable {
    let location: String
    let size: Int
    /// The stored object's digests, of the bytes in the spool.
    let digests: StoredDigests
    private let fd: Int32

    /// Why a spool could not be made in $TMPDIR: a problem of this host (no room, no such or no
    /// writable directory), never of the archive. The `cause` of the `ToolError` the spool throws
    /// then, so that `--latest` stops on it instead of passing over the archive, and a reader
    /// without a key falls back to reading the store twice.
    struct HostProblem: Error, Sendable {}

    /// Downloads `object` (one streaming read) into a spool in `directory`, hashing it on the way.
    init(_ object: StoreReader, blake2b: Bool, directory: String = SpooledObject.directory) throws {
        location = object.location
        size = object.size
        let fix = "Set TMPDIR to a directory with room for the archive (\(size) bytes), or free space in \(directory)."
        if let free = Self.freeSpace(in: directory), free < size {
            throw ToolError(.failed, "\(location) is read from a local copy in \(directory) (TMPDIR), and \(directory) has \(free) bytes free of the \(size) it needs",
                            fix: fix, cause: HostProblem())
        }
        var template = Array("\(directory)/rgw-spool-XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else {
            let error = errno
            let unusable = [ENOENT, ENOTDIR, EACCES, EROFS, EPERM].contains(error)
            throw ToolError(.failed, "\(location) is read from a local copy in \(directory) (TMPDIR), and no file can be created there: \(String(cString: strerror(error)))",
                            fix: unusable ? "Set TMPDIR to a writable directory with room for the archive (\(size) bytes)." : fix, cause: HostProblem())
        }
        // Nothing to remove later: the file has no name from here on.
        template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        fchmod(fd, 0o600)
        self.fd = fd
        // A failed download closes the spool here (deinit does not run for an init that throws).
        var spooled = false
        defer { if !spooled { close(fd) } }
        let hashes = StoredDigests.Hashes(blake2b: blake2b)
        var written = 0
        var failure: Int32?
        // Minutes for a big archive: a bar at a terminal (a log line every few seconds otherwise),
        // never a blank screen before the restore's own progress starts.
        let progress = CopyProgress()
        progress.start(total: 1)
        progress.next(index: 0, file: location)
        // Which archive, before a wait of minutes (the bar has no room for its name at 60 columns).
        let what = "fetching \(location) (\(ProgressDisplay.bytes(size))) into a spool file in \(directory) (TMPDIR), where it is checked and read"
        if TerminalOutput.shared.isTTY {
            TerminalOutput.shared.writeLine("rack-gateway-db: " + what)
        } else {
            ToolLogHandler.logger().info("\(what)")
        }
        progress.phase("download", total: size)
        let level = Logger.Level(rawValue: ProcessInfo.processInfo.environment["RGW_LOG_LEVEL"] ?? "") ?? .info
        let display = ProgressDisplay(logger: ToolLogHandler.logger(level: level)) { progress.line() }
        defer { display.stop() }
        do {
            try object.stream(offset: 0, count: size) { bytes in
                hashes.update(bytes)
                failure = LocalFile.writeFully(fd, bytes)
                guard failure == nil else { return false }
                written += bytes.count
                progress.add(bytes.count)
                return true
            }
        } catch where failure != nil {
            // The download was stopped because the spool could not be written (the disk filled up
            // under it): the host's problem, said below, never "reading ... was stopped", which
            // --latest would take for a verdict on the archive.
        }
        if let failure {
            let what = failure == ENOSPC || failure == EDQUOT ? "the disk filled up" : String(cString: strerror(failure))
            throw ToolError(.failed, "cannot copy \(location) into a spool file in \(directory) (TMPDIR): \(what)", fix: fix, cause: HostProblem())
        }
        guard written == size else {
            throw ToolError(.failed, "\(location): the download ended after \(written) of its \(size) bytes", fix: "Run again; if it persists, check the object in the bucket.")
        }
        digests = hashes.finalize()
        spooled = true
    }

    deinit { close(fd) }

    /// The bytes free in `directory` for this user, or nil when it cannot be asked (it does not exist).
    static func freeSpace(in directory: String) -> Int? {
        var stats = statvfs()
        guard statvfs(directory, &stats) == 0 else { return nil }
        return Int(stats.f_bavail) * Int(stats.f_frsize)
    }

    /// $TMPDIR, else /tmp.
    static var directory: String {
        let path = NSTemporaryDirectory()
        return path.count > 1 && path.hasSuffix("/") ? String(path.dropLast()) : path
    }

    func read(offset: Int, count: Int, into buffer: inout [UInt8]) throws {
        try LocalFile.read(fd: fd, offset: offset, count: count, path: location, into: &buffer)
    }
}
