extension Array where Element == UInt8 {
    /// Make the count `count`, keeping the capacity, so a buffer reused in a loop allocates once.
    /// New bytes are zero.
    public mutating func resize(to count: Int) {
        if self.count > count {
            removeLast(self.count - count)
        } else if self.count < count {
            append(contentsOf: repeatElement(0, count: count - self.count))
        }
    }
}
