import Foundation

/// Archives in a local directory: files written as `.partial`, fsynced and renamed, read with `pread`.
public struct LocalStore: ArchiveStore {
    public let directory: String
    public var location: String { directory }

    public init(directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        self.directory = directory
    }

    public func create(_ name: String) throws -> StoreWriter { try LocalWriter(directory: directory, name: name) }

    public func read(_ name: String, offset: Int, count: Int) throws -> [UInt8] {
        let fd = open(directory + "/" + name, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ToolError(.failed, "cannot open \(directory)/\(name): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        return try ArchiveReader.read(fd: fd, offset: offset, count: count, path: directory + "/" + name)
    }

    public func size(_ name: String) throws -> Int? {
        var info = stat()
        return stat(directory + "/" + name, &info) == 0 ? Int(info.st_size) : nil
    }

    public func list() throws -> [StoreEntry] {
        try FileManager.default.contentsOfDirectory(atPath: directory)
            .filter { !$0.hasPrefix(".") && !$0.hasSuffix(".partial") }
            .compactMap { name in try size(name).map { StoreEntry(name: name, size: $0) } }
            .sorted { $0.name < $1.name }
    }

    public func delete(_ name: String) throws {
        guard unlink(directory + "/" + name) == 0 || errno == ENOENT else {
            throw ToolError(.failed, "cannot delete \(directory)/\(name): \(String(cString: strerror(errno)))")
        }
    }

    public func put(_ name: String, _ contents: [UInt8]) throws {
        try ArchiveFileWriter.writeSmallFileAtomically(directory: directory, name: name, contents: String(decoding: contents, as: UTF8.self))
    }

    public func lease(_ name: String, holder: String) throws -> StoreLease {
        LocalLease(try DirectoryLock.acquire(directory: directory, name: name, what: holder))
    }

    /// O_APPEND: concurrent runs never interleave inside a line; created mode 0600.
    public func appendLine(_ name: String, _ line: [UInt8]) throws {
        let path = directory + "/" + name
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw ToolError(.failed, "cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        if let code = ArchiveFileWriter.writeFully(fd, line[...]) {
            throw ToolError(.failed, "cannot append to \(path): \(String(cString: strerror(code)))")
        }
    }

    final class LocalWriter: StoreWriter, @unchecked Sendable {
        let file: ArchiveFileWriter
        init(directory: String, name: String) throws { file = try ArchiveFileWriter(directory: directory, fileName: name) }
        func append(_ bytes: ArraySlice<UInt8>) throws { _ = try file.appendUnrecorded(bytes) }
        func publish() throws { _ = try file.publish(sidecar: false) }
        func discard() { file.discard() }
    }

    final class LocalLease: StoreLease {
        let lock: DirectoryLock
        init(_ lock: DirectoryLock) { self.lock = lock }
        func release() { lock.release() }
    }
}

// MARK: S3
