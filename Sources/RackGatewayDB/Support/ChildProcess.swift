import Foundation
import RGWPostgres

/// Runs an external program (`pg_dump`, `psql`, `convox`) and collects its output.
///
/// Connection secrets go in `environment`, never in `arguments`.
public struct ChildProcess: Sendable {
    public var executable: String
    public var arguments: [String]
    /// Added to (and overriding) this process's environment, or the whole environment when
    /// `inheritEnvironment` is false.
    public var environment: [String: String]
    public var inheritEnvironment: Bool
    /// Seconds the child may run; then its process group gets SIGTERM, and SIGKILL 5 s later.
    public var timeout: Double?
    /// Start the child in a process group of its own, so that a timeout or the stall watchdog ends
    /// everything it started (a shell's children too).
    public var ownProcessGroup = false
    /// The run the child works for: stopping the run terminates it (its process group when it has
    /// one), and one started after the stop is terminated at once. A child started as clean-up work
    /// (inside `cancellation.cleaningUp`, e.g. the compensation's `convox scale`) is left to run.
    public var cancellation: Cancellation?

    public init(executable: String, arguments: [String], environment: [String: String] = [:], inheritEnvironment: Bool = true) {
        self.executable = executable
        self.arguments = arguments
        self.environment = environment
        self.inheritEnvironment = inheritEnvironment
    }

    public struct Output: Sendable {
        public var status: Int32
        public var stdout: String
        public var stderr: String
        /// True when `timeout` ended it.
        public var timedOut = false
    }

    /// Run to completion; stdout and stderr are drained together with `poll` while stdin is fed,
    /// so no pipe can fill up and block the child.
    ///
    /// Spawned with `posix_spawn` and reaped with `waitpid` rather than through Foundation's `Process`:
    /// that one learns of the exit through a socket the child inherits, so a program that leaves a daemon
    /// behind (`pg_ctl start`) would make it wait for ever.
    public func run(stdin: [UInt8]? = nil) throws -> Output {
        var remaining = stdin
        return try run(feeding: stdin == nil ? nil : { defer { remaining = nil }; return remaining })
    }

    /// Run with stdin fed from `producer`, called whenever the pipe has room, until it returns nil
    /// (stdin is then closed). If it throws, the child is killed (SIGKILL) before it sees an end of
    /// input, so a `psql --single-transaction` cannot commit half a script, and the error is rethrown.
    public func run(feeding producer: (() throws -> [UInt8]?)?) throws -> Output {
        let path = try Self.locate(executable)
        // A child that exits early must turn our next write into EPIPE, not kill us.
        if producer != nil { signal(SIGPIPE, SIG_IGN) }
        // Pipes are made close-on-exec and the child spawned under one lock, so a child spawned by
        // another thread at the same moment cannot inherit this one's pipe ends.
        Self.spawnLock.lock()
        var locked = true
        defer { if locked { Self.spawnLock.unlock() } }
        let outPipe = try Self.makePipe()
        let errPipe = try Self.makePipe()
        let inPipe: (read: Int32, write: Int32)? = producer == nil ? nil : try Self.makePipe()
        var closeInParent = [outPipe.write, errPipe.write]
        if let inPipe { closeInParent.append(inPipe.read) }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if let inPipe {
            posix_spawn_file_actions_adddup2(&actions, inPipe.read, 0)
        } else {
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        }
        posix_spawn_file_actions_adddup2(&actions, outPipe.write, 1)
        posix_spawn_file_actions_adddup2(&actions, errPipe.write, 2)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var defaults = sigset_t()
        sigemptyset(&defaults)
        sigaddset(&defaults, SIGPIPE)
        // This process ignores them (its run context handles them); the child must not inherit that.
        sigaddset(&defaults, SIGTERM)
        sigaddset(&defaults, SIGINT)
        sigaddset(&defaults, SIGHUP)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        var noMask = sigset_t()
        sigemptyset(&noMask)
        posix_spawnattr_setsigmask(&attributes, &noMask)
        var flags = POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK
        if ownProcessGroup {
            posix_spawnattr_setpgroup(&attributes, 0)
            flags |= POSIX_SPAWN_SETPGROUP
        }
        posix_spawnattr_setflags(&attributes, Int16(flags))

        let environment = inheritEnvironment
            ? ProcessInfo.processInfo.environment.merging(self.environment) { _, new in new }
            : self.environment
        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        var spawnStatus = posix_spawn(&pid, path, &actions, &attributes, argv, envp)
        // ETXTBSY: the executable was just written and a process forked meanwhile (by this process or
        // another) still holds its write descriptor until it execs; that lasts milliseconds.
        var busyRetries = 0
        while spawnStatus == ETXTBSY && busyRetries < 40 {
            busyRetries += 1
            usleep(25_000)
            spawnStatus = posix_spawn(&pid, path, &actions, &attributes, argv, envp)
        }
        closeInParent.forEach { close($0) }
        Self.spawnLock.unlock()
        locked = false
        guard spawnStatus == 0 else {
            [outPipe.read, errPipe.read].forEach { close($0) }
            if let inPipe { close(inPipe.write) }
            throw ToolError(.failed, "cannot start \(executable): \(String(cString: strerror(spawnStatus)))")
        }

        // A run that is stopped (a signal, the stall watchdog) takes its children with it.
        let target = ownProcessGroup ? -pid : pid
        var stopID: Int?
        do {
            stopID = try cancellation?.begin(executable) { kill(target, SIGTERM) }
        } catch {
            // Stopped while it was being started: it ends at once.
            kill(target, SIGTERM)
        }
        defer { cancellation?.unregister(stopID) }
        let deadline = timeout.map { Deadline(after: $0) }
        var killAt: Deadline?
        var timedOut = false
        var collected = [Data(), Data()]
        var open: [Int32: Int] = [outPipe.read: 0, errPipe.read: 1]
        var pending = ArraySlice<UInt8>()
        var writeFD = inPipe?.write
        var producerError: Error?
        /// Refill `pending` from the producer; false (stdin closed) at its end or on its error.
        func refill() -> Bool {
            guard let producer else { return false }
            do {
                while pending.isEmpty {
                    guard let next = try producer() else { return false }
                    pending = next[...]
                }
                return true
            } catch {
                producerError = error
                kill(pid, SIGKILL)
                return false
            }
        }
        if writeFD != nil, !refill(), let fd = writeFD { close(fd); writeFD = nil }
        var buffer = [UInt8](repeating: 0, count: 65536)
        while !open.isEmpty || writeFD != nil {
            var fds = open.keys.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            if let writeFD { fds.append(pollfd(fd: writeFD, events: Int16(POLLOUT), revents: 0)) }
            let wake = killAt ?? deadline
            let waitMilliseconds = wake.map { Int32(min(1000, $0.remaining * 1000)) } ?? -1
            let ready = poll(&fds, nfds_t(fds.count), waitMilliseconds)
            if let deadline, !timedOut, deadline.hasPassed {
                timedOut = true
                kill(target, SIGTERM)
                killAt = Deadline(after: 5)
            } else if let due = killAt, due.hasPassed {
                kill(target, SIGKILL)
                killAt = nil
            }
            if ready < 0 {
                if errno == EINTR { continue }
                break
            }
            for entry in fds where entry.revents != 0 {
                if entry.fd == writeFD {
                    let written = pending.withUnsafeBytes { write(entry.fd, $0.baseAddress, $0.count) }
                    if written > 0 { pending = pending.dropFirst(written) }
                    if written < 0 && errno != EINTR && errno != EAGAIN || (pending.isEmpty && !refill()) {
                        close(entry.fd)
                        writeFD = nil
                    }
                } else if let index = open[entry.fd] {
                    let count = read(entry.fd, &buffer, buffer.count)
                    if count > 0 {
                        collected[index].append(contentsOf: buffer[0..<count])
                    } else if count == 0 || (errno != EINTR && errno != EAGAIN) {
                        close(entry.fd)
                        open[entry.fd] = nil
                    }
                }
            }
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        if let producerError { throw producerError }
        let exitStatus: Int32 = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return Output(status: exitStatus, stdout: String(decoding: collected[0], as: UTF8.self),
                      stderr: String(decoding: collected[1], as: UTF8.self), timedOut: timedOut)
    }

    private static let spawnLock = NSLock()

    /// A pipe whose ends close on exec (the child gets its copies through dup2). Call under `spawnLock`.
    static func makePipe() throws -> (read: Int32, write: Int32) {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else {
            throw ToolError(.failed, "cannot create a pipe: \(String(cString: strerror(errno)))")
        }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        return (fds[0], fds[1])
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
