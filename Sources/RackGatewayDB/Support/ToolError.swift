/// An error the tool reports to its user: what happened, what to do, and which exit status.
///
/// The message must never contain a password or a full connection string.
public struct ToolError: Error, CustomStringConvertible, Sendable {
    /// The outcome class; the CLI maps it to an exit status in one place.
    public enum Category: Sendable, Equatable {
        /// The job failed (exit 1).
        case failed
        /// Verification found a mismatch or corruption (exit 2).
        case mismatch
        /// Another run holds the lock (exit 3).
        case locked
        /// The command line or configuration is wrong (exit 64).
        case usage
    }

    public var category: Category
    public var message: String
    /// What the user should do about it, printed after the message.
    public var fix: String?

    public init(_ category: Category, _ message: String, fix: String? = nil) {
        self.category = category
        self.message = message
        self.fix = fix
    }

    public var description: String {
        guard let fix else { return message }
        return "\(message)\n\(fix)"
    }
}
