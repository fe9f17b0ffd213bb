import Foundation

/// `--dir` (or `RGW_BACKUP_DIR`): a local directory, or `s3://bucket/prefix` with the AWS settings
/// read the way AWS SDKs read them from the environment.
public enum StoreLocation: Equatable, Sendable {
    case local(String)
    case s3(bucket: String, prefix: String)

    public static func parse(_ text: String) throws -> StoreLocation {
        guard text.hasPrefix("s3://") else { return .local(text) }
        let rest = text.dropFirst("s3://".count)
        let bucket = String(rest.prefix { $0 != "/" })
        let prefix = String(rest.dropFirst(bucket.count).drop { $0 == "/" })
        let valid = bucket.count >= 3 && bucket.count <= 63
            && bucket.allSatisfy { $0.isLowercase || $0.isNumber || $0 == "-" || $0 == "." } && bucket.first != "-"
        guard valid else {
            throw ToolError(.usage, "\(text): \"\(bucket)\" is not an S3 bucket name (3 to 63 lower-case letters, digits, dots and hyphens)")
        }
        return .s3(bucket: bucket, prefix: prefix.hasSuffix("/") ? String(prefix.dropLast()) : prefix)
    }

    /// The S3 connection settings as AWS SDKs read them, the environment before the profile in the
    /// shared config file (`AWSSharedConfig`): the region from `AWS_REGION`, else
    /// `AWS_DEFAULT_REGION`, else the profile's `region`, else us-east-1; the endpoint from
    /// `endpoint` (`--s3-endpoint`), else `AWS_ENDPOINT_URL_S3`, else `AWS_ENDPOINT_URL`, else the
    /// profile's `endpoint_url`, else AWS's regional endpoint; path-style addressing for a custom
    /// endpoint, with `AWS_S3_FORCE_PATH_STYLE=true` or the profile's `s3.addressing_style = path`;
    /// credentials as AWS SDKs find them (`AWSCredentialsProvider`); times from the run's `clock`.
    public static func s3Client(bucket: String, endpoint: String?, environment: [String: String], clock: RunClock) throws -> S3Client {
        func value(_ name: String) -> String? { environment[name].flatMap { $0.isEmpty ? nil : $0 } }
        let config = try AWSSharedConfig(environment: environment)
        let region = value("AWS_REGION") ?? value("AWS_DEFAULT_REGION") ?? config.region ?? "us-east-1"
        let custom = endpoint ?? AWSSharedConfig.configuredEndpoint(service: "s3", environment: environment, config: config)
        let credentials: AWSCredentialsProvider
        do {
            credentials = try AWSCredentialsProvider(environment: environment, region: region, config: config, clock: clock)
        } catch let error as ToolError {
            throw ToolError(error.code, "cannot use s3://\(bucket): \(error.message)", fix: error.fix)
        }
        let pathStyle = custom != nil || value("AWS_S3_FORCE_PATH_STYLE") == "true" || config.s3AddressingStyle == "path"
        var client = S3Client(endpoint: custom ?? "https://s3.\(region).amazonaws.com", region: region, bucket: bucket,
                              credentials: credentials, pathStyle: pathStyle, clock: clock)
        if let attempts = value("RGW_S3_MAX_ATTEMPTS").flatMap(Int.init), attempts >= 1 { client.maxAttempts = attempts }
        if let backoff = value("RGW_S3_FIRST_BACKOFF").flatMap(Double.init), backoff >= 0 { client.firstBackoff = backoff }
        return client
    }
}
