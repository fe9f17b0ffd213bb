import Foundation

/// The AWS shared config and credentials files, read as the AWS SDKs and CLI read them: the profile
/// named by `AWS_PROFILE` (else `default`); the credentials file at `AWS_SHARED_CREDENTIALS_FILE`
/// (else `~/.aws/credentials`, sections `[NAME]`) and the config file at `AWS_CONFIG_FILE` (else
/// `~/.aws/config`, sections `[profile NAME]` and `[default]`). A profile's settings are those of
/// both files, the credentials file winning where both set one. Keys are case-insensitive; lines
/// starting with `#` or `;` are comments; an indented `key = value` under a key with no value is a
/// sub-setting (`s3 =` then `  addressing_style = path` is `s3.addressing_style`).
public struct AWSSharedConfig: Sendable {
    /// The profile in use: `AWS_PROFILE`, else `default`.
    public let profileName: String
    /// True when `AWS_PROFILE` named it (a missing one is then an error, not a quiet fall-through).
    public let profileWasSet: Bool
    public let credentialsPath: String
    public let configPath: String
    /// Sections of the credentials file, by profile name.
    let credentialsSections: [String: [String: String]]
    /// Sections of the config file, by their header (`profile prod`, `default`, `services s3-local`).
    let configSections: [String: [String: String]]

    public init(environment: [String: String]) throws {
        func value(_ name: String) -> String? { environment[name].flatMap { $0.isEmpty ? nil : $0 } }
        let home = value("HOME")
        func expand(_ path: String) -> String {
            guard path == "~" || path.hasPrefix("~/"), let home else { return path }
            return home + path.dropFirst()
        }
        profileWasSet = value("AWS_PROFILE") != nil
        profileName = value("AWS_PROFILE") ?? "default"
        credentialsPath = expand(value("AWS_SHARED_CREDENTIALS_FILE") ?? "~/.aws/credentials")
        configPath = expand(value("AWS_CONFIG_FILE") ?? "~/.aws/config")
        credentialsSections = try Self.read(credentialsPath, variable: "AWS_SHARED_CREDENTIALS_FILE")
        configSections = try Self.read(configPath, variable: "AWS_CONFIG_FILE")
    }

    /// The settings of profile `name` from both files, or nil when neither has it.
    public func profile(_ name: String) -> [String: String]? {
        let fromConfig = configSections["profile " + name] ?? (name == "default" ? configSections["default"] : nil)
        let fromCredentials = credentialsSections[name]
        guard fromConfig != nil || fromCredentials != nil else { return nil }
        return (fromConfig ?? [:]).merging(fromCredentials ?? [:]) { _, credentials in credentials }
    }

    /// The profile in use, or nil when neither file has it.
    public var current: [String: String]? { profile(profileName) }

    /// Every profile either file names, sorted (for messages).
    public var profileNames: [String] {
        let fromConfig = configSections.keys.compactMap { header -> String? in
            header == "default" ? "default" : header.hasPrefix("profile ") ? String(header.dropFirst("profile ".count)) : nil
        }
        return Set(fromConfig + credentialsSections.keys).sorted()
    }

    /// The files, for messages: "~/.aws/credentials and ~/.aws/config" as they are spelled here,
    /// each marked when it does not exist.
    public var filesDescription: String {
        [credentialsPath, configPath].map { FileManager.default.fileExists(atPath: $0) ? $0 : "\($0) (absent)" }.joined(separator: " and ")
    }

    /// The profile's region.
    public var region: String? { current?["region"].flatMap { $0.isEmpty ? nil : $0 } }

    /// The profile's endpoint for `service` (`s3`, `sts`): its `services` section's
    /// `SERVICE.endpoint_url`, else its own `endpoint_url`.
    public func endpoint(for service: String) -> String? {
        guard let profile = current else { return nil }
        if let services = profile["services"], let url = configSections["services " + services]?[service + ".endpoint_url"], !url.isEmpty { return url }
        return profile["endpoint_url"].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// Whether the profile sets `ignore_configured_endpoint_urls = true`.
    public var ignoresConfiguredEndpoints: Bool { current?["ignore_configured_endpoint_urls"]?.lowercased() == "true" }

    /// The endpoint configured for `service` (`s3`, `sts`), in the SDKs' order: the environment's
    /// `AWS_ENDPOINT_URL_<SERVICE>`, then `AWS_ENDPOINT_URL`, then the profile's (`endpoint(for:)`);
    /// none when `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true` or the profile's
    /// `ignore_configured_endpoint_urls = true` say to use AWS's own.
    public static func configuredEndpoint(service: String, environment: [String: String], config: AWSSharedConfig?) -> String? {
        func value(_ name: String) -> String? { environment[name].flatMap { $0.isEmpty ? nil : $0 } }
        if value("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")?.lowercased() == "true" || config?.ignoresConfiguredEndpoints == true { return nil }
        return value("AWS_ENDPOINT_URL_" + service.uppercased()) ?? value("AWS_ENDPOINT_URL") ?? config?.endpoint(for: service)
    }

    /// The profile's `s3.addressing_style` (`path`, `virtual` or `auto`).
    public var s3AddressingStyle: String? { current?["s3.addressing_style"]?.lowercased() }

    /// The sections of an INI file, or none when it does not exist.
    static func read(_ path: String, variable: String) throws -> [String: [String: String]] {
        guard FileManager.default.fileExists(atPath: path) else { return [:] }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ToolError(.failed, "cannot read the AWS file \(path)", fix: "Check its permissions, or point \(variable) at another file.")
        }
        return parse(text)
    }

    /// INI as the AWS SDKs read it: `[section]` headers (inner spaces kept, outer ones trimmed),
    /// `key = value` lines (keys lower-cased), full-line comments, and indented sub-settings under a
    /// key whose value is empty.
    static func parse(_ text: String) -> [String: [String: String]] {
        var sections: [String: [String: String]] = [:]
        var section: String?
        var parent: String?
        for raw in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("[") {
                guard let close = line.firstIndex(of: "]") else { section = nil; continue }
                let name = line[line.index(after: line.startIndex)..<close].trimmingCharacters(in: .whitespaces)
                    .split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
                section = name
                parent = nil
                if sections[name] == nil { sections[name] = [:] }
                continue
            }
            guard let section, let equals = line.firstIndex(of: "=") else { continue }
            let key = line[..<equals].trimmingCharacters(in: .whitespaces).lowercased()
            let value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            let indented = raw.first == " " || raw.first == "\t"
            if indented, let parent {
                sections[section]![parent + "." + key] = value
            } else {
                sections[section]![key] = value
                parent = value.isEmpty ? key : nil
            }
        }
        return sections
    }
}
