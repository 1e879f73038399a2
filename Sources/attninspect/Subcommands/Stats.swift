import ArgumentParser
import AttnCore
import AttnAnalysis
import AttnRender

extension AttnInspect {
    /// `attninspect stats FILE`: per-layer, per-head statistics.
    struct Stats: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Per-layer, per-head statistics: entropy, range, row sums, first-token, self and previous-token attention, NaN/Inf counts.")

        @OptionGroup var input: InputOptions

        @Option(parsing: .unconditional, help: "Only this layer (negative counts from the end).")
        var layer: Int?

        @Flag(help: "Print one JSON object.")
        var json = false

        @Flag(help: "Print CSV records with a header.")
        var csv = false

        func validate() throws {
            if json && csv { throw ValidationError("--json and --csv are exclusive: choose one") }
        }

        func run() throws {
            if input.allSamples { return try runOverSamples() }
            let opened = try input.open()
            let source = opened.source
            let layers = try layer.map { [try opened.layer($0)] } ?? Array(0..<source.layerCount)
            var records: [HeadStatistics] = []
            var text = ""
            for l in layers {
                let stats = try HeadStatistics.ofLayer(source, layer: l)
                records += stats
                if !json && !csv {
                    text += Self.table(for: stats, layer: l, source: source)
                    if l != layers.last { text += "\n" }
                }
            }
            if json {
                Console.print(Self.json(records, source: source) + "\n")
            } else if csv {
                var out = CSV.line(Self.keys)
                for r in records { out += CSV.line(Self.fields(r).map(Self.csvText)) }
                Console.print(out)
            } else {
                Console.print(text)
            }
            let bad = records.filter { $0.nanCount + $0.infCount > 0 }
            if !bad.isEmpty {
                let nan = bad.reduce(0) { $0 + $1.nanCount }, inf = bad.reduce(0) { $0 + $1.infCount }
                Console.note("\(input.file): \(nan) NaN and \(inf) infinite values in \(bad.count) head(s); their entropy and row sums are reported as nan/null")
            }
        }

        /// `--batch all`: the statistics of every sample, then per layer and head their mean and
        /// standard deviation over the samples (population, ddof = 0); counts are summed.
        func runOverSamples() throws {
            let first = try input.open(sample: 0, allowAllSamples: true)
            guard let size = first.layout.summary.batch?.size else {
                throw DumpError(file: input.file, "--batch all: the data has no batch axis")
            }
            let layers = try layer.map { [try first.layer($0)] } ?? Array(0..<first.source.layerCount)
            var perSample: [[HeadStatistics]] = []
            for b in 0..<size {
                let opened = b == 0 ? first : try input.open(sample: b, allowAllSamples: true)
                perSample.append(try layers.flatMap { try HeadStatistics.ofLayer(opened.source, layer: $0) })
            }
            let realKeys = Self.keys.enumerated().filter { i, _ in if case .real = Self.fields(perSample[0][0])[i] { return true } else { return false } }
            var items: [JSONValue] = []
            var csvLines = CSV.line(["layer", "head"] + realKeys.flatMap { [$0.element, $0.element + "_std"] } + ["nan_count", "inf_count", "negative_count"])
            var table = TextTable(header: ["layer", "head", "entropy", "±", "norm_ent", "±", "first", "self", "prev", "nan", "inf", "neg"])
            for r in perSample[0].indices {
                let samples = perSample.map { $0[r] }
                var object: [(String, JSONValue)] = [("layer", .integer(samples[0].layer)), ("head", .integer(samples[0].head))]
                var csvFields = ["\(samples[0].layer)", "\(samples[0].head)"]
                var means: [String: Double] = [:], stds: [String: Double] = [:]
                for (i, key) in realKeys {
                    let values = samples.map { s -> Double in if case .real(let d) = Self.fields(s)[i] { return d } else { return .nan } }
                    let mean = values.reduce(0, +) / Double(values.count)
                    let std = (values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(values.count)).squareRoot()
                    means[key] = mean
                    stds[key] = std
                    object += [(key, .finite(mean)), (key + "_std", .finite(std))]
                    csvFields += [Self.csvText(.real(mean)), Self.csvText(.real(std))]
                }
                let nan = samples.reduce(0) { $0 + $1.nanCount }, inf = samples.reduce(0) { $0 + $1.infCount }, neg = samples.reduce(0) { $0 + $1.negativeCount }
                object += [("nan_count", .integer(nan)), ("inf_count", .integer(inf)), ("negative_count", .integer(neg))]
                csvFields += ["\(nan)", "\(inf)", "\(neg)"]
                items.append(.object(object))
                csvLines += CSV.line(csvFields)
                table.append(["\(samples[0].layer)", "\(samples[0].head)", formatFixed(means["entropy"]!), formatFixed(stds["entropy"]!),
                              formatFixed(means["normalized_entropy"]!), formatFixed(stds["normalized_entropy"]!), formatFixed(means["first_token"]!),
                              formatFixed(means["self"]!), formatFixed(means["previous_token"]!), "\(nan)", "\(inf)", "\(neg)"])
            }
            let source = first.source
            if json {
                Console.print(JSONValue.object([
                    ("file", .string(source.file)), ("samples", .integer(size)), ("layers", .integer(source.layerCount)), ("heads", .integer(source.headCount)),
                    ("queries", .integer(source.queryCount)), ("keys", .integer(source.keyCount)), ("source", .string(source.origin.label)),
                    ("records", .array(items)),
                ]).serialized() + "\n")
            } else if csv {
                Console.print(csvLines)
            } else {
                Console.print("\(size) samples: mean and standard deviation over the samples (± columns)\n" + table.render())
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

        static func json(_ records: [HeadStatistics], source: AttentionSource) -> String {
            let items: [JSONValue] = records.map { r in
                .object(zip(keys, fields(r)).map { key, f in
                    switch f {
                    case .int(let i): return (key, .integer(i))
                    case .real(let d): return (key, .finite(d))
                    }
                })
            }
            return JSONValue.object([
                ("file", .string(source.file)), ("layers", .integer(source.layerCount)), ("heads", .integer(source.headCount)),
                ("queries", .integer(source.queryCount)), ("keys", .integer(source.keyCount)), ("source", .string(source.origin.label)),
                ("records", .array(items)),
            ]).serialized()
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
