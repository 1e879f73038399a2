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

        func run() throws {
            let opened = try input.open()
            let l = try opened.layer(layer)
            let fusion = try opened.fusion(head)
            let prefix = opened.prefix(grid.prefix)
            let patchGrid = try opened.patchGrid(grid.grid, prefix: prefix)
            let map = try opened.analysing {
                try patchGrid.extract(from: try fusion.fuse(try opened.source.layer(l)), token: grid.token, prefix: prefix)
            }
            try image.write(map, what: "layer \(l), \(fusion), token \(grid.token) → \(patchGrid) grid", input: input.file, patchGrid: true)
        }
    }
}
