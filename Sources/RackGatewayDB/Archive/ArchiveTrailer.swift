import RGWCompression

/// The fixed-length last member of an archive: a gzip member holding one deflate stored block (or,
/// in a zstd archive, a zstd frame holding one raw block) whose text is
/// `-- rack-gateway-db trailer manifest-offset=<20 digits> manifest-length=<20 digits>\n`.
/// A reader finds the manifest by reading the last `ArchiveTrailer.memberLength` bytes of the file
/// (`find`).
public struct ArchiveTrailer: Sendable, Equatable {
    public var manifestOffset: Int
    public var manifestLength: Int

    static let textPrefix = "-- rack-gateway-db trailer manifest-offset="
    static let textMiddle = " manifest-length="
    /// Prefix + 20 digits + middle + 20 digits + newline.
    public static let textLength = textPrefix.utf8.count + 20 + textMiddle.utf8.count + 20 + 1
    /// gzip header (10) + stored block header (5) + text + CRC32 and ISIZE (8).
    public static let memberLength = 10 + 5 + textLength + 8
    /// zstd magic (4) + frame header descriptor (1, single segment, no checksum) + content size (1)
    /// + raw block header (3, last block) + text.
    public static let zstdMemberLength = 4 + 1 + 1 + 3 + textLength

    public static func length(for codec: MemberCodec) -> Int {
        codec == .gzip ? memberLength : zstdMemberLength
    }

    static let zstdFrameHeader: [UInt8] = {
        let block = UInt32(textLength) << 3 | 1
        return MemberCodec.zstdMagic + [0x20, UInt8(textLength), UInt8(block & 0xff), UInt8(block >> 8 & 0xff), UInt8(block >> 16)]
    }()

    static let gzipHeader: [UInt8] = [0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0xff]

    public init(manifestOffset: Int, manifestLength: Int) {
        self.manifestOffset = manifestOffset
        self.manifestLength = manifestLength
    }

    static func digits(_ value: Int) -> String { String(value).zeroPadded(20) }

    public var text: String {
        Self.textPrefix + Self.digits(manifestOffset) + Self.textMiddle + Self.digits(manifestLength) + "\n"
    }

    public func member(codec: MemberCodec = .gzip) -> [UInt8] {
        let body = Array(text.utf8)
        precondition(body.count == Self.textLength)
        if codec == .zstd { return Self.zstdFrameHeader + body }
        let length = UInt16(body.count)
        var bytes = Self.gzipHeader
        bytes += [0x01, UInt8(length & 0xff), UInt8(length >> 8), UInt8(~length & 0xff), UInt8(~length >> 8)]
        bytes += body
        bytes += GzipFooter(crc32: CRC32.checksum(body), size: UInt32(body.count)).bytes
        return bytes
    }

    /// The trailer at the end of `tail` (the last `memberLength` bytes of a file, or all of a shorter
    /// one) and the codec it tells; nil when the file does not end with a trailer.
    public static func find(in tail: ArraySlice<UInt8>) -> (trailer: ArchiveTrailer, codec: MemberCodec)? {
        if let trailer = parse(tail.suffix(memberLength)) { return (trailer, .gzip) }
        if let trailer = parse(tail.suffix(zstdMemberLength), codec: .zstd) { return (trailer, .zstd) }
        return nil
    }

    /// Parse the last `length(for: codec)` bytes of a file; nil when they are not a trailer at all.
    public static func parse(_ bytes: ArraySlice<UInt8>, codec: MemberCodec = .gzip) -> ArchiveTrailer? {
        guard bytes.count == length(for: codec) else { return nil }
        let all = Array(bytes)
        let body: [UInt8]
        switch codec {
        case .zstd:
            guard Array(all[0..<zstdFrameHeader.count]) == zstdFrameHeader else { return nil }
            body = Array(all[zstdFrameHeader.count...])
        case .gzip:
            guard Array(all[0..<10]) == gzipHeader, all[10] == 0x01 else { return nil }
            let length = Int(all[11]) | Int(all[12]) << 8
            let inverse = Int(all[13]) | Int(all[14]) << 8
            guard length == textLength, inverse == (~length & 0xffff) else { return nil }
            body = Array(all[15..<(15 + textLength)])
            guard GzipFooter(endOf: all) == GzipFooter(crc32: CRC32.checksum(body), size: UInt32(body.count)) else { return nil }
        }
        let text = String(decoding: body, as: UTF8.self)
        guard text.hasPrefix(textPrefix), text.hasSuffix("\n") else { return nil }
        let rest = text.dropFirst(textPrefix.count).dropLast()
        let parts = rest.components(separatedBy: textMiddle)
        // Exactly 20 ASCII digits each (no sign, no other digits Swift's Int would take); a value
        // over Int.max is no trailer of ours either.
        guard parts.count == 2, parts.allSatisfy({ $0.utf8.count == 20 && $0.utf8.allSatisfy { (0x30...0x39).contains($0) } }),
              let offset = Int(parts[0]), let manifestLength = Int(parts[1]) else { return nil }
        return ArchiveTrailer(manifestOffset: offset, manifestLength: manifestLength)
    }
}
