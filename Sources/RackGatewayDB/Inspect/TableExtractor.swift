import Foundation
import RGWCompression

/// Streams one table's rows out of an archive (local, S3, encrypted): only that table's data
/// members are read, by ranged reads of the runs of members that lie back to back, one member in
/// memory at a time; for JSON also the pre-data member, for the columns' types. Every member's
/// CRC32, COPY framing and rows are checked as it is read, and the table's row count and
/// fingerprint at the end: a mismatch throws (exit 2) after the rows were written, so a file
/// output (`ExtractFile`) is then never given its name.
public struct TableExtractor {
    public let reader: ArchiveReader
    public let table: ArchiveManifest.Table
    public let format: ExtractFormat

    /// The table `name` of the archive: `SCHEMA.NAME` as inspect lists it, the same quoted as SQL
    /// writes it (`"My.Schema"."Odd ""t"""`, as psql shows names with dots, quotes or capitals),
    /// or a bare name (also quoted) when one schema has it. A name it does not hold is one error
    /// listing the archive's tables nearest to it.
    public init(reader: ArchiveReader, table name: String, format: ExtractFormat) throws {
        self.reader = reader
        self.format = format
        let tables = reader.manifest.tables
        // As SQL quotes it: only when the name starts with a quote (a bare name may hold one).
        let quoted = name.hasPrefix("\"") ? DumpScript.identifierParts(name[...]) : []
        var found = tables.filter { $0.qualifiedName == name }
        if found.isEmpty, quoted.count == 2, SQL.qualified(quoted[0], quoted[1]) == name {
            found = tables.filter { $0.schema == quoted[0] && $0.name == quoted[1] }
        }
        let bareName = quoted.count == 1 && SQL.identifier(quoted[0]) == name ? quoted[0] : name
        var bare = tables.filter { $0.name == bareName }
        if bare.isEmpty && found.isEmpty, !name.hasPrefix("\""), let dot = name.firstIndex(of: ".") {
            // schema."Quoted name", as psql shows a table whose name needs quotes.
            let rest = name[name.index(after: dot)...]
            let parts = DumpScript.identifierParts(rest)
            if rest.hasPrefix("\""), parts.count == 1, SQL.identifier(parts[0]) == rest {
                found = tables.filter { $0.schema == name[..<dot] && $0.name == parts[0] }
            }
        }
        if !found.isEmpty { bare = [] }
        if let only = found.first ?? (bare.count == 1 ? bare.first : nil) {
            table = only
            return
        }
        if bare.count > 1 {
            throw ToolError(.usage, "\(reader.path) holds more than one table named \(name): \(bare.map(\.qualifiedName).joined(separator: ", "))",
                            fix: "Name it with its schema: --table SCHEMA.NAME.")
        }
        let near = ArchiveLocation.nearest(to: name, among: tables.map(\.qualifiedName)).prefix(5)
        let holds = tables.isEmpty ? "it holds no tables" : "the nearest of its \(Plural.of(tables.count, "table")): \(near.joined(separator: ", "))"
        throw ToolError(.usage, "\(reader.path) holds no table \(name); \(holds)",
                        fix: "Give one of its tables as SCHEMA.NAME (rack-gateway-db inspect ARCHIVE lists them all).")
    }

    /// How much `write` is handed at most at once: a signal or a closed reader is noticed between
    /// pieces, within a fraction of a second even when the output is a slow terminal or pipe.
    static let pieceSize = 256 << 10

    /// The rows in `format`, handed to `write` in pieces of at most `pieceSize` bytes; returns the
    /// rows written. `progress` (if given) counts the whole rows and the bytes handed over, for a
    /// run that is stopped to say what it wrote.
    @discardableResult
    public func run(progress: ExtractProgress? = nil, write: @escaping ([UInt8]) throws -> Void) throws -> Int {
        let manifest = reader.manifest
        let types = format == .json ? try columnTypes() : []
        var converter = CopyRowConverter(format: format, columns: table.columns,
                                         types: types.isEmpty ? Array(repeating: .text, count: table.columns.count) : types)
        /// `bytes` in pieces; `rows` complete rows in them, or nil for COPY text (a line a row).
        func emit(_ bytes: ArraySlice<UInt8>, rows: Int?) throws {
            var start = bytes.startIndex
            while start < bytes.endIndex {
                let end = min(start + Self.pieceSize, bytes.endIndex)
                try write(Array(bytes[start..<end]))
                progress?.bytes += end - start
                if rows == nil { progress?.rows += bytes[start..<end].reduce(0) { $1 == 0x0A ? $0 + 1 : $0 } }
                start = end
            }
            if let rows { progress?.rows += rows }
        }
        let header = converter.header()
        if !header.isEmpty { try emit(header[...], rows: 0) }
        let members = table.chunks.map { manifest.members[$0] }
        let expectedHeader = DataChunk.copyHeader(schema: table.schema, name: table.name, columns: table.columns)
        let headerLength = expectedHeader.utf8.count
        let decompressor = try MemberDecompressor(codec: reader.codec)
        var rows = 0
        var fingerprint: UInt64 = 0
        var out: [UInt8] = []
        var writeFailure: Error?
        for run in Self.runs(members) {
            try reader.forEachMember(run) { member, bytes in
                let text = try self.decompress(bytes, member: member, decompressor: decompressor)
                switch DataChunk.scan(text, expectedHeader: expectedHeader) {
                case .success(let (count, sum)):
                    if let recorded = member.rows, recorded != count {
                        throw self.corrupt(member, "\(count) rows but the manifest says \(recorded)")
                    }
                    rows += count
                    fingerprint &+= sum
                case .failure(let error):
                    throw self.corrupt(member, error.description)
                }
                out.removeAll(keepingCapacity: true)
                let end = text.count - DataChunk.terminator.count
                do {
                    if self.format == .copy {
                        // The rows as they are, each with its newline (the scan checked the framing).
                        try emit(text[headerLength..<end], rows: nil)
                    } else {
                        var pending = 0
                        try text.withUnsafeBufferPointer { buffer in
                            var start = headerLength
                            while start < end {
                                let newline = UnsafeRawPointer(buffer.baseAddress!).distance(to: UnsafeRawPointer(memchr(buffer.baseAddress! + start, 0x0A, end - start)!))
                                try converter.append(row: UnsafeBufferPointer(rebasing: buffer[start..<newline]), to: &out)
                                pending += 1
                                start = newline + 1
                                if out.count >= Self.pieceSize {
                                    try emit(out[...], rows: pending)
                                    out.removeAll(keepingCapacity: true)
                                    pending = 0
                                }
                            }
                        }
                        try emit(out[...], rows: pending)
                    }
                } catch {
                    writeFailure = error
                    return false
                }
                return true
            }
            if let writeFailure { throw writeFailure }
        }
        guard rows == table.rows, ArchiveManifest.fingerprintText(fingerprint) == table.fingerprint else {
            throw ToolError(.archiveCorrupt, "\(reader.path): table \(table.qualifiedName): \(Plural.of(rows, "row")) of fingerprint \(ArchiveManifest.fingerprintText(fingerprint)) in its members, but the manifest says \(table.rows) of \(table.fingerprint); the archive is corrupt",
                            fix: ArchiveReader.corruptFix)
        }
        return rows
    }

    /// The stored bytes the data members take: what a ranged read of them fetches.
    public var storedBytes: Int { table.chunks.reduce(0) { $0 + reader.manifest.members[$1].length } }

    /// Members in runs that lie back to back in the file: each run is one ranged read, and the
    /// bytes of other tables' members between runs are not fetched.
    static func runs(_ members: [ArchiveManifest.Member]) -> [[ArchiveManifest.Member]] {
        var runs: [[ArchiveManifest.Member]] = []
        for member in members {
            if let last = runs.last?.last, last.offset + last.length == member.offset {
                runs[runs.count - 1].append(member)
            } else {
                runs.append([member])
            }
        }
        return runs
    }

    private func decompress(_ bytes: [UInt8], member: ArchiveManifest.Member, decompressor: MemberDecompressor) throws -> [UInt8] {
        let text: [UInt8]
        do {
            text = try decompressor.decompress(bytes[...], uncompressedSize: member.size)
        } catch let error as CompressionError {
            throw corrupt(member, error.message)
        }
        let crc = reader.codec == .gzip ? GzipFooter(endOf: bytes)?.crc32 ?? 0 : CRC32.checksum(text)
        if crc != member.crc32 { throw corrupt(member, "CRC32 \(crc) but the manifest says \(member.crc32)") }
        return text
    }

    private func corrupt(_ member: ArchiveManifest.Member, _ problem: String) -> ToolError {
        ToolError(.archiveCorrupt, "\(reader.path): \(ArchiveVerifier.describe(member, in: reader.manifest)): \(problem); the archive is corrupt",
                  fix: ArchiveReader.corruptFix)
    }

    /// The table's column types from its `CREATE TABLE` in pre-data (`text` for a column it does
    /// not list, e.g. a partition's, which pg_dump creates with `PARTITION OF`).
    func columnTypes() throws -> [ColumnType] {
        guard let preData = reader.manifest.members.first(where: { $0.kind == .preData }) else { return [] }
        var found: [String: String] = [:]
        try reader.forEachMember([preData]) { member, bytes in
            let text = try self.decompress(bytes, member: member, decompressor: try MemberDecompressor(codec: self.reader.codec))
            found = Self.columnTypes(preData: String(decoding: text, as: UTF8.self), schema: self.table.schema, name: self.table.name)
            return false
        }
        return table.columns.map { found[$0].map(ColumnType.of) ?? .text }
    }

    /// Column name → type text in pg_dump's `CREATE TABLE schema.name (\n    column type ...,` of
    /// the table; empty when it is not there.
    static func columnTypes(preData: String, schema: String, name: String) -> [String: String] {
        var result: [String: String] = [:]
        var inside = false
        for line in preData.split(separator: "\n", omittingEmptySubsequences: false) {
            if !inside {
                for prefix in ["CREATE TABLE ", "CREATE UNLOGGED TABLE "] where line.hasPrefix(prefix) {
                    let parts = DumpScript.identifierParts(line.dropFirst(prefix.count))
                    if parts == [schema, name] && line.hasSuffix(" (") { inside = true }
                }
                continue
            }
            if line.hasPrefix(")") { break }
            guard line.hasPrefix("    ") else { continue }
            let rest = line.dropFirst(4)
            guard let column = DumpScript.identifierParts(rest).first, !column.isEmpty else { continue }
            // pg_dump quotes a column name with capitals, so a bare CONSTRAINT is a table constraint.
            if !rest.hasPrefix("\"") && column == "CONSTRAINT" { continue }
            var index = rest.startIndex
            if rest.hasPrefix("\"") {
                index = rest.index(after: index)
                while index < rest.endIndex {
                    if rest[index] == "\"" {
                        let next = rest.index(after: index)
                        if next < rest.endIndex && rest[next] == "\"" { index = rest.index(after: next); continue }
                        index = next
                        break
                    }
                    index = rest.index(after: index)
                }
            } else {
                index = rest.firstIndex(of: " ") ?? rest.endIndex
            }
            // The type runs to the first keyword (NOT NULL, DEFAULT, COLLATE, GENERATED,
            // CONSTRAINT): pg_dump writes type names in lower case, keywords in capitals.
            var type = ""
            var quoted = false
            var position = index
            while position < rest.endIndex {
                let character = rest[position]
                if character == "\"" { quoted.toggle() }
                if !quoted, character == " ", let next = rest[rest.index(after: position)...].first, next.isUppercase, next.isASCII { break }
                if !quoted, character == ",", rest.index(after: position) == rest.endIndex { break }
                type.append(character)
                position = rest.index(after: position)
            }
            result[column] = type.trimmingCharacters(in: .whitespaces)
        }
        return result
    }
}

/// What an extract has handed to its output so far: whole rows, and bytes.
public final class ExtractProgress: @unchecked Sendable {
    public var rows = 0
    public var bytes = 0
    public init() {}
}

/// Where `extract` writes: standard output, or a file (`-o`) created 0600 as `NAME.partial` beside
/// it and given its name only when everything was written and synced; the `.partial` is removed on
/// any failure, so no partial file ever has the name. A path that is not a regular file (`/dev/null`,
/// a named pipe, a device) is written into as it is, never replaced; a symbolic link keeps pointing
/// where it did, the file it names is the one replaced.
public final class ExtractOutput {
    /// The file's final path; nil for standard output.
    public let path: String?
    /// Where the file is written until it is complete (`NAME.partial`); nil for standard output and
    /// for a path written into as it is.
    public let temporary: String?
    private var fd: Int32

    public init(path given: String?) throws {
        guard let given else {
            path = nil
            temporary = nil
            fd = 1
            return
        }
        var info = stat()
        if stat(given, &info) == 0, info.st_mode & S_IFMT != S_IFREG {
            // A device or a named pipe: replacing it would put the rows where the device was.
            path = given
            temporary = nil
            fd = open(given, O_WRONLY | O_CLOEXEC)
            guard fd >= 0 else {
                throw ToolError(.failed, "cannot open \(given) for writing: \(String(cString: strerror(errno)))",
                                fix: "Give -o a regular file's path (it is written atomically), or a device or named pipe you can write.")
            }
            return
        }
        // A link names the file to replace; the link itself stays.
        let path = lstat(given, &info) == 0 && info.st_mode & S_IFMT == S_IFLNK ? URL(fileURLWithPath: given).resolvingSymlinksInPath().path : given
        self.path = path
        let temporary = path + ".partial"
        self.temporary = temporary
        unlink(temporary)
        fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw ToolError(.failed, "cannot create \(temporary): \(String(cString: strerror(errno)))",
                            fix: "Give -o a path in a directory that exists and that you can write.")
        }
        fchmod(fd, 0o600)
    }

    private var directory: String {
        let parent = ((path ?? "") as NSString).deletingLastPathComponent
        return parent.isEmpty ? "." : parent
    }

    /// A pipe's reader that closed its end (`| head`): it has had what it wanted. The command
    /// stops quietly, as a Unix filter killed by SIGPIPE does.
    public struct ReaderClosed: Error {}

    public func write(_ bytes: [UInt8]) throws {
        guard let code = LocalFile.writeFully(fd, bytes[...]) else { return }
        if code == EPIPE && temporary == nil { throw ReaderClosed() }
        if temporary == nil, let path {
            throw ToolError(.failed, "cannot write to \(path): \(String(cString: strerror(code)))", fix: "Give -o a regular file's path instead.")
        }
        guard let temporary else {
            throw ToolError(.failed, "cannot write to standard output: \(String(cString: strerror(code)))", fix: "Write to a file with -o FILE instead.")
        }
        throw LocalFile.writeError(code, path: temporary, directory: directory)
    }

    /// A file synced and renamed to `path`.
    public func commit() throws {
        if temporary == nil, path != nil, fd >= 0 {
            // Written into as it is (a device, a named pipe): nothing to rename.
            close(fd)
            fd = -1
            return
        }
        guard let path, let temporary else { return }
        fsync(fd)
        close(fd)
        fd = -1
        guard rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw ToolError(.failed, "cannot rename \(temporary) to \(path): \(reason)")
        }
        LocalFile.syncDirectory(directory)
    }

    deinit {
        if temporary == nil, path != nil, fd >= 0 { close(fd) }
        if let temporary, fd >= 0 {
            close(fd)
            unlink(temporary)
        }
    }
}
