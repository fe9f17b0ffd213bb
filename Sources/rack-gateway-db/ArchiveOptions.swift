import ArgumentParser
import Foundation
import RGWPostgres
import RackGatewayDB
import RGWCrypto

/// `--dir`: the archive directory of every command that reads or writes archives.
struct DirectoryOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Archive directory, or s3://bucket/prefix (default: $RGW_BACKUP_DIR, else ./backups).", valueName: "dir"))
    var dir: String?

    @OptionGroup var s3: S3Options

    var chosen: String { optionOrEnvironment(dir, "RGW_BACKUP_DIR") ?? "./backups" }

    /// Where `chosen` came from, for messages: a value from RGW_BACKUP_DIR is not reported as --dir.
    var source: LocationSource {
        if dir != nil { return .option }
        return optionOrEnvironment(nil, "RGW_BACKUP_DIR") != nil ? .environment : .builtIn
    }

    /// The local directory; an s3:// location is refused by what needs local files (the in-place
    /// pipeline's safety backup).
    var directory: String {
        get throws {
            guard !chosen.hasPrefix("s3://") else {
                throw ToolError(.usage, "\(source.naming(chosen)): this needs a local directory, not S3")
            }
            return URL(fileURLWithPath: chosen).standardizedFileURL.path
        }
    }

    /// The store --dir names, used on the run's `clock`; what `backup` uploads to S3 is stored with `upload`.
    func store(upload: S3UploadOptions = S3UploadOptions(), clock: RunClock) throws -> ArchiveStore {
        try s3.store(chosen, upload: upload, clock: clock)
    }

    var isS3: Bool { chosen.hasPrefix("s3://") }

    /// The archives in --dir, which must exist, read with `keys` on the run's `clock`.
    func archiveDirectory(keys: ArchiveKeys = ArchiveKeys(), clock: RunClock) throws -> ArchiveDirectory {
        var directory = isS3 ? ArchiveDirectory(store: try store(clock: clock), clock: clock)
            : try ArchiveDirectory(directory: try directory, source: source, clock: clock)
        directory.keys = keys
        directory.source = source
        return directory
    }

    /// `--dir` is where `--latest` and a bare archive name look (and the pipeline's `--in-place`
    /// writes its safety backup, `usedOtherwise`): with an archive path or s3:// URL it would be ignored.
    func checkApplies(archive: String?, latest: Bool, usedOtherwise: Bool = false) throws {
        if dir != nil && !latest && !usedOtherwise && !(archive.map(Self.isBareName) ?? false) {
            throw ValidationError("--dir is where --latest looks (and an archive's bare name, as list prints it); with an archive path it does not apply (the archive's own directory gets the logs)")
        }
    }

    /// A name as `list` prints it: no `/`, not s3://.
    static func isBareName(_ argument: String) -> Bool {
        !argument.contains("/") && !argument.isEmpty && argument != "." && argument != ".."
    }

    /// The help of a command's ARCHIVE argument, which also words it when it is missing.
    static let archiveArgumentHelp = "The archive: a path, s3://bucket/prefix/name, or a name as list prints it (the file in the current directory, else the archive in --dir)."

    /// An archive named on the command line: s3://bucket/prefix/name, a path, or a bare name as
    /// `list` prints it, which is the file of that name in the current directory when there is one,
    /// else the archive of that name in --dir (else RGW_BACKUP_DIR, else ./backups); with --dir
    /// given, --dir is looked in first. A name or local path found nowhere is one error naming
    /// where it was looked for and the archives there with close names.
    func location(of argument: String, keys: ArchiveKeys = ArchiveKeys(), clock: RunClock) throws -> ArchiveLocation {
        let cwd = FileManager.default.currentDirectoryPath
        let here = FileManager.default.fileExists(atPath: argument)
        guard Self.isBareName(argument) else {
            guard !argument.hasPrefix("s3://") && !here else { return try s3.location(of: argument, keys: keys, clock: clock) }
            let path = ArchiveLocation(path: argument)
            throw ArchiveLocation.notFound(path.name, in: [.init(store: path.store, label: path.store.location)],
                                           fix: "Give the path of an archive that exists, or its name with --dir (or RGW_BACKUP_DIR) naming where it is.")
        }
        if here && dir == nil { return ArchiveLocation(path: argument, keys: keys) }
        let store = try store(clock: clock)
        if try store.open(argument) != nil { return ArchiveLocation(store: store, name: argument, keys: keys) }
        if here { return ArchiveLocation(path: argument, keys: keys) }
        let current = ArchiveLocation.Place(store: LocalStore(directory: cwd), label: "the current directory (\(cwd))")
        let directory = ArchiveLocation.Place(store: store, label: source.naming(store.location))
        throw ArchiveLocation.notFound(argument, in: dir == nil ? [current, directory] : [directory, current],
                                       fix: "Give the archive's path, or its name with --dir (or RGW_BACKUP_DIR) naming the directory or s3://bucket/prefix that holds it.")
    }
}

/// `--identity`: the age identities that decrypt `.age` archives (list, report, and with
/// `--verify-key` in `ReadKeyOptions` verify, restore, drill and rekey).
struct IdentityOption: ParsableArguments {
    @Option(help: ArgumentHelp("age identity file (age-keygen's output, mode 0600) that decrypts .age archives (default: $RGW_AGE_IDENTITY_FILE).", valueName: "file"))
    var identity: String?

    func identities() throws -> [AgeIdentity] {
        try optionOrEnvironment(identity, "RGW_AGE_IDENTITY_FILE").map(KeyFiles.identities) ?? []
    }
}

/// `--identity` and `--verify-key`: what verify, restore, drill, rekey, inspect, extract and diff read archives with.
struct ReadKeyOptions: ParsableArguments {
    @OptionGroup var identityOption: IdentityOption

    @Option(name: .customLong("verify-key"), help: ArgumentHelp("minisign public key (the RWQ... line, or the .pub file) every archive must be signed with; an unsigned or badly signed one is refused, exit 2 (default: $RGW_VERIFY_KEY).", valueName: "key"))
    var verifyKey: String?

    func keys() throws -> ArchiveKeys {
        ArchiveKeys(identities: try identityOption.identities(), verifyKey: try optionOrEnvironment(verifyKey, "RGW_VERIFY_KEY").map(KeyFiles.verifyKey))
    }

    /// The keys this run reads with (given or from the environment) as arguments of a command
    /// printed to run again: `--identity` by its file's absolute path (never the secret inside),
    /// `--verify-key` by its file's absolute path, or the `RWQ...` public key line as given.
    var againArguments: [String] {
        func absolute(_ path: String) -> String { URL(fileURLWithPath: path).standardizedFileURL.path }
        var arguments: [String] = []
        if let identity = optionOrEnvironment(identityOption.identity, "RGW_AGE_IDENTITY_FILE") { arguments += ["--identity", absolute(identity)] }
        if let key = optionOrEnvironment(verifyKey, "RGW_VERIFY_KEY") {
            arguments += ["--verify-key", key.hasPrefix("RW") && !FileManager.default.fileExists(atPath: key) ? key : absolute(key)]
        }
        return arguments
    }
}

/// `--recipient`, `--recipients-file` and `--sign-key`: what backup and rekey write archives with.
struct WriteKeyOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Encrypt to this age recipient (age1..., a public key from age-keygen); repeat for more. The archive is NAME.sql.gz.age.", valueName: "age1..."))
    var recipient: [String] = []

    @Option(name: .customLong("recipients-file"), help: ArgumentHelp("Encrypt to the age recipients in this file, one per line (default: $RGW_AGE_RECIPIENTS_FILE).", valueName: "file"))
    var recipientsFile: String?

    @Option(name: .customLong("sign-key"), help: ArgumentHelp("Sign the archive with this minisign secret key (made by minisign -G -W, without a password; mode 0600), writing NAME.minisig beside it (default: $RGW_SIGN_KEY_FILE).", valueName: "file"))
    var signKey: String?

    func keys() throws -> BackupKeys {
        var keys = BackupKeys()
        keys.recipients = try KeyFiles.recipients(recipient, file: optionOrEnvironment(recipientsFile, "RGW_AGE_RECIPIENTS_FILE"))
        if let signKey = optionOrEnvironment(signKey, "RGW_SIGN_KEY_FILE") { keys.signKey = try KeyFiles.signKey(signKey) }
        return keys
    }
}

/// An option's value, else the environment variable's when it is set and not empty.
func optionOrEnvironment(_ option: String?, _ variable: String) -> String? {
    option ?? ProcessInfo.processInfo.environment[variable].flatMap { $0.isEmpty ? nil : $0 }
}

/// `--s3-endpoint`, with the rest of the S3 settings from the AWS environment variables.
struct S3Options: ParsableArguments {
    @Option(name: .customLong("s3-endpoint"), help: ArgumentHelp("S3 endpoint URL (default: AWS_ENDPOINT_URL_S3, else AWS's regional one).", valueName: "url"))
    var s3Endpoint: String?

    func client(bucket: String, clock: RunClock) throws -> S3Client {
        try StoreLocation.s3Client(bucket: bucket, endpoint: s3Endpoint, environment: ProcessInfo.processInfo.environment, clock: clock)
    }

    /// The store a location names (`--dir`, `--from`, `--to`, `--copy-to`), used on the run's
    /// `clock`; what is uploaded to S3 is stored with `upload`. A local directory that must exist
    /// (`mustExist`: a source) and does not is `archive_not_found`.
    func store(_ text: String, upload: S3UploadOptions = S3UploadOptions(), clock: RunClock, mustExist: Bool = false) throws -> ArchiveStore {
        switch try StoreLocation.parse(text) {
        case .local(let path):
            let directory = URL(fileURLWithPath: path).standardizedFileURL.path
            if mustExist && !FileManager.default.fileExists(atPath: directory) {
                throw ToolError(.archiveNotFound, "the directory \(directory) does not exist", fix: "Give the directory (or s3://bucket/prefix) that holds the archives.")
            }
            return LocalStore(directory: directory)
        case .s3(let bucket, let prefix):
            var store = S3Store(client: try client(bucket: bucket, clock: clock), prefix: prefix)
            store.upload = upload
            return store
        }
    }

    /// An archive named on the command line: a path, or s3://bucket/prefix/name.
    func location(of argument: String, keys: ArchiveKeys = ArchiveKeys(), clock: RunClock) throws -> ArchiveLocation {
        guard case .s3(let bucket, let key) = try StoreLocation.parse(argument) else { return ArchiveLocation(path: argument, keys: keys) }
        let name = String(key.split(separator: "/").last ?? "")
        guard !name.isEmpty else { throw ToolError(.usage, "\(argument) names no object (s3://bucket/prefix/name)") }
        let prefix = String(key.dropLast(name.count)).trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        return ArchiveLocation(store: S3Store(client: try client(bucket: bucket, clock: clock), prefix: prefix), name: name, keys: keys)
    }
}

enum Defaults {
    static var cores: Int { max(1, ProcessInfo.processInfo.activeProcessorCount) }

    /// `--jobs` default: the number of cores, within `DB_MAX_OPEN_CONNS` (default 25) less the
    /// coordinator's own connection and pg_dump's.
    static func jobs(requested: Int?) throws -> Int {
        let cap = Int(ProcessInfo.processInfo.environment["DB_MAX_OPEN_CONNS"] ?? "") ?? 25
        guard cap >= 1 else { throw ValidationError("DB_MAX_OPEN_CONNS must be at least 1") }
        if let requested {
            guard requested >= 1 else { throw ValidationError("--jobs must be at least 1") }
            return min(requested, max(1, cap - 2))
        }
        return max(1, min(cores, cap - 2))
    }
}

/// `--jobs` of restore and drill.
struct JobsOption: ParsableArguments {
    @Option(help: "Parallel connections (default: the number of cores, within DB_MAX_OPEN_CONNS).")
    var jobs: Int?

    func validate() throws {
        if let jobs, jobs < 1 { throw ValidationError("--jobs must be at least 1") }
    }

    func resolved() throws -> Int { try Defaults.jobs(requested: jobs) }
}

/// `--stall-timeout` of backup, restore and drill.
struct StallOptions: ParsableArguments {
    @Option(name: .customLong("stall-timeout"), help: ArgumentHelp("Fail when nothing has moved for this long (no bytes, no server work), e.g. 5m; 0 never (default: 5m).", valueName: "duration"))
    var stallTimeout: String?

    func validate() throws { _ = try seconds() }

    func seconds() throws -> Double {
        let text = stallTimeout ?? "5m"
        return text == "0" ? 0 : try MaintCommand.duration(text, "--stall-timeout")
    }

    /// For a restore or drill: its progress plus what the server reports for the connections whose
    /// application name starts with `applications`.
    func watchdog(_ what: String, context: RunContext, progress: RestoreProgress, server: ConnectionSettings, applications: String) throws -> StallWatchdog {
        // The probe's own connections are not the run's work: a stopped run must not cancel them.
        let probe = StallWatchdog.ServerProbe(settings: server.cancelled(by: nil), applicationPrefix: applications)
        return try watchdog(what, context: context) { progress.workDone() &+ (probe.value() ?? 0) }
    }

    /// `body` (a restore or a drill) with its progress bar and the stall watchdog, both stopped on
    /// every path (a run that throws must not leave the bar drawing).
    func watching<R>(_ what: String, context: RunContext, progress: RestoreProgress, server: ConnectionSettings, applications: String,
                     _ body: () throws -> R) throws -> R {
        let display = progress.display(logger: context.logger)
        defer { display.stop() }
        let watchdog = try watchdog(what, context: context, progress: progress, server: server, applications: applications)
        defer { watchdog.stop() }
        let result = try body()
        display.stop()
        return result
    }

    /// Started for a run; `probe` counts the work done.
    func watchdog(_ what: String, context: RunContext, probe: @escaping @Sendable () -> Int?) throws -> StallWatchdog {
        let watchdog = StallWatchdog(timeout: try seconds(), what: what, cancellation: context.cancellation, probe: probe)
        watchdog.start()
        return watchdog
    }
}
