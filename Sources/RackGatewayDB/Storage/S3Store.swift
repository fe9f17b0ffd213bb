import Foundation

/// Archives in an S3 bucket under a prefix: multipart uploads, ranged and streaming reads, conditional
/// appends for the logs, Object Lock and SSE on what it writes.
public struct S3Store: ArchiveStore {
    public let client: S3Client
    /// Key prefix, without a trailing slash ("" for the bucket's root).
    public let prefix: String
    /// Multipart part size; S3 wants at least 5 MiB for every part but the last.
    public var partSize: Int

    /// How archives and their sidecars are stored: server-side encryption and Object Lock retention.
    public var upload = S3UploadOptions()

    /// How long `appendLine` keeps trying when other writers change the log under it.
    public var appendPatience = 60.0

    public init(client: S3Client, prefix: String, partSize: Int = 16 << 20) {
        self.client = client
        self.prefix = prefix.hasSuffix("/") ? String(prefix.dropLast()) : prefix
        self.partSize = max(5 << 20, partSize)
    }

    /// SSE on everything written; Object Lock retention on archives and sidecars (`locked`), not on
    /// the logs and the lease, which are rewritten and deleted.
    func uploadHeaders(locked: Bool) -> [(name: String, value: String)] {
        var headers: [(name: String, value: String)] = []
        if let sse = upload.serverSideEncryption {
            headers.append(("x-amz-server-side-encryption", sse))
            if let key = upload.kmsKeyID { headers.append(("x-amz-server-side-encryption-aws-kms-key-id", key)) }
        }
        if locked, let days = upload.objectLockDays {
            let until = ISO8601DateFormatter().string(from: client.clock.now().addingTimeInterval(Double(days) * 86_400))
            headers.append(("x-amz-object-lock-mode", upload.objectLockMode.rawValue))
            headers.append(("x-amz-object-lock-retain-until-date", until))
        }
        return headers
    }

    public var location: String { "s3://\(client.bucket)" + (prefix.isEmpty ? "" : "/\(prefix)") }

    func key(_ name: String) -> String { prefix.isEmpty ? name : "\(prefix)/\(name)" }

    public func create(_ name: String) throws -> StoreWriter {
        S3Writer(client: client, key: key(name), partSize: partSize, headers: uploadHeaders(locked: true))
    }

    public func open(_ name: String) throws -> StoreReader? {
        try client.size(key: key(name)).map { S3Reader(client: client, key: key(name), location: "\(location)/\(name)", size: $0) }
    }

    public func list() throws -> [StoreEntry] {
        let start = prefix.isEmpty ? "" : prefix + "/"
        return try client.list(prefix: start).compactMap { object in
            let name = String(object.key.dropFirst(start.count))
            return name.isEmpty || name.contains("/") ? nil : StoreEntry(name: name, size: object.size, version: object.etag.isEmpty ? nil : object.etag)
        }.sorted { $0.name < $1.name }
    }

    public func version(_ name: String) throws -> String? {
        guard let etag = try client.head(key: key(name))?["etag"] else { return nil }
        let version = S3Client.unquotedETag(etag)
        return version.isEmpty ? nil : version
    }

    public func delete(_ name: String) throws { try client.deleteObject(key: key(name)) }

    public func retainedUntil(_ name: String) throws -> Date? { try client.retainUntil(key: key(name)) }

    public func put(_ name: String, _ contents: [UInt8]) throws { try client.putObject(key: key(name), data: contents, headers: uploadHeaders(locked: true)) }

    /// A lease object holding who has it and until when (an hour, renewed by nobody: a crashed
    /// holder's lease expires). It is written only if it is still as it was read (If-None-Match when
    /// there is none, If-Match on the expired one's ETag), so of two runs racing for it one wins and
    /// the other is told who holds it.
    public func lease(_ name: String, holder: String, at time: Date) throws -> StoreLease {
        let now = time.timeIntervalSince1970
        func held(by text: String?, until expiry: Double?) -> ToolError {
            let time = expiry.map { UTCTime.iso8601(Date(timeIntervalSince1970: $0)) }
            return ToolError(.lockHeld, "\(location)/\(name) is held by \(text ?? "another run")" + (time.map { " until \($0)" } ?? ""),
                             fix: "Wait for that run to finish. If it was killed (no such process on that host), its lease expires by itself "
                                 + (time.map { "at \($0)" } ?? "an hour after it was taken") + "; or, once you are sure it is gone, delete it: aws s3 rm \(location)/\(name)")
        }
        func parse(_ body: [UInt8]) -> (expiry: Double?, holder: String?) {
            let parts = String(decoding: body, as: UTF8.self).split(separator: "\n", maxSplits: 1)
            return (parts.first.flatMap { Double($0) }, parts.count > 1 ? String(parts[1]) : nil)
        }
        let current = try client.getObjectWithETag(key: key(name))
        if let lease = current.map({ parse($0.body) }), let expiry = lease.expiry, expiry > now { throw held(by: lease.holder, until: expiry) }
        do {
            try client.putObject(key: key(name), data: Array("\(now + 3600)\n\(holder)".utf8), headers: uploadHeaders(locked: false),
                                 condition: current.map { .ifMatch($0.etag) } ?? .ifNoneMatch)
        } catch let failure as S3Client.Failure where failure.status == 412 || failure.status == 409 {
            // Another run wrote it between the read and the write: name it if it can be read.
            let winner = (try? client.getObjectWithETag(key: key(name))) ?? nil
            let lease = winner.map { parse($0.body) }
            throw held(by: lease?.holder, until: lease?.expiry)
        }
        return S3Lease(client: client, key: key(name))
    }

    /// S3 has no append: read the log, add the line, and write it back only if nobody changed it in
    /// between (If-Match on its ETag, If-None-Match when it is new), else wait a random, growing time
    /// (so that writers that collided do not collide again in step) and read again, for up to
    /// `appendPatience` seconds.
    public func appendLine(_ name: String, _ line: [UInt8]) throws {
        let deadline = Deadline(after: appendPatience)
        var backoff = S3Client.JitteredBackoff(first: 0.02, cap: 1)
        var attempts = 0
        repeat {
            attempts += 1
            let current = try client.getObjectWithETag(key: key(name))
            do {
                try client.putObject(key: key(name), data: (current?.body ?? []) + line, headers: uploadHeaders(locked: false),
                                     condition: current.map { .ifMatch($0.etag) } ?? .ifNoneMatch)
                return
            } catch let failure as S3Client.Failure where failure.status == 412 || failure.status == 409 {
                backoff.wait()
            }
        } while !deadline.hasPassed
        throw ToolError(.failed, "could not add a line to \(location)/\(name): it changed under other writers \(attempts) times in \(Int(appendPatience)) s",
                        fix: "Other runs keep writing to the same log; wait for them to finish and run again.")
    }

    /// Streams an object as a multipart upload: the archive writer fills one part while the part
    /// before it uploads on a thread of its own (two parts in memory at most). An archive smaller
    /// than one part is a single PutObject at publish. Each part carries its Content-MD5, which S3
    /// checks, and is retried by the client on its own.
    final class S3Writer: StoreWriter, @unchecked Sendable {
        let client: S3Client
        let key: String
        let partSize: Int
        let headers: [(name: String, value: String)]
        var buffer: [UInt8] = []
        var uploadID: String?
        let etags = LockedList<(number: Int, etag: String)>()
        var parts = 0
        var queue: BoundedQueue<(number: Int, data: [UInt8])>?
        let uploader = DispatchGroup()
        let failure = FirstError()
        /// Part buffers the uploader is done with, filled again instead of allocating 16 MiB a part.
        let spare = LockedList<[UInt8]>()

        init(client: S3Client, key: String, partSize: Int, headers: [(name: String, value: String)]) {
            self.client = client
            self.key = key
            self.partSize = partSize
            self.headers = headers
            buffer.reserveCapacity(partSize)
        }

        func append(_ bytes: ArraySlice<UInt8>) throws {
            var rest = bytes
            while !rest.isEmpty {
                let room = partSize - buffer.count
                buffer.append(contentsOf: rest.prefix(room))
                rest = rest.dropFirst(room)
                if buffer.count == partSize { try send() }
            }
        }

        /// Hand the full buffer to the uploader (waiting while it still uploads the previous part).
        func send() throws {
            if let error = failure.error { throw error }
            if uploadID == nil {
                uploadID = try client.createMultipartUpload(key: key, headers: headers)
                let queue = BoundedQueue<(number: Int, data: [UInt8])>(capacity: 0)
                self.queue = queue
                let (client, key, uploadID, etags, failure, spare) = (client, key, uploadID!, etags, failure, spare)
                spawnThread("s3 upload", group: uploader) {
                    while var part = queue.take() {
                        guard !failure.isSet else { continue }
                        do {
                            etags.add((part.number, try client.uploadPart(key: key, uploadID: uploadID, number: part.number, data: part.data)))
                        } catch {
                            failure.record(error)
                        }
                        part.data.removeAll(keepingCapacity: true)
                        spare.add(part.data)
                    }
                }
            }
            parts += 1
            queue!.put((parts, buffer))
            buffer = spare.popLast() ?? []
            buffer.reserveCapacity(partSize)
        }

        func publish() throws {
            guard uploadID != nil else { return try client.putObject(key: key, data: buffer, headers: headers, stoppable: true) }
            if !buffer.isEmpty { try send() }
            queue?.close()
            uploader.wait()
            if let error = failure.error { throw error }
            try client.completeMultipartUpload(key: key, uploadID: uploadID!, parts: etags.items.sorted { $0.number < $1.number }.map(\.etag))
            uploadID = nil
        }

        func discard() {
            queue?.close()
            uploader.wait()
            if let uploadID { try? client.abortMultipartUpload(key: key, uploadID: uploadID) }
            uploadID = nil
            buffer = []
        }
    }

    /// Ranged GETs; `stream` is one streaming GET over the whole range.
    struct S3Reader: StoreReader {
        let client: S3Client
        let key: String
        let location: String
        let size: Int

        func read(offset: Int, count: Int, into buffer: inout [UInt8]) throws {
            buffer = try client.getObject(key: key, offset: offset, count: count)
            guard buffer.count == count else {
                throw ToolError(.archiveCorrupt, "\(location) ends before the \(count) bytes expected at offset \(offset); it is truncated")
            }
        }

        func stream(offset: Int, count: Int, sink: @escaping (UnsafeRawBufferPointer) -> Bool) throws {
            try client.getObjectStream(key: key, offset: offset, count: count, sink: sink)
        }
    }

    final class S3Lease: StoreLease {
        let client: S3Client
        let key: String
        init(client: S3Client, key: String) {
            self.client = client
            self.key = key
        }
        func release() { try? client.deleteObject(key: key) }
    }
}
