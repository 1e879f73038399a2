import ArgumentParser
import AttnCore
import AttnSource
import AttnAnalysis
import AttnRender

extension AttnInspect {
    /// `attninspect heatmap FILE --layer N -o OUT`: one layer's attention matrix.
    struct Heatmap: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "heatmap",
            abstract: "The attention matrix (queries × keys) of one layer, fused over heads or one head.")

        @OptionGroup var input: InputOptions
        @OptionGroup var selection: MapSelectionOptions
        var layer: LayerSelection { selection.layer }
        var head: HeadSelection { selection.head }
        @OptionGroup var image: ImageOptions

        @Option(
            parsing: .unconditional,
            help:
                """
                Pool the map to cells of N×N tokens, each the mean of its values (1: no pooling; default: none up \
                to \(Pooling.defaultCellLimit) tokens, else the smallest N giving at most \
                \(Pooling.defaultCellLimit) cells a side). One map, not a montage.
                """
        )
        var pool: Int?

        @OptionGroup var limit: WorkLimitOptions

        func validate() throws {
            try image.checkMontage(layer: layer, head: head)
            if let pool {
                if pool < 1 { throw ValidationError("--pool must be 1 or more (1: no pooling), got \(pool)") }
                if pool > 1 && (layer == .all || head == .all) {
                    throw ValidationError(
                        """
                        --pool pools one map, not a montage (--layer all, --head all): choose one layer and head \
                        (or mean), or drop --pool
                        """
                    )
                }
            }
        }

        func run() throws {
            let opened = try input.open()
            if case .one(let n) = layer, case .fused(let f) = head {
                let l = try opened.layer(n)
                let fusion = try opened.fusion(f)
                let pooling = pooling(opened.source)
                if pooling.size > 1 { return try writePooled(opened, layer: l, fusion: fusion, pooling: pooling) }
                let map = try opened.analysing { try fusion.fuse(try wholeLayer(opened.source, l)) }
                return try image.writer().write(
                    map, what: "layer \(l), \(fusion)", input: input.file, labels: opened.source.tokens,
                    columnLabels: opened.source.keyTokens)
            }
            func columns(_ count: Int) -> Int {
                head == .all
                    ? (layer == .all ? opened.source.headCount : Composition.columns(for: count))
                    : Composition.columns(for: count)
            }
            let (tiles, shape) = try opened.tiles(
                layers: layer, heads: head,
                check: { count, labels in
                    try image.writer().checkMontage(
                        count: count, rows: opened.source.queryCount, columns: opened.source.keyCount,
                        tileColumns: columns(count), labels: labels)
                }
            ) { attention, fusion, _ in try fusion.fuse(attention) }
            let columns = columns(tiles.count)
            try image.writer().writeMontage(
                tiles, shape: shape, columns: columns, what: "attention matrices", input: input.file)
        }

        /// `--pool`, else none up to `Pooling.defaultCellLimit` tokens a side, else enough for that many cells
        /// (said).
        private func pooling(_ source: AttentionSource) -> Pooling {
            if let pool { return Pooling(size: pool) }
            let (q, k) = (source.queryCount, source.keyCount)
            let pooling = Pooling.automatic(queries: q, keys: k)
            if pooling.size > 1 {
                Console.note(
                    """
                    \(input.file): \(q) × \(k) pooled \(pooling.size)×\(pooling.size) to \(pooling.cells(q)) × \
                    \(pooling.cells(k)) cells (mean); --pool N to choose
                    """
                )
            }
            return pooling
        }

        /// Layer `l` whole; a layer over the memory limit is refused with the advice to pool it.
        private func wholeLayer(_ source: AttentionSource, _ l: Int) throws -> LayerAttention {
            do {
                return try source.layer(l)
            } catch var error as AttnError where error.kind == .resource {
                error.message += "; heatmap --pool N (N ≥ 2) streams it, pooled"
                throw error
            }
        }

        /// The map pooled: the mean and one head streamed in row blocks (`PooledMap.ofLayer`), max and min fused from
        /// the whole layer and then pooled. On an `.svg`, the labels are the positions each cell holds.
        private func writePooled(_ opened: OpenedDump, layer l: Int, fusion: HeadFusion, pooling: Pooling) throws {
            let source = opened.source
            try checkPooled(source, layer: l, fusion: fusion, pooling: pooling)
            let map: Matrix
            switch fusion {
            case .mean, .head:
                map = try opened.analysing {
                    try PooledMap.ofLayer(source, layer: l, fusion: fusion, pooling: pooling)
                }
            case .max, .min:
                map = try opened.analysing { PooledMap.pool(try fusion.fuse(try source.layer(l)), pooling) }
            }
            func ranges(_ positions: Int) -> [String] {
                (0..<pooling.cells(positions)).map { c in
                    let members = pooling.members(ofCell: c, positions: positions)
                    return members.count == 1
                        ? "\(members.lowerBound)" : "\(members.lowerBound)–\(members.upperBound - 1)"
                }
            }
            try image.writer().write(
                map, what: "layer \(l), \(fusion), pooled \(pooling.size)×\(pooling.size)", input: input.file,
                labels: ranges(source.queryCount), columnLabels: ranges(source.keyCount),
                labelled: "the positions of the cells")
        }

        /// Refuses, before anything is read, a pooled map that cannot be made as asked: too many cells for an
        /// `.svg`, over `--max-memory` (the pooled map; the whole layer for max and min of recomputed attention), or
        /// recomputed for longer than `--max-seconds`.
        private func checkPooled(_ source: AttentionSource, layer l: Int, fusion: HeadFusion, pooling: Pooling) throws {
            let (q, k) = (source.queryCount, source.keyCount)
            let (rows, columns) = (pooling.cells(q), pooling.cells(k))
            if image.output.lowercased().hasSuffix(".svg"), rows * columns > MapWriter.maximumSVGCells {
                var fits = pooling.size + 1
                while Pooling(size: fits).cells(q) * Pooling(size: fits).cells(k) > MapWriter.maximumSVGCells {
                    fits += 1
                }
                throw AttnError(
                    .resource, file: image.output,
                    """
                    a map pooled to \(rows)×\(columns) cells is too large for SVG (over a million cells): write .png, \
                    or pool more (--pool \(fits))
                    """
                )
            }
            if let refusal = MemoryBudget.refusal(
                "a map pooled to \(rows)×\(columns) cells", bytes: pooling.workingBytes(queries: q, keys: k))
            {
                throw AttnError(.resource, file: input.file, refusal + "; a larger --pool N takes less")
            }
            guard let recomputed = source as? RecomputedAttention else { return }
            let whole = fusion == .max || fusion == .min
            if whole,
                let refusal = MemoryBudget.refusal(
                    """
                    --head \(fusion) reads the whole layer: attention recomputed from q and k for one layer \
                    (\(recomputed.headCount) heads × \(q) × \(k))
                    """,
                    bytes: ScoreRules.wholeLayerBytes(heads: recomputed.headCount, positions: q))
            {
                throw AttnError(.resource, file: input.file, refusal + "; --head mean or --head H stream it, pooled")
            }
            // Every score of the heads drawn is recomputed, whatever the pooling.
            let heads = whole || fusion == .mean ? recomputed.headCount : 1
            try limit.check(
                recomputed.estimatedSeconds(layers: [l], workers: Workers.count) * Double(heads)
                    / Double(recomputed.headCount), file: input.file,
                work: "attention recomputed from q and k for \(heads) head\(heads == 1 ? "" : "s") × \(q) positions",
                cheaper: heads > 1
                    ? "one head (--head H) takes 1/\(heads) of it"
                    : "pooling does not shorten it (every score is recomputed)")
        }
    }
}
