import CLibDeflate

/// CRC-32 (ISO-HDLC, the one gzip uses), computed incrementally with libdeflate (carry-less
/// multiplication where the CPU has it).
public struct CRC32: Sendable, Equatable {
    public private(set) var value: UInt32 = 0

    public init() {}

    public mutating func update(_ bytes: ArraySlice<UInt8>) {
        value = bytes.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return value }
            return libdeflate_crc32(value, base, raw.count)
        }
    }

    public mutating func update(_ bytes: [UInt8]) { update(bytes[...]) }

    public static func checksum(_ bytes: ArraySlice<UInt8>) -> UInt32 {
        var crc = CRC32()
        crc.update(bytes)
        return crc.value
    }

    public static func checksum(_ bytes: [UInt8]) -> UInt32 { checksum(bytes[...]) }
}
