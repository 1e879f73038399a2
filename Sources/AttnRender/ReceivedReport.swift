import AttnCore
import AttnAnalysis

/// The attention keys receive (`ReceivedAttention`) in `stats --json` and `heads --json`: `keys_received`, one
/// object per layer and head naming its top keys (README: JSON schema).
public enum ReceivedReport {
    /// `[{"layer", "head", "top_keys": [{"key", "token", "share", "mean"}, ...]}, ...]`; `token` is the key's label
    /// (null without labels); `top_keys` is null for a head holding NaN or ±Inf.
    public static func json(_ received: [ReceivedAttention], top: Int, keyLabels: [String]?) -> JSONValue {
        .array(
            received.map { r in
                let keys: JSONValue =
                    r.columnSums == nil
                    ? .null
                    : .array(
                        r.top(top).map { j in
                            .object([
                                ("key", .integer(j)),
                                ("token", keyLabels.map { j < $0.count ? .string($0[j]) : .null } ?? .null),
                                ("share", r.share(j).map(JSONValue.finite) ?? .null),
                                ("mean", r.mean(j).map(JSONValue.finite) ?? .null)
                            ])
                        })
                return .object([("layer", .integer(r.layer)), ("head", .integer(r.head)), ("top_keys", keys)])
            })
    }
}
