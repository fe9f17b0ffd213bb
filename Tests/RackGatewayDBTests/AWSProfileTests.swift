import Foundation
import RackGatewayDB
import Testing
import TestSupport

/// The AWS shared config and credentials files (`AWS_PROFILE`, static keys, `credential_process`,
/// `role_arn` with `source_profile` against moto's STS, `region` and `endpoint_url`), the order of
/// the credential chain, and the IAM actions named when S3 denies access.
@Suite("AWS profiles and IAM hints")
struct AWSProfileTests {
    /// A clock the test moves by hand.
    final class ManualClock: RunClock, @unchecked Sendable {
        var time: Date
        init(_ time: Date) { self.time = time }
        func now() -> Date { time }
        func sleep(_ seconds: Double) throws { time += seconds }
    }

    /// A directory holding `credentials` and `config` with these texts, and the environment that
    /// points at them (no HOME: nothing of the machine's own ~/.aws is read; no instance metadata).
    struct Files {
        let directory: String
        var environment: [String: String]
        init(credentials: String, config: String, profile: String? = nil) throws {
            directory = try TestArchives.temporaryDirectory()
            try credentials.write(toFile: directory + "/credentials", atomically: true, encoding: .utf8)
            try config.write(toFile: directory + "/config", atomically: true, encoding: .utf8)
            environment = ["AWS_SHARED_CREDENTIALS_FILE": directory + "/credentials", "AWS_CONFIG_FILE": directory + "/config",
                           "AWS_EC2_METADATA_DISABLED": "true", "PATH": "/usr/bin:/bin"]
            if let profile { environment["AWS_PROFILE"] = profile }
        }
        func remove() { try? FileManager.default.removeItem(atPath: directory) }

        /// An executable script in the directory.
        func script(_ name: String, _ body: String) throws -> String {
            let path = directory + "/" + name
            try TestArchives.writeExecutable("#!/bin/sh\n" + body, to: path)
            return path
        }
    }

    @Test func theSharedFilesParseAsTheSDKsReadThem() throws {
        let sections = try Files(credentials: """
            # a comment
            [prod]
            aws_access_key_id = AKIACREDFILE
            AWS_Secret_Access_Key=from-credentials
            """, config: """
            ; another comment
            [default]
            region = eu-central-1
            [ profile   prod ]
            region = ap-south-1
            aws_access_key_id = AKIACONFIGFILE
            s3 =
              addressing_style = path
            [profile other]
            output = json
            [sso-session corp]
            sso_region = us-east-1
            """, profile: "prod")
        defer { sections.remove() }
        let config = try AWSSharedConfig(environment: sections.environment)
        #expect(config.profileName == "prod" && config.profileWasSet)
        let prod = try #require(config.current)
        #expect(prod["aws_access_key_id"] == "AKIACREDFILE", "the credentials file wins over the config file")
        #expect(prod["aws_secret_access_key"] == "from-credentials", "keys are case-insensitive")
        #expect(config.region == "ap-south-1" && config.s3AddressingStyle == "path")
        #expect(config.profileNames == ["default", "other", "prod"], "sso-session sections are not profiles")
        #expect(config.profile("default")?["region"] == "eu-central-1")
        #expect(config.profile("missing") == nil)

        // Without AWS_PROFILE: the default profile, and ~ is HOME.
        var environment = sections.environment
        environment["AWS_PROFILE"] = nil
        environment["AWS_SHARED_CREDENTIALS_FILE"] = nil
        environment["HOME"] = "/nonexistent-home"
        let unset = try AWSSharedConfig(environment: environment)
        #expect(unset.profileName == "default" && !unset.profileWasSet && unset.credentialsPath == "/nonexistent-home/.aws/credentials")
        #expect(unset.region == "eu-central-1")
    }

    @Test func aProfileGivesKeysRegionAndEndpointButTheEnvironmentWins() throws {
        let moto = try MotoServer.shared()
        let bucket = try moto.freshBucket().bucket
        let proxy = try FaultProxy(upstream: moto.endpoint)
        let files = try Files(credentials: """
            [backup]
            aws_access_key_id = AKIAPROFILEKEY
            aws_secret_access_key = profile-secret
            """, config: """
            [profile backup]
            region = eu-west-3
            endpoint_url = \(proxy.endpoint)
            """, profile: "backup")
        defer { files.remove() }
        let client = try StoreLocation.s3Client(bucket: bucket, endpoint: nil, environment: files.environment, clock: SystemClock())
        #expect(client.region == "eu-west-3" && client.endpoint == proxy.endpoint && client.pathStyle)
        #expect(client.credentials.source == "profile backup")
        try client.putObject(key: "from-profile", data: [1])
        #expect(try proxy.requests().last?.keyId == "AKIAPROFILEKEY")

        // The environment comes first: its keys, its region, its endpoint.
        let environment = files.environment.merging(["AWS_ACCESS_KEY_ID": "AKIAENVIRONMENT", "AWS_SECRET_ACCESS_KEY": "env-secret",
                                                     "AWS_REGION": "us-west-1", "AWS_ENDPOINT_URL_S3": moto.endpoint]) { $1 }
        let overridden = try StoreLocation.s3Client(bucket: bucket, endpoint: nil, environment: environment, clock: SystemClock())
        #expect(overridden.region == "us-west-1" && overridden.endpoint == moto.endpoint && overridden.credentials.source == "environment")
        #expect(try overridden.credentials.current().accessKey == "AKIAENVIRONMENT")
        // Even when AWS_PROFILE names a profile neither file has.
        let missing = environment.merging(["AWS_PROFILE": "nope"]) { $1 }
        #expect(try StoreLocation.s3Client(bucket: bucket, endpoint: nil, environment: missing, clock: SystemClock()).credentials.source == "environment")
        // And --s3-endpoint before all of them.
        #expect(try StoreLocation.s3Client(bucket: bucket, endpoint: "http://127.0.0.1:1", environment: environment, clock: SystemClock()).endpoint == "http://127.0.0.1:1")
    }

    @Test func aCredentialProcessScriptGivesKeysAndRunsAgainBeforeTheyExpire() throws {
        let files = try Files(credentials: "", config: "", profile: "sso")
        defer { files.remove() }
        let count = files.directory + "/runs"
        let script = try files.script("export-credentials", """
            echo run >> "$RGW_TEST_COUNT"
            runs=$(wc -l < "$RGW_TEST_COUNT" | tr -d ' ')
            printf '{"Version": 1, "AccessKeyId": "ASIAPROCESS%s", "SecretAccessKey": "process-secret", "SessionToken": "process-token", "Expiration": "2030-01-01T00:10:00Z"}\\n' "$runs"
            """)
        // The command is run by a shell, with its arguments; it is named in no message.
        try "[profile sso]\ncredential_process = \(script) --profile SECRET-ARGUMENT\n".write(toFile: files.directory + "/config", atomically: true, encoding: .utf8)
        let clock = ManualClock(ISO8601DateFormatter().date(from: "2030-01-01T00:00:00Z")!)
        let environment = files.environment.merging(["RGW_TEST_COUNT": count]) { $1 }
        let provider = try AWSCredentialsProvider(environment: environment, region: "us-east-1", clock: clock)
        let first = try provider.current()
        #expect(first.accessKey == "ASIAPROCESS1" && first.sessionToken == "process-token" && provider.source == "profile sso credential_process")
        clock.time += 240
        #expect(try provider.current().accessKey == "ASIAPROCESS1", "not run again while more than five minutes are left")
        clock.time += 120
        #expect(try provider.current().accessKey == "ASIAPROCESS2", "run again five minutes before they expire")

        // Failures: its exit status and the last line it wrote to stderr; never the command or its output.
        let cases: [(String, String, [String])] = [
            ("fails", "echo 'starting' >&2; echo 'Error loading SSO Token: the session has expired' >&2; exit 3",
             ["exit status 3", "the session has expired", "profile sso"]),
            ("version", #"echo '{"Version": 2, "AccessKeyId": "AKIAOUTPUT", "SecretAccessKey": "output-secret"}'"#, ["Version 2", "Version 1"]),
            ("garbage", "echo 'AKIAOUTPUT output-secret'", ["not a JSON object"]),
            ("expired", #"echo '{"Version": 1, "AccessKeyId": "AKIAOUTPUT", "SecretAccessKey": "output-secret", "Expiration": "2029-12-31T00:00:00Z"}'"#, ["expired at 2029-12-31"]),
            ("slow", "sleep 30", ["did not finish within 1 s"]),
        ]
        for (name, body, words) in cases {
            let path = try files.script(name, body)
            try "[profile sso]\ncredential_process = \(path) SECRET-ARGUMENT\n".write(toFile: files.directory + "/config", atomically: true, encoding: .utf8)
            let started = Date()
            let error = try #require(throws: ToolError.self) {
                _ = try AWSCredentialsProvider(environment: environment, region: "us-east-1", clock: clock, processTimeout: 1)
            }
            for word in words { #expect(error.description.contains(word), "\(name): \(error)") }
            for secret in ["SECRET-ARGUMENT", "AKIAOUTPUT", "output-secret"] { #expect(!error.description.contains(secret), "\(name): \(error)") }
            #expect(Date().timeIntervalSince(started) < 10, "\(name): the timeout stops it")
        }
    }

    @Test func aRoleIsAssumedThroughSTSWithTheSourceProfilesKeys() throws {
        let moto = try MotoServer.shared()
        let bucket = try moto.freshBucket().bucket
        let proxy = try FaultProxy(upstream: moto.endpoint)
        let files = try Files(credentials: """
            [base]
            aws_access_key_id = AKIASOURCEPROFILE
            aws_secret_access_key = source-secret
            """, config: """
            [profile deploy]
            role_arn = arn:aws:iam::123456789012:role/rgw-backup
            source_profile = base
            external_id = rgw-external
            role_session_name = rgw-test-session
            duration_seconds = 900
            endpoint_url = \(proxy.endpoint)
            [profile loop-a]
            role_arn = arn:aws:iam::123456789012:role/a
            source_profile = loop-b
            [profile loop-b]
            role_arn = arn:aws:iam::123456789012:role/b
            source_profile = loop-a
            """, profile: "deploy")
        defer { files.remove() }
        let client = try StoreLocation.s3Client(bucket: bucket, endpoint: nil, environment: files.environment, clock: SystemClock())
        #expect(client.credentials.source == "profile deploy role arn:aws:iam::123456789012:role/rgw-backup")
        let assumed = try client.credentials.current()
        #expect(assumed.accessKey.hasPrefix("ASIA") && assumed.sessionToken != nil && assumed.expiration != nil, "\(assumed.accessKey)")
        try client.putObject(key: "from-role", data: [1])
        let requests = try proxy.requests()
        let sts = try #require(requests.first, "the AssumeRole call went to the profile's endpoint")
        #expect(sts.method == "POST" && sts.path == "/" && sts.keyId == "AKIASOURCEPROFILE", "signed with the source profile's keys: \(sts)")
        let put = try #require(requests.last)
        #expect(put.path.hasSuffix("/from-role") && put.keyId == assumed.accessKey && put.token, "the S3 call is signed with the role's keys")

        let loop = try #require(throws: ToolError.self) {
            _ = try StoreLocation.s3Client(bucket: bucket, endpoint: nil, environment: files.environment.merging(["AWS_PROFILE": "loop-a"]) { $1 }, clock: SystemClock())
        }
        #expect(loop.message.contains("loop") && loop.message.contains("loop-a → loop-b → loop-a"), "\(loop)")
    }

    @Test func aMissingProfileAndNoCredentialsAreNamedWithEverySourceTried() throws {
        let files = try Files(credentials: "[prod]\naws_access_key_id = AKIAPROD\naws_secret_access_key = prod-secret\n",
                              config: "[default]\nregion = eu-west-1\n", profile: "prdo")
        defer { files.remove() }
        let missing = try #require(throws: ToolError.self) {
            _ = try StoreLocation.s3Client(bucket: "rgw-bucket", endpoint: nil, environment: files.environment, clock: SystemClock())
        }
        for word in ["AWS_PROFILE names profile prdo", files.directory + "/credentials", files.directory + "/config",
                     "profiles there: default, prod", "environment (AWS_ACCESS_KEY_ID", "web identity", "s3://rgw-bucket"] {
            #expect(missing.message.contains(word), "\(word): \(missing)")
        }
        #expect(missing.fix?.contains("AWS_PROFILE") == true && !missing.description.contains("prod-secret"))

        // No AWS_PROFILE and a default profile without keys: every source, in the chain's order.
        var environment = files.environment
        environment["AWS_PROFILE"] = nil
        let none = try #require(throws: ToolError.self) {
            _ = try StoreLocation.s3Client(bucket: "rgw-bucket", endpoint: nil, environment: environment, clock: SystemClock())
        }
        let sources = ["environment", "web identity", "profile default in \(files.directory)/credentials", "ECS container", "EC2 instance metadata"]
        let positions = sources.map { none.message.range(of: $0)?.lowerBound }
        #expect(positions.allSatisfy { $0 != nil } && positions.compactMap { $0 } == positions.compactMap { $0 }.sorted(), "\(none)")

        // A profile that signs in with IAM Identity Center and has no credential_process: how to give it one.
        try "[profile corp]\nsso_session = corp\nsso_account_id = 123456789012\nsso_role_name = Backup\n[sso-session corp]\nsso_region = us-east-1\n"
            .write(toFile: files.directory + "/config", atomically: true, encoding: .utf8)
        let sso = try #require(throws: ToolError.self) {
            _ = try StoreLocation.s3Client(bucket: "rgw-bucket", endpoint: nil, environment: files.environment.merging(["AWS_PROFILE": "corp"]) { $1 }, clock: SystemClock())
        }
        #expect(sso.message.contains("profile corp in") && sso.fix?.contains("aws configure export-credentials --profile corp --format process") == true, "\(sso)")
        try "[default]\nregion = eu-west-1\n".write(toFile: files.directory + "/config", atomically: true, encoding: .utf8)

        // Through the CLI, as a person would meet it.
        let cli = try CLI.run(["list", "--dir", "s3://rgw-bucket"], environment: files.environment)
        #expect(cli.status == 1 && cli.stderr.contains("AWS_PROFILE names profile prdo") && cli.stderr.contains("profiles there: default, prod"), "\(cli)")
    }

    @Test func theCLIListsAndBacksUpWithACredentialProcessProfile() throws {
        let moto = try MotoServer.shared()
        let bucket = try moto.freshBucket().bucket
        let proxy = try FaultProxy(upstream: moto.endpoint)
        let files = try Files(credentials: "", config: "", profile: "laptop")
        defer { files.remove() }
        let script = try files.script("credentials", #"echo '{"Version": 1, "AccessKeyId": "ASIALAPTOP", "SecretAccessKey": "laptop-secret", "SessionToken": "laptop-token"}'"#)
        try "[profile laptop]\nregion = us-east-1\nendpoint_url = \(proxy.endpoint)\ncredential_process = \(script)\n"
            .write(toFile: files.directory + "/config", atomically: true, encoding: .utf8)
        try TestDatabase.withMigrated { source in
            let backup = try CLI.run(["backup", "--dir", "s3://\(bucket)/laptop"], environment: files.environment.merging(["RGW_DATABASE_URL": source.url]) { $1 })
            #expect(backup.status == 0, "\(backup)")
            let list = try CLI.run(["list", "--dir", "s3://\(bucket)/laptop"], environment: files.environment)
            #expect(list.status == 0 && list.stdout.contains(".sql.gz"), "\(list)")
            #expect(!(backup.output + list.output).contains("laptop-secret") && !(backup.output + list.output).contains("laptop-token"))
            let requests = try proxy.requests()
            #expect(!requests.isEmpty && requests.allSatisfy { $0.keyId == "ASIALAPTOP" && $0.token }, "every request signed with the process's keys")

            // Denied: the hint names the IAM action, its resource and where the credentials came from.
            try proxy.set([.init(times: -1, action: "denied")])
            let denied = try CLI.run(["list", "--dir", "s3://\(bucket)/laptop"], environment: files.environment)
            #expect(denied.status == 1 && denied.stderr.contains("need s3:ListBucket on arn:aws:s3:::\(bucket)")
                    && denied.stderr.contains("they came from profile laptop credential_process"), "\(denied)")
        }
    }

    @Test func accessDeniedNamesTheIAMActionNotTheAPIOperation() throws {
        #expect(S3Client.Failure.iamAction(for: "ListObjectsV2") == "s3:ListBucket")
        #expect(S3Client.Failure.iamAction(for: "HeadObject") == "s3:GetObject")
        #expect(S3Client.Failure.iamAction(for: "UploadPart") == "s3:PutObject")
        #expect(S3Client.Failure.iamAction(for: "CompleteMultipartUpload") == "s3:PutObject")
        #expect(S3Client.Failure.iamAction(for: "AbortMultipartUpload") == "s3:AbortMultipartUpload")
        #expect(S3Client.Failure.iamAction(for: "ListMultipartUploads") == "s3:ListBucketMultipartUploads")
        #expect(S3Client.Failure.iamAction(for: "DeleteObject") == "s3:DeleteObject")

        // A real 403 from the proxy in front of moto, for a listing and for an upload.
        let moto = try MotoServer.shared()
        let bucket = try moto.freshBucket().bucket
        let proxy = try FaultProxy(upstream: moto.endpoint)
        try proxy.set([.init(times: -1, action: "denied")])
        var client = proxy.client(bucket: bucket)
        client.maxAttempts = 1
        let list = try #require(throws: S3Client.Failure.self) { _ = try client.list(prefix: "nightly/") }
        #expect(list.hint?.contains("s3:ListBucket on arn:aws:s3:::\(bucket)") == true && list.hint?.contains("ListObjectsV2") == false, "\(list)")
        #expect(list.hint?.contains("they came from given") == true && list.hint?.contains("kms:") == false, "\(list)")
        let put = try #require(throws: S3Client.Failure.self) { try client.putObject(key: "nightly/x", data: [1]) }
        #expect(put.hint?.contains("s3:PutObject on arn:aws:s3:::\(bucket)/*") == true && put.hint?.contains("kms:GenerateDataKey") == true, "\(put)")
        let delete = try #require(throws: S3Client.Failure.self) { try client.deleteObject(key: "nightly/x") }
        #expect(delete.hint?.contains("s3:DeleteObject on arn:aws:s3:::\(bucket)/*") == true, "\(delete)")
    }
}
