import AttnCore
import AttnAnalysis

/// Outlier tokens as `heads` and `stats --outliers` print them.
public enum OutlierReport {
    public static func json(_ outliers: [HeadAnalysis.OutlierToken]) -> JSONValue {
        .array(
            outliers.map { o in
                .object([
                    ("position", .integer(o.position)), ("token", o.token.map { .string($0) } ?? .null),
                    ("prefix", .bool(o.prefix)),
                    ("layers", .array(o.layers.map { .integer($0) })), ("layer_count", .integer(o.layers.count)),
                    ("max_share", .finite(o.maxShare)), ("mean_share", .finite(o.meanShare)),
                    ("max_ratio", .finite(o.maxRatio)),
                    ("shares", .array(o.shares.map { $0.map { JSONValue.finite($0) } ?? .null }))
                ])
            })
    }

    public static func table(_ outliers: [HeadAnalysis.OutlierToken], z: Double, ratio: Double) -> String {
        let rule = "modified z > \(z) and ≥ \(ratio)× the uniform share"
        if outliers.isEmpty { return "outlier tokens: none (\(rule))\n" }
        var t = TextTable(header: ["position", "token", "layers", "max share", "× uniform"])
        for o in outliers {
            t.append([
                "\(o.position)", o.token.map(Terminal.printable) ?? (o.prefix ? "(prefix)" : "-"),
                o.layers.map(String.init).joined(separator: ","),
                formatFixed(o.maxShare, decimals: 4), formatFixed(o.maxRatio, decimals: 1)
            ])
        }
        return "outlier tokens (\(rule)):\n" + t.render()
    }
}
