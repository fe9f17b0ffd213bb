import CZlib

/// Streaming gunzip of a foreign `.gz` file (any number of members) with zlib.
///
/// Feed compressed bytes with `inflate(_:into:)`; output is appended to the caller's buffer.
public final class GzipStreamInflater {
    private let stream: UnsafeMutablePointer<z_stream>
    private var output = [UInt8](repeating: 0, count: 256 * 1024)
    public private(set) var finishedMember = false

    public init() throws {
        stream = .allocate(capacity: 1)
        stream.initialize(to: z_stream())
        // 16 + MAX_WBITS: expect a gzip header.
        let status = rgw_inflateInit2(stream, 16 + MAX_WBITS)
        guard status == Z_OK else {
            stream.deallocate()
            throw CompressionError(operation: "inflateInit2", message: "zlib error \(status)")
        }
    }

    deinit {
        inflateEnd(stream)
        stream.deallocate()
    }

    /// Inflate `input`, appending the decompressed bytes to `sink`. Members are followed across.
    public func inflate(_ input: ArraySlice<UInt8>, into sink: inout [UInt8]) throws {
        try input.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return }
            stream.pointee.next_in = UnsafeMutablePointer(mutating: base.assumingMemoryBound(to: Bytef.self))
            stream.pointee.avail_in = uInt(raw.count)
            while stream.pointee.avail_in > 0 {
                let (status, produced) = output.withUnsafeMutableBytes { out -> (Int32, Int) in
                    stream.pointee.next_out = out.baseAddress!.assumingMemoryBound(to: Bytef.self)
                    stream.pointee.avail_out = uInt(out.count)
                    let status = CZlib.inflate(stream, Z_NO_FLUSH)
                    return (status, out.count - Int(stream.pointee.avail_out))
                }
                sink.append(contentsOf: output[0..<produced])
                switch status {
                case Z_OK, Z_BUF_ERROR:
                    finishedMember = false
                    if status == Z_BUF_ERROR && produced == 0 { return }
                case Z_STREAM_END:
                    finishedMember = true
                    inflateReset(stream)
                default:
                    let message = stream.pointee.msg.map { String(cString: $0) } ?? "zlib error \(status)"
                    throw CompressionError(operation: "gunzip", message: message)
                }
            }
        }
    }
}
