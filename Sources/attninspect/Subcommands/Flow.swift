import ArgumentParser
import AttnCore
import AttnSource
import AttnAnalysis
import AttnRender

extension AttnInspect {
    /// `attninspect flow FILE -o OUT`: attention flow through the layers.
    struct Flow: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "flow",
            abstract:
                """
                Attention flow (Abnar & Zuidema 2020): maximum flow from each token after a layer to each input \
                token.
                """,
            discussion: """
                Each layer: Â = rows-normalised(mean over heads + I), a layered graph with capacities Â[i, j] \
                from token i above to token j below. Entry (i, j) is the maximum flow from token i after \
                --layer to input token j, each row divided by its sum, as samiraabnar/attention_flow computes it.

                The matrix view solves tokens² maximum-flow problems; the grid view only the tokens of row \
                --token. Work estimated above --max-seconds is refused before it starts.
                """)

        @OptionGroup var input: InputOptions
        @OptionGroup var image: ImageOptions
        @OptionGroup var blend: OverlayOptions

        @Option(
            help:
                """
                matrix: every token's flows (tokens × tokens); grid: row --token as a patch grid; row: row \
                --token over the tokens (1 × tokens). Default: grid for a vision dump (a patch_grid attribute, or \
                --grid) or with --overlay, else matrix.
                """
        )
        var view: MapView?

        @Option(
            parsing: .unconditional,
            help: "The layer the flows leave from (-1: the last): layers 0 up to it are the graph.")
        var layer: Int = -1

        @OptionGroup var limit: WorkLimitOptions
        @OptionGroup var probabilities: ProbabilityOptions

        @OptionGroup var grid: GridOptions

        func validate() throws {
            try blend.check(with: image)
            try blend.checkOverlay(view: view)
        }

        func run() throws {
            let opened = try input.open()
            let source = opened.source
            let top = try opened.layer(layer)
            if let why = source.chainRefusal("attention flow") { throw AttnError(.analysis, file: input.file, why) }
            let chosen = try opened.view(view, overlay: blend.overlay != nil, grid: grid)
            let n = source.queryCount
            let rows = chosen == .matrix ? n : 1
            let estimate = AttentionFlow.estimatedSeconds(
                tokens: n, rows: rows, layers: top + 1, workers: Workers.count)
            let smaller = chosen == .matrix ? "the grid view (--view grid: one row, \(n)× less) or " : ""
            try limit.check(
                estimate, file: input.file,
                work:
                    """
                    attention flow of \(rows == n ? "every one of \(n) tokens" : "one token") to \(n) input \
                    tokens through \(top + 1) layers is \(rows * n) maximum-flow problems on a graph of \
                    \(top + 1)·\(n)² edges
                    """,
                cheaper: "use \(smaller)an earlier --layer")
            let bytes = AttentionFlow.workingSetBytes(tokens: n, layers: top + 1, workers: Workers.count)
            if let refusal = MemoryBudget.refusal(
                """
                attention flow through \(top + 1) layers of \(n) tokens (the graph, and a residual network per \
                worker)
                """,
                bytes: bytes)
            {
                throw AttnError(.resource, file: input.file, refusal + "; use an earlier --layer")
            }
            let flow = AttentionFlow(layer: top, allowsUnnormalised: probabilities.allowUnnormalised)
            let what = "attention flow from layer \(top)"
            switch chosen {
            case .matrix:
                let progress = Progress.start("attention flow", total: n * n)
                let values = try opened.analysing { try flow.compute(source, progress: progress?.step) }
                progress?.finish()
                try image.writer(blend).write(
                    Matrix(rows: n, columns: n, values: values.map(Float.init)), what: what, input: input.file,
                    labels: source.tokens)
            case .grid, .row:
                let patch = try opened.patchView(chosen, grid: grid)
                guard grid.token < n else {
                    throw AttnError(
                        .analysis, file: input.file,
                        "--token \(grid.token) is out of range: the dump has \(n) tokens (0...\(n - 1))")
                }
                let progress = Progress.start("attention flow", total: n)
                let values = try opened.analysing {
                    try flow.compute(source, tokens: [grid.token], progress: progress?.step)
                }
                progress?.finish()
                try opened.writeRow(
                    Matrix(rows: 1, columns: n, values: values.map(Float.init)), token: grid.token, patch: patch,
                    what: what, writer: image.writer(blend), input: input.file)
            }
        }
    }
}
