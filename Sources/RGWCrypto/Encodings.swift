import Foundation

/// Bech32 (BIP 173), as age uses it for its keys: no length limit, one case throughout.
public enum Bech32 {
    private static let alphabet = Array("qpzry9x8gf2tvdw0s3jn54khce6mua7l".utf8)
    private static let reverse: [Int8] = {
        var table = [Int8](repeating: -1, count: 128)
        for (index, char) in alphabet.enumerated() { table[Int(char)] = Int8(index) }
        return table
    }()

    private static func polymod(_ values: [UInt8]) -> UInt32 {
        let generator: [UInt32] = [0x3b6a_57b2, 0x2650_8e6d, 0x1ea1_19fa, 0x3d42_33dd, 0x2a14_62b3]
        var check: UInt32 = 1
        for value in values {
            let top = check >> 25
            check = (check & 0x1ff_ffff) << 5 ^ UInt32(value)
            for bit in 0..<5 where (top >> bit) & 1 == 1 { check ^= generator[bit] }
        }
        return check
    }

    private static func expand(_ hrp: [UInt8]) -> [UInt8] { hrp.map { $0 >> 5 } + [0] + hrp.map { $0 & 31 } }

    /// Regroup bits: 8 to 5 (`pad` true) or 5 to 8 (`pad` false, leftover bits must be zero).
    private static func convert(_ data: [UInt8], from: Int, to: Int, pad: Bool) -> [UInt8]? {
        var accumulator = 0, bits = 0
        var out: [UInt8] = []
        let mask = (1 << to) - 1
        for value in data {
            accumulator = (accumulator << from) | Int(value)
            bits += from
            while bits >= to {
                bits -= to
                out.append(UInt8((accumulator >> bits) & mask))
            }
        }
        if pad {
            if bits > 0 { out.append(UInt8((accumulator << (to - bits)) & mask)) }
        } else if bits >= from || (accumulator << (to - bits)) & mask != 0 {
            return nil
        }
        return out
    }

    /// `hrp` in lower case; the result is lower case (callers upper-case it where age does).
    public static func encode(hrp: String, data: [UInt8]) -> String {
        let prefix = Array(hrp.lowercased().utf8)
        let values = convert(data, from: 8, to: 5, pad: true)!
        let check = polymod(expand(prefix) + values + [0, 0, 0, 0, 0, 0]) ^ 1
        let checksum = (0..<6).map { UInt8((check >> (5 * (5 - $0))) & 31) }
        return String(decoding: prefix + [UInt8(ascii: "1")] + (values + checksum).map { alphabet[Int($0)] }, as: UTF8.self)
    }

    /// The human-readable part (lower case) and the data; nil for mixed case, a bad character or
    /// a bad checksum.
    public static func decode(_ text: String) -> (hrp: String, data: [UInt8])? {
        let bytes = Array(text.utf8)
        let lower = text.lowercased(), upper = text.uppercased()
        guard text == lower || text == upper, let separator = bytes.lastIndex(of: UInt8(ascii: "1")), separator > 0,
              bytes.count - separator - 1 >= 6 else { return nil }
        let folded = Array(lower.utf8)
        let hrp = Array(folded[..<separator])
        guard hrp.allSatisfy({ $0 >= 33 && $0 <= 126 }) else { return nil }
        var values: [UInt8] = []
        for char in folded[(separator + 1)...] {
            guard char < 128, reverse[Int(char)] >= 0 else { return nil }
            values.append(UInt8(reverse[Int(char)]))
        }
        guard polymod(expand(hrp) + values) == 1, let data = convert(Array(values.dropLast(6)), from: 5, to: 8, pad: false) else { return nil }
        return (String(decoding: hrp, as: UTF8.self), data)
    }
}

/// Standard base64 without padding, canonical only (age's header encoding; minisign's is padded).
public enum Base64 {
    public static func encodeUnpadded(_ bytes: [UInt8]) -> String {
        var text = Data(bytes).base64EncodedString()
        while text.hasSuffix("=") { text.removeLast() }
        return text
    }

    /// nil for padding, characters outside the alphabet, or unused bits that are not zero.
    public static func decodeUnpadded(_ text: Substring) -> [UInt8]? {
        guard !text.contains("="), text.count % 4 != 1 else { return nil }
        let padded = String(text) + String(repeating: "=", count: (4 - text.count % 4) % 4)
        guard let data = Data(base64Encoded: padded) else { return nil }
        let bytes = [UInt8](data)
        guard encodeUnpadded(bytes) == text else { return nil }
        return bytes
    }

    /// Padded standard base64 (minisign's keys and signatures).
    public static func decodePadded(_ text: Substring) -> [UInt8]? {
        Data(base64Encoded: String(text)).map { [UInt8]($0) }
    }

    public static func encodePadded(_ bytes: [UInt8]) -> String { Data(bytes).base64EncodedString() }
}
