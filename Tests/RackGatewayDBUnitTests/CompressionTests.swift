import Testing
@testable import RGWCompression

@Suite("gzip members and CRC32 (no server)")
struct CompressionTests {
    @Test func crc32CheckValue() {
        #expect(CRC32.checksum(Array("123456789".utf8)) == 0xCBF4_3926)
        var incremental = CRC32()
        incremental.update(Array("12345".utf8))
        incremental.update(Array("6789".utf8))
        #expect(incremental.value == 0xCBF4_3926)
    }

    @Test func membersConcatenateIntoOneGzipStream() throws {
        let compressor = try GzipMemberCompressor(level: 6)
        let first = Array("COPY t FROM stdin;\n1\tone\n\\.\n".utf8)
        let second = Array(String(repeating: "row\twith\ttabs\n", count: 1000).utf8)
        let file = try compressor.compress(first) + compressor.compress(second)
        var output: [UInt8] = []
        let inflater = try GzipStreamInflater()
        // Feed in odd-sized pieces to cross member boundaries mid-buffer.
        var offset = 0
        while offset < file.count {
            let end = min(offset + 37, file.count)
            try inflater.inflate(file[offset..<end], into: &output)
            offset = end
        }
        #expect(output == first + second)
        #expect(inflater.finishedMember)
    }

    @Test func levelZeroStoresAMemberEveryGzipReaderTakes() throws {
        let data = Array(String(repeating: "abc\t123\n", count: 200_000).utf8)
        let member = try GzipMemberCompressor(level: 0).compress(data)
        // Stored blocks: a little larger than the input, never compressed.
        #expect(member.count > data.count && member.count < data.count + data.count / 100)
        #expect(try GzipMemberDecompressor().decompress(member[...], uncompressedSize: data.count) == data)
        var output: [UInt8] = []
        try GzipStreamInflater().inflate(member[...], into: &output)
        #expect(output == data)
    }

    @Test func zstdFramesRoundTripAndCheckTheirContent() throws {
        let data = Array(String(repeating: "COPY\ttext\t42\n", count: 20_000).utf8)
        let compressor = try MemberCompressor(codec: .zstd, level: 3)
        let member = try compressor.compressShared(data[...])
        #expect(member.size == data.count && member.crc32 == CRC32.checksum(data))
        let bytes = Array(member.bytes)
        #expect(MemberCodec.detect(bytes[...]) == .zstd && bytes.count < data.count / 10)
        let decompressor = try MemberDecompressor(codec: .zstd)
        #expect(try decompressor.decompress(bytes[...], uncompressedSize: data.count) == data)
        #expect(try decompressor.decompressWhole(bytes[...]) == data)
        #expect(decompressedPrefix(of: bytes.prefix(64), limit: 20) == Array(data.prefix(20)))
        // The frame's content checksum catches a changed byte; a wrong size is refused before decoding.
        var damaged = bytes
        damaged[damaged.count - 2] ^= 0x01
        #expect(throws: CompressionError.self) { try decompressor.decompress(damaged[...], uncompressedSize: data.count) }
        #expect(throws: CompressionError.self) { try decompressor.decompress(bytes[...], uncompressedSize: data.count - 1) }
        // Frames concatenate like gzip members: one stream for `zstd -dc`.
        let gzip = try MemberCompressor(codec: .gzip, level: 5).compressShared(data[...])
        #expect(gzip.crc32 == member.crc32 && MemberCodec.detect(gzip.bytes) == .gzip)
    }

    @Test func aWholeMemberWithAnImplausibleSizeIsRefusedBeforeDecoding() throws {
        var member = try MemberCompressor(codec: .gzip).compress(Array("-- rack-gateway-db manifest: {}\n".utf8))
        #expect(try MemberDecompressor(codec: .gzip).decompressWhole(member[...]) == Array("-- rack-gateway-db manifest: {}\n".utf8))
        // ISIZE (the last 4 bytes) damaged to about 4 GiB: refused, not allocated.
        member.replaceSubrange((member.count - 4)..., with: [0xf0, 0xff, 0xff, 0xff])
        let error = #expect(throws: CompressionError.self) { try MemberDecompressor(codec: .gzip).decompressWhole(member[...]) }
        #expect(error?.message.hasPrefix("it records 4294967280 bytes") == true, "\(String(describing: error))")
    }

    @Test func memberDecompressorChecksCRCAndSize() throws {
        let data = Array(String(repeating: "abc\t123\n", count: 500).utf8)
        var member = try GzipMemberCompressor().compress(data)
        let decompressor = try GzipMemberDecompressor()
        #expect(try decompressor.decompress(member[...], uncompressedSize: data.count) == data)
        member[member.count - 6] ^= 0x01  // inside the CRC32 trailer
        #expect(throws: CompressionError.self) {
            try decompressor.decompress(member[...], uncompressedSize: data.count)
        }
    }
}
