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
            abstract:
                """
                Per-layer, per-head statistics: entropy, range, row sums, first-token, self and previous-token \
                attention, NaN/Inf counts.
                """
        )

        @OptionGroup var input: InputOptions

        @Option(parsing: .unconditional, help: "Only this layer (negative counts from the end).")
        var layer: Int?

        @Option(
            parsing: .unconditional,
            help:
                """
                Only layers A to B, B left out (A:B as a Python slice: 0:16, 16:, -4:): one shard of a long run; \
                attninspect merge joins the shards' --json.
                """)
        var layers: LayerRange?

        @Option(
            name: .customLong("top-keys"), parsing: .unconditional,
            help: "With --json: how many keys keys_received names per head, by the attention they receive.")
        var topKeys = 5

        @Argument(
            help:
                """
                More dumps: statistics of each, then their mean and standard deviation per layer and head; a file \
                that cannot be read is named and skipped (exit status 1).
                """
        )
        var moreFiles: [String] = []

        @OptionGroup var format: ReportFormatOptions
        @OptionGroup var limit: WorkLimitOptions
        var json: Bool { format.json }
        var csv: Bool { format.csv }

        @Flag(
            help:
                """
                Also find outlier tokens (received attention share: modified z > 3.5 and at least 5× uniform; see \
                heads): each layer is read once more, in row blocks. Table and JSON only.
                """
        )
        var outliers = false

        func validate() throws {
            if layer != nil && layers != nil { throw ValidationError("--layer and --layers are exclusive: choose one") }
            if topKeys < 0 { throw ValidationError("--top-keys must be 0 or more, got \(topKeys)") }
            if outliers && (csv || !moreFiles.isEmpty || input.allSamples) {
                throw ValidationError(
                    "--outliers goes with one file and one sample, as a table or --json (see also heads)")
            }
        }

        func run() throws {
            if !moreFiles.isEmpty { return try runOverFiles() }
            if input.allSamples { return try runOverSamples() }
            let progress = Progress.start("stats, layers")
            let result = try Self.statistics(
                of: input, layer: layer, range: layers, limit: limit, received: json, topKeys: topKeys,
                progress: progress)
            progress?.finish()
            let opened = result.opened, source = result.source, records = result.samples[0]
            let layers = Array(Set(records.map(\.layer))).sorted()
            var found: [HeadAnalysis.OutlierToken]?
            let prefix = try opened.declaredPrefix().map { Swift.min($0, source.keyCount) } ?? 0
            let analysis = HeadAnalysis(
                keyLabels: source.keyTokens, matchKeys: nil, distance: .sequence(prefix: prefix))
            if outliers { found = try analysis.outliers(of: source, layers: layers) }
            if json {
                var fields = StatsReport.json(records, source: source, received: result.received, topKeys: topKeys)
                if let found { fields.append(("outlier_tokens", OutlierReport.json(found))) }
                Console.print(JSONValue.document(fields).serialized() + "\n")
            } else if csv {
                Console.printCSV(RecordWriter.csv(records))
            } else {
                Console.print(
                    StatsReport.tables(records, source: source)
                        + (found.map {
                            "\n" + OutlierReport.table($0, z: analysis.outlierZ, ratio: analysis.outlierRatio)
                        } ?? ""))
            }
            Self.noteNonFinite(records, file: input.file)
        }

        /// `--batch all`: the statistics of every sample, then per layer and head their mean and
        /// standard deviation over the samples (population, ddof = 0); counts are summed.
        func runOverSamples() throws {
            let result = try Self.statistics(of: input, layer: layer, range: layers, limit: limit)
            let summary = SampleAggregate(result.samples)
            let source = result.source
            if json {
                Console.print(
                    JSONValue.document(
                        StatsReport.json(
                            summary, source: source, queries: result.report.queriesPerSample,
                            keys: result.report.keysPerSample)
                    ).serialized() + "\n")
            } else if csv {
                Console.printCSV(StatsReport.csv(summary))
            } else {
                Console.print(result.report.samplesHeading + StatsReport.table(summary))
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
                    results.append(
                        try Self.statistics(
                            of: options, layer: layer, range: layers, limit: limit, batchAxisOptional: true,
                            received: json, topKeys: topKeys))
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
                Console.note(
                    """
                    \(r.source.file): \(r.source.layerCount) layers × \(r.source.headCount) heads, unlike \
                    \(included[0].source.file) (\(shape!.0) × \(shape!.1)): left out of the aggregate
                    """
                )
            }
            let summary = included.isEmpty ? nil : SampleAggregate(included.flatMap { $0.samples })
            if json {
                Console.print(
                    StatsReport.json(
                        files: results.map(\.report), failures: failures,
                        aggregate: summary.map { (included.map(\.source.file), $0) }))
            } else if csv {
                // One rectangular table: every file and sample, then the aggregate's mean and std rows.
                Console.printCSV(
                    StatsReport.csv(
                        files: results.map { ($0.source.file, $0.samples, $0.samples.count > 1 || input.allSamples) },
                        aggregate: summary))
            } else {
                Console.print(
                    StatsReport.tables(files: results.map(\.report), aggregate: summary.map { (included.count, $0) }))
            }
            for r in results { Self.noteNonFinite(r.samples.flatMap { $0 }, file: r.source.file) }
            if !failures.isEmpty {
                Console.note(
                    """
                    \(failures.count) of \(failures.count + results.count) files could not be read: \
                    \(failures.map(\.file).joined(separator: ", "))
                    """
                )
                throw ExitCode(1)
            }
        }

        /// One file's statistics: one list per sample used (every sample with `--batch all`).
        struct FileStatistics {
            /// The dump as opened (sample 0 with `--batch all`).
            let opened: OpenedDump
            /// The statistics per sample, with each sample's queries and keys once its padding is dropped.
            var report: StatsReport.FileResult
            var source: AttentionSource { opened.source }
            var samples: [[HeadStatistics]] { report.samples }

            /// The attention each key receives, per layer and head (when asked for: one sample).
            var received: [ReceivedAttention]? { report.received }

            init(opened: OpenedDump, samples: [[HeadStatistics]], queries: [Int] = [], keys: [Int] = []) {
                self.opened = opened
                report = .init(source: opened.source, samples: samples, queriesPerSample: queries, keysPerSample: keys)
            }
        }

        /// With `batchAxisOptional`, `--batch all` on a file without a batch axis reads its one sample; with
        /// `received`, the attention each key receives is found in the same pass (one sample).
        /// `progress` counts layers (its total is set here, as the number of layers read).
        static func statistics(
            of input: InputOptions, layer: Int?, range: LayerRange?, limit: WorkLimitOptions,
            batchAxisOptional: Bool = false, received: Bool = false, topKeys: Int = 0, progress: Progress? = nil
        ) throws -> FileStatistics {
            func chosen(_ opened: OpenedDump) throws -> [Int] {
                if let layer { return [try opened.layer(layer)] }
                if let range { return try range.layers(count: opened.source.layerCount, file: input.file) }
                return Array(0..<opened.source.layerCount)
            }
            if !input.allSamples {
                let opened = try input.open()
                let layers = try chosen(opened)
                try limit.checkRecomputation(
                    opened.source, layers: layers, file: input.file,
                    cheaper: "a layer or a range at a time (--layer N, --layers A:B)")
                progress?.setTotal(layers.count)
                var records: [HeadStatistics] = [], keys: [ReceivedAttention] = []
                for l in layers {
                    defer { progress?.advance() }
                    if received {
                        let found = try HeadStatistics.withReceived(opened.source, layer: l)
                        records += found.statistics
                        keys += found.received
                    } else {
                        records += try HeadStatistics.ofLayer(opened.source, layer: l)
                    }
                }
                var result = FileStatistics(opened: opened, samples: [records])
                if received {
                    result.report.received = keys
                    result.report.topKeys = topKeys
                }
                return result
            }
            let first = try input.open(sample: 0, allowAllSamples: true)
            guard let size = first.layout.summary.batch?.size ?? (batchAxisOptional ? 1 : nil) else {
                throw AttnError(file: input.file, "--batch all: the data has no batch axis")
            }
            let layers = try chosen(first)
            try limit.checkRecomputation(
                first.source, layers: Array(repeating: layers, count: size).flatMap { $0 }, file: input.file,
                cheaper: "a layer or a range at a time (--layer N, --layers A:B)")
            var perSample: [[HeadStatistics]] = []
            var queries: [Int] = [], keys: [Int] = []
            // A file of one sample is reported as alone, with the keys' received attention when asked for.
            var keysReceived: [ReceivedAttention]? = received && size == 1 ? [] : nil
            for b in 0..<size {
                let opened = b == 0 ? first : try input.open(sample: b, allowAllSamples: true)
                perSample.append(
                    try layers.flatMap { l in
                        guard keysReceived != nil else { return try HeadStatistics.ofLayer(opened.source, layer: l) }
                        let found = try HeadStatistics.withReceived(opened.source, layer: l)
                        keysReceived! += found.received
                        return found.statistics
                    })
                queries.append(opened.source.queryCount)
                keys.append(opened.source.keyCount)
            }
            var result = FileStatistics(opened: first, samples: perSample, queries: queries, keys: keys)
            result.report.received = keysReceived
            result.report.topKeys = topKeys
            return result
        }

        static func noteNonFinite(_ records: [HeadStatistics], file: String) {
            if let note = StatsReport.nonFiniteNote(records, file: file) { Console.note(note) }
        }
    }
}
