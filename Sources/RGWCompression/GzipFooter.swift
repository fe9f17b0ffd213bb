/// The last 8 bytes of a gzip member (RFC 1952): CRC32 and ISIZE (uncompressed size mod 2^32),
/// both little-endian.
public struct GzipFooter: Sendable, Equatable {
    public var crc32: UInt32
    public var size: UInt32

    public init(crc32: UInt32, size: UInt32) {
        self.crc32 = crc32
        self.size = size
    }

    /// Read from the end of a complete member; nil when it is shorter than a footer.
    public init?(endOf member: ArraySlice<UInt8>) {
        guard member.count >= 8 else { return nil }
        let start = member.endIndex - 8
        func word(_ at: Int) -> UInt32 {
            (0..<4).reduce(UInt32(0)) { $0 | UInt32(member[at + $1]) << UInt32(8 * $1) }
        }
        self.init(crc32: word(start), size: word(start + 4))
    }

    public init?(endOf member: [UInt8]) { self.init(endOf: member[...]) }

    public var bytes: [UInt8] {
        [crc32, size].flatMap { value in (0..<4).map { UInt8(truncatingIfNeeded: value >> UInt32(8 * $0)) } }
    }
}
