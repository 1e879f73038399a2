import ArgumentParser
import AttnCore
import AttnSource
import AttnAnalysis
import AttnReader
import AttnRender

extension AttnInspect {
    /// `attninspect heads FILE`: published measures of every head (docs/heads.md).
    struct Heads: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "heads",
            abstract:
                """
                Per head: Clark et al.'s measures and roles, TransformerLens's scores, mean attention distance, \
                sink share, head similarity, outlier tokens.
                """,
            discussion: """
                Clark et al. 2019: entropy and the attention to the first token, [CLS], [SEP], punctuation, the \
                token itself, the previous token (query i → key i−1) and the next token (query i → key i+1), with \
                roles for heads over their thresholds. TransformerLens's previous-token, duplicate-token and \
                induction scores (mul) from token_ids/input_ids or the token labels. Mean attention distance \
                (ViT paper, as probing-vits computes it) on the patch grid (pixels with --patch-size) or in \
                tokens. StreamingLLM's sink share of the first --sink-tokens. Jensen–Shannon divergence between \
                heads. Tokens receiving abnormal attention (registers artefacts, sinks). Definitions: docs/heads.md.
                """)

        @OptionGroup var input: InputOptions

        @OptionGroup var format: ReportFormatOptions
        var json: Bool { format.json }
        var csv: Bool { format.csv }

        @Option(
            name: .customLong("sink-tokens"), parsing: .unconditional,
            help: "The first k tokens counted by the sink share (StreamingLLM's attention sinks).")
        var sinkTokens = 4

        @Flag(
            name: .customLong("exclude-bos"), help: "TransformerLens scores: set column 0 of the attention to 0 first.")
        var excludeBOS = false

        @Flag(
            name: .customLong("exclude-current-token"),
            help: "TransformerLens scores: set the diagonal of the attention to 0 first.")
        var excludeCurrentToken = false

        @Option(
            name: .customLong("patch-size"), parsing: .unconditional,
            help: "Patch size in pixels: mean attention distance in pixels instead of patches.")
        var patchSize: Double?

        @Option(
            help: "The patch grid as ROWSxCOLS (default: the file's patch_grid; without one, distances are in tokens).")
        var grid: PatchGrid?

        @Option(
            parsing: .unconditional,
            help:
                """
                Tokens before the patches, left out of the mean attention distance on a grid (default: the \
                file's prefix_tokens, else 1); in tokens, 0 unless given.
                """
        )
        var prefix: Int?

        @Option(
            help:
                """
                Head similarity between the heads of each layer (layer), between every pair of heads of the model \
                (all), or none (its cost grows as heads² × queries × keys, and it reads each layer whole). Default: \
                layer, or none (said on stderr) when a whole layer would not fit in memory or take too long.
                """
        )
        var similarity: SimilarityScope?

        @Option(
            parsing: .unconditional,
            help:
                """
                Only layers A to B, B left out (A:B as a Python slice: 0:16, 16:, -4:).
                """)
        var layers: LayerRange?

        @Option(
            name: .customLong("top-keys"), parsing: .unconditional,
            help: "With --json: how many keys keys_received names per head, by the attention they receive.")
        var topKeys = 5

        @OptionGroup var limit: WorkLimitOptions

        @Option(
            name: .customLong("similarity-out"),
            help:
                """
                Also write the similarity: .csv (layer_a, head_a, layer_b, head_b, js_divergence), .npy or a \
                picture (.png, .ppm, .pgm).
                """
        )
        var similarityOut: String?

        @Option(
            name: .customLong("outlier-z"), parsing: .unconditional,
            help: "Outlier tokens: the modified z-score a token's received share must exceed.")
        var outlierZ = 3.5

        @Option(
            name: .customLong("outlier-ratio"), parsing: .unconditional,
            help: "Outlier tokens: how many times the uniform share 1/K a token must also receive.")
        var outlierRatio = 5.0

        @Option(name: .customLong("cls-token"), help: "The label of the CLS token.")
        var clsToken = "[CLS]"

        @Option(name: .customLong("sep-token"), help: "The label of the SEP token.")
        var sepToken = "[SEP]"

        func validate() throws {
            if sinkTokens < 1 { throw ValidationError("--sink-tokens must be at least 1, got \(sinkTokens)") }
            if let patchSize, !(patchSize > 0 && patchSize.isFinite) {
                throw ValidationError("--patch-size must be positive, got \(patchSize)")
            }
            if let prefix, prefix < 0 { throw ValidationError("--prefix must be 0 or more, got \(prefix)") }
            if !(outlierZ.isFinite && outlierRatio.isFinite && outlierRatio >= 0) {
                throw ValidationError("--outlier-z and --outlier-ratio must be finite numbers")
            }
            if topKeys < 0 { throw ValidationError("--top-keys must be 0 or more, got \(topKeys)") }
            if let similarityOut {
                if similarity == SimilarityScope.none {
                    throw ValidationError(
                        """
                        --similarity-out \(similarityOut) writes the head similarity, which --similarity none \
                        skips: choose layer or all
                        """
                    )
                }
                let lower = similarityOut.lowercased()
                if lower.hasSuffix(".csv") { return }
                if let problem = MapWriter(output: similarityOut).problem { throw ValidationError(problem) }
            }
        }

        func run() throws {
            let opened = try input.open()
            let source = opened.source
            let analysis = try configuredAnalysis(opened)
            let chosen = try layers?.layers(count: source.layerCount, file: input.file) ?? Array(0..<source.layerCount)
            let similarity = try similarityScope(source, layers: chosen)
            // Head similarity is the costly part: every pair of heads (of a layer, or of the model) over every row.
            let (maps, seconds) = similarity.estimate(source, layers: chosen.count)
            try limit.checkRecomputation(
                source, layers: chosen, file: input.file, cheaper: "a range of layers at a time (--layers A:B)")
            try limit.check(
                seconds, file: input.file,
                work:
                    """
                    head similarity (--similarity \(similarity.rawValue)) between \(maps) \
                    heads\(similarity == .all ? "" : " in each of \(chosen.count) layers") over \
                    \(source.queryCount) × \(source.keyCount) values
                    """,
                cheaper: similarity == .all ? "use --similarity layer or none" : "use --similarity none")
            let progress = Progress.start("heads, layers", total: chosen.count)
            let result = try analysis.run(source, layers: chosen, similarity: similarity, step: progress?.step)
            progress?.finish()
            // The file first: if it cannot be written, the run fails before printing anything.
            if let similarityOut {
                try HeadsReport.writeSimilarity(
                    similarityOut, result, heads: source.headCount, input: input.file, note: { Console.note($0) })
            }
            if json {
                let match =
                    analysis.matchKeys == nil
                    ? nil : (try opened.tokenIDs(sample: input.batch) != nil ? "ids" : "strings")
                Console.print(
                    HeadsReport.json(result, analysis: analysis, tokenMatch: match, source: source, topKeys: topKeys)
                        .serialized() + "\n")
            } else if csv {
                Console.printCSV(RecordWriter.csv(result.records))
            } else {
                Console.print(HeadsReport.table(result, analysis: analysis, source: source))
            }
            let bad = result.records.filter { $0.roles == nil }
            if !bad.isEmpty {
                Console.note(
                    """
                    \(input.file): \(bad.count) head(s) hold NaN or infinite values: their measures are null and \
                    they are left out of the similarity and outlier statistics
                    """
                )
            }
        }

        /// `--similarity`, or by default the per-layer similarity when a whole layer fits in memory and the
        /// similarity within `--max-seconds`, else none (said on stderr).
        func similarityScope(_ source: AttentionSource, layers: [Int]) throws -> SimilarityScope {
            if let similarity { return similarity }
            let bytes = MemoryBudget.bytes(
                [source.headCount, source.queryCount, source.keyCount],
                elementSize: source is RecomputedAttention ? 8 : 4)
            let seconds = SimilarityScope.layer.estimate(source, layers: layers.count).seconds
            if let refusal = MemoryBudget.refusal("one whole layer for the head similarity", bytes: bytes) {
                Console.note("\(input.file): head similarity skipped: \(refusal) (--similarity none to say so)")
                return .none
            }
            if seconds > limit.maxSeconds {
                Console.note(
                    """
                    \(input.file): head similarity skipped: estimated at \(WorkLimitOptions.describe(seconds)) s, over \
                    --max-seconds \(WorkLimitOptions.describe(limit.maxSeconds)) (--similarity none to say so)
                    """
                )
                return .none
            }
            return .layer
        }

        /// The analysis with the file's labels, ids and grid and the options.
        func configuredAnalysis(_ opened: OpenedDump) throws -> HeadAnalysis {
            let source = opened.source
            let distance: TokenDistance
            // A grid given, declared, or asked for by a patch size in pixels (taken as a square, said in a note).
            if try grid != nil || patchSize != nil || opened.declaredGrid() != nil {
                let p = try opened.prefix(prefix)
                let g = try opened.patchGrid(grid, prefix: p, note: Console.note)
                distance = .grid(rows: g.rows, columns: g.columns, prefix: p, patchSize: patchSize)
            } else {
                let p = prefix ?? 0
                guard p < source.keyCount else {
                    throw AttnError(
                        .analysis, file: input.file,
                        "--prefix \(p) is out of range: expected 0...\(source.keyCount - 1)")
                }
                distance = .sequence(prefix: p)
            }
            var analysis = HeadAnalysis(
                keyLabels: source.keyTokens, matchKeys: try matchKeys(opened), distance: distance)
            analysis.sinkTokens = sinkTokens
            analysis.excludeBOS = excludeBOS
            analysis.excludeCurrentToken = excludeCurrentToken
            analysis.clsLabels = [clsToken]
            analysis.sepLabels = [sepToken]
            analysis.outlierZ = outlierZ
            analysis.outlierRatio = outlierRatio
            return analysis
        }

        /// What duplicate and induction patterns compare: token ids when the file has them, else labels.
        func matchKeys(_ opened: OpenedDump) throws -> [String]? {
            let source = opened.source
            guard !source.isCrossAttention else { return nil }
            if let ids = try opened.tokenIDs(sample: input.batch) { return ids.map { String($0) } }
            return source.tokens
        }
    }
}
