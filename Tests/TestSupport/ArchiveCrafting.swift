import Foundation
import RGWCompression
import RackGatewayDB

/// Crafted archives for the hostile-input tests: a real archive taken apart into its members and
/// its manifest (as a mutable JSON object), changed, and put together again with every checksum
/// recomputed (members' CRC32 and size, offsets, the manifest member, the trailer and the `.sha256`
/// sidecar), so that a change reaches the parser instead of being caught by a checksum.
///
///     var archive = try CraftedArchive(path: intact)
///     archive.members[3]["size"] = -1                  // a manifest field, as JSON
///     try archive.setText(of: 1, to: Array("...".utf8)) // a member's text, recompressed
///     try archive.write(to: crafted)                    // file + .sha256
public struct CraftedArchive {
    public var codec: MemberCodec
    /// The listed members' compressed bytes, in file order.
    public var memberBytes: [[UInt8]]
    /// The manifest as `JSONSerialization` reads it.
    public var manifest: [String: Any]

    /// Takes apart the (plain, unencrypted) archive at `path`.
    public init(path: String) throws {
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        guard let (trailer, codec) = ArchiveTrailer.find(in: bytes.suffix(ArchiveTrailer.memberLength)[...]) else {
            throw CraftingError("\(path) has no trailer")
        }
        self.codec = codec
        let manifestMember = bytes[trailer.manifestOffset..<(trailer.manifestOffset + trailer.manifestLength)]
        let line = try MemberDecompressor(codec: codec).decompressWhole(manifestMember)
        let prefix = ArchiveManifest.linePrefix.utf8.count
        let object = try JSONSerialization.jsonObject(with: Data(line[prefix...]))
        guard let manifest = object as? [String: Any], let members = manifest["members"] as? [[String: Any]] else {
            throw CraftingError("\(path): the manifest has no members")
        }
        self.manifest = manifest
        memberBytes = members.map { member in
            let offset = member["offset"] as! Int, length = member["length"] as! Int
            return Array(bytes[offset..<(offset + length)])
        }
    }

    /// The manifest's `members` entries (set to change them).
    public var members: [[String: Any]] {
        get { manifest["members"] as! [[String: Any]] }
        set { manifest["members"] = newValue }
    }

    /// The manifest's `tables` entries.
    public var tables: [[String: Any]] {
        get { manifest["tables"] as! [[String: Any]] }
        set { manifest["tables"] = newValue }
    }

    /// The index of the first member of `kind` (`"header"`, `"data"`, `"sequences"`, ...).
    public func firstIndex(of kind: String) -> Int? { members.firstIndex { $0["kind"] as? String == kind } }

    /// Member `index`'s text.
    public func text(of index: Int) throws -> [UInt8] {
        try MemberDecompressor(codec: codec).decompress(memberBytes[index][...], uncompressedSize: members[index]["size"] as! Int)
    }

    /// Replace member `index`'s text: recompressed, its length, size and CRC32 in the manifest
    /// updated and the offsets after it moved (`layOut`).
    public mutating func setText(of index: Int, to text: [UInt8]) throws {
        let compressed = try MemberCompressor(codec: codec).compressShared(text[...])
        memberBytes[index] = Array(compressed.bytes)
        members[index]["size"] = compressed.size
        members[index]["crc32"] = Int(compressed.crc32)
        layOut()
    }

    /// Add a member of `kind` with `text` at position `position` (indexes, chunk lists and offsets
    /// renumbered).
    public mutating func insert(kind: String, text: [UInt8], at position: Int) throws {
        memberBytes.insert([], at: position)
        members.insert(["index": position, "kind": kind, "offset": 0, "length": 0, "size": 0, "crc32": 0], at: position)
        renumber { $0 >= position ? $0 + 1 : $0 }
        try setText(of: position, to: text)
    }

    /// Move member `from` to position `to` (indexes, chunk lists and offsets renumbered), keeping
    /// everything consistent but the order.
    public mutating func move(from: Int, to: Int) {
        var order = Array(members.indices)
        order.insert(order.remove(at: from), at: to)
        let newPosition = Dictionary(uniqueKeysWithValues: order.enumerated().map { ($1, $0) })
        memberBytes = order.map { memberBytes[$0] }
        members = order.map { members[$0] }
        renumber(indexesAlready: true) { newPosition[$0]! }
    }

    /// Members' `index` set to their position and tables' chunk lists mapped through `map` (old
    /// index to new), kept in increasing order.
    mutating func renumber(indexesAlready: Bool = false, _ map: (Int) -> Int) {
        members = members.enumerated().map { position, member in var member = member; member["index"] = position; return member }
        tables = tables.map { table in
            var table = table
            table["chunks"] = ((table["chunks"] as? [Int]) ?? []).map(map).sorted()
            return table
        }
        layOut()
    }

    /// Offsets recomputed from the members' lengths, back to back from 0.
    public mutating func layOut() {
        var offset = 0
        var members = self.members
        for index in members.indices {
            members[index]["offset"] = offset
            members[index]["length"] = memberBytes[index].count
            offset += memberBytes[index].count
        }
        self.members = members
    }

    /// The manifest's JSON text.
    public func manifestJSON() throws -> [UInt8] {
        [UInt8](try JSONSerialization.data(withJSONObject: manifest, options: [.sortedKeys, .withoutEscapingSlashes]))
    }

    /// The whole file with `json` (default: the manifest's) as the manifest and a trailer that
    /// points to it; nothing else of the file is recomputed.
    public func bytes(manifestJSON json: [UInt8]? = nil) throws -> [UInt8] {
        let body = memberBytes.flatMap { $0 }
        let line = Array(ArchiveManifest.linePrefix.utf8) + (try json ?? manifestJSON()) + [0x0A]
        let manifestMember = try MemberCompressor(codec: codec).compress(line)
        return body + manifestMember + ArchiveTrailer(manifestOffset: body.count, manifestLength: manifestMember.count).member(codec: codec)
    }

    /// Write the file (`bytes`) and its `.sha256` sidecar.
    public func write(to path: String, manifestJSON json: [UInt8]? = nil) throws {
        try ArchiveCrafting.write(try bytes(manifestJSON: json), to: path)
    }
}

public struct CraftingError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

public enum ArchiveCrafting {
    /// Write `bytes` at `path` and a `.sha256` sidecar that matches them.
    public static func write(_ bytes: [UInt8], to path: String) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let sha = SHA256()
        sha.update(bytes)
        let name = URL(fileURLWithPath: path).lastPathComponent
        try Data(ArchiveName.sidecarText(digest: SHA256.hex(sha.finalize()), archive: name)).write(to: URL(fileURLWithPath: path + ".sha256"))
    }

    /// `bytes` with the trailer replaced by one holding `text` as its two numbers (20 characters
    /// each, anything: a sign, digits past Int.max), its own gzip CRC32 recomputed.
    public static func withTrailerNumbers(_ bytes: [UInt8], offset: String, length: String) -> [UInt8] {
        precondition(offset.utf8.count == 20 && length.utf8.count == 20)
        let text = Array("-- rack-gateway-db trailer manifest-offset=\(offset) manifest-length=\(length)\n".utf8)
        let trailer = ArchiveTrailer(manifestOffset: 0, manifestLength: 0).member(codec: .gzip)
        var member = Array(trailer.prefix(15)) + text
        member += GzipFooter(crc32: CRC32.checksum(text), size: UInt32(text.count)).bytes
        return Array(bytes.dropLast(ArchiveTrailer.memberLength)) + member
    }

    /// The result of `runMeasured`.
    public struct Measured: CustomStringConvertible {
        public var status: Int32
        /// The signal that ended the child, or nil when it exited.
        public var signal: Int32?
        /// Its peak resident set, in bytes (`wait4`'s `ru_maxrss`).
        public var maxRSS: Int
        public var output: String
        public var description: String { "exit \(status)\(signal.map { " (signal \($0))" } ?? ""), max RSS \(maxRSS / 1024) KiB\n\(output)" }
    }

    /// Run the built binary with `arguments` and the tests' clean environment, and measure its
    /// peak memory with GNU time (`/usr/bin/time -f %M`, installed by scripts/setup): time forks
    /// the binary from its own small process, whose `wait4` reports the binary's own peak (a child
    /// spawned straight from the test process starts with the test process's high-water mark).
    public static func runMeasured(_ arguments: [String], environment: [String: String] = [:]) throws -> Measured {
        let report = try TestArchives.temporaryDirectory() + "/time"
        let output = try ChildProcess(executable: "/usr/bin/time", arguments: ["-f", "%M", "-o", report, CLI.executable] + arguments,
                                      environment: CLI.baseEnvironment().merging(environment) { $1 }, inheritEnvironment: false).run()
        let lines = try String(contentsOfFile: report, encoding: .utf8).split(separator: "\n")
        guard let kilobytes = lines.last.flatMap({ Int($0.trimmingCharacters(in: .whitespaces)) }) else {
            throw CraftingError("/usr/bin/time wrote no peak RSS: \(lines)")
        }
        // "Command terminated by signal N" when a signal ended it.
        let signal = lines.first { $0.contains("terminated by signal") }.flatMap { $0.split(separator: " ").last.flatMap { Int32($0) } }
        return Measured(status: output.status, signal: signal, maxRSS: kilobytes * 1024, output: output.stdout + output.stderr)
    }
}
