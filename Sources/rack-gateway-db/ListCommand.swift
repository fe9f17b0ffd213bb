import ArgumentParser
import Foundation
import RackGatewayDB

struct ListCommand: ToolCommand {
    var outputOptions: OutputOptions { output }

    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List the archives in --dir, newest first: time, size, tables, rows, and marks (encrypted, signed, verified, VERIFY-FAILED, drilled, SUSPECT).",
        discussion: "An encrypted archive is listed from its .summary.json; with --identity, from the archive itself.")

    @OptionGroup var directoryOptions: DirectoryOptions
    @OptionGroup var identityOption: IdentityOption
    @OptionGroup var output: OutputOptions
    var json: Bool { output.json }

    func run(_ context: RunContext) throws {
        do {
            let logger = context.logger
            let directory = try directoryOptions.archiveDirectory(keys: ArchiveKeys(identities: try identityOption.identities()), clock: context.clock)
            let entries = try directory.entries()
            for entry in entries {
                logger.debug("archive", metadata: ["archive.file": "\(entry.file)", "verified": "\(entry.verified)", "drilled": "\(entry.drilled)",
                                                   "problem": "\(entry.problem ?? "none")"])
            }
            if json {
                try Reporting.printJSON(entries)
                return
            }
            guard !entries.isEmpty else {
                print("No archives in \(directory.directory)")
                return
            }
            let formatter = ISO8601DateFormatter()
            for entry in entries {
                let marks = [entry.verificationFailed ? "VERIFY-FAILED" : nil, entry.suspect != nil ? "SUSPECT" : nil, entry.encrypted ? "encrypted" : nil, entry.signed ? "signed" : nil, entry.verified ? "verified" : nil, entry.drilled ? "drilled" : nil, entry.hasSidecar ? nil : "no-sidecar"]
                    .compactMap { $0 }.joined(separator: ",")
                let contents = entry.problem.map { "UNREADABLE: \($0)" }
                    ?? "\(entry.tables ?? 0) tables, \(entry.rows ?? 0) rows"
                print("\(formatter.string(from: entry.time))  \(ProgressDisplay.bytes(entry.sizeBytes).padding(toLength: 10, withPad: " ", startingAt: 0))  \(entry.file)  \(contents)  \(marks.isEmpty ? "-" : marks)")
            }
        }
    }
}
