/// A failure reported by zlib or libdeflate, turned into a value at the call that saw it.
public struct CompressionError: Error, CustomStringConvertible, Sendable, Equatable {
    public var operation: String
    public var message: String

    public init(operation: String, message: String) {
        self.operation = operation
        self.message = message
    }

    public var description: String { "\(operation): \(message)" }
}
