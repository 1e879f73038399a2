import AttnCore
import AttnAnalysis

/// `stats` as tables, JSON and CSV: per-layer tables of `HeadStatistics`, and the mean and standard deviation over
/// samples or files (`SampleAggregate`). Keys and columns come from the records (`HeadStatistics.fields`).
public enum StatsReport {
    /// The per-layer table's columns.
    public static let columns: [RecordWriter.Column] = [
        .init("head", "head"), .init("entropy", "entropy"), .init("norm_ent", "normalized_entropy"),
        .init("min", "min"), .init("max", "max"),
        .init("mean", "mean"), .init("row_sum_dev", "row_sum_max_dev", .scientific), .init("first", "first_token"),
        .init("self", "self"),
        .init("prev", "previous_token"), .init("nan", "nan_count"), .init("inf", "inf_count"),
        .init("neg", "negative_count")
    ]

    /// The aggregate's table: every column of the per-layer table as its mean, with ± (the standard deviation)
    /// after the entropies and the first, self and previous shares.
    public static let aggregateColumns: [RecordWriter.Column] = [
        .init("layer", "layer"), .init("head", "head"), .init("entropy", "entropy"), .init("±", "entropy_std"),
        .init("norm_ent", "normalized_entropy"), .init("±", "normalized_entropy_std"), .init("min", "min"),
        .init("max", "max"), .init("mean", "mean"), .init("row_sum_dev", "row_sum_max_dev", .scientific),
        .init("first", "first_token"), .init("±", "first_token_std"), .init("self", "self"), .init("±", "self_std"),
        .init("prev", "previous_token"), .init("±", "previous_token_std"), .init("nan", "nan_count"),
        .init("inf", "inf_count"), .init("neg", "negative_count")
    ]

    /// One table per layer present in `records`, in layer order.
    public static func tables(_ records: [HeadStatistics], source: AttentionSource) -> String {
        let byLayer = Dictionary(grouping: records, by: \.layer)
        return byLayer.keys.sorted().map { layer in
            """
            layer \(layer): \(source.headCount) heads, \(source.queryCount) queries × \(source.keyCount) keys \
            (\(source.origin.label))\n
            """
                + RecordWriter.table(byLayer[layer]!, columns)
        }.joined(separator: "\n")
    }

    /// The JSON document's fields for one sample's records.
    /// With `received`, `keys_received` follows the records, naming `topKeys` keys per head.
    public static func json(
        _ records: [HeadStatistics], source: AttentionSource, received: [ReceivedAttention]? = nil, topKeys: Int = 0
    ) -> [(String, JSONValue)] {
        RecordWriter.header(source) + [
            ("source", .string(source.origin.label)), ("records", .array(records.map(RecordWriter.json)))
        ]
            + (received.map {
                [("keys_received", ReceivedReport.json($0, top: topKeys, keyLabels: source.keyTokens))]
            } ?? [])
    }

    /// The JSON document's fields for `--batch all`: sample 0's header with the number of samples after the file,
    /// each sample's real queries and keys when there are several, and the aggregate's records.
    public static func json(_ aggregate: SampleAggregate, source: AttentionSource, queries: [Int], keys: [Int]) -> [(
        String, JSONValue
    )] {
        let header = RecordWriter.header(source)
        return [header[0], ("samples", .integer(aggregate.sampleCount))] + header.dropFirst()
            + perSampleCounts(queries: queries, keys: keys)
            + [("source", .string(source.origin.label)), ("records", json(aggregate))]
    }

    /// `queries_per_sample` and `keys_per_sample` (`queries` and `keys` are sample 0's), when there are several
    /// samples.
    public static func perSampleCounts(queries: [Int], keys: [Int]) -> [(String, JSONValue)] {
        guard queries.count > 1, keys.count == queries.count else { return [] }
        return [
            ("queries_per_sample", .array(queries.map { .integer($0) })),
            ("keys_per_sample", .array(keys.map { .integer($0) }))
        ]
    }

    /// The line above the samples' table; it lists the samples' token counts when they differ.
    public static func samplesHeading(samples: Int, queries: [Int], keys: [Int]) -> String {
        var line = "\(samples) samples: mean and standard deviation over the samples (± columns)"
        if Set(queries).count > 1 || Set(keys).count > 1 {
            line +=
                "; real tokens per sample: "
                + zip(queries, keys).map { $0 == $1 ? "\($0)" : "\($0)×\($1)" }.joined(separator: ", ")
        }
        return line + "\n"
    }

    public static func table(_ aggregate: SampleAggregate) -> String {
        RecordWriter.table(aggregate.rows, aggregateColumns)
    }

    public static func csv(_ aggregate: SampleAggregate) -> String { RecordWriter.csv(aggregate.rows) }

    public static func json(_ aggregate: SampleAggregate) -> JSONValue { .array(aggregate.rows.map(RecordWriter.json)) }

    /// One file of `stats FILE...`: its source (sample 0's) and the statistics of each sample read, with each
    /// sample's real queries and keys.
    public struct FileResult {
        public let source: AttentionSource
        public let samples: [[HeadStatistics]]
        public let queriesPerSample: [Int]
        public let keysPerSample: [Int]
        /// The attention each key receives (one sample), and how many keys to name per head.
        public var received: [ReceivedAttention]?
        public var topKeys = 0

        public init(source: AttentionSource, samples: [[HeadStatistics]], queriesPerSample: [Int], keysPerSample: [Int])
        {
            self.source = source
            self.samples = samples
            self.queriesPerSample = queriesPerSample
            self.keysPerSample = keysPerSample
        }

        /// The line above the samples' table.
        public var samplesHeading: String {
            StatsReport.samplesHeading(samples: samples.count, queries: queriesPerSample, keys: keysPerSample)
        }
    }

    /// Several files as one JSON document: each file (its records, or with several samples their aggregate), the
    /// files that could not be read with their errors, and the aggregate over `aggregate.files`.
    public static func json(
        files: [FileResult], failures: [(file: String, message: String)],
        aggregate: (files: [String], rows: SampleAggregate)?
    ) -> String {
        let perFile: [JSONValue] = files.map { r in
            guard r.samples.count > 1 else {
                return .object(json(r.samples.first ?? [], source: r.source, received: r.received, topKeys: r.topKeys))
            }
            var fields = json([], source: r.source).filter { $0.0 != "records" }
            fields += [("samples", .integer(r.samples.count))]
            fields += perSampleCounts(queries: r.queriesPerSample, keys: r.keysPerSample)
            fields += [("records", json(SampleAggregate(r.samples)))]
            return .object(fields)
        }
        var object: [(String, JSONValue)] = [
            ("files", .array(perFile)),
            ("failed", .array(failures.map { .object([("file", .string($0.file)), ("error", .string($0.message))]) }))
        ]
        if let aggregate {
            object.append(
                (
                    "aggregate",
                    .object([
                        ("files", .array(aggregate.files.map { .string($0) })),
                        ("samples", .integer(aggregate.rows.sampleCount)), ("records", json(aggregate.rows))
                    ])
                ))
        }
        return JSONValue.document(object).serialized() + "\n"
    }

    /// Several files as tables: each file's (per layer, or its samples' aggregate), then the aggregate over
    /// `aggregate.fileCount` files.
    public static func tables(files: [FileResult], aggregate: (fileCount: Int, rows: SampleAggregate)?) -> String {
        var text = ""
        for r in files {
            text += "== \(r.source.file)\n"
            if r.samples.count == 1 {
                text += tables(r.samples[0], source: r.source)
            } else {
                text += r.samplesHeading + table(SampleAggregate(r.samples))
            }
            text += "\n"
        }
        if let aggregate {
            text +=
                """
                == aggregate over \(aggregate.fileCount) file(s), \(aggregate.rows.sampleCount) sample(s): mean and \
                standard deviation (± columns)\n
                """
                + table(aggregate.rows)
        }
        return text
    }

    /// Several files as one rectangular CSV: every file and sample (`sample` empty for a file read as one sample), then
    /// the aggregate's mean and std rows.
    public static func csv(
        files: [(file: String, samples: [[HeadStatistics]], sampleLabels: Bool)], aggregate: SampleAggregate?
    ) -> String {
        guard let first = files.first(where: { !$0.samples.isEmpty && !$0.samples[0].isEmpty })?.samples[0][0] else {
            return ""
        }
        var out = CSV.line(["file", "sample"] + first.fields.map(\.key))
        for f in files {
            for (b, sample) in f.samples.enumerated() {
                for s in sample { out += CSV.line([f.file, f.sampleLabels ? "\(b)" : ""] + RecordWriter.csvFields(s)) }
            }
        }
        // The records' columns: each real field's mean on one row and its std on the next; the counts' sums on the
        // first.
        for row in aggregate?.rows ?? [] {
            for std in [false, true] {
                let cells = row.entries.map { _, entry -> String in
                    switch entry {
                    case .index(let i): return "\(i)"
                    case .real(let mean, let deviation): return RecordWriter.csvText(.real(std ? deviation : mean))
                    case .count(let n): return std ? "" : "\(n)"
                    }
                }
                out += CSV.line(["aggregate", std ? "std" : "mean"] + cells)
            }
        }
        return out
    }

    /// The note for records holding NaN or infinite values, or nil.
    public static func nonFiniteNote(_ records: [HeadStatistics], file: String) -> String? {
        let bad = records.filter { $0.nanCount + $0.infCount > 0 }
        guard !bad.isEmpty else { return nil }
        let nan = bad.reduce(0) { $0 + $1.nanCount }, inf = bad.reduce(0) { $0 + $1.infCount }
        return
            """
            \(file): \(nan) NaN and \(inf) infinite values in \(Set(bad.map { "\($0.layer)/\($0.head)" }).count) \
            head(s); their entropy and row sums are reported as nan/null
            """
    }
}
