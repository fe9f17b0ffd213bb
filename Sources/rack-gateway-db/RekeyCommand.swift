import ArgumentParser
import Foundation
import RackGatewayDB

struct RekeyCommand: ToolCommand {
    var outputOptions: OutputOptions { output }

    static let configuration = CommandConfiguration(
        commandName: "rekey",
        abstract: "Copy an encrypted archive into --to with its file key wrapped for new age recipients, without re-encrypting.",
        discussion: """
            The copy keeps the archive's name (and so its time); its payload is the old one byte for byte, under a \
            new age header for --recipient/--recipients-file. The old archive is left as it is: rekey grants the new \
            keys access, it does not revoke the old ones (delete or let retention expire the old copy for that). \
            With --sign-key the copy is signed; with --verify-key the source must be signed first.
            """)

    @Argument(help: "The encrypted archive (NAME.sql.gz.age): a path, s3://bucket/prefix/name, or a name as list prints it (the file in the current directory, else the archive in --dir).")
    var archive: String

    @Option(help: ArgumentHelp("Where the rekeyed copy goes: a directory or s3://bucket/prefix; the archive's name must not exist there.", valueName: "dir"))
    var to: String

    @OptionGroup var directoryOptions: DirectoryOptions
    @OptionGroup var readKeys: ReadKeyOptions
    @OptionGroup var writeKeys: WriteKeyOptions
    @OptionGroup var output: OutputOptions

    func validate() throws {
        try directoryOptions.checkApplies(archive: archive, latest: false)
    }

    func run(_ context: RunContext) throws {
        do {
            let source = try directoryOptions.location(of: archive, keys: try readKeys.keys(), clock: context.clock)
            guard !source.keys.identities.isEmpty else {
                throw ToolError(.usage, "rekey needs the identity that decrypts \(source.path) now", fix: "Give --identity FILE (or RGW_AGE_IDENTITY_FILE).")
            }
            let keys = try writeKeys.keys()
            guard keys.encrypts else {
                throw ToolError(.usage, "rekey needs the new recipients", fix: "Give --recipient age1... (repeatable) or --recipients-file FILE.")
            }
            let destination: ArchiveStore
            switch try StoreLocation.parse(to) {
            case .local: destination = LocalStore(directory: URL(fileURLWithPath: to).standardizedFileURL.path)
            case .s3(let bucket, let prefix): destination = S3Store(client: try directoryOptions.s3.client(bucket: bucket, clock: context.clock), prefix: prefix)
            }
            let report = try ArchiveRekey().run(source: source, destination: destination, keys: keys, clock: context.clock)
            if output.json { return try Reporting.printJSON(report) }
            print("Rekeyed \(report.source) to \(report.file) for \(Plural.of(report.recipients, "recipient"))\(report.signed ? ", signed" : "")")
            print("  \(ProgressDisplay.bytes(report.sizeBytes)), sha256 \(report.sha256), \(String(format: "%.1f", report.durationSeconds)) s")
        }
    }
}
