import ArgumentParser
import AttnCore
import AttnSource
import AttnAnalysis
import AttnRender

extension AttnInspect {
    /// `attninspect grid FILE -o OUT`: the CLS→patch grid of one layer.
    struct Grid: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "grid",
            abstract: "One query row (default CLS) of a layer's attention, without the prefix tokens, as a patch grid.")

        @OptionGroup var input: InputOptions
        @OptionGroup var selection: MapSelectionOptions
        var layer: LayerSelection { selection.layer }
        var head: HeadSelection { selection.head }
        @OptionGroup var image: ImageOptions
        @OptionGroup var blend: OverlayOptions
        @OptionGroup var grid: GridOptions

        @Option(
            help:
                """
                DINO's mask: keep the highest patches holding this share of the patch attention (e.g. 0.6); \
                written black and white, or as a white outline with --overlay.
                """
        )
        var threshold: Double?

        @OptionGroup var probabilities: ProbabilityOptions

        /// A layer read for the grid, checked to hold distributions unless --allow-unnormalised (once per layer: a
        /// montage of every head asks for the same layer once per head).
        func checked(_ attention: LayerAttention, index: Int, _ opened: OpenedDump, done: inout Set<Int>) throws
            -> LayerAttention
        {
            if !probabilities.allowUnnormalised && opened.source.origin == .stored && done.insert(index).inserted {
                try opened.analysing { try ProbabilityCheck.check(attention, index: index, command: "grid") }
            }
            return attention
        }

        func validate() throws {
            try blend.check(with: image)
            try image.checkMontage(layer: layer, head: head)
            if (layer == .all || head == .all) && (threshold != nil || blend.overlay != nil) {
                throw ValidationError(
                    "--threshold and --overlay make one picture: choose one layer and one head (or a fusion), not all")
            }
            if threshold != nil && image.output.lowercased().hasSuffix(".svg") {
                throw ValidationError(
                    "--threshold writes a black-and-white mask: give an output ending in .png, .pgm, .ppm or .npy")
            }
            if threshold != nil && blend.overlay == nil && (image.legend || image.range != nil) {
                throw ValidationError(
                    """
                    --legend and --range do not apply to a black-and-white mask; with --overlay they apply to the \
                    map under the outline
                    """
                )
            }
            if let threshold, !(threshold > 0 && threshold <= 1) {
                throw ValidationError(
                    "--threshold is a share of the attention mass: expected a number in (0, 1], got \(threshold)")
            }
        }

        func run() throws {
            let opened = try input.open()
            let prefix = try opened.prefix(grid.prefix)
            let patchGrid = try opened.patchGrid(grid.grid, prefix: prefix, note: Console.note)
            guard case .one(let n) = layer, case .fused(let f) = head else {
                let token = grid.token
                var checkedLayers: Set<Int> = []
                let (tiles, shape) = try opened.tiles(
                    layers: layer, heads: head,
                    check: { count, labels in
                        try image.writer(blend).checkMontage(
                            count: count, rows: patchGrid.rows, columns: patchGrid.columns,
                            tileColumns: head == .all && layer == .all
                                ? opened.source.headCount : Composition.columns(for: count), labels: labels)
                    }
                ) { attention, fusion, l in
                    try patchGrid.extract(
                        from: try fusion.fuse(try checked(attention, index: l, opened, done: &checkedLayers)),
                        token: token, prefix: prefix)
                }
                let columns =
                    head == .all && layer == .all ? opened.source.headCount : Composition.columns(for: tiles.count)
                return try image.writer(blend).writeMontage(
                    tiles, shape: shape, columns: columns, what: "token \(token) → \(patchGrid) grids",
                    input: input.file)
            }
            let l = try opened.layer(n)
            let fusion = try opened.fusion(f)
            let (attention, row) = try opened.queryRow(layer: l, query: grid.token)
            let map = try opened.analysing {
                var checkedLayers: Set<Int> = []
                return try patchGrid.extract(
                    from: try fusion.fuse(try checked(attention, index: l, opened, done: &checkedLayers)),
                    token: row, prefix: prefix)
            }
            let what = "layer \(l), \(fusion), token \(grid.token) → \(patchGrid) grid"
            guard let threshold else {
                return try image.writer(blend).write(
                    map, what: what, input: input.file, patchGrid: true, prefix: prefix)
            }
            let mask = try opened.analysing { try AttentionMask.keeping(map, mass: threshold) }
            if blend.overlay != nil {
                try image.writer(blend).write(
                    map, what: what + ", outline of the \(threshold) mass mask", input: input.file, patchGrid: true,
                    prefix: prefix, outline: mask)
            } else {
                try image.writer(blend).writeMask(
                    mask, what: what + ", mask of the top \(threshold) of the attention mass", input: input.file)
            }
        }
    }
}
