import ArgumentParser
import AttnCore
import AttnSource
import AttnAnalysis
import AttnRender

extension AttnInspect {
    /// `attninspect show FILE`: a map drawn in the terminal.
    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "show",
            abstract:
                "Draw a layer's patch grid or attention matrix (or the rollout) in the terminal, fitted to its width.",
            discussion:
                """
                Two cells per character with the upper half block and 24-bit colour; without colour (not a \
                terminal, NO_COLOR, --color never) a character ramp.
                """
        )

        enum View: String, ExpressibleByArgument, CaseIterable { case matrix, grid }

        @OptionGroup var input: InputOptions
        @OptionGroup var selection: OneMapOptions
        var layer: Int { selection.layer }
        var head: HeadFusion { selection.head }
        @OptionGroup var grid: GridOptions
        @OptionGroup var terminal: TerminalOptions
        var colormap: Colormap { terminal.colormap }
        var range: ValueRange? { terminal.range }

        @Flag(help: "Show the attention rollout of all layers (head fusion --head) instead of one layer.")
        var rollout = false

        @Option(
            help: """
                matrix (queries × keys) or grid (row --token as the patch grid). Default: grid for a vision dump (a \
                patch_grid attribute, or --grid).
                """)
        var view: View?

        @OptionGroup var probabilities: ProbabilityOptions

        func run() throws {
            let opened = try input.open()
            let fusion = try opened.fusion(head)
            let chosen = try view ?? (opened.isVisionDump(gridRequested: grid.grid != nil) ? .grid : .matrix)
            var what: String
            var map: Matrix
            if rollout {
                var all = AttnAnalysis.Rollout(fusion: fusion, layers: 0...(opened.source.layerCount - 1))
                all.allowsUnnormalised = probabilities.allowUnnormalised
                what = "rollout of layers 0...\(opened.source.layerCount - 1), \(fusion)"
                if chosen == .grid {
                    map = try opened.analysing { try all.computeRow(opened.source, token: grid.token) }
                } else {
                    map = try opened.analysing { try all.compute(opened.source) }
                }
            } else {
                let l = try opened.layer(layer)
                what = "layer \(l), \(fusion)"
                map = try opened.analysing { try fusion.fuse(try opened.source.layer(l)) }
                if chosen == .grid {
                    map = Matrix(
                        rows: 1, columns: map.columns, values: try opened.analysing { try map.rowChecked(grid.token) })
                }
            }
            if chosen == .grid {
                let prefix = try opened.prefix(grid.prefix)
                let patchGrid = try opened.patchGrid(grid.grid, prefix: prefix, note: Console.note)
                map = try opened.analysing { try patchGrid.extract(from: map, token: 0, prefix: prefix) }
                what += ", token \(grid.token) → \(patchGrid) grid"
            }
            guard let scale = range ?? ValueRange.of(map) else {
                throw AttnError(.analysis, file: input.file, "cannot draw \(what): the map holds no finite values")
            }
            Console.note("\(what), range \(scale.low)...\(scale.high)")
            Console.printVerbatim(
                terminal.colourOn
                    ? Terminal.picture(map, range: scale, colormap: colormap, width: terminal.columns)
                    : Terminal.plainPicture(map, range: scale, width: terminal.columns))
        }
    }
}

extension Matrix {
    /// Row `i`, or an error naming the range.
    func rowChecked(_ i: Int) throws -> [Float] {
        guard i >= 0 && i < rows else { throw AnalysisError("token \(i) is out of range: expected 0...\(rows - 1)") }
        return Array(row(i))
    }
}
