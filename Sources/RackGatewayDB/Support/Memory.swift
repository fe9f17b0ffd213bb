/// glibc's `mallopt`, which the Glibc module does not export.
@_silgen_name("mallopt")
private func glibcMallopt(_ parameter: Int32, _ value: Int32) -> Int32

public enum Memory {
    /// Allocations of at least `bytes` are mapped and unmapped on their own (glibc `M_MMAP_THRESHOLD`,
    /// which also stops glibc raising that threshold by itself), so freed multi-megabyte buffers go
    /// back to the system instead of lingering in per-thread arenas.
    public static func mapLargeAllocations(from bytes: Int32) {
        #if os(Linux)
        _ = glibcMallopt(-3, bytes)  // M_MMAP_THRESHOLD
        #endif
    }
}
