import Foundation
import RGWCompression
import RGWCrypto
import Testing

/// The age and minisign formats against published vectors and themselves. Interop with Debian's
/// age, age-keygen and minisign binaries is in Tests/RackGatewayDBTests/EncryptionTests.swift.
@Suite struct CryptoTests {
    /// Two vectors of the age project's testkit (github.com/FiloSottile/age, testdata/testkit, the
    /// same as C2SP/CCTV's age vectors): armored X25519 files with the identity, the file key and the
    /// SHA-256 of the payload they must decrypt to. The armor is undone here (plain base64).
    static let vectors: [(name: String, identity: String, fileKey: String, payloadSHA256: String, armored: String)] = [
        ("armor", "AGE-SECRET-KEY-1XMWWC06LY3EE5RYTXM9MFLAZ2U56JJJ36S0MYPDRWSVLUL66MV4QX3S7F6", "59454c4c4f57205355424d4152494e45",
         "013f54400c82da08037759ada907a8b864e97de81c088a182062c4b5622fd2ab", """
         YWdlLWVuY3J5cHRpb24ub3JnL3YxCi0+IFgyNTUxOSBURWlGMHlwcXIrYnB2Y3FY
         TnlDVkpwTDdPdXdQZFZ3UEw3S1FFYkZET0NjCkVtRUNBRWNLTituL1ZzOVNiV2lW
         K0h1MHIrRThSNzdEZFdZeWQ4M253N1UKLS0tIFZuKzU0anFpaVVDRStXWmNFVlkz
         ZjFzcUhqbHUvejFMQ1EvVDdYbTdxSTAK7s9ix86RtDMnTmjU8vkTTLdMW/73vqpS
         yPC8DpksHoMx+2Y=
         """),
        ("armor_full_last_line", "AGE-SECRET-KEY-1XMWWC06LY3EE5RYTXM9MFLAZ2U56JJJ36S0MYPDRWSVLUL66MV4QX3S7F6", "59454c4c4f57205355424d4152494e45",
         "724a112a2cac139a4fca3ea0f799f2e5ccd1d0db46af654dee40567bff16ee33", """
         YWdlLWVuY3J5cHRpb24ub3JnL3YxCi0+IFgyNTUxOSBURWlGMHlwcXIrYnB2Y3FY
         TnlDVkpwTDdPdXdQZFZ3UEw3S1FFYkZET0NjCkVtRUNBRWNLTituL1ZzOVNiV2lW
         K0h1MHIrRThSNzdEZFdZeWQ4M253N1UKLS0tIFZuKzU0anFpaVVDRStXWmNFVlkz
         ZjFzcUhqbHUvejFMQ1EvVDdYbTdxSTAK7s9ix86RtDMnTmjU8vkTTLdMW3bj4iHS
         YS3WWUtZB5wJqKgEe8kpsp0iOnD2CNG4DVKBC0Z7SAcCFb8xdwV9CRavSEE7OU1c
         """),
    ]

    static func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

    @Test func ageVectorsDecrypt() throws {
        for vector in Self.vectors {
            let file = [UInt8](Data(base64Encoded: vector.armored.replacingOccurrences(of: "\n", with: ""))!)
            let identity = try AgeIdentity(vector.identity)
            #expect(identity.string == vector.identity, "\(vector.name): identity round trip")
            let header = try AgeHeader.parse(file)
            #expect(Self.hex(try header.fileKey(identities: [identity])) == vector.fileKey, "\(vector.name)")
            let payload = try Age.decrypt(file, identities: [identity])
            #expect(SHA256.hex({ let s = SHA256(); s.update(payload); return s.finalize() }()) == vector.payloadSHA256, "\(vector.name)")
            // One flipped payload byte, and the file cut short by one byte: both refused.
            var flipped = file
            flipped[file.count - 20] ^= 1
            #expect(throws: AgeError.badChunk(index: 0)) { try Age.decrypt(flipped, identities: [identity]) }
            #expect(throws: AgeError.self) { try Age.decrypt(Array(file.dropLast()), identities: [identity]) }
            // A flipped header byte (inside the stanza's share) is caught by the MAC or the unwrap.
            var header2 = file
            header2[40] ^= 1
            #expect(throws: (any Error).self) { try Age.decrypt(header2, identities: [identity]) }
        }
    }

    @Test func ageRoundTripAtChunkBoundaries() throws {
        let identity = try AgeIdentity.generate()
        let other = try AgeIdentity.generate()
        for size in [0, 1, AgePayload.chunkSize - 1, AgePayload.chunkSize, AgePayload.chunkSize + 1, 3 * AgePayload.chunkSize] {
            let plaintext = (0..<size).map { UInt8(truncatingIfNeeded: $0 * 7) }
            let file = try Age.encrypt(plaintext, to: [other.recipient, identity.recipient])
            #expect(file.count - (try AgeHeader.parse(file).length) - 16 == AgePayload.sealedLength(plaintext: size))
            #expect(try Age.decrypt(file, identities: [identity]) == plaintext, "size \(size)")
            #expect(throws: AgeError.noMatchingIdentity) { try Age.decrypt(file, identities: [try AgeIdentity.generate()]) }
            // Cut at the last chunk boundary: the remaining last chunk is not marked final.
            if size > AgePayload.chunkSize {
                let header = try AgeHeader.parse(file)
                let cut = header.length + 16 + AgePayload.sealedChunkSize
                #expect(throws: AgeError.self) { try Age.decrypt(Array(file[..<cut]), identities: [identity]) }
            }
        }
    }

    @Test func bech32Keys() throws {
        let identity = try AgeIdentity.generate()
        #expect(identity.string.hasPrefix("AGE-SECRET-KEY-1"))
        #expect(identity.recipient.string.hasPrefix("age1") && identity.recipient.string.count == 62)
        #expect(try AgeRecipient(identity.recipient.string) == identity.recipient)
        var broken = Array(identity.recipient.string)
        broken[10] = broken[10] == "q" ? "p" : "q"
        #expect(throws: AgeError.self) { try AgeRecipient(String(broken)) }
        #expect(throws: AgeError.self) { try AgeRecipient(identity.recipient.string.uppercased()) }
        // BIP 173's valid test strings decode; a checksum error does not.
        #expect(Bech32.decode("A12UEL5L")?.hrp == "a")
        #expect(Bech32.decode("abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw")?.data.count == 20)
        #expect(Bech32.decode("a12uel5m") == nil)
        #expect(Bech32.decode("A12uEL5L") == nil)
    }

    @Test func minisignSignAndVerify() throws {
        let key = try MinisignSecretKey(fileText: try MinisignSecretKey.generateFileText())
        let other = try MinisignSecretKey(fileText: try MinisignSecretKey.generateFileText())
        let hash = BLAKE2b512.hash(Array("archive bytes".utf8))
        let text = try key.signature(hash: hash, trustedComment: "timestamp:1\tfile:x.sql.gz\thashed")
        let signature = try MinisignSignature(text)
        try signature.verify(hash: hash, key: try MinisignPublicKey(key.publicKey.base64))
        #expect(throws: MinisignError.verificationFailed) { try signature.verify(hash: BLAKE2b512.hash([1]), key: key.publicKey) }
        #expect(throws: MinisignError.self) { try signature.verify(hash: hash, key: other.publicKey) }
        let altered = text.replacingOccurrences(of: "file:x.sql.gz", with: "file:y.sql.gz")
        #expect(throws: MinisignError.verificationFailed) { try MinisignSignature(altered).verify(hash: hash, key: key.publicKey) }
        // BLAKE2b-512 of the empty string (RFC 7693 appendix-style known answer).
        #expect(Self.hex(BLAKE2b512.hash([])).hasPrefix("786a02f742015903c6c6fd852552d272912f4740e15847618a86e217f71f5419"))
    }
}
