import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import RGWCompression
import RGWHTTP
import RGWPostgres
import Logging

/// The S3 API calls archives need (objects, ranged reads, listing, multipart uploads), signed with
/// SigV4 by libcurl. Credentials never appear in errors.
public struct S3Client: Sendable {
    public var endpoint: String
    public var region: String
    public var bucket: String
    public var credentials: AWSCredentialsProvider
    /// `endpoint/bucket/key` (S3-compatible stores, tests) rather than `bucket.endpoint/key`.
    public var pathStyle: Bool
    /// The run's clock: what Object Lock's retain-until dates count from.
    public var clock: RunClock

    public init(endpoint: String, region: String, bucket: String, accessKey: String, secretKey: String, pathStyle: Bool, clock: RunClock) {
        self.init(endpoint: endpoint, region: region, bucket: bucket,
                  credentials: AWSCredentialsProvider(AWSCredentials(accessKey: accessKey, secretKey: secretKey, source: "given"), clock: clock),
                  pathStyle: pathStyle, clock: clock)
    }

    public init(endpoint: String, region: String, bucket: String, credentials: AWSCredentialsProvider, pathStyle: Bool, clock: RunClock) {
        self.credentials = credentials
        self.clock = clock
        self.endpoint = endpoint.hasSuffix("/") ? String(endpoint.dropLast()) : endpoint
        self.region = region
        self.bucket = bucket
        self.pathStyle = pathStyle
    }

    public struct Object: Sendable, Equatable {
        public var key: String
        public var size: Int
        public var lastModified: String
        /// The ETag without its quotes (empty when the answer had none).
        public var etag: String = ""
    }

    /// S3's answer to a failed call: its status, error code and message, and what to check.
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public var status: Int
        public var code: String
        public var message: String
        public var operation: String
        public var bucket: String = ""
        public var attempts: Int = 1
        /// Where the credentials that signed the request came from (`environment`, `profile prod`), for hints.
        public var credentialsSource: String = ""
        /// The endpoint's path when it has one (`/nightly` of `http://host:9000/nightly`): S3 answers
        /// a bucket-level call there with NoSuchKey.
        public var endpointPath: String = ""
        public var description: String { [summary, hint].compactMap { $0 }.joined(separator: "\n") }

        /// What S3 answered, without the hint.
        public var summary: String {
            "S3 \(operation) failed: HTTP \(status) \(code): \(message)" + (attempts > 1 ? " (after \(attempts) attempts)" : "")
        }

        /// The tool's code for the answer: a missing bucket or object, denied access, credentials
        /// that are missing, expired or not valid; anything else is `failed`.
        public var toolCode: ToolError.Code {
            switch code {
            case "NoSuchBucket": .bucketNotFound
            case "NoSuchKey": .archiveNotFound
            case "ExpiredToken", "TokenRefreshRequired", "RequestExpired", "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken": .credentialsMissing
            case "AccessDenied", "AllAccessDisabled": .accessDenied
            default: status == 403 ? .accessDenied : .failed
            }
        }

        /// What to check, for the errors a retry cannot fix.
        public var hint: String? {
            switch code {
            case "NoSuchBucket":
                // Behind an endpoint with a path the bucket was looked for in the wrong place: that first.
                return endpointPath.isEmpty ? "Bucket \(bucket) does not exist: check the bucket name in --dir and the region (AWS_REGION)."
                    : endpointWithAPath + " Else check the bucket name in --dir and the region (AWS_REGION)."
            case "ExpiredToken", "TokenRefreshRequired", "RequestExpired":
                return "The AWS credentials have expired\(from): renew them (the role session, or aws sso login for a credential_process) and run again."
            case "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken":
                return "The AWS credentials are not valid for bucket \(bucket)\(from): check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN, the profile's keys (AWS_PROFILE), or the role the tool runs as."
            case "AccessDenied", "AllAccessDisabled":
                return denied
            case "PermanentRedirect", "AuthorizationHeaderMalformed", "IllegalLocationConstraintException":
                return "Bucket \(bucket) is in another region: set AWS_REGION to the bucket's region."
            case "NoSuchKey" where !endpointPath.isEmpty && (operation.hasPrefix("ListObjects") || operation.hasSuffix("s3://\(bucket)/")):
                return endpointWithAPath
            default:
                return status == 403 ? denied : nil
            }
        }

        /// A bucket or prefix that "does not exist" behind an endpoint with a path (`http://host:9000/nightly`).
        var endpointWithAPath: String {
            "The S3 endpoint has a path (\(endpointPath)), so the calls went to the wrong place: give it as scheme://host[:port] "
                + "(AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, --s3-endpoint), with the bucket and prefix in the s3:// location."
        }

        /// " (they came from SOURCE)", or nothing when the source is not known.
        var from: String { credentialsSource.isEmpty ? "" : " (they came from \(credentialsSource))" }

        /// What a 403 needs: the IAM action the operation takes and the resource it takes it on, for
        /// the IAM policy of the credentials and the bucket policy.
        var denied: String {
            let name = String(operation.prefix { $0 != " " })
            guard let needed = Self.iamPermission(for: name, bucket: bucket) else {
                return "Access to bucket \(bucket) was denied: check the IAM policy of the credentials and the bucket policy."
            }
            let kms = ["s3:GetObject", "s3:PutObject"].contains(Self.iamAction(for: name)) ? "; with --sse aws:kms also kms:GenerateDataKey and kms:Decrypt on the key" : ""
            return "Access to bucket \(bucket) was denied: the credentials\(from) need \(needed), allowed by their IAM policy and not denied by the bucket policy\(kms)."
        }

        /// The IAM action S3 checks for an API operation (ListObjectsV2 is `s3:ListBucket`, the
        /// multipart upload calls are `s3:PutObject`), or nil for one this client does not make.
        public static func iamAction(for operation: String) -> String? {
            switch operation {
            case "ListObjectsV2", "ListObjects": "s3:ListBucket"
            case "GetObject", "HeadObject": "s3:GetObject"
            case "PutObject", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload": "s3:PutObject"
            case "AbortMultipartUpload": "s3:AbortMultipartUpload"
            case "ListMultipartUploads": "s3:ListBucketMultipartUploads"
            case "DeleteObject": "s3:DeleteObject"
            case "CreateBucket": "s3:CreateBucket"
            default: nil
            }
        }

        /// `iamAction(for:)` with its resource, as a policy statement names them, and what else the
        /// same call may need.
        static func iamPermission(for operation: String, bucket: String) -> String? {
            guard let action = iamAction(for: operation) else { return nil }
            let bucketARN = "arn:aws:s3:::\(bucket)"
            switch action {
            case "s3:ListBucket", "s3:ListBucketMultipartUploads", "s3:CreateBucket":
                return "\(action) on \(bucketARN)"
            case "s3:GetObject" where operation == "HeadObject":
                return "s3:GetObject on \(bucketARN)/* (and s3:ListBucket on \(bucketARN): without it a missing object is answered 403, not 404)"
            case "s3:PutObject":
                return "s3:PutObject on \(bucketARN)/* (and s3:PutObjectRetention with --object-lock-days)"
            default:
                return "\(action) on \(bucketARN)/*"
            }
        }

        /// 5xx, throttling and request timeouts are worth another try; the rest fail at once.
        public var isRetryable: Bool {
            status >= 500 || status == 429 || ["SlowDown", "RequestTimeout", "RequestTimeTooSkewed", "Throttling", "ThrottlingException",
                                               "InternalError", "ServiceUnavailable"].contains(code)
        }
    }

    /// Attempts per request (the first and its retries) and the first backoff; each retry waits a
    /// random time up to twice the previous limit ("full jitter"), at most `maxBackoff`.
    public var maxAttempts = 6
    public var firstBackoff = 0.25
    public var maxBackoff = 20.0

    /// Keys are escaped as S3 expects: every byte but unreserved characters and `/`.
    static func escape(_ text: String, keepSlash: Bool) -> String {
        var allowed = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
        if keepSlash { allowed.insert("/") }
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }

    func url(key: String?, query: [(String, String)] = []) -> String {
        var base: String
        if pathStyle {
            base = "\(endpoint)/\(bucket)"
        } else {
            let parts = endpoint.components(separatedBy: "://")
            base = parts.count == 2 ? "\(parts[0])://\(bucket).\(parts[1])" : "\(endpoint)/\(bucket)"
        }
        if let key { base += "/" + Self.escape(key, keepSlash: true) } else if pathStyle { base += "/" }
        guard !query.isEmpty else { return base }
        return base + "?" + query.map { $0.1.isEmpty && $0.0 == "uploads" ? $0.0 : "\($0.0)=\(Self.escape($0.1, keepSlash: false))" }.joined(separator: "&")
    }

    /// `stoppable`: a transfer of an archive's bytes (a download, an uploaded part), which a stopped
    /// run ends at once; the small calls (listing, completing, aborting, deleting) always finish,
    /// as a stopped run's clean-up needs them to.
    @discardableResult
    func send(_ operation: String, method: String, key: String?, query: [(String, String)] = [], headers: [(name: String, value: String)] = [],
              body: [UInt8]? = nil, expect: Set<Int> = [200], stoppable: Bool = false) throws -> HTTPResponse {
        try retrying(operation, stoppable: stoppable) { attempt in
            try sendOnce(operation, method: method, key: key, query: query, headers: headers, body: body, expect: expect, attempt: attempt,
                         stoppable: stoppable)
        }
    }

    /// `body` (one attempt) until it succeeds, with exponential backoff and full jitter after a
    /// retryable answer or a transport failure, at most `maxAttempts` times; a permanent answer is
    /// thrown at once.
    func retrying<T>(_ operation: String, stoppable: Bool = false, _ body: (_ attempt: Int) throws -> T) throws -> T {
        var attempt = 0
        var backoff = JitteredBackoff(first: firstBackoff, cap: maxBackoff)
        // A stoppable transfer's wait before its next attempt ends with the run too (`sendOnce`).
        backoff.stop = stopper(stoppable)
        while true {
            attempt += 1
            do {
                return try body(attempt)
            } catch let failure as Failure where failure.isRetryable && attempt < maxAttempts {
                Self.retryLog(operation, "HTTP \(failure.status) \(failure.code)", attempt)
            } catch let error as TransportFailure where attempt < maxAttempts {
                Self.retryLog(operation, error.message, attempt)
            } catch let error as TransportFailure {
                throw ToolError(.failed, "S3 \(operation) on bucket \(bucket) at \(endpoint) failed after \(Plural.of(attempt, "attempt")): \(error.message)",
                                fix: "Check the endpoint (--s3-endpoint, AWS_ENDPOINT_URL_S3), the network and the region.", cause: error)
            }
            backoff.wait()
        }
    }

    static func retryLog(_ operation: String, _ problem: String, _ attempt: Int) {
        ToolLogHandler.logger().warning("S3 request failed; retrying", metadata: ["operation": "\(operation)", "problem": "\(problem)", "attempt": "\(attempt)"])
    }

    struct TransportFailure: Error, Sendable { var message: String }

    /// Exponential backoff with full jitter: each wait is a random time up to a limit that doubles
    /// after every wait, at most `cap` seconds.
    struct JitteredBackoff {
        var limit: Double
        let cap: Double
        /// Ends the wait early when the run is stopped (the attempt after it then refuses to start).
        var stop: Cancellation?
        init(first: Double, cap: Double) { limit = first; self.cap = cap }
        mutating func wait() {
            let until = Deadline(after: Double.random(in: 0...min(limit, cap)))
            while !until.hasPassed && stop?.isCancelled != true {
                usleep(UInt32(min(0.05, until.remaining) * 1_000_000))
            }
            limit *= 2
        }
    }

    /// A request signed with the current credentials (SigV4 by libcurl, the session token as
    /// `x-amz-security-token`).
    func signed(_ method: String, key: String?, query: [(String, String)] = [], headers: [(name: String, value: String)], body: [UInt8]? = nil,
                timeoutSeconds: Int = 300) throws -> HTTPRequest {
        let keys = try credentials.current()
        var headers = headers
        if let token = keys.sessionToken { headers.append(("x-amz-security-token", token)) }
        return HTTPRequest(method: method, url: url(key: key, query: query), headers: headers, body: body,
                           sigV4: ("aws:amz:\(region):s3", "\(keys.accessKey):\(keys.secretKey)"), timeoutSeconds: timeoutSeconds)
    }

    /// The run's cancellation, for a `stoppable` transfer made outside a clean-up (what undoes a
    /// stopped run is not itself stopped); nil otherwise.
    func stopper(_ stoppable: Bool) -> Cancellation? {
        stoppable ? clock.cancellation.flatMap { $0.isCleaningUp ? nil : $0 } : nil
    }

    /// One attempt; a successful body goes to `sink` as it arrives when one is given.
    func sendOnce(_ operation: String, method: String, key: String?, query: [(String, String)], headers: [(name: String, value: String)],
                  body: [UInt8]?, expect: Set<Int>, attempt: Int, timeoutSeconds: Int = 300, stoppable: Bool = false,
                  sink: ((UnsafeRawBufferPointer) -> Bool)? = nil) throws -> HTTPResponse {
        var request = try signed(method, key: key, query: query, headers: headers, body: body, timeoutSeconds: timeoutSeconds)
        let stop = stopper(stoppable)
        func stopped() -> ToolError {
            ToolError(.interrupted, "\(stop?.description ?? "stopped") during S3 \(operation) of s3://\(bucket)/\(key ?? "")")
        }
        if let stop {
            guard !stop.isCancelled else { throw stopped() }
            request.shouldStop = { stop.isCancelled }
        }
        let source = credentials.source
        let response: HTTPResponse
        do {
            response = try HTTPClient.perform(request, sink: sink)
        } catch let error as HTTPError {
            if error.stoppedByCaller { throw stopped() }
            throw TransportFailure(message: error.message)
        }
        guard expect.contains(response.status) else {
            var body = response.body
            if method == "HEAD" && response.status != 404, let key {
                // A HEAD answer has no error document; a one-byte GET of the same object says why.
                if let probe = try? signed("GET", key: key, headers: headers + [("Range", "bytes=0-0")]),
                   let answer = try? HTTPClient.perform(probe), answer.status == response.status { body = answer.body }
            }
            let fields = XMLFields(body, names: ["Code", "Message"])
            var code = fields.first("Code") ?? ""
            if code.isEmpty && response.status == 404 && key == nil { code = "NoSuchBucket" }
            let path = URLComponents(string: endpoint)?.path ?? ""
            throw Failure(status: response.status, code: code, message: fields.first("Message") ?? String(decoding: body.prefix(200), as: UTF8.self),
                          operation: "\(operation) s3://\(bucket)/\(key ?? "")", bucket: bucket, attempts: attempt, credentialsSource: source,
                          endpointPath: path == "/" ? "" : path)
        }
        return response
    }
}
