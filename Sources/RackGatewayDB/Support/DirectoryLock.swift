import Foundation

/// An exclusive `flock` on a file in the archive directory. The kernel drops it when the process
/// dies, so a crashed run never leaves a stale lock; the file's text says who holds it.
public final class DirectoryLock: @unchecked Sendable {
    private var fd: Int32
    public let path: String

    private init(fd: Int32, path: String) {
        self.fd = fd
        self.path = path
    }

    /// Taken at `since` (the run's clock), which the lock file's text gives.
    public static func acquire(directory: String, name: String, what: String, since: Date) throws -> DirectoryLock {
        let path = directory + "/" + name
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw ToolError(.failed, "cannot open the lock file \(path): \(String(cString: strerror(errno)))",
                            fix: "Check that \(directory) is writable.")
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            var holder = [UInt8](repeating: 0, count: 1024)
            let count = pread(fd, &holder, holder.count, 0)
            close(fd)
            let text = count > 0 ? String(decoding: holder[0..<count], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) : "another process"
            throw ToolError(.lockHeld, "\(path) is locked: \(text)", fix: "Wait for that run to finish; only one runs at a time.")
        }
        ftruncate(fd, 0)
        let host = ProcessInfo.processInfo.hostName
        // A holder that names this process already (a store's lease, whose text S3 keeps as it is)
        // is written as it is, not followed by the same pid and time again.
        let text = what.contains("pid \(getpid()) on ") ? what + "\n" : "\(what), pid \(getpid()) on \(host), since \(UTCTime.iso8601(since))\n"
        _ = text.withCString { pwrite(fd, $0, strlen($0), 0) }
        return DirectoryLock(fd: fd, path: path)
    }

    public func release() {
        guard fd >= 0 else { return }
        ftruncate(fd, 0)
        flock(fd, LOCK_UN)
        close(fd)
        fd = -1
    }

    deinit { release() }
}
