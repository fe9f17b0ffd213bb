import Foundation

/// UTC times as the archive names and manifests write them, formatted and parsed with libc
/// (`gmtime_r`, `timegm`) instead of Foundation's date formatters, which load ICU's locale data: about
/// 6 MB of a backup's peak RSS, for two fixed formats that need no locale.
public enum UTCTime {
    static func fields(_ date: Date) -> tm {
        var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return parts
    }

    /// `20261124T031500Z`.
    public static func stamp(_ date: Date) -> String {
        let t = fields(date)
        return String(t.tm_year + 1900).zeroPadded(4) + String(t.tm_mon + 1).zeroPadded(2) + String(t.tm_mday).zeroPadded(2) + "T"
            + String(t.tm_hour).zeroPadded(2) + String(t.tm_min).zeroPadded(2) + String(t.tm_sec).zeroPadded(2) + "Z"
    }

    /// `2026-11-24T03:15:00.123Z` (milliseconds, truncated).
    public static func iso8601(_ date: Date) -> String {
        let t = fields(date)
        let millis = Int32((date.timeIntervalSince1970 - date.timeIntervalSince1970.rounded(.down)) * 1000)
        return String(t.tm_year + 1900).zeroPadded(4) + "-" + String(t.tm_mon + 1).zeroPadded(2) + "-" + String(t.tm_mday).zeroPadded(2) + "T"
            + String(t.tm_hour).zeroPadded(2) + ":" + String(t.tm_min).zeroPadded(2) + ":" + String(t.tm_sec).zeroPadded(2)
            + "." + String(min(999, millis)).zeroPadded(3) + "Z"
    }

    /// `20261124T031500Z` → its time; nil for anything else (also an impossible date).
    public static func parseStamp(_ text: String) -> Date? {
        let bytes = Array(text.utf8)
        guard bytes.count == 16, bytes[8] == UInt8(ascii: "T"), bytes[15] == UInt8(ascii: "Z") else { return nil }
        func number(_ range: Range<Int>) -> Int32? {
            guard range.allSatisfy({ (48...57).contains(bytes[$0]) }) else { return nil }
            return range.reduce(Int32(0)) { $0 * 10 + Int32(bytes[$1] - 48) }
        }
        guard let year = number(0..<4), let month = number(4..<6), let day = number(6..<8),
              let hour = number(9..<11), let minute = number(11..<13), let second = number(13..<15) else { return nil }
        var parts = tm()
        (parts.tm_year, parts.tm_mon, parts.tm_mday) = (year - 1900, month - 1, day)
        (parts.tm_hour, parts.tm_min, parts.tm_sec) = (hour, minute, second)
        let seconds = timegm(&parts)
        let date = Date(timeIntervalSince1970: TimeInterval(seconds))
        // timegm normalizes 20261332 into February; such a name is not a stamp.
        return stamp(date) == text ? date : nil
    }
}

extension String {
    /// Left-padded with zeros to `width` characters (unchanged when already as long): the fixed-width
    /// numbers of stamps, the trailer's offsets and fingerprints.
    func zeroPadded(_ width: Int) -> String {
        String(repeating: "0", count: max(0, width - count)) + self
    }
}
