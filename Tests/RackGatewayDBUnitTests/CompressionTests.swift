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
