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

        func validate() throws {
            try image.checkMontage(layer: layer, head: head)
        }

        func run() throws {
            let opened = try input.open()
            if case .one(let n) = layer, case .fused(let f) = head {
                let l = try opened.layer(n)
                let fusion = try opened.fusion(f)
                let map = try opened.analysing { try fusion.fuse(try opened.source.layer(l)) }
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
    }
}
