import CLibDeflate

/// Compresses one whole buffer into one complete gzip member (header, deflate, CRC32, size).
///
/// Uses libdeflate's whole-buffer compressor. One instance per thread: the compressor keeps
/// its working memory between calls.
public final class GzipMemberCompressor {
    private let compressor: OpaquePointer
    public let level: Int32

    public init(level: Int32 = 6) throws {
        guard let compressor = libdeflate_alloc_compressor(level) else {
            throw CompressionError(operation: "libdeflate_alloc_compressor", message: "invalid level \(level) or out of memory")
        }
        self.compressor = compressor
        self.level = level
    }

    deinit { libdeflate_free_compressor(compressor) }

    /// Working output buffer, kept between calls. Sized for what text usually compresses to (a
    /// third of the input); grown to the worst-case bound only when a member does not fit.
    private var scratch: [UInt8] = []

    /// Compress `input` into a gzip member. The result shares this compressor's buffer: use it
    /// before the next call (copy it to keep it).
    public func compressShared(_ input: ArraySlice<UInt8>) throws -> ArraySlice<UInt8> {
        let bound = libdeflate_gzip_compress_bound(compressor, input.count)
        // Level 0 stores the input as it is: only the bound fits.
        let guess = level == 0 ? bound : min(bound, input.count / 3 + 4096)
        if scratch.count < guess { scratch.resize(to: guess) }
        var written = deflate(input)
        if written == 0 && scratch.count < bound {
            scratch.resize(to: bound)
            written = deflate(input)
        }
        guard written > 0 else {
            throw CompressionError(operation: "libdeflate_gzip_compress", message: "output did not fit in \(bound) bytes")
        }
        return scratch[0..<written]
    }

    private func deflate(_ input: ArraySlice<UInt8>) -> Int {
        input.withUnsafeBytes { source in
            scratch.withUnsafeMutableBytes { destination in
                libdeflate_gzip_compress(compressor, source.baseAddress, source.count, destination.baseAddress, destination.count)
            }
        }
    }

    /// Compress `input` into a gzip member (an array of exactly the member's size).
    public func compress(_ input: ArraySlice<UInt8>) throws -> [UInt8] {
        Array(try compressShared(input))
    }

    public func compress(_ input: [UInt8]) throws -> [UInt8] { try compress(input[...]) }
}

/// Decompresses one gzip member whose uncompressed size is known (from a manifest).
public final class GzipMemberDecompressor {
    private let decompressor: OpaquePointer

    public init() throws {
        guard let decompressor = libdeflate_alloc_decompressor() else {
            throw CompressionError(operation: "libdeflate_alloc_decompressor", message: "out of memory")
        }
        self.decompressor = decompressor
    }

    deinit { libdeflate_free_decompressor(decompressor) }

    /// Decompress exactly one member; the result must be `uncompressedSize` bytes and the
    /// member's own CRC32 and size trailer must match (libdeflate checks both).
    public func decompress(_ member: ArraySlice<UInt8>, uncompressedSize: Int) throws -> [UInt8] {
        var output = [UInt8]()
        try decompress(member, uncompressedSize: uncompressedSize, into: &output)
        return output
    }

    /// The same into a buffer the caller reuses between members (its count becomes the size), so a
    /// loop over members allocates once. The buffer grows with what the member really inflates to,
    /// never to a claimed size at once: it starts at what `member.count` bytes plausibly hold and
    /// doubles (libdeflate decompresses again) up to `uncompressedSize`, so a member that claims
    /// more than it holds costs memory for what it holds.
    public func decompress(_ member: ArraySlice<UInt8>, uncompressedSize: Int, into output: inout [UInt8]) throws {
        guard uncompressedSize >= 0 else {
            throw CompressionError(operation: "gzip member", message: "a negative size (\(uncompressedSize) bytes) is recorded for it")
        }
        guard uncompressedSize <= MemberCodec.gzip.maximumSize(compressedLength: member.count) else {
            throw CompressionError(operation: "gzip member", message: "\(member.count) compressed bytes cannot hold the recorded \(uncompressedSize) bytes")
        }
        // ISIZE is the text's size modulo 2^32: a member whose footer disagrees is refused before
        // anything is allocated for it.
        guard let footer = GzipFooter(endOf: member), UInt64(footer.size) == UInt64(uncompressedSize) & 0xffff_ffff else {
            throw CompressionError(operation: "gzip member", message: "its own recorded size (ISIZE) is not the \(uncompressedSize) bytes expected")
        }
        var capacity = min(uncompressedSize, max(Self.initialCapacity, member.count.multipliedReportingOverflow(by: 16).partialValue))
        while true {
            output.resize(to: capacity)
            var consumed = 0
            var produced = 0
            let result = member.withUnsafeBytes { source in
                output.withUnsafeMutableBytes { destination in
                    libdeflate_gzip_decompress_ex(
                        decompressor, source.baseAddress, source.count,
                        destination.baseAddress, destination.count, &consumed, &produced)
                }
            }
            switch result {
            case LIBDEFLATE_SUCCESS:
                guard produced == uncompressedSize, consumed == member.count else {
                    throw CompressionError(
                        operation: "gzip member",
                        message: "decompressed \(produced) of \(uncompressedSize) bytes from \(consumed) of \(member.count)")
                }
                return
            case LIBDEFLATE_BAD_DATA:
                throw CompressionError(operation: "gzip member", message: "corrupt data (bad deflate stream, CRC32 or size)")
            case LIBDEFLATE_INSUFFICIENT_SPACE:
                guard capacity < uncompressedSize else {
                    throw CompressionError(operation: "gzip member", message: "larger than the recorded \(uncompressedSize) bytes")
                }
                capacity = capacity > uncompressedSize / 2 ? uncompressedSize : capacity * 2
            default:
                throw CompressionError(operation: "gzip member", message: "libdeflate error \(result.rawValue)")
            }
        }
    }

    /// What the output buffer starts at (when the member claims more): most members fit.
    static let initialCapacity = 8 << 20
}
