/// Counts as people write them: "1 object", "2 objects", "0 rows".
public enum Plural {
    /// `count` and `noun`, the noun in the plural (`plural`, else `noun` + "s") unless `count` is 1.
    public static func of(_ count: Int, _ noun: String, plural: String? = nil) -> String {
        "\(count) \(count == 1 ? noun : plural ?? noun + "s")"
    }
}
