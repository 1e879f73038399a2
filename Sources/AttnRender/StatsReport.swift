import AttnCore
import AttnAnalysis

/// `stats` as tables, JSON and CSV: per-layer tables of `HeadStatistics`, and the mean and standard deviation over
/// samples or files (`SampleAggregate`). Keys and columns come from the records (`HeadStatistics.fields`).
public enum StatsReport {
    /// The per-layer table's columns.
    public static let columns: [RecordWriter.Column] = [
        .init("head", "head"), .init("entropy", "entropy"), .init("norm_ent", "normalized_entropy"), .init("min", "min"), .init("max", "max"),
        .init("mean", "mean"), .init("row_sum_dev", "row_sum_max_dev", .scientific), .init("first", "first_token"), .init("self", "self"),
        .init("prev", "previous_token"), .init("nan", "nan_count"), .init("inf", "inf_count"), .init("neg", "negative_count"),
    ]

    /// The aggregate's table: the means, ± the standard deviation of the entropies.
    public static let aggregateColumns: [RecordWriter.Column] = [
        .init("layer", "layer"), .init("head", "head"), .init("entropy", "entropy"), .init("±", "entropy_std"),
        .init("norm_ent", "normalized_entropy"), .init("±", "normalized_entropy_std"), .init("first", "first_token"), .init("self", "self"),
        .init("prev", "previous_token"), .init("nan", "nan_count"), .init("inf", "inf_count"), .init("neg", "negative_count"),
    ]

    /// One table per layer present in `records`, in layer order.
    public static func tables(_ records: [HeadStatistics], source: AttentionSource) -> String {
        let byLayer = Dictionary(grouping: records, by: \.layer)
        return byLayer.keys.sorted().map { layer in
            "layer \(layer): \(source.headCount) heads, \(source.queryCount) queries × \(source.keyCount) keys (\(source.origin.label))\n"
                + RecordWriter.table(byLayer[layer]!, columns)
        }.joined(separator: "\n")
    }

    /// The JSON document's fields for one sample's records.
    public static func json(_ records: [HeadStatistics], source: AttentionSource) -> [(String, JSONValue)] {
        header(source) + [("source", .string(source.origin.label)), ("records", .array(records.map(RecordWriter.json)))]
    }

    /// file, layers, heads, queries and keys of `source`.
    public static func header(_ source: AttentionSource) -> [(String, JSONValue)] {
        [("file", .string(source.file)), ("layers", .integer(source.layerCount)), ("heads", .integer(source.headCount)),
         ("queries", .integer(source.queryCount)), ("keys", .integer(source.keyCount))]
    }

    public static func table(_ aggregate: SampleAggregate) -> String { RecordWriter.table(aggregate.rows, aggregateColumns) }

    public static func csv(_ aggregate: SampleAggregate) -> String { RecordWriter.csv(aggregate.rows) }

    public static func json(_ aggregate: SampleAggregate) -> JSONValue { .array(aggregate.rows.map(RecordWriter.json)) }

    /// Several files as one rectangular CSV: every file and sample (`sample` empty for a file read as one sample), then
    /// the aggregate's mean and std rows.
    public static func csv(files: [(file: String, samples: [[HeadStatistics]], sampleLabels: Bool)], aggregate: SampleAggregate?) -> String {
        guard let first = files.first(where: { !$0.samples.isEmpty && !$0.samples[0].isEmpty })?.samples[0][0] else { return "" }
        var out = CSV.line(["file", "sample"] + first.fields.map(\.key))
        for f in files {
            for (b, sample) in f.samples.enumerated() {
                for s in sample { out += CSV.line([f.file, f.sampleLabels ? "\(b)" : ""] + RecordWriter.csvFields(s)) }
            }
        }
        for row in aggregate?.rows ?? [] {
            let head = row.indices.map { "\($0.value)" }
            let counts = row.counts.map { "\($0.sum)" }
            out += CSV.line(["aggregate", "mean"] + head + row.reals.map { RecordWriter.csvText(.real($0.mean)) } + counts)
            out += CSV.line(["aggregate", "std"] + head + row.reals.map { RecordWriter.csvText(.real($0.std)) } + counts.map { _ in "" })
        }
        return out
    }

    /// The note for records holding NaN or infinite values, or nil.
    public static func nonFiniteNote(_ records: [HeadStatistics], file: String) -> String? {
        let bad = records.filter { $0.nanCount + $0.infCount > 0 }
        guard !bad.isEmpty else { return nil }
        let nan = bad.reduce(0) { $0 + $1.nanCount }, inf = bad.reduce(0) { $0 + $1.infCount }
        return "\(file): \(nan) NaN and \(inf) infinite values in \(Set(bad.map { "\($0.layer)/\($0.head)" }).count) head(s); their entropy and row sums are reported as nan/null"
    }
}
