import AttnCore
import AttnAnalysis

/// `diff`'s report: per layer and head the largest |A − B| and the Jensen–Shannon divergence, as a table, JSON
/// (with the two files) or CSV; and the scale of its A − B picture.
public enum DiffReport {
    public static let columns: [RecordWriter.Column] = [
        .init("layer", "layer"), .init("head", "head"), .init("max_abs_diff", "max_abs_diff", .fixed(6)),
        .init("js_divergence", "js_divergence", .fixed(6))
    ]

    public static func table(_ records: [HeadDifference]) -> String { RecordWriter.table(records, columns) }

    public static func json(_ records: [HeadDifference], first: String, second: String) -> String {
        JSONValue.document([
            ("first", .string(first)), ("second", .string(second)),
            ("records", .array(records.map(RecordWriter.json)))
        ]).serialized() + "\n"
    }

    /// A − B's colour scale: symmetric around 0, from −max |A − B| to +max |A − B| (never empty).
    public static func range(of difference: Matrix) -> ValueRange {
        let extent = max(difference.values.map(abs).max() ?? 0, Float.leastNormalMagnitude)
        return ValueRange(low: -extent, high: extent)
    }
}
