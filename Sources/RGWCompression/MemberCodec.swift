import CLibDeflate
import CZstd

/// How an archive's members are compressed: gzip members (RFC 1952, libdeflate) or zstd frames
/// (RFC 8878, libzstd). Either way the file is a concatenation that the stock tool decompresses
/// as one stream (`gunzip -c`, `zstd -dc`).
public enum MemberCodec: String, Sendable, CaseIterable, Codable {
    case gzip
    case zstd

    public static let zstdMagic: [UInt8] = [0x28, 0xb5, 0x2f, 0xfd]

    /// The codec whose magic number `bytes` start with; nil for anything else.
    public static func detect(_ bytes: ArraySlice<UInt8>) -> MemberCodec? {
        if bytes.count >= 2, bytes[bytes.startIndex] == 0x1f, bytes[bytes.startIndex + 1] == 0x8b { return .gzip }
        if bytes.count >= 4, Array(bytes.prefix(4)) == zstdMagic { return .zstd }
        return nil
    }

    public var levels: ClosedRange<Int32> {
        switch self {
        case .gzip: 0...12
        case .zstd: 1...19
        }
    }

    public var defaultLevel: Int32 {
        switch self {
        case .gzip: 5
        case .zstd: 1
        }
    }

    /// The most text `compressedLength` bytes of one member of this codec can inflate to: deflate
    /// expands at most 1032:1 (a 258-byte match per two bits, RFC 1951), a zstd block of at most
    /// 128 KiB costs at least four bytes (RLE block), so 32768:1; plus 64 KiB for headers. A size
    /// recorded above it is a lie, refused before anything is allocated; overflow-checked.
    public func maximumSize(compressedLength: Int) -> Int {
        guard compressedLength >= 0 else { return 0 }
        let (product, overflow) = compressedLength.multipliedReportingOverflow(by: maximumRatio)
        return overflow ? Int.max : product.addingReportingOverflow(64 << 10).overflow ? Int.max : product + (64 << 10)
    }

    /// Text bytes per compressed byte at most (see `maximumSize`).
    public var maximumRatio: Int {
        switch self {
        case .gzip: 1032
        case .zstd: 32768
        }
    }

    /// The command that decompresses the whole file to standard output.
    public var stockDecompress: String {
        switch self {
        case .gzip: "gunzip -c"
        case .zstd: "zstd -dc"
        }
    }
}

/// A compressed member and what the manifest records of its text.
public struct CompressedMember {
    public var bytes: ArraySlice<UInt8>
    /// Uncompressed bytes.
    public var size: Int
    /// CRC-32 of the uncompressed text.
    public var crc32: UInt32

    public init(bytes: ArraySlice<UInt8>, size: Int, crc32: UInt32) {
        self.bytes = bytes
        self.size = size
        self.crc32 = crc32
    }
}

/// Compresses one whole buffer into one complete member of `codec`. One instance per thread: it
/// keeps its working memory between calls.
public final class MemberCompressor {
    public let codec: MemberCodec
    public let level: Int32
    private let gzip: GzipMemberCompressor?
    private let zstd: OpaquePointer?
    private var scratch: [UInt8] = []

    public init(codec: MemberCodec = .gzip, level: Int32? = nil) throws {
        self.codec = codec
        let level = level ?? codec.defaultLevel
        self.level = level
        switch codec {
        case .gzip:
            gzip = try GzipMemberCompressor(level: level)
            zstd = nil
        case .zstd:
            gzip = nil
            guard let context = ZSTD_createCCtx() else {
                throw CompressionError(operation: "ZSTD_createCCtx", message: "out of memory")
            }
            zstd = context
            // Every frame records its content size and carries a checksum of its content, which
            // every decoder checks, as gzip's CRC32 is.
            for (parameter, value) in [(ZSTD_c_compressionLevel, level), (ZSTD_c_checksumFlag, 1), (ZSTD_c_contentSizeFlag, 1)] {
                let result = ZSTD_CCtx_setParameter(context, parameter, value)
                if ZSTD_isError(result) != 0 {
                    ZSTD_freeCCtx(context)
                    throw CompressionError(operation: "ZSTD_CCtx_setParameter", message: String(cString: ZSTD_getErrorName(result)))
                }
            }
        }
    }

    deinit { if let zstd { ZSTD_freeCCtx(zstd) } }

    /// Compress `input` into one member. The bytes share this compressor's buffer: use them before
    /// the next call.
    public func compressShared(_ input: ArraySlice<UInt8>) throws -> CompressedMember {
        if let gzip {
            let bytes = try gzip.compressShared(input)
            let footer = GzipFooter(endOf: bytes)!
            return CompressedMember(bytes: bytes, size: input.count, crc32: footer.crc32)
        }
        let bound = ZSTD_compressBound(input.count)
        if scratch.count < bound { scratch.resize(to: bound) }
        let written = input.withUnsafeBytes { source in
            scratch.withUnsafeMutableBytes { destination in
                ZSTD_compress2(zstd, destination.baseAddress, destination.count, source.baseAddress, source.count)
            }
        }
        if ZSTD_isError(written) != 0 {
            throw CompressionError(operation: "ZSTD_compress2", message: String(cString: ZSTD_getErrorName(written)))
        }
        return CompressedMember(bytes: scratch[0..<written], size: input.count, crc32: CRC32.checksum(input))
    }

    /// The same, in an array of its own.
    public func compress(_ input: [UInt8]) throws -> [UInt8] {
        Array(try compressShared(input[...]).bytes)
    }
}

/// Decompresses one member whose uncompressed size is known (from a manifest).
public final class MemberDecompressor {
    public let codec: MemberCodec
    private let gzip: GzipMemberDecompressor?
    private let zstd: OpaquePointer?

    public init(codec: MemberCodec = .gzip) throws {
        self.codec = codec
        switch codec {
        case .gzip:
            gzip = try GzipMemberDecompressor()
            zstd = nil
        case .zstd:
            gzip = nil
            guard let context = ZSTD_createDCtx() else {
                throw CompressionError(operation: "ZSTD_createDCtx", message: "out of memory")
            }
            zstd = context
        }
    }

    deinit { if let zstd { ZSTD_freeDCtx(zstd) } }

    /// Decompress exactly one member into `output` (its count becomes the size): the result must be
    /// `uncompressedSize` bytes and the member's own check (gzip CRC32 and size; zstd content size
    /// and checksum) must hold. A negative size, or one the member's bytes cannot hold
    /// (`MemberCodec.maximumSize`), is refused before anything is allocated; the output grows with
    /// what the member really inflates to and decompression stops as soon as it would pass
    /// `uncompressedSize`.
    public func decompress(_ member: ArraySlice<UInt8>, uncompressedSize: Int, into output: inout [UInt8]) throws {
        if let gzip { return try gzip.decompress(member, uncompressedSize: uncompressedSize, into: &output) }
        guard MemberCodec.detect(member) == .zstd else {
            throw CompressionError(operation: "zstd frame", message: "not a zstd frame (bad magic number)")
        }
        guard uncompressedSize >= 0 else {
            throw CompressionError(operation: "zstd frame", message: "a negative size (\(uncompressedSize) bytes) is recorded for it")
        }
        guard uncompressedSize <= MemberCodec.zstd.maximumSize(compressedLength: member.count) else {
            throw CompressionError(operation: "zstd frame", message: "\(member.count) compressed bytes cannot hold the recorded \(uncompressedSize) bytes")
        }
        let recorded = member.withUnsafeBytes { ZSTD_getFrameContentSize($0.baseAddress, $0.count) }
        guard recorded == UInt64(uncompressedSize) else {
            throw CompressionError(operation: "zstd frame", message: "frame records \(recorded > UInt64(Int.max) ? "no" : String(recorded)) content bytes, not \(uncompressedSize)")
        }
        ZSTD_DCtx_reset(zstd, ZSTD_reset_session_only)
        // One byte more room than expected: a frame that fills it has more text than it records.
        let limit = uncompressedSize + 1
        var capacity = min(limit, max(Self.initialCapacity, member.count.multipliedReportingOverflow(by: 16).partialValue))
        output.resize(to: capacity)
        var produced = 0
        var consumed = 0
        var finished = false
        while !finished {
            let (result, inputPosition, outputPosition) = member.withUnsafeBytes { source in
                output.withUnsafeMutableBytes { destination in
                    var input = ZSTD_inBuffer(src: source.baseAddress, size: source.count, pos: consumed)
                    var out = ZSTD_outBuffer(dst: destination.baseAddress, size: destination.count, pos: produced)
                    let result = ZSTD_decompressStream(zstd, &out, &input)
                    return (result, input.pos, out.pos)
                }
            }
            if ZSTD_isError(result) != 0 {
                throw CompressionError(operation: "zstd frame", message: "corrupt data (\(String(cString: ZSTD_getErrorName(result))))")
            }
            let progressed = inputPosition != consumed || outputPosition != produced
            consumed = inputPosition
            produced = outputPosition
            if produced > uncompressedSize {
                throw CompressionError(operation: "zstd frame", message: "larger than the recorded \(uncompressedSize) bytes")
            }
            if result == 0 {
                finished = true
            } else if produced == capacity {
                // The room is full; more only while the recorded size allows.
                capacity = capacity > limit / 2 ? limit : capacity * 2
                output.resize(to: capacity)
            } else if !progressed {
                break
            }
        }
        guard finished, consumed == member.count else {
            throw CompressionError(operation: "zstd frame", message: finished ? "\(member.count - consumed) bytes after the frame's end" : "truncated (decompressed \(produced) of \(uncompressedSize) bytes)")
        }
        guard produced == uncompressedSize else {
            throw CompressionError(operation: "zstd frame", message: "decompressed \(produced) of \(uncompressedSize) bytes")
        }
        output.resize(to: produced)
    }

    /// What the output buffer starts at (when the member claims more): most members fit.
    static let initialCapacity = 8 << 20

    public func decompress(_ member: ArraySlice<UInt8>, uncompressedSize: Int) throws -> [UInt8] {
        var output = [UInt8]()
        try decompress(member, uncompressedSize: uncompressedSize, into: &output)
        return output
    }

    /// A whole member whose size is not known beforehand (the manifest): gzip's from its ISIZE,
    /// zstd's from its frame header; a recorded size over `limit` is refused before anything is
    /// allocated for it (and the member's bytes must be able to hold it).
    public func decompressWhole(_ member: ArraySlice<UInt8>, limit: Int = 1 << 30) throws -> [UInt8] {
        let size: UInt64
        switch codec {
        case .gzip:
            guard let footer = GzipFooter(endOf: member) else {
                throw CompressionError(operation: "gzip member", message: "shorter than a gzip footer")
            }
            size = UInt64(footer.size)
        case .zstd:
            size = member.withUnsafeBytes { ZSTD_getFrameContentSize($0.baseAddress, $0.count) }
        }
        guard size <= UInt64(max(0, limit)) else {
            throw CompressionError(operation: "\(codec) member", message: size > UInt64(Int.max) ? "no content size recorded in the member" : "it records \(size) bytes of text, over the limit of \(limit)")
        }
        return try decompress(member, uncompressedSize: Int(size))
    }
}

/// The first bytes of a file's decompressed text, for telling files apart: as much as `head` (a
/// prefix of the file) yields; empty when it is neither codec or is damaged from the start.
public func decompressedPrefix(of head: ArraySlice<UInt8>, limit: Int = 4096) -> [UInt8] {
    switch MemberCodec.detect(head) {
    case .gzip:
        var text = [UInt8]()
        if let inflater = try? GzipStreamInflater() { try? inflater.inflate(head, into: &text) }
        return Array(text.prefix(limit))
    case .zstd:
        guard let stream = ZSTD_createDStream() else { return [] }
        defer { ZSTD_freeDStream(stream) }
        var output = [UInt8](repeating: 0, count: limit)
        var produced = 0
        head.withUnsafeBytes { source in
            output.withUnsafeMutableBytes { destination in
                var input = ZSTD_inBuffer(src: source.baseAddress, size: source.count, pos: 0)
                var out = ZSTD_outBuffer(dst: destination.baseAddress, size: destination.count, pos: 0)
                while out.pos < out.size && input.pos < input.size {
                    let before = (input.pos, out.pos)
                    let result = ZSTD_decompressStream(stream, &out, &input)
                    if ZSTD_isError(result) != 0 || (input.pos, out.pos) == before { break }
                }
                produced = out.pos
            }
        }
        return Array(output.prefix(produced))
    case nil:
        return []
    }
}
