import Foundation

/// Where archives live: a local directory or an S3 bucket and prefix. One protocol, two
/// implementations, one conformance suite (Tests/RackGatewayDBTests/ArchiveStoreTests.swift).
public protocol ArchiveStore: Sendable {
    /// `/var/backups/rgw` or `s3://bucket/prefix`.
    var location: String { get }
    /// Start writing `name`. Nothing is visible under `name` until the writer publishes.
    func create(_ name: String) throws -> StoreWriter
    /// Read `name` by ranges, or nil when there is none.
    func open(_ name: String) throws -> StoreReader?
    /// Published objects (never unfinished ones), by name.
    func list() throws -> [StoreEntry]
    func delete(_ name: String) throws
    /// A small object written whole and atomically (sidecars, logs).
    func put(_ name: String, _ contents: [UInt8]) throws
    /// An exclusive lease on `name` for `holder`, taken at `time` (the run's clock); a second one
    /// fails with `.lockHeld` naming the holder.
    func lease(_ name: String, holder: String, at time: Date) throws -> StoreLease
    /// Add one line to the log `name` (created when missing). Concurrent appends never lose or
    /// interleave lines.
    func appendLine(_ name: String, _ line: [UInt8]) throws
    /// Until when `name` may not be deleted (S3 Object Lock retention), or nil.
    func retainedUntil(_ name: String) throws -> Date?
    /// Make the deletes and renames done so far durable (a local directory's fsync; pgBackRest's
    /// `pathSync`). Stores whose every call is durable when it returns do nothing.
    func syncDirectory() throws
    /// The path of `name` as a file on this machine, for the stock tools that read files (psql,
    /// pg_restore); nil for a remote store.
    func localPath(_ name: String) -> String?
    /// What changes whenever `name`'s bytes are written (a file's inode, size, modification and
    /// change times; an object's ETag), or nil when there is none. A verification recorded with it
    /// is trusted only while it is the same.
    func version(_ name: String) throws -> String?
}

extension ArchiveStore {
    public func retainedUntil(_ name: String) throws -> Date? { nil }
    public func syncDirectory() throws {}
    public func localPath(_ name: String) -> String? { nil }

    /// The size of `name`, or nil when there is none.
    public func size(_ name: String) throws -> Int? { try open(name)?.size }

    /// The whole of `name`, or nil when there is none.
    public func get(_ name: String) throws -> [UInt8]? {
        guard let reader = try open(name) else { return nil }
        return reader.size == 0 ? [] : try reader.read(offset: 0, count: reader.size)
    }

    /// Bytes `offset..<offset+count` of `name`, which must exist.
    public func read(_ name: String, offset: Int, count: Int) throws -> [UInt8] {
        guard let reader = try open(name) else { throw ToolError(.archiveNotFound, "\(location)/\(name) does not exist") }
        return try reader.read(offset: offset, count: count)
    }
}

/// One object opened for reading. Reads of a range past its end fail as a truncation.
public protocol StoreReader: Sendable {
    /// What messages call it: a path or an s3:// URL.
    var location: String { get }
    var size: Int { get }
    /// Bytes `offset..<offset+count` into `buffer` (its count becomes `count`), for a caller that
    /// reuses one buffer.
    func read(offset: Int, count: Int, into buffer: inout [UInt8]) throws
    /// Bytes `offset..<offset+count` into `sink` in order, as they come; `sink` returns false to
    /// stop. One long read instead of many small ones (S3: one streaming GET).
    func stream(offset: Int, count: Int, sink: @escaping (UnsafeRawBufferPointer) -> Bool) throws
}

extension StoreReader {
    public func read(offset: Int, count: Int) throws -> [UInt8] {
        var buffer = [UInt8]()
        try read(offset: offset, count: count, into: &buffer)
        return buffer
    }

    /// In reads of 4 MiB.
    public func stream(offset: Int, count: Int, sink: @escaping (UnsafeRawBufferPointer) -> Bool) throws {
        var done = 0
        var buffer = [UInt8]()
        while done < count {
            let piece = min(4 << 20, count - done)
            try read(offset: offset + done, count: piece, into: &buffer)
            guard buffer.withUnsafeBytes(sink) else { return }
            done += piece
        }
    }
}

/// Server-side encryption and Object Lock for what `backup` uploads (`--sse`, `--sse-kms-key-id`,
/// `--object-lock-days`, `--object-lock-mode`).
public struct S3UploadOptions: Sendable {
    public enum LockMode: String, Sendable { case governance = "GOVERNANCE", compliance = "COMPLIANCE" }
    /// `AES256` or `aws:kms`.
    public var serverSideEncryption: String?
    public var kmsKeyID: String?
    public var objectLockDays: Int?
    public var objectLockMode: LockMode = .governance
    public init() {}
}

public struct StoreEntry: Sendable, Equatable {
    public var name: String
    public var size: Int
    /// What `ArchiveStore.version` says of it.
    public var version: String? = nil
}

/// Used by one thread at a time (the archive writer holds its lock around every call); Sendable so
/// that a Ctrl-C handler may discard it.
public protocol StoreWriter: AnyObject, Sendable {
    func append(_ bytes: ArraySlice<UInt8>) throws
    /// Make the object visible under its name, complete.
    func publish() throws
    /// Remove every trace of the unfinished object.
    func discard()
}

public protocol StoreLease: AnyObject {
    func release()
}
