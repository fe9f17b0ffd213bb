import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import RGWCompression
import RGWHTTP
import Logging

/// The S3 operations the stores use, each one request (retried by `send`).
extension S3Client {
    public func createBucket(objectLock: Bool = false) throws {
        try send("CreateBucket", method: "PUT", key: nil, headers: objectLock ? [("x-amz-bucket-object-lock-enabled", "true")] : [], body: [], expect: [200])
    }

    /// An ETag as S3 sends it (`"abc"`, in XML perhaps `&quot;abc&quot;`) without its quotes.
    static func unquotedETag(_ text: String) -> String {
        text.replacingOccurrences(of: "&quot;", with: "").trimmingCharacters(in: CharacterSet(charactersIn: "\" "))
    }

    /// Response headers of `key` (HEAD), or nil when there is none.
    public func head(key: String) throws -> [String: String]? {
        do {
            return try send("HeadObject", method: "HEAD", key: key).headers
        } catch let failure as Failure where failure.status == 404 {
            return nil
        }
    }

    /// A conditional write: only over the version with this ETag, or only when there is none.
    public enum Condition: Sendable {
        case ifMatch(String)
        case ifNoneMatch
    }

    /// `stoppable`: an archive's own bytes (a stopped run ends the upload); small records are always written.
    public func putObject(key: String, data: [UInt8], headers: [(name: String, value: String)] = [], condition: Condition? = nil,
                          stoppable: Bool = false) throws {
        var headers = headers
        headers.append(("Content-MD5", MD5.base64(data[...])))
        switch condition {
        case .ifMatch(let etag)?: headers.append(("If-Match", etag))
        case .ifNoneMatch?: headers.append(("If-None-Match", "*"))
        case nil: break
        }
        try send("PutObject", method: "PUT", key: key, headers: headers, body: data, stoppable: stoppable)
    }

    /// The whole object and its ETag, or nil when there is none.
    public func getObjectWithETag(key: String) throws -> (body: [UInt8], etag: String)? {
        do {
            let response = try send("GetObject", method: "GET", key: key)
            return (response.body, response.headers["etag"] ?? "")
        } catch let failure as Failure where failure.status == 404 {
            return nil
        }
    }

    /// `count` bytes from `offset` (a ranged GET answered 206), or the whole object.
    public func getObject(key: String, offset: Int? = nil, count: Int? = nil) throws -> [UInt8] {
        var headers: [(name: String, value: String)] = []
        if let offset, let count { headers.append(("Range", "bytes=\(offset)-\(offset + count - 1)")) }
        return try send("GetObject", method: "GET", key: key, headers: headers, expect: [200, 206], stoppable: true).body
    }

    /// Bytes `offset..<offset+count` of `key` streamed into `sink` as they arrive (never held
    /// whole). A transfer that breaks or a retryable answer resumes where the data stopped, with the
    /// same backoff as every request.
    public func getObjectStream(key: String, offset: Int, count: Int, sink: @escaping (UnsafeRawBufferPointer) -> Bool) throws {
        var delivered = 0
        try retrying("GetObject", stoppable: true) { attempt in
            let start = offset + delivered
            var stopped = false
            do {
                _ = try sendOnce("GetObject", method: "GET", key: key, query: [], headers: [("Range", "bytes=\(start)-\(offset + count - 1)")],
                                 body: nil, expect: [200, 206], attempt: attempt, timeoutSeconds: 3600, stoppable: true) { bytes in
                    let wanted = min(bytes.count, count - delivered)
                    guard wanted > 0, sink(UnsafeRawBufferPointer(rebasing: bytes[0..<wanted])) else {
                        stopped = true
                        return false
                    }
                    delivered += wanted
                    return true
                }
            } catch is TransportFailure where stopped {
                throw ToolError(.failed, "reading s3://\(bucket)/\(key) was stopped")
            }
            guard delivered < count else { return }
            if delivered == start - offset {
                throw ToolError(.mismatch, "s3://\(bucket)/\(key) ends before offset \(start); it is truncated")
            }
            throw TransportFailure(message: "the answer ended at offset \(offset + delivered), before \(offset + count)")
        }
    }

    public func size(key: String) throws -> Int? {
        do {
            let response = try send("HeadObject", method: "HEAD", key: key)
            return Int(response.headers["content-length"] ?? "")
        } catch let failure as Failure where failure.status == 404 {
            return nil
        }
    }

    public func deleteObject(key: String) throws {
        try send("DeleteObject", method: "DELETE", key: key, expect: [200, 204])
    }

    /// Every object under `prefix` (ListObjectsV2, following continuation tokens).
    public func list(prefix: String) throws -> [Object] {
        var objects: [Object] = []
        var token: String?
        repeat {
            var query = [("list-type", "2"), ("prefix", prefix)]
            if let token { query.append(("continuation-token", token)) }
            let response = try send("ListObjectsV2", method: "GET", key: nil, query: query.sorted { $0.0 < $1.0 })
            let fields = XMLFields(response.body, names: ["Key", "Size", "LastModified", "ETag", "NextContinuationToken", "IsTruncated"])
            let keys = fields.all("Key"), sizes = fields.all("Size"), times = fields.all("LastModified"), etags = fields.all("ETag")
            for (index, key) in keys.enumerated() {
                objects.append(Object(key: key, size: index < sizes.count ? Int(sizes[index]) ?? 0 : 0,
                                      lastModified: index < times.count ? times[index] : "",
                                      etag: index < etags.count && keys.count == etags.count ? Self.unquotedETag(etags[index]) : ""))
            }
            token = fields.first("IsTruncated") == "true" ? fields.first("NextContinuationToken") : nil
        } while token != nil
        return objects
    }

    /// One level under `prefix` (ListObjectsV2 with delimiter `/`, its first page): the objects
    /// directly there and the sub-prefixes ("folders", with their trailing slash). For the hints of
    /// a location that holds no archives.
    public func listLevel(prefix: String) throws -> (objects: [String], prefixes: [String]) {
        let query = [("delimiter", "/"), ("list-type", "2"), ("prefix", prefix)]
        let response = try send("ListObjectsV2", method: "GET", key: nil, query: query)
        let fields = XMLFields(response.body, names: ["Key", "Prefix"])
        // <Prefix> is also the request's own, at the top of the answer.
        return (fields.all("Key"), fields.all("Prefix").filter { $0 != prefix && $0.hasSuffix("/") })
    }

    // MARK: multipart upload

    public func createMultipartUpload(key: String, headers: [(name: String, value: String)] = []) throws -> String {
        let response = try send("CreateMultipartUpload", method: "POST", key: key, query: [("uploads", "")], headers: headers, body: [])
        guard let id = XMLFields(response.body, names: ["UploadId"]).first("UploadId") else {
            throw Failure(status: response.status, code: "NoUploadId", message: "no UploadId in the answer", operation: "CreateMultipartUpload")
        }
        return id
    }

    /// Upload part `number` (from 1); returns its ETag.
    public func uploadPart(key: String, uploadID: String, number: Int, data: [UInt8]) throws -> String {
        let response = try send("UploadPart", method: "PUT", key: key, query: [("partNumber", String(number)), ("uploadId", uploadID)],
                                headers: [("Content-MD5", MD5.base64(data[...]))], body: data, stoppable: true)
        return response.headers["etag"] ?? ""
    }

    public func completeMultipartUpload(key: String, uploadID: String, parts: [String]) throws {
        let body = "<CompleteMultipartUpload>" + parts.enumerated().map { "<Part><PartNumber>\($0.offset + 1)</PartNumber><ETag>\($0.element)</ETag></Part>" }.joined()
            + "</CompleteMultipartUpload>"
        let response = try send("CompleteMultipartUpload", method: "POST", key: key, query: [("uploadId", uploadID)], body: Array(body.utf8))
        // S3 may answer 200 with an error document when the completion fails late.
        if let code = XMLFields(response.body, names: ["Code"]).first("Code") {
            throw Failure(status: response.status, code: code, message: XMLFields(response.body, names: ["Message"]).first("Message") ?? "",
                          operation: "CompleteMultipartUpload s3://\(bucket)/\(key)")
        }
    }

    /// Multipart uploads begun and neither completed nor aborted, as (key, upload id).
    public func listMultipartUploads(prefix: String = "") throws -> [(key: String, uploadID: String)] {
        let response = try send("ListMultipartUploads", method: "GET", key: nil, query: [("prefix", prefix), ("uploads", "")])
        let fields = XMLFields(response.body, names: ["Key", "UploadId"])
        return Array(zip(fields.all("Key"), fields.all("UploadId"))).map { (key: $0.0, uploadID: $0.1) }
    }

    /// The Object Lock retain-until date of `key`, or nil when it has none: HeadObject answers it
    /// (`x-amz-object-lock-retain-until-date`) to a role allowed s3:GetObjectRetention.
    public func retainUntil(key: String) throws -> Date? {
        try head(key: key)?["x-amz-object-lock-retain-until-date"].flatMap(AWSCredentialsProvider.parseDate)
    }

    public func abortMultipartUpload(key: String, uploadID: String) throws {
        try send("AbortMultipartUpload", method: "DELETE", key: key, query: [("uploadId", uploadID)], expect: [200, 204])
    }
}
