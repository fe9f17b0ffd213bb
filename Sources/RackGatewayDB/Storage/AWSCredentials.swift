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
/// on an EKS-based Convox v3 rack get their role); the profile in the shared config and credentials
/// files (`AWSSharedConfig`: `role_arn` through STS AssumeRole, static keys, `credential_process`);
/// ECS container credentials (`AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` or `_FULL_URI`, with
/// `AWS_CONTAINER_AUTHORIZATION_TOKEN` or `_TOKEN_FILE`); EC2 instance metadata with IMDSv2 (unless
/// `AWS_EC2_METADATA_DISABLED=true`). A profile `AWS_PROFILE` names that neither file has stops the
/// search, as it stops the AWS CLI. Temporary credentials are fetched again five minutes before they
/// expire (halfway through, for shorter ones), so a long backup keeps working.
public final class AWSCredentialsProvider: @unchecked Sendable {
    private let environment: [String: String]
    private let region: String
    /// The shared config and credentials files (nil for fixed credentials).
    private let config: AWSSharedConfig?
    /// The run's clock: when temporary credentials are due for renewal, and STS session names.
    private let clock: RunClock
    /// How long a profile's `credential_process` may run.
    let processTimeout: Double
    private let lock = NSLock()
    private var cached: AWSCredentials?
    /// When the cached credentials are fetched again (nil: never).
    private var renewAt: Date?

    /// `config` is read from `environment` when not given.
    public init(environment: [String: String], region: String, config: AWSSharedConfig? = nil, clock: RunClock, processTimeout: Double = 60) throws {
        self.environment = environment
        self.region = region
        self.config = try config ?? AWSSharedConfig(environment: environment)
        self.clock = clock
        self.processTimeout = processTimeout
        let first = try resolve()
        cached = first
        renewAt = renewal(of: first)
    }

    /// Fixed credentials (tests, explicit configuration).
    public init(_ credentials: AWSCredentials, clock: RunClock) {
        environment = [:]
        region = ""
        config = nil
        self.clock = clock
        processTimeout = 60
        cached = credentials
        renewAt = renewal(of: credentials)
    }

    public var source: String { lock.withLock { cached?.source ?? "none" } }

    public func current() throws -> AWSCredentials {
        try lock.withLock {
            if let cached, renewAt.map({ clock.now() < $0 }) ?? true { return cached }
            let fresh = try resolve()
            cached = fresh
            renewAt = renewal(of: fresh)
            return fresh
        }
    }

    /// Five minutes before they expire, or halfway through their life when that is shorter (so that
    /// credentials issued for a few minutes are not fetched again for every request).
    private func renewal(of credentials: AWSCredentials) -> Date? {
        guard let expiration = credentials.expiration else { return nil }
        return expiration.addingTimeInterval(-min(300, max(0, expiration.timeIntervalSince(clock.now())) / 2))
    }

    func value(_ name: String) -> String? { environment[name].flatMap { $0.isEmpty ? nil : $0 } }

    func environmentKeys() -> AWSCredentials? {
        guard let access = value("AWS_ACCESS_KEY_ID"), let secret = value("AWS_SECRET_ACCESS_KEY") else { return nil }
        return AWSCredentials(accessKey: access, secretKey: secret, sessionToken: value("AWS_SESSION_TOKEN"), expiration: nil, source: "environment")
    }

    func resolve() throws -> AWSCredentials {
        var tried: [String] = []
        if let keys = environmentKeys() { return keys }
        tried.append("environment (AWS_ACCESS_KEY_ID)")
        if let role = value("AWS_ROLE_ARN"), let tokenFile = value("AWS_WEB_IDENTITY_TOKEN_FILE") {
            return try webIdentity(role: role, tokenFile: tokenFile, sessionName: value("AWS_ROLE_SESSION_NAME"))
        }
        tried.append("web identity (AWS_WEB_IDENTITY_TOKEN_FILE)")
        var fix = "Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN); or name a profile with AWS_PROFILE whose keys, credential_process or role_arn are in ~/.aws/credentials or ~/.aws/config; or run with a role: AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE, an ECS task role, or an EC2 instance profile."
        if let config {
            let name = config.profileName
            if let profile = config.current {
                if let found = try fromProfile(name, config: config, visited: []) { return found }
                tried.append("profile \(name) in \(config.filesDescription) (no keys, credential_process or role_arn in it)")
                if profile.keys.contains(where: { $0.hasPrefix("sso_") }) {
                    fix = "Profile \(name) signs in with IAM Identity Center (sso_*), which this tool does not read itself: run `aws sso login --profile \(name)` and add `credential_process = aws configure export-credentials --profile \(name) --format process` to a profile that uses it."
                }
            } else if config.profileWasSet {
                let names = config.profileNames
                throw ToolError(.credentialsMissing, "AWS_PROFILE names profile \(name), which is in neither \(config.credentialsPath) nor \(config.configPath) "
                                + (names.isEmpty ? "(neither file has any profile)" : "(profiles there: \(names.joined(separator: ", ")))")
                                + "; tried before it: " + tried.joined(separator: "; "),
                                fix: "Set AWS_PROFILE to one of the profiles there (or AWS_SHARED_CREDENTIALS_FILE and AWS_CONFIG_FILE to the files that have it), or unset it to use the default profile and the rest of the chain.")
            } else {
                tried.append("profile default (in neither \(config.credentialsPath) nor \(config.configPath))")
            }
        }
        if value("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") != nil || value("AWS_CONTAINER_CREDENTIALS_FULL_URI") != nil {
            return try container()
        }
        tried.append("ECS container (AWS_CONTAINER_CREDENTIALS_*_URI)")
        if value("AWS_EC2_METADATA_DISABLED")?.lowercased() != "true" {
            if let found = try instanceMetadata() { return found }
            tried.append("EC2 instance metadata (no answer)")
        } else {
            tried.append("EC2 instance metadata (off: AWS_EC2_METADATA_DISABLED=true)")
        }
        throw ToolError(.credentialsMissing, "no AWS credentials found; tried: " + tried.joined(separator: "; "), fix: fix)
    }

    /// Credentials from profile `name`, as the SDKs take them: `role_arn` first (assumed with the
    /// credentials of `source_profile`, of `credential_source`, or with `web_identity_token_file`),
    /// then static keys, then `credential_process`. Nil when it has none of these; an error when
    /// one of them fails (the SDKs do not go on to the next source then). `visited` are the profiles
    /// that led here through `source_profile`, to refuse a loop.
    func fromProfile(_ name: String, config: AWSSharedConfig, visited: [String]) throws -> AWSCredentials? {
        let label = "profile \(name)"
        guard let profile = config.profile(name) else {
            throw ToolError(.credentialsMissing, "\(visited.last.map { "profile \($0)" } ?? "AWS_PROFILE") names source_profile \(name), which is in neither \(config.credentialsPath) nor \(config.configPath)",
                            fix: "Add a [\(name)] section with its keys to \(config.credentialsPath), or fix source_profile.")
        }
        if let role = profile["role_arn"], !role.isEmpty {
            let source: AWSCredentials
            if let sourceName = profile["source_profile"], !sourceName.isEmpty {
                if sourceName == name, let keys = try Self.staticKeys(profile, label: label) {
                    source = keys  // A profile may assume its role with its own keys.
                } else if visited.contains(sourceName) || sourceName == name {
                    throw ToolError(.failed, "\(label): source_profile goes round in a loop (\((visited + [name, sourceName]).joined(separator: " → ")))",
                                    fix: "Make the last source_profile one with keys (aws_access_key_id) or a credential_process.")
                } else if let found = try fromProfile(sourceName, config: config, visited: visited + [name]) {
                    source = found
                } else {
                    throw ToolError(.credentialsMissing, "\(label) assumes \(role) with source_profile \(sourceName), which has no credentials (no aws_access_key_id, credential_process or role_arn)",
                                    fix: "Add the keys of profile \(sourceName) to \(config.credentialsPath).")
                }
            } else if let credentialSource = profile["credential_source"], !credentialSource.isEmpty {
                source = try self.credentialSource(credentialSource, label: label)
            } else if let tokenFile = profile["web_identity_token_file"], !tokenFile.isEmpty {
                return try webIdentity(role: role, tokenFile: tokenFile, sessionName: profile["role_session_name"])
            } else {
                throw ToolError(.credentialsMissing, "\(label) has role_arn but neither source_profile, credential_source nor web_identity_token_file: nothing to assume the role with",
                                fix: "Add source_profile = PROFILE (a profile with keys) to profile \(name).")
            }
            return try assumeRole(role, profile: profile, label: label, with: source)
        }
        if let keys = try Self.staticKeys(profile, label: label) { return keys }
        if let command = profile["credential_process"], !command.isEmpty { return try process(command, label: label, config: config) }
        return nil
    }

    /// `aws_access_key_id`, `aws_secret_access_key` and `aws_session_token`; one of the first two
    /// without the other is an error.
    static func staticKeys(_ profile: [String: String], label: String) throws -> AWSCredentials? {
        let access = profile["aws_access_key_id"].flatMap { $0.isEmpty ? nil : $0 }
        let secret = profile["aws_secret_access_key"].flatMap { $0.isEmpty ? nil : $0 }
        guard let access, let secret else {
            guard access == nil && secret == nil else {
                throw ToolError(.credentialsMissing, "\(label) has \(access == nil ? "aws_secret_access_key but no aws_access_key_id" : "aws_access_key_id but no aws_secret_access_key")",
                                fix: "Give the profile both keys (aws configure --profile NAME), or neither.")
            }
            return nil
        }
        return AWSCredentials(accessKey: access, secretKey: secret, sessionToken: profile["aws_session_token"].flatMap { $0.isEmpty ? nil : $0 },
                              source: label)
    }

    /// A role's `credential_source`: `Environment`, `EcsContainer` or `Ec2InstanceMetadata`.
    func credentialSource(_ name: String, label: String) throws -> AWSCredentials {
        switch name {
        case "Environment":
            guard let keys = environmentKeys() else {
                throw ToolError(.credentialsMissing, "\(label) takes its source credentials from the environment, but AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set",
                                fix: "Set them, or change credential_source.")
            }
            return keys
        case "EcsContainer":
            return try container()
        case "Ec2InstanceMetadata":
            guard let found = try instanceMetadata() else {
                throw ToolError(.failed, "\(label) takes its source credentials from EC2 instance metadata, which did not answer", fix: "Run it on EC2, or change credential_source.")
            }
            return found
        default:
            throw ToolError(.failed, "\(label): credential_source \(name) is not one of Environment, EcsContainer, Ec2InstanceMetadata", fix: "Fix credential_source.")
        }
    }

    /// The STS endpoint: `AWS_ENDPOINT_URL_STS`, `AWS_ENDPOINT_URL`, the profile's, else the region's.
    var stsEndpoint: String {
        let endpoint = AWSSharedConfig.configuredEndpoint(service: "sts", environment: environment, config: config) ?? "https://sts.\(region).amazonaws.com"
        return endpoint.hasSuffix("/") ? endpoint : endpoint + "/"
    }

    /// STS AssumeRole, signed (SigV4) with the `source` credentials; `external_id`,
    /// `role_session_name` and `duration_seconds` from the profile. A profile with `mfa_serial` is
    /// refused: the tool asks nobody for a code.
    func assumeRole(_ role: String, profile: [String: String], label: String, with source: AWSCredentials) throws -> AWSCredentials {
        if profile["mfa_serial"].map({ !$0.isEmpty }) == true {
            throw ToolError(.failed, "\(label) needs an MFA code (mfa_serial) to assume \(role), and this tool asks for none",
                            fix: "Use a profile without mfa_serial for backups, or a credential_process that caches the session (aws configure export-credentials --format process).")
        }
        var duration = "3600"
        if let text = profile["duration_seconds"], !text.isEmpty {
            guard let seconds = Int(text), (900...43_200).contains(seconds) else {
                throw ToolError(.failed, "\(label): duration_seconds \(text) is not a number of seconds from 900 to 43200", fix: "Fix duration_seconds, or remove it (an hour).")
            }
            duration = String(seconds)
        }
        var form = [("Action", "AssumeRole"), ("Version", "2011-06-15"), ("RoleArn", role),
                    ("RoleSessionName", profile["role_session_name"].flatMap { $0.isEmpty ? nil : $0 } ?? "rack-gateway-db-\(Int(clock.now().timeIntervalSince1970))"),
                    ("DurationSeconds", duration)]
        if let external = profile["external_id"], !external.isEmpty { form.append(("ExternalId", external)) }
        var headers: [(name: String, value: String)] = [("Content-Type", "application/x-www-form-urlencoded")]
        if let token = source.sessionToken { headers.append(("X-Amz-Security-Token", token)) }
        let request = HTTPRequest(method: "POST", url: stsEndpoint, headers: headers,
                                  body: Array(form.map { "\($0.0)=\(S3Client.escape($0.1, keepSlash: false))" }.joined(separator: "&").utf8),
                                  sigV4: ("aws:amz:\(region):sts", "\(source.accessKey):\(source.secretKey)"), timeoutSeconds: 30)
        return try stsCredentials("AssumeRole", request: request, role: role, source: "\(label) role \(role)",
                                  fix: "Check that \(source.source) may assume \(role) (the role's trust policy, and sts:AssumeRole in its IAM policy), and role_arn in \(label).")
    }

    /// STS AssumeRoleWithWebIdentity (unsigned; the token is the proof).
    func webIdentity(role: String, tokenFile: String, sessionName: String?) throws -> AWSCredentials {
        guard let token = try? String(contentsOfFile: tokenFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines), !token.isEmpty else {
            throw ToolError(.failed, "cannot read the web identity token file \(tokenFile) (AWS_WEB_IDENTITY_TOKEN_FILE)",
                            fix: "Check that the service account token is mounted there.")
        }
        let session = sessionName.flatMap { $0.isEmpty ? nil : $0 } ?? "rack-gateway-db-\(Int(clock.now().timeIntervalSince1970))"
        let form = [("Action", "AssumeRoleWithWebIdentity"), ("Version", "2011-06-15"), ("RoleArn", role),
                    ("RoleSessionName", session), ("WebIdentityToken", token), ("DurationSeconds", "3600")]
            .map { "\($0.0)=\(S3Client.escape($0.1, keepSlash: false))" }.joined(separator: "&")
        let request = HTTPRequest(method: "POST", url: stsEndpoint, headers: [("Content-Type", "application/x-www-form-urlencoded")], body: Array(form.utf8), timeoutSeconds: 30)
        return try stsCredentials("AssumeRoleWithWebIdentity", request: request, role: role, source: "web identity \(role)",
                                  fix: "Check the role's trust policy for this service account, and AWS_ROLE_ARN.")
    }

    /// Sends an STS request and reads the credentials in its answer.
    func stsCredentials(_ action: String, request: HTTPRequest, role: String, source: String, fix: String) throws -> AWSCredentials {
        let response: HTTPResponse
        do {
            response = try HTTPClient.perform(request)
        } catch let error as HTTPError {
            throw ToolError(.failed, "STS \(action) for \(role) at \(request.url) failed: \(error.message)", fix: "Check the network, the region (AWS_REGION) and the STS endpoint (AWS_ENDPOINT_URL_STS).")
        }
        let fields = XMLFields(response.body, names: ["AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration", "Code", "Message"])
        guard response.status == 200, let access = fields.first("AccessKeyId"), let secret = fields.first("SecretAccessKey") else {
            throw ToolError(.failed, "STS \(action) for \(role) failed: HTTP \(response.status) \(fields.first("Code") ?? ""): \(fields.first("Message") ?? "")", fix: fix)
        }
        return AWSCredentials(accessKey: access, secretKey: secret, sessionToken: fields.first("SessionToken"),
                              expiration: fields.first("Expiration").flatMap(Self.parseDate), source: source)
    }

    /// A profile's `credential_process`, run as the AWS SDKs for Go and Java run it: by `/bin/sh -c`,
    /// with this environment, nothing on stdin, for at most `processTimeout` seconds. Its stdout is
    /// the JSON `{"Version": 1, "AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration"}`
    /// (the last two optional; no `Expiration` means the keys do not expire). Neither the command
    /// (it may carry a secret) nor its output appears in any message; the last line of its stderr does.
    func process(_ command: String, label: String, config: AWSSharedConfig) throws -> AWSCredentials {
        var child = ChildProcess(executable: "/bin/sh", arguments: ["-c", command], environment: environment, inheritEnvironment: false)
        child.timeout = processTimeout
        child.ownProcessGroup = true
        let subject = "the credential_process of \(label) (in \(config.filesDescription))"
        let output = try child.run()
        if output.timedOut {
            throw ToolError(.failed, "\(subject) did not finish within \(Int(processTimeout)) s and was stopped",
                            fix: "Run it by hand: it may be waiting for a sign-in (aws sso login) or for input.")
        }
        let said = output.stderr.split(whereSeparator: \.isNewline).last.map { ": " + String($0.prefix(300)) } ?? ""
        guard output.status == 0 else {
            throw ToolError(.failed, "\(subject) failed with exit status \(output.status)\(said)",
                            fix: "Run the credential_process command of \(label) by hand and fix what it says (an expired SSO session: aws sso login).")
        }
        let format = "it must print {\"Version\": 1, \"AccessKeyId\": ..., \"SecretAccessKey\": ..., \"SessionToken\": ..., \"Expiration\": ...}"
        guard let object = try? JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as? [String: Any] else {
            throw ToolError(.failed, "\(subject) printed something that is not a JSON object", fix: "Fix the command: \(format).")
        }
        guard (object["Version"] as? NSNumber)?.intValue == 1 else {
            throw ToolError(.failed, "\(subject) printed Version \(object["Version"].map { "\($0)" } ?? "(none)"); only Version 1 is known", fix: "Fix the command: \(format).")
        }
        guard let access = object["AccessKeyId"] as? String, !access.isEmpty, let secret = object["SecretAccessKey"] as? String, !secret.isEmpty else {
            throw ToolError(.failed, "\(subject) printed no AccessKeyId or no SecretAccessKey", fix: "Fix the command: \(format).")
        }
        var expiration: Date?
        if let text = object["Expiration"] as? String {
            guard let date = Self.parseDate(text) else {
                throw ToolError(.failed, "\(subject) printed an Expiration that is not an ISO 8601 time (\(text))", fix: "Fix the command: \(format).")
            }
            guard date > clock.now() else {
                throw ToolError(.credentialsMissing, "\(subject) printed credentials that expired at \(text)", fix: "Run the command by hand; renew its session (aws sso login).")
            }
            expiration = date
        }
        return AWSCredentials(accessKey: access, secretKey: secret, sessionToken: (object["SessionToken"] as? String).flatMap { $0.isEmpty ? nil : $0 },
                              expiration: expiration, source: "\(label) credential_process")
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
            throw ToolError(.credentialsMissing, "this EC2 instance has no instance profile role", fix: "Attach a role with S3 access to the instance, or set credentials.")
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
