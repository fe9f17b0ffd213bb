import RGWCompression
import Foundation
import RGWPostgres

/// `backup`: one consistent snapshot, dumped over parallel COPY streams into an archive (format v1).
public struct BackupOptions: Sendable {
    /// Where the archive goes: a local directory or an S3 prefix.
    public var store: ArchiveStore
    public var prefix: String = "rack_gateway_backup"
    public var jobs: Int
    public var compressors: Int
    /// gzip members (the default) or zstd frames (`--compress zstd[:LEVEL]`).
    public var codec: MemberCodec = .gzip
    public var compressionLevel: Int32 = 5
    /// COPY text per data member: 4 MiB keeps peak memory under 64 MB with two readers and two
    /// compressors at no cost in speed or size (measured against 8 MiB on the bench database).
    public var chunkSize: Int = 4 << 20
    public var lockTimeoutMilliseconds: Int = 10_000
    public var environment: [String: String] = ProcessInfo.processInfo.environment
    /// The archive is suspect when a table's rows or the whole data fell by more than this since
    /// the previous good archive (`--max-shrink`; 1 turns the check off).
    public var maxShrink: Double = ShrinkCheck.defaultMaxShrink
    /// age recipients to encrypt to and a minisign key to sign with (`--recipient`, `--sign-key`).
    public var keys = BackupKeys()

    public init(store: ArchiveStore, jobs: Int, compressors: Int) {
        self.store = store
        self.jobs = jobs
        self.compressors = compressors
    }
}

public struct BackupReport: Codable, Sendable {
    public var file: String
    public var sha256: String
    public var sizeBytes: Int
    public var durationSeconds: Double
    public var tables: Int
    public var rows: Int
    public var bytesIn: Int
    public var bytesOut: Int
    public var ratio: Double
    public var members: Int
    public var sequences: Int
    public var jobs: Int
    public var snapshot: String
    public var createdAt: String
    /// Why the archive looks like a bad backup next to the previous good one; nil when it does not.
    public var suspect: String?
    /// age-encrypted (`.age`), and signed (a `.minisig` beside it).
    public var encrypted = false
    public var signed = false
    /// `--copy-to`: each destination's copy of the archive (nil without one).
    public var copies: [ArchiveCopier.Result]? = nil
}

