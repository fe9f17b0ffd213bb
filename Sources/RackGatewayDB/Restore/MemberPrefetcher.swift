import Foundation

/// Reads the data members of an archive in a store (S3) ahead of the restore's workers: runs of
/// members that follow each other both in the order the workers take them and in the file are
/// fetched together with one ranged GET of up to `groupBytes`, on `threads` threads, at most
/// `ahead` groups beyond the oldest one still in use. A request's latency then overlaps the loading
/// of earlier chunks instead of adding to each chunk. Memory: about `ahead` groups.
final class MemberPrefetcher: @unchecked Sendable {
    private let condition = NSCondition()
    private let reader: ArchiveReader
    private let groups: [(offset: Int, length: Int, members: Int)]
    /// A member's group, by the member's offset in the archive.
    private let groupOf: [Int: Int]
    private var data: [[UInt8]?]
    private var errors: [Error?]
    private var remaining: [Int]
    private var nextToFetch = 0
    private var oldestLive = 0
    private var stopped = false
    private let ahead: Int
    private let threads = DispatchGroup()

    init(reader: ArchiveReader, members: [ArchiveManifest.Member], groupBytes: Int = 8 << 20, ahead: Int, threads count: Int) {
        self.reader = reader
        self.ahead = max(2, ahead)
        var groups: [(offset: Int, length: Int, members: Int)] = []
        var groupOf: [Int: Int] = [:]
        for member in members {
            if let last = groups.last, last.offset + last.length == member.offset, last.length + member.length <= groupBytes {
                groups[groups.count - 1].length += member.length
                groups[groups.count - 1].members += 1
            } else {
                groups.append((member.offset, member.length, 1))
            }
            groupOf[member.offset] = groups.count - 1
        }
        self.groups = groups
        self.groupOf = groupOf
        data = Array(repeating: nil, count: groups.count)
        errors = Array(repeating: nil, count: groups.count)
        remaining = groups.map(\.members)
        for index in 0..<max(1, count) {
            spawnThread("restore prefetch \(index)", group: threads) { [self] in fetchLoop() }
        }
    }

    private func fetchLoop() {
        while true {
            condition.lock()
            while !stopped && nextToFetch < groups.count && nextToFetch >= oldestLive + ahead { condition.wait() }
            guard !stopped, nextToFetch < groups.count else {
                condition.unlock()
                return
            }
            let index = nextToFetch
            nextToFetch += 1
            condition.unlock()
            var bytes: [UInt8]?
            var failure: Error?
            do { bytes = try reader.readBytes(offset: groups[index].offset, count: groups[index].length) } catch { failure = error }
            condition.lock()
            data[index] = bytes
            errors[index] = failure
            condition.broadcast()
            condition.unlock()
        }
    }

    /// The compressed bytes of `member` into `buffer`, waiting for its group to arrive.
    func take(_ member: ArchiveManifest.Member, into buffer: inout [UInt8]) throws {
        guard let index = groupOf[member.offset] else {
            return try reader.readBytes(offset: member.offset, count: member.length, into: &buffer)
        }
        condition.lock()
        defer { condition.unlock() }
        while data[index] == nil && errors[index] == nil && !stopped { condition.wait() }
        if let error = errors[index] { throw error }
        guard let bytes = data[index] else { throw ToolError(.failed, "the restore stopped while reading ahead") }
        let start = member.offset - groups[index].offset
        buffer.removeAll(keepingCapacity: true)
        buffer.append(contentsOf: bytes[start..<(start + member.length)])
        remaining[index] -= 1
        if remaining[index] == 0 {
            data[index] = nil
            while oldestLive < groups.count && remaining[oldestLive] == 0 { oldestLive += 1 }
            condition.broadcast()
        }
    }

    func stop() {
        condition.lock()
        stopped = true
        condition.broadcast()
        condition.unlock()
        threads.wait()
    }
}
