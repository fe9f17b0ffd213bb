import Foundation
import RGWCompression
import RGWCrypto
import RGWPostgres
import Testing
import TestSupport
@testable import RackGatewayDB

/// Encrypted (age) and signed (minisign) archives against Debian's `age`, `age-keygen` and
/// `minisign` in both directions, the stock restore path, tampering of every kind, rekey, S3 and
/// the keyless backup host.
@Suite("encrypted and signed archives")
struct EncryptionTests {
    static func onlyArchive(in directory: String) throws -> String {
        let names = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".age") }
        #expect(names.count == 1, "\(names)")
        return directory + "/" + (names.first ?? "none")
    }

    static func mode(_ path: String) throws -> Int? { try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int }

    @Test func anEncryptedSignedArchiveRestoresWithStockToolsAndWithTheTool() throws {
        let keys = try TestKeys.make()
        defer { try? FileManager.default.removeItem(atPath: keys.directory) }
        try TestDatabase.withSampleData(events: 3000) { source in
            try source.psql(TestArchives.featureSchema)
            let digests = try DatabaseOracle.tableDigests(source)
            let reference = try FeatureZooTests.referenceSchema(source)
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            // Two recipients: one on the command line, one in a recipients file (with a comment).
            let recipients = keys.directory + "/recipients.txt"
            try "# the DR key\n\(keys.otherRecipient)\n".write(toFile: recipients, atomically: true, encoding: .utf8)
            let backup = try CLI.run(["backup", "--database-url", source.url, "--dir", directory, "--recipient", keys.recipient,
                                      "--sign-key", keys.signKey], environment: ["RGW_AGE_RECIPIENTS_FILE": recipients])
            #expect(backup.status == 0 && backup.stdout.contains("encrypted (age), signed (minisign)"), "\(backup)")
            let file = try Self.onlyArchive(in: directory)
            let name = URL(fileURLWithPath: file).lastPathComponent
            #expect(name.hasSuffix(".sql.gz.age"))
            for path in [file, file + ".sha256", file + ".minisig", file + ".summary.json"] {
                #expect(try Self.mode(path) == 0o600, "\(path)")
            }
            let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: file)))
            #expect(bytes.starts(with: Array("age-encryption.org/v1\n-> X25519 ".utf8)))
            #expect(try AgeHeader.parse(bytes).stanzas.count == 2)
            // Nothing of the data in the clear: a table name and a row's text are not in the file.
            #expect(!String(decoding: bytes, as: UTF8.self).contains("audit_event"))

            // The stock tools, each identity: age -d | gunzip | psql, minisign -V, sha256sum -c.
            for identity in [keys.identity, keys.otherIdentity] {
                try TestDatabase.with { stock in
                    try TestArchives.restoreWithStockTools(file, into: stock, identity: identity)
                    #expect(try DatabaseOracle.tableDigests(stock) == digests)
                    #expect(try TestArchives.schemaDump(stock) == reference)
                }
            }
            let header = try Shell.runChecked("/bin/sh", ["-c", #"age -d -i "$2" "$1" | gunzip -c | head -12"#, "sh", file, keys.identity])
            #expect(header.contains("--   age -d -i KEY.txt \(name) | gunzip -c | psql -v ON_ERROR_STOP=1"), "\(header)")
            let minisign = try Shell.run("/usr/bin/env", ["minisign", "-Vm", file, "-P", keys.publicKey])
            #expect(minisign.status == 0 && minisign.stdout.contains("file:\(name)"), "\(minisign)")
            let sha = try Shell.run("/bin/sh", ["-c", "cd \"$1\" && sha256sum -c \"$2\"", "sh", directory, name + ".sha256"])
            #expect(sha.status == 0, "\(sha)")

            // The tool, identity by option and by environment, signature demanded.
            let verify = try CLI.run(["verify", file, "--identity", keys.identity, "--verify-key", keys.publicKey])
            #expect(verify.status == 0 && verify.stdout.hasPrefix("OK "), "\(verify)")
            let environment = ["RGW_AGE_IDENTITY_FILE": keys.otherIdentity, "RGW_VERIFY_KEY": keys.publicKeyFile]
            var results = [backup, verify]
            try TestDatabase.withUnused { target in
                let restore = try CLI.run(["restore", file, "--target-url", target.url, "--verify"], environment: environment)
                results.append(restore)
                #expect(restore.status == 0 && restore.stdout.contains("verified: every table"), "\(restore)")
                #expect(try DatabaseOracle.tableDigests(target) == digests)
                #expect(try TestArchives.schemaDump(target) == reference)
            }
            let drill = try CLI.run(["drill", "--dir", directory, "--latest", "--database-url", source.url, "--jobs", "2"], environment: environment)
            #expect(drill.status == 0, "\(drill)")
            // list needs no key: from the summary, marked encrypted and signed.
            let list = try CLI.run(["list", "--dir", directory])
            #expect(list.status == 0 && list.stdout.contains(name) && list.stdout.contains("encrypted,signed"), "\(list)")
            let manifest = try ArchiveReader(ArchiveLocation(path: file, keys: ArchiveKeys(identities: try KeyFiles.identities(keys.identity)))).manifest
            #expect(list.stdout.contains("\(manifest.tables.count) tables, \(manifest.totalRows) rows"), "\(list)")
            results += [drill, list]

            // Without the identity, with the wrong one, with one others can read.
            let missing = try CLI.run(["verify", file])
            #expect(missing.status == 64 && missing.stderr.contains("is encrypted (age) and no identity was given"), "\(missing)")
            let stranger = keys.directory + "/stranger.txt"
            try (try AgeIdentity.generate().string + "\n").write(toFile: stranger, atomically: true, encoding: .utf8)
            chmod(stranger, 0o600)
            let wrong = try CLI.run(["verify", file, "--identity", stranger, "--json"])
            #expect(wrong.status == 1 && wrong.stdout.contains("identity_mismatch"), "\(wrong)")
            chmod(keys.identity, 0o644)
            let open = try CLI.run(["verify", file, "--identity", keys.identity])
            chmod(keys.identity, 0o600)
            #expect(open.status == 64 && open.stderr.contains("chmod 600") && open.stderr.contains("; an age identity file must be private"), "\(open)")
            results += [missing, wrong, open]
            keys.expectNoSecret(results)
        }
    }

    /// The encrypted, signed path on data nobody here designed for it: the production-shaped fixture
    /// (migrated by the application's own set) on 15, and the sample data on 16 and 18 with those
    /// versions' client programs. Restored by the tool and by `age -d | gunzip | psql`, each checked
    /// with the md5 oracle.
    @Test(arguments: [15, 16, 18])
    func anEncryptedSignedArchiveRoundTripsOn(major: Int) throws {
        let keys = try TestKeys.make()
        defer { try? FileManager.default.removeItem(atPath: keys.directory) }
        func roundTrip(_ source: TestDatabase, cluster: TestCluster, environment: [String: String]) throws {
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let digests = try DatabaseOracle.tableDigests(source)
            let backup = try CLI.run(["backup", "--database-url", source.url, "--dir", directory, "--recipient", keys.recipient, "--sign-key", keys.signKey],
                                     environment: environment)
            #expect(backup.status == 0, "\(backup)")
            let file = try Self.onlyArchive(in: directory)
            let target = try TestDatabase.unused(prefix: "rgw_e", on: cluster)
            defer { target.drop() }
            let restore = try CLI.run(["restore", file, "--target-url", target.url, "--verify", "--identity", keys.identity, "--verify-key", keys.publicKey],
                                      environment: environment)
            #expect(restore.status == 0 && restore.stdout.contains("verified: every table"), "\(restore)")
            #expect(try DatabaseOracle.tableDigests(target) == digests)
            try TestDatabase.with(on: cluster) { stock in
                try TestArchives.restoreWithStockTools(file, into: stock, identity: keys.identity)
                #expect(try DatabaseOracle.tableDigests(stock) == digests)
            }
        }
        if major == 15 {
            try ProductionFixture.with { source in try roundTrip(source, cluster: try TestCluster.shared(), environment: [:]) }
        } else {
            let cluster = try TestCluster.version(major)
            try VersionMatrixTests.withSampleData(on: cluster) { source in
                try roundTrip(source, cluster: cluster, environment: try VersionMatrixTests.environment(source, major: major))
            }
        }
    }

    /// The other direction: a plain archive encrypted by `age` itself and signed by `minisign` itself
    /// reads like the tool's own, and an identity the tool generates works with `age -d`.
    @Test func filesMadeByAgeAndMinisignAreReadAndTheToolsKeysWorkInAge() throws {
        let keys = try TestKeys.make()
        defer { try? FileManager.default.removeItem(atPath: keys.directory) }
        try TestDatabase.withSampleData(events: 2000) { source in
            let digests = try DatabaseOracle.tableDigests(source)
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let plain = try TestArchives.backup(source, directory: directory)
            let encrypted = plain.file + ".age"
            _ = try Shell.runChecked("age", ["-r", keys.recipient, "-o", encrypted, plain.file])
            _ = try Shell.runChecked("/bin/sh", ["-c", "cd \"$1\" && sha256sum \"$2\" > \"$2.sha256\"", "sh", directory, URL(fileURLWithPath: encrypted).lastPathComponent])
            _ = try Shell.runChecked("minisign", ["-S", "-s", keys.signKey, "-m", encrypted, "-t", "made by hand"])
            try FileManager.default.removeItem(atPath: plain.file)
            let verify = try CLI.run(["verify", encrypted, "--identity", keys.identity, "--verify-key", keys.publicKey])
            #expect(verify.status == 0 && verify.stdout.contains("sidecar ok"), "\(verify)")
            try TestDatabase.withUnused { target in
                let restore = try CLI.run(["restore", encrypted, "--identity", keys.identity, "--verify-key", keys.publicKeyFile, "--target-url", target.url, "--verify"])
                #expect(restore.status == 0, "\(restore)")
                #expect(try DatabaseOracle.tableDigests(target) == digests)
            }

            // The tool's own identity and recipient strings, in age's hands.
            let identity = try AgeIdentity.generate()
            let own = keys.directory + "/own.txt"
            try "# made by rack-gateway-db's tests\n\(identity.string)\n".write(toFile: own, atomically: true, encoding: .utf8)
            chmod(own, 0o600)
            #expect(try Shell.runChecked("age-keygen", ["-y", own]).trimmingCharacters(in: .whitespacesAndNewlines) == identity.recipient.string)
            let small = Array("a payload across one boundary ".utf8) + [UInt8](repeating: 7, count: AgePayload.chunkSize)
            let sealed = keys.directory + "/small.age"
            try Data(try Age.encrypt(small, to: [identity.recipient])).write(to: URL(fileURLWithPath: sealed))
            let opened = try Shell.run("/bin/sh", ["-c", "age -d -i \"$1\" \"$2\" | sha256sum", "sh", own, sealed])
            let digest = SHA256()
            digest.update(small)
            #expect(opened.status == 0 && opened.stdout.hasPrefix(SHA256.hex(digest.finalize())), "\(opened)")
        }
    }

    /// Issue 31: inspect, extract and diff take --verify-key as verify and restore do: the right key
    /// passes (inspect says it checked), a signature by another key is refused (exit 2) and extract
    /// then writes nothing; a key file open to others is named with its article.
    @Test func inspectExtractAndDiffCheckTheSignatureWithVerifyKey() throws {
        let keys = try TestKeys.make()
        defer { try? FileManager.default.removeItem(atPath: keys.directory) }
        try TestDatabase.withSampleData(events: 500) { source in
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let report = try TestArchives.backup(source, directory: directory, keys: BackupKeys(recipients: [], signKey: try KeyFiles.signKey(keys.signKey)))
            let file = report.file
            let output = directory + "/users.csv"
            let commands = [["inspect", file], ["extract", file, "--table", "public.users", "-o", output], ["diff", file, "--against", file]]
            for command in commands {
                let run = try CLI.run(command + ["--verify-key", keys.publicKey])
                #expect(run.status == 0, "\(command): \(run)")
                if command[0] == "inspect" { #expect(run.stdout.contains("signed (signature checked with --verify-key)"), "\(run.stdout)") }
            }
            #expect(FileManager.default.fileExists(atPath: output))
            try FileManager.default.removeItem(atPath: output)
            let unchecked = try CLI.run(["inspect", file])
            #expect(unchecked.status == 0 && unchecked.stdout.contains("not checked: --verify-key checks it"), "\(unchecked.stdout)")

            let other = keys.directory + "/other-sign.key"
            try MinisignSecretKey.generateFileText().write(toFile: other, atomically: true, encoding: .utf8)
            chmod(other, 0o600)
            let forged = try ArchiveSignature.sign(hash: BLAKE2b512.hash([UInt8](try Data(contentsOf: URL(fileURLWithPath: file)))),
                                                   name: URL(fileURLWithPath: file).lastPathComponent, key: try KeyFiles.signKey(other), date: Date())
            try Data(forged).write(to: URL(fileURLWithPath: file + ".minisig"))
            for command in commands {
                let run = try CLI.run(command + ["--verify-key", keys.publicKey])
                #expect(run.status == 2 && run.stderr.contains("not by the key given"), "\(command): \(run)")
            }
            #expect(!FileManager.default.fileExists(atPath: output) && !FileManager.default.fileExists(atPath: output + ".partial"))

            chmod(keys.identity, 0o644)
            let open = try CLI.run(["inspect", file, "--identity", keys.identity])
            #expect(open.status == 64 && open.stderr.contains("; an age identity file must be private"), "\(open)")
        }
    }

    @Test func tamperingIsRefusedAndNamedAndEncryptionAloneDoesNotAuthenticate() throws {
        let keys = try TestKeys.make()
        defer { try? FileManager.default.removeItem(atPath: keys.directory) }
        try TestDatabase.withSampleData(events: 3000) { source in
            let directory = try TestArchives.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let backupKeys = BackupKeys(recipients: [try AgeRecipient(keys.recipient)], signKey: try KeyFiles.signKey(keys.signKey))
            let report = try TestArchives.backup(source, directory: directory, chunkSize: 1 << 20, keys: backupKeys)
            let file = report.file
            #expect(report.encrypted && report.signed && file.hasSuffix(".age"))
            let identities = try KeyFiles.identities(keys.identity)
            let pristine = try Data(contentsOf: URL(fileURLWithPath: file))
            let header = try AgeHeader.parse([UInt8](pristine.prefix(4096)))
            let payloadStart = header.length + AgePayload.nonceLength
            let manifest = try ArchiveReader(ArchiveLocation(path: file, keys: ArchiveKeys(identities: identities))).manifest
            func restorePristine() throws { try TestArchives.tamper(file, sidecarToo: true) { $0 = pristine } }
            func verify(_ extra: [String] = []) throws -> CLI.Result { try CLI.run(["verify", file, "--identity", keys.identity] + extra) }

            // Cut at every chunk boundary (and one byte into each chunk): never read as an archive.
            let chunks = (pristine.count - payloadStart + AgePayload.sealedChunkSize - 1) / AgePayload.sealedChunkSize
            #expect(chunks > 3)
            for chunk in 0..<chunks {
                for cut in [payloadStart + chunk * AgePayload.sealedChunkSize, payloadStart + chunk * AgePayload.sealedChunkSize + 1] where cut < pristine.count {
                    try pristine.prefix(cut).write(to: URL(fileURLWithPath: file))
                    #expect(throws: ToolError.self, "cut at \(cut)") {
                        try ArchiveReader(ArchiveLocation(path: file, keys: ArchiveKeys(identities: identities)))
                    }
                }
            }
            try restorePristine()
            try pristine.prefix(payloadStart + 2 * AgePayload.sealedChunkSize).write(to: URL(fileURLWithPath: file))
            let cut = try verify()
            #expect(cut.status == 2 && cut.stderr.contains("truncated"), "\(cut)")

            // One flipped byte: in a data member's chunk, in the final chunk, in the header's MAC.
            let data = try #require(manifest.members.first { $0.kind == .data && $0.length > 2 * AgePayload.chunkSize })
            // A chunk that starts inside the member: the error names that member.
            let chunk = data.offset / AgePayload.chunkSize + 1
            try restorePristine()
            try TestArchives.tamper(file, sidecarToo: true) { $0[payloadStart + chunk * AgePayload.sealedChunkSize + 100] ^= 0x01 }
            let payload = try verify()
            #expect(payload.status == 2 && payload.stderr.contains("member \(data.index) (data)") && payload.stderr.contains("encrypted chunk \(chunk)"), "\(payload)")
            try TestDatabase.withUnused { target in
                let restore = try CLI.run(["restore", file, "--identity", keys.identity, "--target-url", target.url])
                #expect(restore.status == 2 && restore.stderr.contains("encrypted chunk \(chunk)"), "\(restore)")
            }
            try restorePristine()
            try TestArchives.tamper(file, sidecarToo: true) { $0[$0.count - 5] ^= 0x01 }
            let final = try verify()
            #expect(final.status == 2 && final.stderr.contains("last chunk"), "\(final)")
            try restorePristine()
            let macOffset = header.length - 10
            try TestArchives.tamper(file, sidecarToo: true) { bytes in bytes[macOffset] = bytes[macOffset] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A") }
            let mac = try verify()
            #expect(mac.status == 2 && mac.stderr.contains("MAC"), "\(mac)")

            // Signatures: from another key, missing, made for another name.
            try restorePristine()
            #expect(try verify(["--verify-key", keys.publicKey]).status == 0)
            let other = keys.directory + "/other-sign.key"
            try MinisignSecretKey.generateFileText().write(toFile: other, atomically: true, encoding: .utf8)
            chmod(other, 0o600)
            let otherKey = try KeyFiles.signKey(other)
            let signature = file + ".minisig"
            let good = try Data(contentsOf: URL(fileURLWithPath: signature))
            let forged = try ArchiveSignature.sign(hash: BLAKE2b512.hash([UInt8](pristine)), name: URL(fileURLWithPath: file).lastPathComponent, key: otherKey, date: Date())
            try Data(forged).write(to: URL(fileURLWithPath: signature))
            let wrongKey = try verify(["--verify-key", keys.publicKey, "--json"])
            #expect(wrongKey.status == 2 && wrongKey.stdout.contains("signature_invalid") && wrongKey.stdout.contains("not by the key given"), "\(wrongKey)")
            try FileManager.default.removeItem(atPath: signature)
            let unsigned = try verify(["--verify-key", keys.publicKey])
            #expect(unsigned.status == 2 && unsigned.stderr.contains("is not signed"), "\(unsigned)")
            try good.write(to: URL(fileURLWithPath: signature))
            let renamed = directory + "/rack_gateway_backup_29991231T235959Z.sql.gz.age"
            try FileManager.default.copyItem(atPath: file, toPath: renamed)
            try FileManager.default.copyItem(atPath: signature, toPath: renamed + ".minisig")
            let copy = try CLI.run(["verify", renamed, "--identity", keys.identity, "--verify-key", keys.publicKey])
            #expect(copy.status == 2 && copy.stderr.contains("made for"), "\(copy)")
            for suffix in ["", ".minisig"] { try FileManager.default.removeItem(atPath: renamed + suffix) }

            // Someone with the bucket and the public key only: another database's archive, encrypted
            // to the right recipient, under this name. It decrypts and verifies; the signature does not.
            try TestDatabase.withSampleData(events: 500) { planted in
                let elsewhere = try TestArchives.temporaryDirectory()
                defer { try? FileManager.default.removeItem(atPath: elsewhere) }
                let foreign = try TestArchives.backup(planted, directory: elsewhere)
                _ = try Shell.runChecked("age", ["-r", keys.recipient, "-o", file + ".new", foreign.file])
                try FileManager.default.removeItem(atPath: file)
                try FileManager.default.moveItem(atPath: file + ".new", toPath: file)
                try TestArchives.tamper(file, sidecarToo: true) { _ in }
                try? FileManager.default.removeItem(atPath: file + ".summary.json")
            }
            #expect(try verify().status == 0, "encryption alone does not tell who wrote the file")
            try TestDatabase.withUnused { target in
                let restore = try CLI.run(["restore", file, "--identity", keys.identity, "--verify-key", keys.publicKey, "--target-url", target.url])
                #expect(restore.status == 2 && restore.stderr.contains("signature"), "\(restore)")
                let exists = try source.psql("SELECT count(*) FROM pg_database WHERE datname = '\(target.name)'")
                #expect(exists.trimmingCharacters(in: .whitespacesAndNewlines) == "0", "nothing was created")
            }
        }
    }

    @Test func rekeyWrapsTheSameFileKeyForNewRecipientsAndCopiesThePayload() throws {
        let keys = try TestKeys.make()
        defer { try? FileManager.default.removeItem(atPath: keys.directory) }
        try TestDatabase.withSampleData(events: 2000) { source in
            let directory = try TestArchives.temporaryDirectory(), rekeyed = try TestArchives.temporaryDirectory()
            defer { for path in [directory, rekeyed] { try? FileManager.default.removeItem(atPath: path) } }
            let report = try TestArchives.backup(source, directory: directory, keys: BackupKeys(recipients: [try AgeRecipient(keys.recipient)]))
            let before = try Data(contentsOf: URL(fileURLWithPath: report.file))
            let rekey = try CLI.run(["rekey", report.file, "--identity", keys.identity, "--recipient", keys.otherRecipient,
                                     "--sign-key", keys.signKey, "--to", rekeyed, "--json"])
            #expect(rekey.status == 0, "\(rekey)")
            let rekeyReport = try CLI.decode(ArchiveRekey.Report.self, rekey.stdout)
            #expect(rekeyReport.signed && rekeyReport.recipients == 1 && rekeyReport.source == report.file)
            let name = URL(fileURLWithPath: report.file).lastPathComponent
            let copy = rekeyed + "/" + name
            let after = try Data(contentsOf: URL(fileURLWithPath: copy))
            #expect(try Data(contentsOf: URL(fileURLWithPath: report.file)) == before, "the old archive is left as it was")
            let oldHeader = try AgeHeader.parse([UInt8](before.prefix(4096))), newHeader = try AgeHeader.parse([UInt8](after.prefix(4096)))
            #expect(before.dropFirst(oldHeader.length) == after.dropFirst(newHeader.length), "nonce and payload byte for byte")
            #expect(try AgeHeader.parse([UInt8](after)).stanzas.count == 1)
            let newKey = try CLI.run(["verify", copy, "--identity", keys.otherIdentity, "--verify-key", keys.publicKey])
            #expect(newKey.status == 0, "\(newKey)")
            let oldKey = try CLI.run(["verify", copy, "--identity", keys.identity])
            #expect(oldKey.status == 1 && oldKey.stderr.contains("no identity given matches"), "\(oldKey)")
            try TestDatabase.with { stock in
                try TestArchives.restoreWithStockTools(copy, into: stock, identity: keys.otherIdentity)
                #expect(try TestArchives.fingerprintMismatches(try ArchiveReader(ArchiveLocation(path: copy, keys: ArchiveKeys(identities: try KeyFiles.identities(keys.otherIdentity)))).manifest, in: stock) == [])
            }
            let again = try CLI.run(["rekey", report.file, "--identity", keys.identity, "--recipient", keys.otherRecipient, "--to", rekeyed])
            #expect(again.status == 1 && again.stderr.contains("already exists"), "\(again)")
            let plain = try TestArchives.backup(source, directory: rekeyed)
            let notEncrypted = try CLI.run(["rekey", plain.file, "--identity", keys.identity, "--recipient", keys.otherRecipient, "--to", directory])
            #expect(notEncrypted.status == 64, "\(notEncrypted)")
            keys.expectNoSecret([rekey, newKey, oldKey, again, notEncrypted])
        }
    }

    /// The backup host holds public keys only: the shrink check, list, prune and check
    /// --max-backup-age work from the summaries; the restore host reads from S3 with its identity.
    @Test func theKeylessBackupHostAndS3() throws {
        let keys = try TestKeys.make()
        defer { try? FileManager.default.removeItem(atPath: keys.directory) }
        let server = try MotoServer.shared()
        let client = try server.freshBucket()
        let store = S3Store(client: client, prefix: "nightly", partSize: 5 << 20)
        let environment = MotoServer.awsEnvironment.merging(["AWS_ENDPOINT_URL_S3": server.endpoint]) { $1 }
        let dir = "s3://\(client.bucket)/nightly"
        try TestDatabase.withSampleData(events: 20000) { source in
            _ = try source.psql("CREATE TABLE t (id int PRIMARY KEY, note text); INSERT INTO t SELECT g, 'row ' || g FROM generate_series(1, 1000) g")
            let first = try CLI.run(["backup", "--database-url", source.url, "--dir", dir, "--recipient", keys.recipient, "--sign-key", keys.signKey], environment: environment)
            #expect(first.status == 0, "\(first)")
            let names = try store.list().map(\.name)
            let archive = try #require(names.first { $0.hasSuffix(".sql.gz.age") })
            #expect(Set(names).isSuperset(of: [archive + ".sha256", archive + ".minisig", archive + ".summary.json"]), "\(names)")
            let summary = try ArchiveSummary.parse(try #require(try store.get(archive + ".summary.json")), path: "summary", storedSize: try #require(try store.size(archive)))
            #expect(summary.totalRows > 20000 && summary.tables.contains { $0.qualifiedName == "audit.audit_event" })
            let summaryText = String(decoding: try #require(try store.get(archive + ".summary.json")), as: UTF8.self)
            #expect(!summaryText.contains("fingerprint") && !summaryText.contains("CREATE"), "no fingerprint, no schema text")

            // The shrink check reads the previous encrypted archive's summary: most of a table gone.
            _ = try source.psql("DELETE FROM t WHERE id > 100")
            Thread.sleep(forTimeInterval: 1.1)
            let second = try CLI.run(["backup", "--database-url", source.url, "--dir", dir, "--recipient", keys.recipient], environment: environment)
            #expect(second.status == 2 && second.stderr.contains("SUSPECT") && second.stderr.contains("public.t fell from 1000 to 100"), "\(second)")
            let list = try CLI.run(["list", "--dir", dir], environment: environment)
            #expect(list.status == 0 && list.stdout.contains("SUSPECT,encrypted") && list.stdout.contains("encrypted,signed"), "\(list)")
            let check = try CLI.run(["check", "--database-url", source.url, "--dir", dir, "--max-backup-age", "1h"], environment: environment)
            #expect(check.status == 0, "\(check)")
            let prune = try CLI.run(["prune", "--dir", dir, "--keep-last", "1"], environment: environment)
            let kept = try store.list().map(\.name)
            #expect(prune.status == 0 && kept.contains(archive), "the good archive is kept: \(prune)")

            // The restore host: the identity, the signature demanded, from S3.
            let identityEnvironment = environment.merging(["RGW_AGE_IDENTITY_FILE": keys.identity, "RGW_VERIFY_KEY": keys.publicKey]) { $1 }
            let verify = try CLI.run(["verify", "\(dir)/\(archive)"], environment: identityEnvironment)
            #expect(verify.status == 0 && verify.stdout.contains("sidecar ok"), "\(verify)")
            try TestDatabase.withUnused { target in
                // The newest is unsigned (and suspect): with --verify-key, --latest stops (exit 2) before
                // changing anything, naming it and the newest good one, with the command for that one.
                let newest = try #require(try store.list().map(\.name).filter { $0.hasSuffix(".sql.gz.age") && $0 != archive }.first)
                let refused = try CLI.run(["restore", "--dir", dir, "--latest", "--target-url", target.url, "--verify"], environment: identityEnvironment)
                #expect(refused.status == 2 && refused.stderr.contains(newest) && refused.stderr.contains("fails its signature check")
                        && refused.stderr.contains("To restore it: rack-gateway-db restore \(dir)/\(archive) "), "\(refused)")
                #expect(try !target.exists)
                // Without --verify-key it verifies, but it is SUSPECT: stop too, with a command for either.
                let suspect = try CLI.run(["restore", "--dir", dir, "--latest", "--target-url", target.url, "--json"], environment: environment.merging(["RGW_AGE_IDENTITY_FILE": keys.identity]) { $1 })
                #expect(suspect.status == 2 && suspect.stdout.contains("\"suspect_backup\"") && suspect.stdout.contains("public.t fell from 1000 to 100"), "\(suspect)")
                #expect(suspect.stdout.contains("restore \(dir)/\(archive) ") && suspect.stdout.contains("restore \(dir)/\(newest) "), "\(suspect)")
                #expect(try !target.exists)
                let restore = try CLI.run(["restore", "\(dir)/\(archive)", "--target-url", target.url, "--verify"], environment: identityEnvironment)
                #expect(restore.status == 0 && restore.stdout.contains(archive), "\(restore)")
                keys.expectNoSecret([refused, suspect, restore])
            }
            keys.expectNoSecret([first, second, list, check, prune, verify])
        }
    }
}
