import Foundation

/// Reads the data members of an archive in a store (S3) ahead of the restore's workers with one
/// streaming GET over all of them, in file order (the order the workers take them in), and holds at
/// most `limit` bytes of members not yet taken: when the workers fall behind, the stream waits (and
/// TCP slows the sender). One long read instead of a request per chunk: no per-request latency, and
/// stores that read a whole object per ranged request (moto) read it once. A broken transfer
/// resumes where it stopped (S3Client).
final class MemberPrefetcher: @unchecked Sendable {
    private let condition = NSCondition()
    private var ready: [Int: [UInt8]] = [:]
    private var buffered = 0
    private var failure: Error?
    private var finished = false
    private var stopped = false
    private let limit: Int
    private let members: [ArchiveManifest.Member]
    private let reader: ArchiveReader
    private let thread = DispatchGroup()

    /// `members` must follow each other in the file, in this order.
    init(reader: ArchiveReader, members: [ArchiveManifest.Member], limit: Int = 16 << 20) {
        self.reader = reader
        self.members = members
        self.limit = limit
        guard !members.isEmpty else {
            finished = true
            return
        }
        spawnThread("restore read-ahead", group: thread) { [self] in
            do {
                try reader.forEachMember(members) { [self] member, bytes in
                    condition.lock()
                    defer { condition.unlock() }
                    ready[member.offset] = bytes
                    buffered += bytes.count
                    condition.broadcast()
                    while buffered > self.limit && !stopped { condition.wait() }
                    return !stopped
                }
            } catch {
                condition.lock()
                failure = error
                condition.unlock()
            }
            condition.lock()
            finished = true
            condition.broadcast()
            condition.unlock()
        }
    }

    /// The compressed bytes of `member` into `buffer`, waiting for the stream to bring them.
    func take(_ member: ArchiveManifest.Member, into buffer: inout [UInt8]) throws {
        condition.lock()
        defer { condition.unlock() }
        while ready[member.offset] == nil && failure == nil && !finished && !stopped { condition.wait() }
        guard let bytes = ready.removeValue(forKey: member.offset) else {
            throw failure ?? ToolError(.failed, "the archive's data ended before member at offset \(member.offset)")
        }
        buffered -= bytes.count
        condition.broadcast()
        buffer = bytes
    }

    func stop() {
        condition.lock()
        stopped = true
        condition.broadcast()
        condition.unlock()
        thread.wait()
    }
}
