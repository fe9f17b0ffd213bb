import Foundation

/// Archives in a local directory: files written as `.partial` (mode 0600), fsynced and renamed,
/// read with `pread`. The directory (mode 0700) is made by the first write.
public struct LocalStore: ArchiveStore {
    public let directory: String
    public var location: String { directory }

    public init(directory: String) {
        self.directory = directory
    }

    func path(_ name: String) -> String { directory + "/" + name }

    func makeDirectory() throws {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw ToolError(.failed, "cannot create the directory \(directory): \((error as NSError).localizedDescription)",
                            fix: "Check that its parent exists and is writable, or give another --dir.")
        }
    }

    public func create(_ name: String) throws -> StoreWriter {
        try makeDirectory()
        return try LocalWriter(directory: directory, name: name)
    }

    public func open(_ name: String) throws -> StoreReader? {
        let fd = Foundation.open(path(name), O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            if errno == ENOENT { return nil }
            throw ToolError(.failed, "cannot open \(path(name)): \(String(cString: strerror(errno)))")
        }
        var info = stat()
        fstat(fd, &info)
        return LocalReader(fd: fd, location: path(name), size: Int(info.st_size))
    }

    public func localPath(_ name: String) -> String? { path(name) }

    public func version(_ name: String) throws -> String? {
        var info = stat()
        return stat(path(name), &info) == 0 ? Self.version(of: info) : nil
    }

    /// Inode, size, and modification and change times in nanoseconds: a write changes the change
    /// time, which no user (unlike the modification time) can set back.
    static func version(of info: stat) -> String {
        "\(info.st_ino)-\(info.st_size)-\(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec)-\(info.st_ctim.tv_sec).\(info.st_ctim.tv_nsec)"
    }

    public func list() throws -> [StoreEntry] {
        try FileManager.default.contentsOfDirectory(atPath: directory)
            .filter { !$0.hasPrefix(".") && !$0.hasSuffix(".partial") }
            .compactMap { name in
                var info = stat()
                guard stat(path(name), &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return nil }
                return StoreEntry(name: name, size: Int(info.st_size), version: Self.version(of: info))
            }
            .sorted { $0.name < $1.name }
    }

    public func delete(_ name: String) throws {
        guard unlink(path(name)) == 0 || errno == ENOENT else {
            throw ToolError(.failed, "cannot delete \(path(name)): \(String(cString: strerror(errno)))")
        }
    }

    public func syncDirectory() throws { LocalFile.syncDirectory(directory) }

    public func put(_ name: String, _ contents: [UInt8]) throws {
        try makeDirectory()
        try LocalFile.writeAtomically(directory: directory, name: name, contents: contents)
    }

    public func lease(_ name: String, holder: String, at time: Date) throws -> StoreLease {
        try makeDirectory()
        return LocalLease(try DirectoryLock.acquire(directory: directory, name: name, what: holder, since: time))
    }

    /// O_APPEND: concurrent runs never interleave inside a line; created mode 0600.
    public func appendLine(_ name: String, _ line: [UInt8]) throws {
        let fd = Foundation.open(path(name), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw ToolError(.failed, "cannot open \(path(name)): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        if let code = LocalFile.writeFully(fd, line[...]) {
            throw ToolError(.failed, "cannot append to \(path(name)): \(String(cString: strerror(code)))")
        }
    }

    final class LocalReader: StoreReader, @unchecked Sendable {
        let fd: Int32
        let location: String
        let size: Int
        init(fd: Int32, location: String, size: Int) {
            self.fd = fd
            self.location = location
            self.size = size
        }
        deinit { close(fd) }
        func read(offset: Int, count: Int, into buffer: inout [UInt8]) throws {
            try LocalFile.read(fd: fd, offset: offset, count: count, path: location, into: &buffer)
        }
    }

    /// `<name>.partial`, created exclusively; `publish` fsyncs it, renames it and fsyncs the directory.
    final class LocalWriter: StoreWriter, @unchecked Sendable {
        let directory: String
        let finalPath: String
        var partialPath: String { finalPath + ".partial" }
        private let lock = NSLock()
        private var fd: Int32
        private var published = false

        init(directory: String, name: String) throws {
            self.directory = directory
            finalPath = directory + "/" + name
            fd = Foundation.open(finalPath + ".partial", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
            guard fd >= 0 else {
                let code = errno
                if code == EEXIST {
                    throw ToolError(.failed, "\(finalPath).partial exists: another backup is writing it, or one was interrupted",
                                    fix: "If no backup is running, remove \(finalPath).partial and run again.")
                }
                throw ToolError(.failed, "cannot create \(finalPath).partial: \(String(cString: strerror(code)))",
                                fix: "Check that \(directory) exists and is writable.")
            }
            fchmod(fd, 0o600)
        }

        deinit { if fd >= 0 { close(fd) } }

        func append(_ bytes: ArraySlice<UInt8>) throws {
            if let code = LocalFile.writeFully(fd, bytes) {
                throw LocalFile.writeError(code, path: partialPath, directory: directory)
            }
        }

        func publish() throws {
            try lock.withLock {
                guard fsync(fd) == 0 else { throw LocalFile.writeError(errno, path: partialPath, directory: directory) }
                close(fd)
                fd = -1
                guard rename(partialPath, finalPath) == 0 else {
                    throw ToolError(.failed, "cannot rename \(partialPath) to \(finalPath): \(String(cString: strerror(errno)))")
                }
                published = true
                LocalFile.syncDirectory(directory)
            }
        }

        func discard() {
            lock.withLock {
                if fd >= 0 { close(fd); fd = -1 }
                if !published { unlink(partialPath) }
            }
        }
    }

    final class LocalLease: StoreLease {
        let lock: DirectoryLock
        init(_ lock: DirectoryLock) { self.lock = lock }
        func release() { lock.release() }
    }
}
