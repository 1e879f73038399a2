import ArgumentParser
import AttnCore
import AttnSource
import AttnAnalysis
import AttnRender

extension AttnInspect {
    /// `attninspect report FILE -o report.html`: one self-contained, interactive HTML page of the dump.
    struct Report: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "report",
            abstract:
                """
                One self-contained HTML page of the dump, for any browser, offline: the stats table and entropy \
                grid, bertviz's head and model views, the attention matrix, linked and navigable by keys.
                """
        )

        @OptionGroup var input: InputOptions

        @Option(
            name: [.short, .customLong("output")],
            help: "The page to write (.html): one file, no request of any kind when opened.")
        var output: String

        @Option(parsing: .unconditional, help: "Embed only this layer's attention (default: every layer).")
        var layer: Int?

        @Option(parsing: .unconditional, help: "Embed only this head's attention (default: every head).")
        var head: Int?

        @Option(
            help:
                """
                The picture the network saw (.png, .ppm, .pgm: after resizing and cropping), under the vision \
                view's patch grid.
                """)
        var image: String?

        @OptionGroup var work: WorkLimitOptions

        @Option(
            name: .customLong("max-report-size"),
            help:
                """
                The most the page's matrices may take (attention and rollout, in base64): larger ones are pooled \
                (text) or refused (a patch grid), 40M by default.
                """)
        var maxReportSize = "40M"

        func validate() throws {
            let lower = output.lowercased()
            guard lower.hasSuffix(".html") || lower.hasSuffix(".htm") else {
                throw ValidationError("report writes an HTML page: give an output ending in .html, got '\(output)'")
            }
            if MemoryBudget.parseSize(maxReportSize) == nil {
                throw ValidationError("--max-report-size expects a size such as 40M or 1G, got '\(maxReportSize)'")
            }
        }

        func run() throws {
            let opened = try input.open()
            let source = opened.source
            let layers = try layer.map { [try opened.layer($0)] } ?? Array(0..<source.layerCount)
            let heads = try head.map { [try opened.head($0)] } ?? Array(0..<source.headCount)
            let limit = MemoryBudget.parseSize(maxReportSize)!
            let (q, k) = (source.queryCount, source.keyCount)
            // The rollout of every depth, when rollout can be made of the dump (as `attninspect rollout` says) and its
            // token × token matrices (the depths kept, the fused layer and a partial sum per worker) fit in memory.
            let rolloutMemory = MemoryBudget.bytes(
                [source.layerCount + 3 + 4 * Workers.count, q, k], elementSize: 4)
            let rollout =
                source.chainRefusal("rollout") == nil
                && MemoryBudget.refusal("the rollout", bytes: rolloutMemory) == nil
            if source.chainRefusal("rollout") == nil && !rollout {
                Console.note(
                    """
                    \(input.file): the rollout view is left out: its \(source.layerCount) matrices of \(q) × \(k) \
                    need \(MemoryBudget.describe(rolloutMemory)), over --max-memory; attninspect rollout --view row \
                    --token i computes one row at any length
                    """
                )
            }
            // The bytes of the page's matrices pooled by `size` (1: none), in base64; nil when they overflow.
            func pageBytes(_ size: Int) -> Int? {
                let pooling = Pooling(size: size)
                let (pq, pk) = (pooling.cells(q), pooling.cells(k))
                guard
                    let a = ReportPage.attentionBytes(layers: layers.count, heads: heads.count, queries: pq, keys: pk),
                    let r = rollout ? ReportPage.rolloutBytes(layers: source.layerCount, queries: pq, keys: pk) : 0
                else { return nil }
                let (sum, overflow) = a.addingReportingOverflow(r)
                return overflow ? nil : sum / 3 * 4 + (sum % 3 == 0 ? 0 : 4)
            }
            var pooling = Pooling(size: 1)
            // A patch grid declared by the file, or inferred: no token labels, and the keys after one prefix token
            // (CLS) a square of at least 4 × 4 patches (said on stderr).
            var patchGrid: (grid: PatchGrid, prefix: Int)?
            if try opened.isVisionDump(gridRequested: false) {
                let prefix = try opened.declaredPrefix() ?? 1
                patchGrid = (try opened.patchGrid(nil, prefix: prefix, note: Console.note), prefix)
            } else if source.tokens == nil, source.queryCount == source.keyCount,
                let square = PatchGrid.square(holding: source.keyCount - 1), square.rows >= 4
            {
                patchGrid = (square, 1)
                Console.note(
                    """
                    \(input.file): no patch grid declared and no token labels: read as 1 prefix token (CLS) and a \
                    \(square) patch grid (a root attribute patch_grid [rows, columns] and prefix_tokens say otherwise)
                    """
                )
            }
            let vision = patchGrid != nil
            if let whole = pageBytes(1), whole <= limit {
                // as they are
            } else if !vision,
                let size = (2...Swift.max(2, q, k)).first(where: { pageBytes($0).map { $0 <= limit } ?? false })
            {
                pooling = Pooling(size: size)
                let what = "\(layers.count) layers × \(heads.count) heads × \(q) × \(k)"
                Console.note(
                    """
                    \(input.file): \(what)\(rollout ? " and the rollout" : "") would take \
                    \(MemoryBudget.describe(pageBytes(1))) in the page, over --max-report-size \
                    \(MemoryBudget.describe(limit)): the matrices are pooled \(size)×\(size) (means of cells of \
                    \(size) × \(size) tokens: \(MemoryBudget.describe(pageBytes(size)))), and the head view needs \
                    tokens: --layer N or --head H keeps them
                    """
                )
            } else {
                let what = "\(layers.count) layers × \(heads.count) heads × \(q) × \(k)"
                throw AttnError(
                    .resource, file: input.file,
                    """
                    the attention of \(what)\(rollout ? " and its rollout" : "") take \
                    \(MemoryBudget.describe(pageBytes(1))) in the page, over --max-report-size \
                    \(MemoryBudget.describe(limit))\(vision ? " (a patch grid is not pooled)" : ""): choose a layer or \
                    a head (--layer N, --head H), or raise --max-report-size
                    """
                )
            }
            let picture = try image.map { try ImageFile.read($0) }
            // Recomputed from q and k: the statistics read every layer, the embedded ones are read again (a head at a
            // time when pooled) and the rollout reads every layer once more.
            try work.checkRecomputation(
                source,
                layers: Array(0..<source.layerCount) + layers
                    + (rollout ? Array(0..<source.layerCount) : []),
                file: input.file, cheaper: "--layer N embeds one layer")
            let progress = Progress.start("report, layers", total: source.layerCount)
            var statistics: [HeadStatistics] = []
            var embedded: [(number: Int, maps: [Matrix])] = []
            try opened.analysing {
                for l in 0..<source.layerCount {
                    defer { progress?.advance() }
                    statistics += try HeadStatistics.ofLayer(source, layer: l)
                    guard layers.contains(l) else { continue }
                    if pooling.size > 1 {
                        // Streamed, a head at a time: a long sequence recomputed from q and k is never whole.
                        embedded.append(
                            (
                                l,
                                try heads.map {
                                    try PooledMap.ofLayer(source, layer: l, fusion: .head($0), pooling: pooling)
                                }
                            ))
                    } else {
                        let attention = try source.layer(l)
                        embedded.append((l, try heads.map { try HeadFusion.head($0).fuse(attention) }))
                    }
                }
            }
            progress?.finish()
            var depths: [Matrix]?
            if rollout {
                do {
                    var found: [Matrix] = []
                    _ = try AttnAnalysis.Rollout(layers: 0...(source.layerCount - 1)).compute(
                        source, each: { _, r in found.append(r) })
                    depths = found
                } catch let error as AnalysisError {
                    Console.note("\(input.file): the rollout view is left out: \(error.message)")
                } catch let error as AttnError where error.kind == .resource {
                    // A layer too large to hold whole (a long sequence): `rollout --view row --token i` streams one
                    // row instead.
                    Console.note(
                        """
                        \(input.file): the rollout view is left out: \(error.message); attninspect rollout --view row \
                        --token i computes one row at any length
                        """
                    )
                    depths = nil
                }
            }
            let data = try ReportPage.data(
                ReportPage.Contents(
                    source: source, layers: embedded, heads: heads, statistics: statistics, patchGrid: patchGrid,
                    rollout: depths, image: picture, pooling: pooling))
            let page = Array(ReportPage.html(data: data, title: input.file).utf8)
            try AtomicFile.write(page, to: output, protecting: [input.file])
            Console.note(
                """
                wrote \(output): \(embedded.count) layers × \(heads.count) heads of \(source.queryCount) × \
                \(source.keyCount) (float16\(pooling.size > 1 ? ", pooled \(pooling.size)×\(pooling.size)" : "")), \
                \(depths == nil ? "no rollout" : "the rollout"), the stats of \(source.layerCount) layers, \
                \(MemoryBudget.describe(page.count))
                """
            )
        }
    }
}
