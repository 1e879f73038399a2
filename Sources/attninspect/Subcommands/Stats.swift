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
                heads): each layer is read once more, whole. Table and JSON only.
                """
        )
        var outliers = false

        func validate() throws {
            if outliers && (csv || !moreFiles.isEmpty || input.allSamples) {
                throw ValidationError(
                    "--outliers goes with one file and one sample, as a table or --json (see also heads)")
            }
        }

        func run() throws {
            if !moreFiles.isEmpty { return try runOverFiles() }
            if input.allSamples { return try runOverSamples() }
            let progress = Progress.start("stats, layers")
            let result = try Self.statistics(of: input, layer: layer, limit: limit, progress: progress)
            progress?.finish()
            let opened = result.opened, source = result.source, records = result.samples[0]
            let layers = Array(Set(records.map(\.layer))).sorted()
            var found: [HeadAnalysis.OutlierToken]?
            let prefix = try opened.declaredPrefix().map { Swift.min($0, source.keyCount) } ?? 0
            let analysis = HeadAnalysis(
                keyLabels: source.keyTokens, matchKeys: nil, distance: .sequence(prefix: prefix))
            if outliers { found = try analysis.outliers(of: source, layers: layers) }
            if json {
                var fields = StatsReport.json(records, source: source)
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
            let result = try Self.statistics(of: input, layer: layer, limit: limit)
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
                        try Self.statistics(of: options, layer: layer, limit: limit, batchAxisOptional: true))
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
            let report: StatsReport.FileResult
            var source: AttentionSource { opened.source }
            var samples: [[HeadStatistics]] { report.samples }

            init(opened: OpenedDump, samples: [[HeadStatistics]], queries: [Int] = [], keys: [Int] = []) {
                self.opened = opened
                report = .init(source: opened.source, samples: samples, queriesPerSample: queries, keysPerSample: keys)
            }
        }

        /// With `batchAxisOptional`, `--batch all` on a file without a batch axis reads its one sample.
        /// `progress` counts layers (its total is set here, as the number of layers read).
        static func statistics(
            of input: InputOptions, layer: Int?, limit: WorkLimitOptions, batchAxisOptional: Bool = false,
            progress: Progress? = nil
        ) throws -> FileStatistics {
            if !input.allSamples {
                let opened = try input.open()
                let layers = try layer.map { [try opened.layer($0)] } ?? Array(0..<opened.source.layerCount)
                try limit.checkRecomputation(
                    opened.source, layers: layers, file: input.file, cheaper: "one layer at a time (--layer N)")
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
            try limit.checkRecomputation(
                first.source, layers: Array(repeating: layers, count: size).flatMap { $0 }, file: input.file,
                cheaper: "one layer at a time (--layer N)")
            var perSample: [[HeadStatistics]] = []
            var queries: [Int] = [], keys: [Int] = []
            for b in 0..<size {
                let opened = b == 0 ? first : try input.open(sample: b, allowAllSamples: true)
                perSample.append(try layers.flatMap { try HeadStatistics.ofLayer(opened.source, layer: $0) })
                queries.append(opened.source.queryCount)
                keys.append(opened.source.keyCount)
            }
            return FileStatistics(opened: first, samples: perSample, queries: queries, keys: keys)
        }

        static func noteNonFinite(_ records: [HeadStatistics], file: String) {
            if let note = StatsReport.nonFiniteNote(records, file: file) { Console.note(note) }
        }
    }
}
