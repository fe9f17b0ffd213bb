import Foundation

/// Where archives live: a local directory or an S3 bucket and prefix. One protocol, two
/// implementations, one conformance suite (Tests/RackGatewayDBTests/ArchiveStoreTests.swift).
public protocol ArchiveStore: Sendable {
    /// `/var/backups/rgw` or `s3://bucket/prefix`.
    var location: String { get }
    /// Start writing `name`. Nothing is visible under `name` until the writer publishes.
    func create(_ name: String) throws -> StoreWriter
    func read(_ name: String, offset: Int, count: Int) throws -> [UInt8]
    /// The size of `name`, or nil when there is none.
    func size(_ name: String) throws -> Int?
    /// Published objects (never unfinished ones), by name.
    func list() throws -> [StoreEntry]
    func delete(_ name: String) throws
    /// A small object written whole and atomically (sidecars, logs).
    func put(_ name: String, _ contents: [UInt8]) throws
    /// An exclusive lease on `name` for `holder`; a second one fails with `.locked` naming the holder.
    func lease(_ name: String, holder: String) throws -> StoreLease
    /// Add one line to the log `name` (created when missing). Concurrent appends never lose or
    /// interleave lines.
    func appendLine(_ name: String, _ line: [UInt8]) throws
    /// Until when `name` may not be deleted (S3 Object Lock retention), or nil.
    func retainedUntil(_ name: String) throws -> Date?
    /// Bytes `offset..<offset+count` of `name` into `sink` in order, as they come; `sink` returns
    /// false to stop. One long read instead of many small ones (S3: one streaming GET).
    func stream(_ name: String, offset: Int, count: Int, sink: @escaping (UnsafeRawBufferPointer) -> Bool) throws
}

extension ArchiveStore {
    /// Until when `name` may not be deleted (S3 Object Lock retention), or nil.
    public func retainedUntil(_ name: String) throws -> Date? { nil }

    /// In reads of 4 MiB.
    public func stream(_ name: String, offset: Int, count: Int, sink: @escaping (UnsafeRawBufferPointer) -> Bool) throws {
        try streamInPieces(offset: offset, count: count, read: { try read(name, offset: $0, count: $1) }, sink: sink)
    }

    /// The whole of `name`, or nil when there is none.
    public func get(_ name: String) throws -> [UInt8]? {
        guard let size = try size(name) else { return nil }
        return size == 0 ? [] : try read(name, offset: 0, count: size)
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

/// `offset..<offset+count` into `sink` through `read(offset, count)` calls of 4 MiB at most.
func streamInPieces(offset: Int, count: Int, read: (Int, Int) throws -> [UInt8], sink: (UnsafeRawBufferPointer) -> Bool) throws {
    var done = 0
    while done < count {
        let piece = min(4 << 20, count - done)
        let bytes = try read(offset + done, piece)
        guard bytes.withUnsafeBytes(sink) else { return }
        done += piece
    }
}

public struct StoreEntry: Sendable, Equatable {
    public var name: String
    public var size: Int
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
