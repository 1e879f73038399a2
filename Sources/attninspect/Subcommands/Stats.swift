import ArgumentParser
import AttnCore
import AttnSource
import AttnAnalysis
import AttnRender

extension AttnInspect {
    /// `attninspect stats FILE`: per-layer, per-head statistics.
    struct Stats: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "stats",
            abstract: "Per-layer, per-head statistics: entropy, range, row sums, first-token, self and previous-token attention, NaN/Inf counts.")

        @OptionGroup var input: InputOptions

        @Option(parsing: .unconditional, help: "Only this layer (negative counts from the end).")
        var layer: Int?

        @Argument(help: "More dumps: statistics of each, then their mean and standard deviation per layer and head; a file that cannot be read is named and skipped (exit status 1).")
        var moreFiles: [String] = []

        @Flag(help: "Print one JSON object.")
        var json = false

        @Flag(help: "Also find outlier tokens (received attention share: modified z > 3.5 and at least 5× uniform; see heads): each layer is read once more, whole. Table and JSON only.")
        var outliers = false

        @Flag(help: "Print CSV records with a header.")
        var csv = false

        func validate() throws {
            if json && csv { throw ValidationError("--json and --csv are exclusive: choose one") }
            if outliers && (csv || !moreFiles.isEmpty || input.allSamples) {
                throw ValidationError("--outliers goes with one file and one sample, as a table or --json (see also heads)")
            }
        }

        func run() throws {
            if !moreFiles.isEmpty { return try runOverFiles() }
            if input.allSamples { return try runOverSamples() }
            let progress = Progress.start("stats, layers")
            let result = try Self.statistics(of: input, layer: layer, progress: progress)
            progress?.finish()
            let opened = result.opened, source = result.source, records = result.samples[0]
            let layers = Array(Set(records.map(\.layer))).sorted()
            var found: [HeadAnalysis.OutlierToken]?
            let prefix = try opened.declaredPrefix().map { Swift.min($0, source.keyCount) } ?? 0
            let analysis = HeadAnalysis(keyLabels: source.keyTokens, matchKeys: nil, distance: .sequence(prefix: prefix))
            if outliers {
                let shares = try layers.map { HeadAnalysis.receivedShares(of: try source.layer($0)) }
                found = analysis.outliers(shares: shares, keys: source.keyCount).map { o in
                    var o = o
                    o.layers = o.layers.map { layers[$0] }   // positions in `layers` back to layer numbers
                    return o
                }
            }
            if json {
                var fields = Self.json(records, source: source)
                if let found { fields.append(("outlier_tokens", OutlierReport.json(found))) }
                Console.print(JSONValue.document(fields).serialized() + "\n")
            } else if csv {
                var out = CSV.line(Self.keys)
                for r in records { out += CSV.line(Self.fields(r).map(Self.csvText)) }
                Console.printCSV(out)
            } else {
                Console.print(Self.tables(records, source: source) + (found.map { "\n" + OutlierReport.table($0, z: analysis.outlierZ, ratio: analysis.outlierRatio) } ?? ""))
            }
            Self.noteNonFinite(records, file: input.file)
        }

        /// `--batch all`: the statistics of every sample, then per layer and head their mean and
        /// standard deviation over the samples (population, ddof = 0); counts are summed.
        func runOverSamples() throws {
            let result = try Self.statistics(of: input, layer: layer)
            let summary = Aggregate(result.samples)
            let source = result.source
            if json {
                Console.print(JSONValue.document([
                    ("file", .string(source.file)), ("samples", .integer(result.samples.count)), ("layers", .integer(source.layerCount)),
                    ("heads", .integer(source.headCount)), ("queries", .integer(source.queryCount)), ("keys", .integer(source.keyCount)),
                ] + result.perSampleCountFields + [
                    ("source", .string(source.origin.label)), ("records", .array(summary.jsonRecords)),
                ]).serialized() + "\n")
            } else if csv {
                Console.printCSV(summary.csv)
            } else {
                Console.print(result.samplesHeading + summary.table)
            }
            Self.noteNonFinite(result.samples.flatMap { $0 }, file: input.file)
        }

        /// Several files: the statistics of each (every sample with `--batch all`; a file without a
        /// batch axis is one sample), then per layer and
        /// head their mean and standard deviation over all the samples of the files that share the
        /// first readable file's layers and heads. A file that cannot be read is named on stderr and
        /// skipped; the exit status is then 1.
        func runOverFiles() throws {
            var results: [FileStatistics] = []
            var failures: [(file: String, message: String)] = []
            let progress = Progress.start("stats, files", total: moreFiles.count + 1)
            for path in [input.file] + moreFiles {
                defer { progress?.advance() }
                var options = input
                options.file = path
                do {
                    results.append(try Self.statistics(of: options, layer: layer, batchAxisOptional: true))
                } catch {
                    let message = error is AttnError ? "\(error)" : "\(path): \(error)"
                    Console.error("attninspect: " + message)
                    failures.append((path, message))
                }
            }
            progress?.finish()
            let shape = results.first.map { ($0.source.layerCount, $0.source.headCount) }
            let included = results.filter { ($0.source.layerCount, $0.source.headCount) == shape! }
            for r in results where (r.source.layerCount, r.source.headCount) != shape! {
                Console.note("\(r.source.file): \(r.source.layerCount) layers × \(r.source.headCount) heads, unlike \(included[0].source.file) (\(shape!.0) × \(shape!.1)): left out of the aggregate")
            }
            let summary = included.isEmpty ? nil : Aggregate(included.flatMap { $0.samples })
            if json {
                var object: [(String, JSONValue)] = [
                    ("files", .array(results.map { r in
                        var fields = Self.json(r.samples.count == 1 ? r.samples[0] : [], source: r.source)
                        if r.samples.count > 1 {
                            fields.removeAll { $0.0 == "records" }
                            fields += [("samples", .integer(r.samples.count))] + r.perSampleCountFields
                            fields += [("records", .array(Aggregate(r.samples).jsonRecords))]
                        }
                        return .object(fields)
                    })),
                    ("failed", .array(failures.map { .object([("file", .string($0.file)), ("error", .string($0.message))]) })),
                ]
                if let summary {
                    object.append(("aggregate", .object([
                        ("files", .array(included.map { .string($0.source.file) })),
                        ("samples", .integer(summary.sampleCount)), ("records", .array(summary.jsonRecords)),
                    ])))
                }
                Console.print(JSONValue.document(object).serialized() + "\n")
            } else if csv {
                // One rectangular table: every file and sample, then the aggregate's mean and std rows.
                var out = CSV.line(["file", "sample"] + Self.keys)
                for r in results {
                    for (b, sample) in r.samples.enumerated() {
                        let label = r.samples.count == 1 && !input.allSamples ? "" : "\(b)"
                        for s in sample { out += CSV.line([r.source.file, label] + Self.fields(s).map(Self.csvText)) }
                    }
                }
                for row in summary?.rows ?? [] {
                    let head = ["\(row.layer)", "\(row.head)"]
                    out += CSV.line(["aggregate", "mean"] + head + row.means.map { Self.csvText(.real($0)) } + ["\(row.nan)", "\(row.inf)", "\(row.negative)"])
                    out += CSV.line(["aggregate", "std"] + head + row.stds.map { Self.csvText(.real($0)) } + ["", "", ""])
                }
                Console.printCSV(out)
            } else {
                var text = ""
                for r in results {
                    text += "== \(r.source.file)\n"
                    if r.samples.count == 1 {
                        text += Self.tables(r.samples[0], source: r.source)
                    } else {
                        text += r.samplesHeading + Aggregate(r.samples).table
                    }
                    text += "\n"
                }
                if let summary {
                    text += "== aggregate over \(included.count) file(s), \(summary.sampleCount) sample(s): mean and standard deviation (± columns)\n" + summary.table
                }
                Console.print(text)
            }
            for r in results { Self.noteNonFinite(r.samples.flatMap { $0 }, file: r.source.file) }
            if !failures.isEmpty {
                Console.note("\(failures.count) of \(failures.count + results.count) files could not be read: \(failures.map(\.file).joined(separator: ", "))")
                throw ExitCode(1)
            }
        }

        /// One file's statistics: one list per sample used (every sample with `--batch all`).
        struct FileStatistics {
            /// The dump as opened (sample 0 with `--batch all`).
            let opened: OpenedDump
            var source: AttentionSource { opened.source }
            let samples: [[HeadStatistics]]
            /// Each sample's queries and keys once its padding is dropped (they differ between samples of a padded batch).
            var queriesPerSample: [Int] = []
            var keysPerSample: [Int] = []

            /// With several samples, `queries_per_sample` and `keys_per_sample` for JSON (`queries` and `keys` are sample 0's).
            var perSampleCountFields: [(String, JSONValue)] {
                guard samples.count > 1, queriesPerSample.count == samples.count else { return [] }
                return [("queries_per_sample", .array(queriesPerSample.map { .integer($0) })),
                        ("keys_per_sample", .array(keysPerSample.map { .integer($0) }))]
            }

            /// The line above the samples' table; it lists the samples' token counts when they differ.
            var samplesHeading: String {
                var line = "\(samples.count) samples: mean and standard deviation over the samples (± columns)"
                if Set(queriesPerSample).count > 1 || Set(keysPerSample).count > 1 {
                    let counts = zip(queriesPerSample, keysPerSample).map { $0 == $1 ? "\($0)" : "\($0)×\($1)" }
                    line += "; real tokens per sample: " + counts.joined(separator: ", ")
                }
                return line + "\n"
            }
        }

        /// With `batchAxisOptional`, `--batch all` on a file without a batch axis reads its one sample.
        /// `progress` counts layers (its total is set here, as the number of layers read).
        static func statistics(of input: InputOptions, layer: Int?, batchAxisOptional: Bool = false, progress: Progress? = nil) throws -> FileStatistics {
            if !input.allSamples {
                let opened = try input.open()
                let layers = try layer.map { [try opened.layer($0)] } ?? Array(0..<opened.source.layerCount)
                progress?.setTotal(layers.count)
                let records = try layers.flatMap { l in
                    defer { progress?.advance() }
                    return try HeadStatistics.ofLayer(opened.source, layer: l)
                }
                return FileStatistics(opened: opened, samples: [records])
            }
            let first = try input.open(sample: 0, allowAllSamples: true)
            guard let size = first.layout.summary.batch?.size ?? (batchAxisOptional ? 1 : nil) else {
                throw AttnError(file: input.file, "--batch all: the data has no batch axis")
            }
            let layers = try layer.map { [try first.layer($0)] } ?? Array(0..<first.source.layerCount)
            var perSample: [[HeadStatistics]] = []
            var queries: [Int] = [], keys: [Int] = []
            for b in 0..<size {
                let opened = b == 0 ? first : try input.open(sample: b, allowAllSamples: true)
                perSample.append(try layers.flatMap { try HeadStatistics.ofLayer(opened.source, layer: $0) })
                queries.append(opened.source.queryCount)
                keys.append(opened.source.keyCount)
            }
            return FileStatistics(opened: first, samples: perSample, queriesPerSample: queries, keysPerSample: keys)
        }

        static func noteNonFinite(_ records: [HeadStatistics], file: String) {
            let bad = records.filter { $0.nanCount + $0.infCount > 0 }
            if !bad.isEmpty {
                let nan = bad.reduce(0) { $0 + $1.nanCount }, inf = bad.reduce(0) { $0 + $1.infCount }
                Console.note("\(file): \(nan) NaN and \(inf) infinite values in \(Set(bad.map { "\($0.layer)/\($0.head)" }).count) head(s); their entropy and row sums are reported as nan/null")
            }
        }

        /// Per layer and head, the mean and standard deviation (population, ddof = 0) of every
        /// statistic over several samples with the same heads; counts are summed.
        struct Aggregate {
            struct Row {
                let layer: Int, head: Int
                /// Per real-valued key, in `Aggregate.realKeys` order.
                let means: [Double], stds: [Double]
                let nan: Int, inf: Int, negative: Int
                func mean(_ key: String) -> Double { means[Aggregate.realKeys.firstIndex(of: key)!] }
                func std(_ key: String) -> Double { stds[Aggregate.realKeys.firstIndex(of: key)!] }
            }

            static let realKeys = ["entropy", "normalized_entropy", "min", "max", "mean", "row_sum_max_dev", "first_token", "self", "previous_token"]
            let sampleCount: Int
            let rows: [Row]

            init(_ perSample: [[HeadStatistics]]) {
                sampleCount = perSample.count
                let paths: [KeyPath<HeadStatistics, Double>] = [\.entropy, \.normalizedEntropy, \.min, \.max, \.mean, \.rowSumMaxDeviation,
                                                                \.firstToken, \.selfAttention, \.previousToken]
                rows = perSample[0].indices.map { r in
                    let samples = perSample.map { $0[r] }
                    var means: [Double] = [], stds: [Double] = []
                    for path in paths {
                        let values = samples.map { $0[keyPath: path] }
                        let mean = values.reduce(0, +) / Double(values.count)
                        means.append(mean)
                        stds.append((values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(values.count)).squareRoot())
                    }
                    return Row(layer: samples[0].layer, head: samples[0].head, means: means, stds: stds,
                               nan: samples.reduce(0) { $0 + $1.nanCount }, inf: samples.reduce(0) { $0 + $1.infCount },
                               negative: samples.reduce(0) { $0 + $1.negativeCount })
                }
            }

            var jsonRecords: [JSONValue] {
                rows.map { row in
                    var object: [(String, JSONValue)] = [("layer", .integer(row.layer)), ("head", .integer(row.head))]
                    for (i, key) in Self.realKeys.enumerated() { object += [(key, .finite(row.means[i])), (key + "_std", .finite(row.stds[i]))] }
                    return .object(object + [("nan_count", .integer(row.nan)), ("inf_count", .integer(row.inf)), ("negative_count", .integer(row.negative))])
                }
            }

            var csv: String {
                var out = CSV.line(["layer", "head"] + Self.realKeys.flatMap { [$0, $0 + "_std"] } + ["nan_count", "inf_count", "negative_count"])
                for row in rows {
                    out += CSV.line(["\(row.layer)", "\(row.head)"] + zip(row.means, row.stds).flatMap { [Stats.csvText(.real($0)), Stats.csvText(.real($1))] }
                                    + ["\(row.nan)", "\(row.inf)", "\(row.negative)"])
                }
                return out
            }

            var table: String {
                var table = TextTable(header: ["layer", "head", "entropy", "±", "norm_ent", "±", "first", "self", "prev", "nan", "inf", "neg"])
                for row in rows {
                    table.append(["\(row.layer)", "\(row.head)", formatFixed(row.mean("entropy")), formatFixed(row.std("entropy")),
                                  formatFixed(row.mean("normalized_entropy")), formatFixed(row.std("normalized_entropy")), formatFixed(row.mean("first_token")),
                                  formatFixed(row.mean("self")), formatFixed(row.mean("previous_token")), "\(row.nan)", "\(row.inf)", "\(row.negative)"])
                }
                return table.render()
            }
        }

        static let keys = ["layer", "head", "entropy", "normalized_entropy", "min", "max", "mean", "row_sum_max_dev",
                           "first_token", "self", "previous_token", "nan_count", "inf_count", "negative_count"]

        enum Field { case int(Int), real(Double) }

        static func fields(_ r: HeadStatistics) -> [Field] {
            [.int(r.layer), .int(r.head), .real(r.entropy), .real(r.normalizedEntropy), .real(r.min), .real(r.max), .real(r.mean),
             .real(r.rowSumMaxDeviation), .real(r.firstToken), .real(r.selfAttention), .real(r.previousToken),
             .int(r.nanCount), .int(r.infCount), .int(r.negativeCount)]
        }

        static func csvText(_ f: Field) -> String {
            switch f {
            case .int(let i): return "\(i)"
            case .real(let d): return d.isFinite ? "\(d)" : (d.isNaN ? "nan" : (d > 0 ? "inf" : "-inf"))
            }
        }

        static func json(_ records: [HeadStatistics], source: AttentionSource) -> [(String, JSONValue)] {
            let items: [JSONValue] = records.map { r in
                .object(zip(keys, fields(r)).map { key, f in
                    switch f {
                    case .int(let i): return (key, .integer(i))
                    case .real(let d): return (key, .finite(d))
                    }
                })
            }
            return [
                ("file", .string(source.file)), ("layers", .integer(source.layerCount)), ("heads", .integer(source.headCount)),
                ("queries", .integer(source.queryCount)), ("keys", .integer(source.keyCount)), ("source", .string(source.origin.label)),
                ("records", .array(items)),
            ]
        }

        /// One table per layer present in `records`, in layer order.
        static func tables(_ records: [HeadStatistics], source: AttentionSource) -> String {
            let byLayer = Dictionary(grouping: records, by: \.layer)
            return byLayer.keys.sorted().map { table(for: byLayer[$0]!, layer: $0, source: source) }.joined(separator: "\n")
        }

        static func table(for stats: [HeadStatistics], layer: Int, source: AttentionSource) -> String {
            var table = TextTable(header: ["head", "entropy", "norm_ent", "min", "max", "mean", "row_sum_dev", "first", "self", "prev", "nan", "inf", "neg"])
            for s in stats {
                table.append(["\(s.head)", formatFixed(s.entropy), formatFixed(s.normalizedEntropy), formatFixed(s.min), formatFixed(s.max),
                              formatFixed(s.mean), formatScientific(s.rowSumMaxDeviation), formatFixed(s.firstToken), formatFixed(s.selfAttention),
                              formatFixed(s.previousToken), "\(s.nanCount)", "\(s.infCount)", "\(s.negativeCount)"])
            }
            return "layer \(layer): \(source.headCount) heads, \(source.queryCount) queries × \(source.keyCount) keys (\(source.origin.label))\n" + table.render()
        }
    }
}

/// `1.2e-04`-style text for small deviations.
func formatScientific(_ value: Double) -> String {
    guard value.isFinite else { return value.isNaN ? "nan" : "inf" }
    if value == 0 { return "0" }
    var exponent = 0
    var mantissa = abs(value)
    while mantissa >= 10 { mantissa /= 10; exponent += 1 }
    while mantissa < 1 { mantissa *= 10; exponent -= 1 }
    var m = formatFixed(mantissa, decimals: 1)
    if m == "10.0" { m = "1.0"; exponent += 1 }
    let e = abs(exponent) < 10 ? "0\(abs(exponent))" : "\(abs(exponent))"
    return (value < 0 ? "-" : "") + m + "e" + (exponent < 0 ? "-" : "+") + e
}
