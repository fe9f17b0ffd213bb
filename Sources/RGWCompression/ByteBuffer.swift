extension Array where Element == UInt8 {
    /// Make the count `count`, keeping the capacity, so a buffer reused in a loop allocates once.
    /// New bytes are zero.
    public mutating func resize(to count: Int) {
        if self.count > count {
            removeLast(self.count - count)
        } else if self.count < count {
            // From a block of zeros, a copy at a time: appending repeatElement goes element by
            // element in a debug build (the tests' build), 20 times slower on a 4 MiB chunk.
            reserveCapacity(count)
            while self.count < count {
                append(contentsOf: zeroBlock.prefix(count - self.count))
            }
        }
    }
}

private let zeroBlock = [UInt8](repeating: 0, count: 64 << 10)
