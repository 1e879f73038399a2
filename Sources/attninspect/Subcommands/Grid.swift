import ArgumentParser
import AttnCore
import AttnAnalysis

extension AttnInspect {
    /// `attninspect grid FILE -o OUT`: the CLS→patch grid of one layer.
    struct Grid: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "One query row (default CLS) of a layer's attention, without the prefix tokens, as a patch grid.")

        @OptionGroup var input: InputOptions
        @OptionGroup var image: ImageOptions
        @OptionGroup var grid: GridOptions

        @Option(parsing: .unconditional, help: "The layer (negative counts from the end; default -1, the last).")
        var layer: Int = -1

        @Option(parsing: .unconditional, help: "A head index, or mean, max or min over heads.")
        var head: HeadFusion = .mean

        @Option(help: "DINO's mask: keep the highest patches holding this share of the patch attention (e.g. 0.6); written black and white, or as a white outline with --overlay.")
        var threshold: Double?

        func validate() throws {
            if let threshold, !(threshold > 0 && threshold <= 1) {
                throw ValidationError("--threshold is a share of the attention mass: expected a number in (0, 1], got \(threshold)")
            }
        }

        func run() throws {
            let opened = try input.open()
            let l = try opened.layer(layer)
            let fusion = try opened.fusion(head)
            let prefix = opened.prefix(grid.prefix)
            let patchGrid = try opened.patchGrid(grid.grid, prefix: prefix)
            let map = try opened.analysing {
                try patchGrid.extract(from: try fusion.fuse(try opened.source.layer(l)), token: grid.token, prefix: prefix)
            }
            let what = "layer \(l), \(fusion), token \(grid.token) → \(patchGrid) grid"
            guard let threshold else {
                return try image.write(map, what: what, input: input.file, patchGrid: true)
            }
            let mask = try opened.analysing { try AttentionMask.keeping(map, mass: threshold) }
            if image.overlay != nil {
                try image.write(map, what: what + ", outline of the \(threshold) mass mask", input: input.file, patchGrid: true, outline: mask)
            } else {
                try image.writeMask(mask, what: what + ", mask of the top \(threshold) of the attention mass", input: input.file)
            }
        }
    }
}
