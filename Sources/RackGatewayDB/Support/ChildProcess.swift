import Foundation

/// Runs an external program (`pg_dump`, `psql`, `convox`) and collects its output.
///
/// Connection secrets go in `environment`, never in `arguments`.
public struct ChildProcess: Sendable {
    public var executable: String
    public var arguments: [String]
    /// Added to (and overriding) this process's environment.
    public var environment: [String: String]

    public init(executable: String, arguments: [String], environment: [String: String] = [:]) {
        self.executable = executable
        self.arguments = arguments
        self.environment = environment
    }

    public struct Output: Sendable {
        public var status: Int32
        public var stdout: String
        public var stderr: String
    }

    /// Run to completion with stdin closed; output is read concurrently so neither pipe blocks.
    public func run(stdin: [UInt8]? = nil) throws -> Output {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try Self.locate(executable))
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        let out = Pipe()
        let err = Pipe()
        let input = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = stdin == nil ? FileHandle.nullDevice : input
        do {
            try process.run()
        } catch {
            throw ToolError(.failed, "cannot start \(executable): \(error.localizedDescription)")
        }
        let collector = PipeCollector()
        let group = DispatchGroup()
        for (index, pipe) in [out, err].enumerated() {
            group.enter()
            DispatchQueue.global().async {
                let data = pipe.fileHandleForReading.readDataToEndOfFile()
                collector.store(data, at: index)
                group.leave()
            }
        }
        if let stdin {
            input.fileHandleForWriting.write(Data(stdin))
            try? input.fileHandleForWriting.close()
        }
        group.wait()
        process.waitUntilExit()
        return Output(status: process.terminationStatus, stdout: collector.text(0), stderr: collector.text(1))
    }

    /// The full path of `name`: as given when it contains a slash, else the first match on PATH.
    public static func locate(_ name: String, path: String? = ProcessInfo.processInfo.environment["PATH"]) throws -> String {
        if name.contains("/") { return name }
        for directory in (path ?? "/usr/bin:/bin").split(separator: ":") {
            let candidate = "\(directory)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw ToolError(.failed, "\(name) not found on PATH", fix: "Install it (Debian: apt-get install postgresql-client) or add its directory to PATH.")
    }

    public static func find(_ name: String) -> String? { try? locate(name) }
}

private final class PipeCollector: @unchecked Sendable {
    private let lock = NSLock()
    private var data: [Int: Data] = [:]

    func store(_ value: Data, at index: Int) {
        lock.lock()
        data[index] = value
        lock.unlock()
    }

    func text(_ index: Int) -> String {
        lock.lock()
        defer { lock.unlock() }
        return String(decoding: data[index] ?? Data(), as: UTF8.self)
    }
}
