import ArgumentParser
import AttnCore
import AttnAnalysis

extension AttnInspect {
    /// `attninspect heatmap FILE --layer N -o OUT`: one layer's attention matrix.
    struct Heatmap: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The attention matrix (queries × keys) of one layer, fused over heads or one head.")

        @OptionGroup var input: InputOptions
        @OptionGroup var image: ImageOptions

        @Option(parsing: .unconditional, help: "The layer (negative counts from the end; default -1, the last).")
        var layer: Int = -1

        @Option(parsing: .unconditional, help: "A head index, or mean, max or min over heads.")
        var head: HeadFusion = .mean

        func validate() throws {
            if image.overlay != nil { throw ValidationError("--overlay goes with patch grids: use grid, or rollout --view grid") }
        }

        func run() throws {
            let opened = try input.open()
            let l = try opened.layer(layer)
            let fusion = try opened.fusion(head)
            let map = try opened.analysing { try fusion.fuse(try opened.source.layer(l)) }
            try image.write(map, what: "layer \(l), \(fusion)", input: input.file)
        }
    }
}
