import ArgumentParser
import RackGatewayDB

/// `--object-lock-days`, `--object-lock-mode`, `--sse` and `--sse-kms-key-id`: how `backup` and
/// `copy` store what they write to S3 (`S3UploadOptions`). Given with no S3 location to write to,
/// they are a usage error (`checkApplies`).
struct S3UploadFlags: ParsableArguments {
    @Option(name: .customLong("object-lock-days"), help: "S3 Object Lock retention in days on the archives and sidecars written to S3 (the bucket must have Object Lock enabled).")
    var objectLockDays: Int?

    @Option(name: .customLong("object-lock-mode"), help: "With --object-lock-days: governance (privileged users may lift it; the default) or compliance (nobody can, not even the root account).")
    var objectLockMode: String?

    @Option(help: ArgumentHelp("Server-side encryption of what is written to S3, AES256 or aws:kms.", valueName: "AES256|aws:kms"))
    var sse: String?

    @Option(name: .customLong("sse-kms-key-id"), help: ArgumentHelp("With --sse aws:kms: the KMS key (id, alias or ARN; default: the account's aws/s3 key).", valueName: "id"))
    var sseKMSKeyID: String?

    func validate() throws {
        if let objectLockDays, objectLockDays < 1 { throw ValidationError("--object-lock-days must be at least 1") }
        if let objectLockMode {
            guard S3UploadOptions.LockMode(rawValue: objectLockMode.uppercased()) != nil else { throw ValidationError("--object-lock-mode is governance or compliance") }
            if objectLockDays == nil { throw ValidationError("--object-lock-mode goes with --object-lock-days") }
        }
        if let sse, sse != "AES256", sse != "aws:kms" { throw ValidationError("--sse is AES256 or aws:kms") }
        if sseKMSKeyID != nil, sse != "aws:kms" { throw ValidationError("--sse-kms-key-id goes with --sse aws:kms") }
    }

    var given: Bool { objectLockDays != nil || sse != nil }

    /// A usage error when they are given and nothing is written to S3 (`where` names the options that could be).
    func checkApplies(writesToS3: Bool, where options: String) throws {
        if given && !writesToS3 { throw ToolError(.usage, "--object-lock-days and --sse need an s3://bucket/prefix \(options)",
                                                         fix: "Leave them out for a local directory (Object Lock and SSE are S3's), or give an s3://bucket/prefix.") }
    }

    var upload: S3UploadOptions {
        var upload = S3UploadOptions()
        upload.objectLockDays = objectLockDays
        upload.objectLockMode = S3UploadOptions.LockMode(rawValue: (objectLockMode ?? "governance").uppercased()) ?? .governance
        upload.serverSideEncryption = sse
        upload.kmsKeyID = sseKMSKeyID
        return upload
    }
}
