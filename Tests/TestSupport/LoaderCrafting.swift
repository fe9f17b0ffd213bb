import Foundation
import RGWCompression
import RackGatewayDB

/// Crafted archives for the loader's hostile-input tests: an archive of ours rewritten member by
/// member with every checksum a reader checks recomputed (each member recompressed with its gzip
/// footer or zstd frame, the manifest's offsets, lengths, sizes and CRC32s, the manifest member, the
/// trailer and the `.sha256` sidecar), so that a mutation gets past opening and the restore's
/// preflight and only the load itself can notice it.
public enum LoaderCrafting {
    /// Rewrite the unencrypted archive `file`: `body` gets the manifest and every member's text (in
    /// manifest order) and changes them; members may be relabelled, emptied or rewritten, not added
    /// or removed. Members whose index is in `staleCRC` keep the CRC32 the manifest had (the rest
    /// of their entry is recomputed), to check that the loader compares it. `manifestLine` edits the
    /// manifest's JSON line last (for values the manifest type itself would refuse).
    public static func rebuild(_ file: String, staleCRC: Set<Int> = [], manifestLine: (String) throws -> String = { $0 },
                               _ body: (inout ArchiveManifest, inout [[UInt8]]) throws -> Void) throws {
        let reader = try ArchiveReader(path: file)
        var manifest = reader.manifest
        let decompressor = try MemberDecompressor(codec: reader.codec)
        var texts = try manifest.members.map { member in
            try decompressor.decompress(try reader.readBytes(offset: member.offset, count: member.length)[...], uncompressedSize: member.size)
        }
        try body(&manifest, &texts)
        precondition(texts.count == manifest.members.count, "members may be changed, not added or removed")
        let compressor = try MemberCompressor(codec: reader.codec)
        var bytes: [UInt8] = []
        for (index, text) in texts.enumerated() {
            let compressed = try compressor.compressShared(text[...])
            manifest.members[index].index = index
            manifest.members[index].offset = bytes.count
            manifest.members[index].length = compressed.bytes.count
            manifest.members[index].size = compressed.size
            if !staleCRC.contains(index) { manifest.members[index].crc32 = compressed.crc32 }
            bytes += compressed.bytes
        }
        let line = try manifestLine(String(decoding: try manifest.line(), as: UTF8.self))
        let manifestMember = try compressor.compress(Array(line.utf8))
        let manifestOffset = bytes.count
        bytes += manifestMember
        bytes += ArchiveTrailer(manifestOffset: manifestOffset, manifestLength: manifestMember.count).member(codec: reader.codec)
        try TestArchives.tamper(file, sidecarToo: true) { $0 = Data(bytes) }
    }

    /// The text of `text` with `old` replaced by `new` (once; fails when `old` is not there).
    public static func replacing(_ old: String, with new: String, in text: [UInt8]) throws -> [UInt8] {
        let string = String(decoding: text, as: UTF8.self)
        guard let range = string.range(of: old) else { throw CraftingError("\(old.prefix(60)) is not in the member") }
        return Array(string.replacingCharacters(in: range, with: new).utf8)
    }

    public struct CraftingError: Error, CustomStringConvertible {
        public var description: String
        init(_ description: String) { self.description = description }
    }
}
