import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import RGWHTTP

/// AWS credentials: keys, and for temporary ones a session token and when they expire.
public struct AWSCredentials: Sendable {
    public var accessKey: String
    public var secretKey: String
    public var sessionToken: String?
    public var expiration: Date?
    /// Where they came from, for messages (never the keys themselves).
    public var source: String

    public init(accessKey: String, secretKey: String, sessionToken: String? = nil, expiration: Date? = nil, source: String) {
        self.accessKey = accessKey
        self.secretKey = secretKey
        self.sessionToken = sessionToken
        self.expiration = expiration
        self.source = source
    }
}

/// Resolves credentials the way AWS SDKs do, first match wins: the environment
/// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`); web identity
/// (`AWS_ROLE_ARN` + `AWS_WEB_IDENTITY_TOKEN_FILE` through STS AssumeRoleWithWebIdentity, how pods
/// on an EKS-based Convox v3 rack get their role); ECS container credentials
/// (`AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` or `_FULL_URI`, with `AWS_CONTAINER_AUTHORIZATION_TOKEN`
/// or `_TOKEN_FILE`); EC2 instance metadata with IMDSv2 (unless `AWS_EC2_METADATA_DISABLED=true`).
/// Temporary credentials are fetched again five minutes before they expire, so a long backup keeps
/// working. Shared config and credentials files (`~/.aws`) are not read.
public final class AWSCredentialsProvider: @unchecked Sendable {
    private let environment: [String: String]
    private let region: String
    /// The run's clock: when temporary credentials are due for renewal, and STS session names.
    private let clock: RunClock
    private let lock = NSLock()
    private var cached: AWSCredentials?

    public init(environment: [String: String], region: String, clock: RunClock) throws {
        self.environment = environment
        self.region = region
        self.clock = clock
        cached = try resolve()
    }

    /// Fixed credentials (tests, explicit configuration).
    public init(_ credentials: AWSCredentials, clock: RunClock) {
        environment = [:]
        region = ""
        self.clock = clock
        cached = credentials
    }

    public var source: String { lock.withLock { cached?.source ?? "none" } }

    public func current() throws -> AWSCredentials {
        try lock.withLock {
            if let cached, cached.expiration.map({ $0.timeIntervalSince(clock.now()) > 300 }) ?? true { return cached }
            let fresh = try resolve()
            cached = fresh
            return fresh
        }
    }

    func value(_ name: String) -> String? { environment[name].flatMap { $0.isEmpty ? nil : $0 } }

    func resolve() throws -> AWSCredentials {
        if let access = value("AWS_ACCESS_KEY_ID"), let secret = value("AWS_SECRET_ACCESS_KEY") {
            return AWSCredentials(accessKey: access, secretKey: secret, sessionToken: value("AWS_SESSION_TOKEN"), expiration: nil, source: "environment")
        }
        if let role = value("AWS_ROLE_ARN"), let tokenFile = value("AWS_WEB_IDENTITY_TOKEN_FILE") {
            return try webIdentity(role: role, tokenFile: tokenFile)
        }
        if value("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") != nil || value("AWS_CONTAINER_CREDENTIALS_FULL_URI") != nil {
            return try container()
        }
        if value("AWS_EC2_METADATA_DISABLED")?.lowercased() != "true", let found = try instanceMetadata() {
            return found
        }
        throw ToolError(.failed, "no AWS credentials found (environment, web identity, ECS container, EC2 instance metadata)",
                        fix: "Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), or run with a role: AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE, an ECS task role, or an EC2 instance profile.")
    }

    /// STS AssumeRoleWithWebIdentity (unsigned; the token is the proof).
    func webIdentity(role: String, tokenFile: String) throws -> AWSCredentials {
        guard let token = try? String(contentsOfFile: tokenFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines), !token.isEmpty else {
            throw ToolError(.failed, "cannot read the web identity token file \(tokenFile) (AWS_WEB_IDENTITY_TOKEN_FILE)",
                            fix: "Check that the service account token is mounted there.")
        }
        let endpoint = value("AWS_ENDPOINT_URL_STS") ?? value("AWS_ENDPOINT_URL") ?? "https://sts.\(region).amazonaws.com"
        let session = value("AWS_ROLE_SESSION_NAME") ?? "rack-gateway-db-\(Int(clock.now().timeIntervalSince1970))"
        let form = [("Action", "AssumeRoleWithWebIdentity"), ("Version", "2011-06-15"), ("RoleArn", role),
                    ("RoleSessionName", session), ("WebIdentityToken", token), ("DurationSeconds", "3600")]
            .map { "\($0.0)=\(S3Client.escape($0.1, keepSlash: false))" }.joined(separator: "&")
        let response: HTTPResponse
        do {
            response = try HTTPClient.perform(HTTPRequest(method: "POST", url: endpoint.hasSuffix("/") ? endpoint : endpoint + "/",
                                                          headers: [("Content-Type", "application/x-www-form-urlencoded")], body: Array(form.utf8), timeoutSeconds: 30))
        } catch let error as HTTPError {
            throw ToolError(.failed, "STS AssumeRoleWithWebIdentity for \(role) at \(endpoint) failed: \(error.message)", fix: "Check the network and AWS_REGION.")
        }
        let fields = XMLFields(response.body, names: ["AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration", "Code", "Message"])
        guard response.status == 200, let access = fields.first("AccessKeyId"), let secret = fields.first("SecretAccessKey") else {
            throw ToolError(.failed, "STS AssumeRoleWithWebIdentity for \(role) failed: HTTP \(response.status) \(fields.first("Code") ?? ""): \(fields.first("Message") ?? "")",
                            fix: "Check the role's trust policy for this service account, and AWS_ROLE_ARN.")
        }
        return AWSCredentials(accessKey: access, secretKey: secret, sessionToken: fields.first("SessionToken"),
                              expiration: fields.first("Expiration").flatMap(Self.parseDate), source: "web identity \(role)")
    }

    /// The ECS (and EKS Pod Identity) container credentials endpoint.
    func container() throws -> AWSCredentials {
        let url = value("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI").map { "http://169.254.170.2" + $0 } ?? value("AWS_CONTAINER_CREDENTIALS_FULL_URI")!
        var headers: [(name: String, value: String)] = []
        if let token = value("AWS_CONTAINER_AUTHORIZATION_TOKEN")
            ?? value("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE").flatMap({ try? String(contentsOfFile: $0, encoding: .utf8) })?.trimmingCharacters(in: .whitespacesAndNewlines) {
            headers.append(("Authorization", token))
        }
        let response: HTTPResponse
        do {
            response = try HTTPClient.perform(HTTPRequest(method: "GET", url: url, headers: headers, timeoutSeconds: 10))
        } catch let error as HTTPError {
            throw ToolError(.failed, "the container credentials endpoint did not answer: \(error.message)", fix: "Check the task role and AWS_CONTAINER_CREDENTIALS_*.")
        }
        guard response.status == 200, let credentials = Self.parseJSON(response.body, tokenKey: "Token", source: "container credentials") else {
            throw ToolError(.failed, "the container credentials endpoint answered HTTP \(response.status) without credentials", fix: "Check the task role.")
        }
        return credentials
    }

    /// IMDSv2: a session token first, then the instance profile's role and its credentials. Nil
    /// when there is no metadata service (not on EC2).
    func instanceMetadata() throws -> AWSCredentials? {
        let base = value("AWS_EC2_METADATA_SERVICE_ENDPOINT").map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 } ?? "http://169.254.169.254"
        guard let tokenResponse = try? HTTPClient.perform(HTTPRequest(method: "PUT", url: base + "/latest/api/token",
                                                                      headers: [("X-aws-ec2-metadata-token-ttl-seconds", "21600")], body: [], timeoutSeconds: 2)),
              tokenResponse.status == 200 else { return nil }
        let header = [(name: "X-aws-ec2-metadata-token", value: tokenResponse.text)]
        let path = base + "/latest/meta-data/iam/security-credentials/"
        guard let roleResponse = try? HTTPClient.perform(HTTPRequest(method: "GET", url: path, headers: header, timeoutSeconds: 2)),
              roleResponse.status == 200, let role = roleResponse.text.split(separator: "\n").first.map(String.init) else {
            throw ToolError(.failed, "this EC2 instance has no instance profile role", fix: "Attach a role with S3 access to the instance, or set credentials.")
        }
        guard let response = try? HTTPClient.perform(HTTPRequest(method: "GET", url: path + role, headers: header, timeoutSeconds: 5)),
              response.status == 200, let credentials = Self.parseJSON(response.body, tokenKey: "Token", source: "instance profile \(role)") else {
            throw ToolError(.failed, "the instance metadata service gave no credentials for role \(role)", fix: "Check the instance profile.")
        }
        return credentials
    }

    static func parseJSON(_ body: [UInt8], tokenKey: String, source: String) -> AWSCredentials? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any],
              let access = object["AccessKeyId"] as? String, let secret = object["SecretAccessKey"] as? String else { return nil }
        return AWSCredentials(accessKey: access, secretKey: secret, sessionToken: object[tokenKey] as? String,
                              expiration: (object["Expiration"] as? String).flatMap(parseDate), source: source)
    }

    static func parseDate(_ text: String) -> Date? {
        ISO8601DateFormatter.withFractions.date(from: text) ?? ISO8601DateFormatter().date(from: text)
    }
}
