import CZlib

/// CRC-32 (ISO-HDLC, the one gzip uses), computed incrementally with zlib.
public struct CRC32: Sendable, Equatable {
    public private(set) var value: UInt32 = 0

    public init() {}

    public mutating func update(_ bytes: ArraySlice<UInt8>) {
        value = bytes.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return value }
            var crc = UInt(value)
            var offset = 0
            // zlib's length parameter is 32-bit; feed large buffers in pieces.
            while offset < raw.count {
                let count = min(raw.count - offset, 1 << 30)
                crc = crc32(crc, base.advanced(by: offset).assumingMemoryBound(to: Bytef.self), uInt(count))
                offset += count
            }
            return UInt32(truncatingIfNeeded: crc)
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
