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
            abstract: "Per head: Clark et al.'s measures and roles, TransformerLens's scores, mean attention distance, sink share, head similarity, outlier tokens.",
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

        @Flag(help: "Print one JSON object.")
        var json = false

        @Flag(help: "Print CSV records with a header.")
        var csv = false

        @Option(name: .customLong("sink-tokens"), parsing: .unconditional, help: "The first k tokens counted by the sink share (default 4, as StreamingLLM).")
        var sinkTokens = 4

        @Flag(name: .customLong("exclude-bos"), help: "TransformerLens scores: set column 0 of the attention to 0 first.")
        var excludeBOS = false

        @Flag(name: .customLong("exclude-current-token"), help: "TransformerLens scores: set the diagonal of the attention to 0 first.")
        var excludeCurrentToken = false

        @Option(name: .customLong("patch-size"), parsing: .unconditional, help: "Patch size in pixels: mean attention distance in pixels instead of patches.")
        var patchSize: Double?

        @Option(help: "The patch grid as ROWSxCOLS (default: the file's patch_grid; without one, distances are in tokens).")
        var grid: PatchGrid?

        @Option(parsing: .unconditional, help: "Tokens before the patches, left out of the mean attention distance (default: the file's prefix_tokens, else 1 on a grid and 0 in tokens).")
        var prefix: Int?

        enum Scope: String, ExpressibleByArgument, CaseIterable { case layer, all, none }

        @Option(help: "Head similarity between the heads of each layer (layer), between every pair of heads of the model (all), or none (its cost grows as heads² × queries × keys).")
        var similarity: Scope = .layer

        @OptionGroup var limit: WorkLimitOptions

        @Option(name: .customLong("similarity-out"), help: "Also write the similarity: .csv (layer_a, head_a, layer_b, head_b, js_divergence), .npy or a picture (.png, .ppm, .pgm).")
        var similarityOut: String?

        @Option(name: .customLong("outlier-z"), parsing: .unconditional, help: "Outlier tokens: the modified z-score a token's received share must exceed (default 3.5).")
        var outlierZ = 3.5

        @Option(name: .customLong("outlier-ratio"), parsing: .unconditional, help: "Outlier tokens: how many times the uniform share 1/K a token must also receive (default 5).")
        var outlierRatio = 5.0

        @Option(name: .customLong("cls-token"), help: "The label of the CLS token (default [CLS]).")
        var clsToken = "[CLS]"

        @Option(name: .customLong("sep-token"), help: "The label of the SEP token (default [SEP]).")
        var sepToken = "[SEP]"

        func validate() throws {
            if json && csv { throw ValidationError("--json and --csv are exclusive: choose one") }
            if sinkTokens < 1 { throw ValidationError("--sink-tokens must be at least 1, got \(sinkTokens)") }
            if let patchSize, !(patchSize > 0 && patchSize.isFinite) { throw ValidationError("--patch-size must be positive, got \(patchSize)") }
            if let prefix, prefix < 0 { throw ValidationError("--prefix must be 0 or more, got \(prefix)") }
            if !(outlierZ.isFinite && outlierRatio.isFinite && outlierRatio >= 0) { throw ValidationError("--outlier-z and --outlier-ratio must be finite numbers") }
            if let similarityOut {
                if similarity == .none { throw ValidationError("--similarity-out \(similarityOut) writes the head similarity, which --similarity none skips: choose layer or all") }
                let lower = similarityOut.lowercased()
                if lower.hasSuffix(".csv") { return }
                if let problem = MapWriter(output: similarityOut).problem { throw ValidationError(problem) }
            }
        }

        func run() throws {
            let opened = try input.open()
            let source = opened.source
            let analysis = try configuredAnalysis(opened)
            // Head similarity is the costly part: every pair of heads (of a layer, or of the model) over every row.
            let maps = similarity == .all ? source.layerCount * source.headCount : source.headCount
            let seconds = similarity == .none ? 0
                : Double(similarity == .all ? 1 : source.layerCount) * JensenShannon.estimatedSeconds(maps: maps, queries: source.queryCount, keys: source.keyCount, workers: Workers.count)
            try limit.check(seconds, file: input.file,
                            work: "head similarity (--similarity \(similarity.rawValue)) between \(maps) heads\(similarity == .all ? "" : " in each of \(source.layerCount) layers") over \(source.queryCount) × \(source.keyCount) values",
                            cheaper: similarity == .all ? "use --similarity layer or none" : "use --similarity none")
            var records: [HeadMeasures] = []
            var shares: [[Double]?] = []
            var perLayer: [[[Double?]]] = []
            let progress = Progress.start("heads, layers", total: source.layerCount)
            for l in 0..<source.layerCount {
                defer { progress?.advance() }
                let layer = try source.layer(l)
                records += try opened.analysing { try analysis.measures(of: layer, index: l) }
                shares.append(HeadAnalysis.receivedShares(of: layer))
                if similarity == .layer { perLayer.append(JensenShannon.betweenHeads(layer)) }
            }
            progress?.finish()
            let all = similarity == .all ? try similarityOfAllHeads(source) : nil
            let outliers = analysis.outliers(shares: shares, keys: source.keyCount)
            // The file first: if it cannot be written, the run fails before printing anything.
            if let similarityOut { try writeSimilarity(similarityOut, perLayer: perLayer, all: all, heads: source.headCount) }
            if json {
                let match = analysis.matchKeys == nil ? nil : (try opened.tokenIDs(sample: input.batch) != nil ? "ids" : "strings")
                Console.print(report(records, analysis: analysis, tokenMatch: match, source: source, perLayer: perLayer, all: all, outliers: outliers).serialized() + "\n")
            } else if csv {
                var out = CSV.line(Self.keys)
                for r in records { out += CSV.line(Self.fields(r).map(Self.csvText)) }
                Console.printCSV(out)
            } else {
                Console.print(table(records, analysis: analysis, source: source, outliers: outliers))
            }
            let bad = records.filter { $0.roles == nil }
            if !bad.isEmpty {
                Console.note("\(input.file): \(bad.count) head(s) hold NaN or infinite values: their measures are null and they are left out of the similarity and outlier statistics")
            }
        }

        /// The analysis with the file's labels, ids and grid and the options.
        func configuredAnalysis(_ opened: OpenedDump) throws -> HeadAnalysis {
            let source = opened.source
            let distance: TokenDistance
            let declaredGrid = try opened.declaredGrid() != nil
            if grid != nil || declaredGrid {
                let p = try opened.prefix(prefix)
                let g = try opened.patchGrid(grid, prefix: p)
                distance = .grid(rows: g.rows, columns: g.columns, prefix: p, patchSize: patchSize)
            } else {
                if patchSize != nil {
                    throw AttnError(file: input.file, "--patch-size needs a patch grid: the file declares no patch_grid, so give --grid ROWSxCOLS")
                }
                let p = prefix ?? 0
                guard p < source.keyCount else {
                    throw AttnError(.analysis, file: input.file, "--prefix \(p) is out of range: expected 0...\(source.keyCount - 1)")
                }
                distance = .sequence(prefix: p)
            }
            var analysis = HeadAnalysis(keyLabels: source.keyTokens, matchKeys: try matchKeys(opened), distance: distance)
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
            guard source.queryCount == source.keyCount else { return nil }
            if let ids = try opened.tokenIDs(sample: input.batch) { return ids.map { String($0) } }
            return source.tokens
        }

        /// The (L·H) × (L·H) Jensen–Shannon matrix between every pair of heads, all layers in memory.
        func similarityOfAllHeads(_ source: AttentionSource) throws -> [[Double?]] {
            let bytes = MemoryBudget.bytes([source.layerCount, source.headCount, source.queryCount, source.keyCount], elementSize: 4)
            if let refusal = MemoryBudget.refusal("--similarity all, every layer of \(source.layerCount) × \(source.headCount) heads × \(source.queryCount) × \(source.keyCount) in memory", bytes: bytes) {
                throw AttnError(.resource, file: input.file, refusal + "; use --similarity layer")
            }
            var values: [Float] = []
            values.reserveCapacity(source.layerCount * source.headCount * source.queryCount * source.keyCount)
            for l in 0..<source.layerCount { values += try source.layer(l).values }
            return JensenShannon.matrix(values, maps: source.layerCount * source.headCount, queries: source.queryCount, keys: source.keyCount)
        }

        static let keys = ["layer", "head", "entropy", "first_query_entropy", "mean_row_max", "attn_first", "attn_cls", "attn_sep", "attn_punct",
                           "attn_self", "attn_previous", "attn_next", "previous_token", "duplicate_token", "induction",
                           "mean_attention_distance", "sink_share", "roles"]

        enum Field { case int(Int), real(Double?), roles([String]?) }

        static func fields(_ r: HeadMeasures) -> [Field] {
            [.int(r.layer), .int(r.head), .real(r.entropy), .real(r.firstQueryEntropy), .real(r.meanRowMax), .real(r.attnFirst),
             .real(r.attnCLS), .real(r.attnSEP), .real(r.attnPunct), .real(r.attnSelf), .real(r.attnPrevious), .real(r.attnNext),
             .real(r.previousToken), .real(r.duplicateToken), .real(r.induction), .real(r.meanAttentionDistance), .real(r.sinkShare),
             .roles(r.roles)]
        }

        static func csvText(_ f: Field) -> String {
            switch f {
            case .int(let i): return "\(i)"
            case .real(let d): return d.map { "\($0)" } ?? ""
            case .roles(let r): return r?.joined(separator: ";") ?? ""
            }
        }

        static func jsonValue(_ f: Field) -> JSONValue {
            switch f {
            case .int(let i): return .integer(i)
            case .real(let d): return d.map { JSONValue.finite($0) } ?? .null
            case .roles(let r): return r.map { .array($0.map { .string($0) }) } ?? .null
            }
        }

        static func optional(_ value: Double?) -> JSONValue { value.map { JSONValue.finite($0) } ?? .null }

        func report(_ records: [HeadMeasures], analysis: HeadAnalysis, tokenMatch: String?, source: AttentionSource, perLayer: [[[Double?]]],
                    all: [[Double?]]?, outliers: [HeadAnalysis.OutlierToken]) -> JSONValue {
            let distance: JSONValue
            switch analysis.distance {
            case .grid(let rows, let columns, let p, let size):
                distance = .object([("mode", .string("grid")), ("grid", .array([.integer(rows), .integer(columns)])), ("prefix", .integer(p)),
                                    ("patch_size", size.map { .number($0) } ?? .null), ("unit", .string(size == nil ? "patches" : "pixels"))])
            case .sequence(let p):
                distance = .object([("mode", .string("sequence")), ("grid", .null), ("prefix", .integer(p)), ("patch_size", .null), ("unit", .string("tokens"))])
            }
            let match: JSONValue = tokenMatch.map { .string($0) } ?? .null
            let special: JSONValue = analysis.specialTokens.map { s in
                .object([("cls", .array(s.cls.map { .integer($0) })), ("sep", .array(s.sep.map { .integer($0) })), ("punct", .array(s.punct.map { .integer($0) }))])
            } ?? .null
            var pairs: JSONValue = .null
            if source.queryCount == source.keyCount {
                let p = analysis.patternPairs(positions: source.queryCount)
                pairs = .object([("previous_token", .integer(max(source.queryCount - 1, 0))),
                                 ("duplicate_token", p.map { .integer($0.duplicate.count) } ?? .null),
                                 ("induction", p.map { .integer($0.induction.count) } ?? .null)])
            }
            let similarityValue: JSONValue
            func matrix(_ m: [[Double?]]) -> JSONValue { .array(m.map { .array($0.map(Self.optional)) }) }
            if let all {
                let heads: [JSONValue] = (0..<source.layerCount).flatMap { l in (0..<source.headCount).map { h in JSONValue.array([.integer(l), .integer(h)]) } }
                similarityValue = .object([("scope", .string("all")), ("heads", .array(heads)), ("js_divergence", matrix(all))])
            } else if similarity == .none {
                similarityValue = .object([("scope", .string("none"))])
            } else {
                similarityValue = .object([("scope", .string("layer")), ("matrices", .array(perLayer.enumerated().map { l, m in
                    .object([("layer", .integer(l)), ("js_divergence", matrix(m))]) }))])
            }
            return .document([
                ("file", .string(source.file)), ("layers", .integer(source.layerCount)), ("heads", .integer(source.headCount)),
                ("queries", .integer(source.queryCount)), ("keys", .integer(source.keyCount)), ("source", .string(source.origin.label)),
                ("parameters", .object([("sink_tokens", .integer(sinkTokens)), ("exclude_bos", .bool(excludeBOS)),
                                        ("exclude_current_token", .bool(excludeCurrentToken)), ("token_match", match), ("distance", distance),
                                        ("similarity", .string(similarity.rawValue)), ("outlier_z", .number(outlierZ)), ("outlier_ratio", .number(outlierRatio))])),
                ("special_tokens", special), ("tl_pairs", pairs),
                ("records", .array(records.map { r in .object(zip(Self.keys, Self.fields(r).map(Self.jsonValue)).map { ($0, $1) }) })),
                ("similarity", similarityValue), ("outlier_tokens", OutlierReport.json(outliers)),
            ])
        }

        func table(_ records: [HeadMeasures], analysis: HeadAnalysis, source: AttentionSource, outliers: [HeadAnalysis.OutlierToken]) -> String {
            let unit: String
            switch analysis.distance {
            case .grid(_, _, _, let size): unit = size == nil ? "patches" : "px"
            case .sequence: unit = "tokens"
            }
            func f(_ v: Double?) -> String { v.map { formatFixed($0, decimals: 3) } ?? "-" }
            var text = ""
            for l in 0..<source.layerCount {
                var t = TextTable(header: ["head", "entropy", "prev", "next", "self", "first", "cls", "sep", "sink", "TL prev", "TL dup", "TL ind", "dist (\(unit))", "roles"])
                for r in records where r.layer == l {
                    t.append(["\(r.head)", f(r.entropy), f(r.attnPrevious), f(r.attnNext), f(r.attnSelf), f(r.attnFirst), f(r.attnCLS), f(r.attnSEP),
                              f(r.sinkShare), f(r.previousToken), f(r.duplicateToken), f(r.induction), f(r.meanAttentionDistance),
                              r.roles.map { $0.isEmpty ? "" : $0.joined(separator: ",") } ?? "-"])
                }
                text += "layer \(l): \(source.headCount) heads, \(source.queryCount) queries × \(source.keyCount) keys\n" + t.render() + "\n"
            }
            text += OutlierReport.table(outliers, z: outlierZ, ratio: outlierRatio)
            return text
        }

        /// The similarity as long CSV rows, or as a matrix (.npy or a picture): the (L·H)² matrix with
        /// `--similarity all`, else each layer's H × H matrix stacked (L·H rows × H columns).
        func writeSimilarity(_ path: String, perLayer: [[[Double?]]], all: [[Double?]]?, heads: Int) throws {
            let rows: [[Double?]] = all ?? perLayer.flatMap { $0 }
            let columns = rows.first?.count ?? 0
            if path.lowercased().hasSuffix(".csv") {
                var out = CSV.line(["layer_a", "head_a", "layer_b", "head_b", "js_divergence"])
                for (i, row) in rows.enumerated() {
                    for (j, v) in row.enumerated() {
                        let la = i / heads, ha = i % heads
                        let (lb, hb) = all == nil ? (la, j) : (j / heads, j % heads)
                        out += CSV.line(["\(la)", "\(ha)", "\(lb)", "\(hb)", v.map { "\($0)" } ?? ""])
                    }
                }
                try AtomicFile.write(Array(out.utf8), to: path, protecting: [input.file])
                Console.note("wrote \(path): Jensen–Shannon divergence between heads, \(rows.count * columns) pairs")
                return
            }
            let map = Matrix(rows: rows.count, columns: columns, values: rows.flatMap { $0.map { Float($0 ?? .nan) } })
            try MapWriter(output: path, note: { Console.note($0) })
                .write(map, what: "Jensen–Shannon divergence between heads (\(all == nil ? "each layer's \(heads)×\(heads), stacked" : "every pair of heads"))", input: input.file)
        }
    }
}

/// Outlier tokens as `heads` and `stats --outliers` print them.
enum OutlierReport {
    static func json(_ outliers: [HeadAnalysis.OutlierToken]) -> JSONValue {
        .array(outliers.map { o in
            .object([("position", .integer(o.position)), ("token", o.token.map { .string($0) } ?? .null), ("prefix", .bool(o.prefix)),
                     ("layers", .array(o.layers.map { .integer($0) })), ("layer_count", .integer(o.layers.count)),
                     ("max_share", .finite(o.maxShare)), ("mean_share", .finite(o.meanShare)), ("max_ratio", .finite(o.maxRatio)),
                     ("shares", .array(o.shares.map { $0.map { JSONValue.finite($0) } ?? .null }))])
        })
    }

    static func table(_ outliers: [HeadAnalysis.OutlierToken], z: Double, ratio: Double) -> String {
        let rule = "modified z > \(z) and ≥ \(ratio)× the uniform share"
        if outliers.isEmpty { return "outlier tokens: none (\(rule))\n" }
        var t = TextTable(header: ["position", "token", "layers", "max share", "× uniform"])
        for o in outliers {
            t.append(["\(o.position)", o.token.map(Terminal.printable) ?? (o.prefix ? "(prefix)" : "-"), o.layers.map(String.init).joined(separator: ","),
                      formatFixed(o.maxShare, decimals: 4), formatFixed(o.maxRatio, decimals: 1)])
        }
        return "outlier tokens (\(rule)):\n" + t.render()
    }
}
