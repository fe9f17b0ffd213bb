import Foundation
import Logging

/// One line of progress as fields that give way to the terminal's width (issue 29): the bar, the
/// phase's label and its fields, each field with shorter forms and a priority. When the line is too
/// wide the least important field gives way first (its shorter forms, then the field itself), so
/// the fields that move (the phase, its n/m count, the elapsed time) stay on the screen at any
/// width a person works at; a field is never cut in the middle.
public struct ProgressLine: Sendable, Equatable {
    /// One field: `forms` longest first, each a whole text that can stand for it.
    public struct Field: Sendable, Equatable {
        public var forms: [String]
        /// Higher stays longer.
        public var priority: Int

        public init(_ forms: String..., priority: Int) {
            self.forms = forms
            self.priority = priority
        }
    }

    /// What is running now and its count ("data:", "post-data 3/10"); never dropped.
    public var label: Field
    /// The fraction of this phase done, drawn as a bar in front of the label; nil draws none.
    public var fraction: Double?
    /// After the label, joined with ", ".
    public var fields: [Field]

    /// How much the bar in front matters: it gives way before the moving fields, after the details.
    public static let barPriority = 50
    /// Fields of this priority and up move (a count, the elapsed time): they are all shortened
    /// before any of them is dropped.
    public static let movingPriority = 60

    /// `short`: the label's form for a narrow terminal ("checks" for "checks: rows and fingerprints").
    public init(_ label: String, short: String? = nil, fraction: Double? = nil, _ fields: [Field]) {
        self.label = Field(priority: Int.max)
        self.label.forms = [label] + (short.map { [$0] } ?? [])
        self.fraction = fraction
        self.fields = fields
    }

    /// The whole line without a bar, every field in its longest form (a log line).
    public var text: String { compose(bar: nil, label: label.forms[0], fields: fields.map { $0.forms.first }) }

    /// The line in at most `width` characters: fields shortened or dropped until it fits (the bar
    /// drawn 24 wide, then 10, then as a percentage), never cut in the middle.
    public func render(width: Int) -> String {
        var bar = Field(priority: Self.barPriority)
        if let fraction {
            let done = min(1, max(0, fraction.isFinite ? fraction : 0))
            bar.forms = [24, 10].map { size in
                let filled = Int(done * Double(size))
                return "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: size - filled) + "]"
            } + ["\(Int(done * 100))%"]
        }
        // Every field with its chosen form: an index into its forms, `forms.count` for dropped.
        let all = [label, bar] + fields
        var chosen = Array(repeating: 0, count: all.count)
        func form(_ index: Int) -> String? { chosen[index] < all[index].forms.count ? all[index].forms[chosen[index]] : nil }
        func line() -> String { compose(bar: form(1), label: form(0) ?? "", fields: (2..<all.count).map(form)) }
        // Giving way, step by step: the details and the bar, the least important first (of two
        // alike, the one further right), each shortened and then dropped; then the moving fields
        // shortened, all of them before any is dropped.
        let order = all.indices.sorted { all[$0].priority != all[$1].priority ? all[$0].priority < all[$1].priority : $0 > $1 }
        let moving = { (index: Int) in all[index].priority >= Self.movingPriority }
        // Each field gives way as far as `last`: the label keeps its shortest form.
        let steps = order.filter { !moving($0) }.map { ($0, all[$0].forms.count) }
            + order.filter(moving).map { ($0, all[$0].forms.count - 1) }
            + order.filter { moving($0) && $0 != 0 }.map { ($0, all[$0].forms.count) }
        var changed: [Int] = []
        for (index, last) in steps {
            while line().count > width && chosen[index] < last {
                chosen[index] += 1
                changed.append(index)
            }
        }
        // Then back, the most important first, whatever fits again (a bar dropped for a long
        // label that was shortened later).
        for index in changed.reversed() where chosen[index] > 0 {
            chosen[index] -= 1
            if line().count > width { chosen[index] += 1 }
        }
        var text = line()
        // A terminal narrower than the label and the moving fields: whole words from the end.
        while text.count > width, let space = text.lastIndex(of: " ") {
            text = String(text[..<space])
            while text.last == "," || text.last == ":" { text.removeLast() }
        }
        return text.count > width ? String(text.prefix(width)) : text
    }

    /// `[bar] label: field, field, ...` (or `label, field, ...` when the label has no colon) from
    /// the chosen forms (nil: left out).
    private func compose(bar: String?, label: String, fields: [String?]) -> String {
        let shown = fields.compactMap { $0 }
        return (bar.map { $0 + " " } ?? "") + label + (shown.isEmpty ? "" : (label.hasSuffix(":") ? " " : ", ") + shown.joined(separator: ", "))
    }
}

/// Long work shows a bar on a TTY (stderr, redrawn in place through `TerminalOutput`, so lines
/// written meanwhile appear above it, fitted to the terminal's width at each redraw) and a log line
/// every few seconds otherwise (cron, CI). `line` is asked for the current line, which starts with
/// its label.
public final class ProgressDisplay: @unchecked Sendable {
    private let line: @Sendable () -> ProgressLine
    private let logger: Logger
    private let interval: Double
    private let isTTY: Bool
    private let lock = NSLock()
    private var stopped = false
    private let done = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)

    public init(logger: Logger, enabled: Bool = true, logEvery seconds: Double = 5,
                line: @escaping @Sendable () -> ProgressLine) {
        self.line = line
        self.logger = logger
        self.isTTY = enabled && TerminalOutput.shared.isTTY
        self.interval = isTTY ? 0.25 : seconds
        guard enabled else { stopped = true; return }
        let thread = Thread { [self] in self.loop() }
        thread.name = "progress"
        thread.start()
    }

    private func loop() {
        while true {
            if done.wait(timeout: .now() + interval) == .success { break }
            let current = line()
            if isTTY {
                TerminalOutput.shared.showBar(current)
            } else {
                logger.info("\(current.text)")
            }
        }
        if isTTY { TerminalOutput.shared.clearBar() }
        finished.signal()
    }

    public func stop() {
        let wasStopped = lock.withLock { defer { stopped = true }; return stopped }
        guard !wasStopped else { return }
        done.signal()
        finished.wait()
    }

    public static func bytes(_ count: Int) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(count)
        var unit = 0
        while value >= 1024 && unit < units.count - 1 { value /= 1024; unit += 1 }
        return unit == 0 ? "\(count) B" : String(format: "%.1f %@", value, units[unit])
    }

    public static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds >= 0 else { return "?" }
        let total = Int(seconds.rounded())
        return total >= 3600 ? String(format: "%dh%02dm", total / 3600, total % 3600 / 60)
            : total >= 60 ? String(format: "%dm%02ds", total / 60, total % 60) : "\(total)s"
    }
}
