import ArgumentParser
import AttnCore
import AttnRender
import AttnSource
import AttnAnalysis
import AttnReader

extension AttnInspect {
    /// `attninspect rollout FILE -o OUT`: attention rollout through the layers.
    struct Rollout: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rollout",
            abstract: "Attention rollout (Abnar & Zuidema 2020) as a matrix or a CLS→patch grid.",
            discussion: """
                Each layer: Â = rows-normalised(F + I), F the fused heads; R = Â_end ⋯ Â_start.

                --discard-ratio r zeroes the ⌊r·Q·K⌋ smallest entries of F first (a stable sort: on ties the \
                lower flat index goes first; entry (0,0) is kept), as vit-explain does, but rows are then \
                renormalised properly (vit-explain divides a[i,j] by the sum of row j).
                """)

        @OptionGroup var input: InputOptions
        @OptionGroup var image: ImageOptions
        @OptionGroup var blend: OverlayOptions

        @Option(
            help:
                """
                matrix: R itself (queries × keys); grid: row --token of R as a patch grid; row: row --token of R \
                over the tokens (1 × tokens; at any length, each layer read in row blocks). Default: grid for a \
                vision dump (a patch_grid attribute, or --grid) or with --overlay, else matrix.
                """
        )
        var view: MapView?

        @Option(
            name: .customLong("head-fusion"), parsing: .unconditional,
            help:
                """
                How heads are fused in each layer: mean, max, min or a head index (default mean; max with \
                --compat vit-explain).
                """
        )
        var headFusionOption: HeadFusion?

        @Option(
            name: .customLong("discard-ratio"), parsing: .unconditional,
            help:
                """
                Zero this share of the smallest fused entries before adding I (0 ≤ r < 1; default 0, 0.9 with \
                --compat vit-explain).
                """
        )
        var discardRatioOption: Double?

        @Option(
            name: .customLong("start-layer"), parsing: .unconditional,
            help: "First layer of the rollout (default 0; 1 with --compat chefer).")
        var startLayerOption: Int?

        enum Compat: String, ExpressibleByArgument, CaseIterable {
            case abnar, vitExplain = "vit-explain", chefer, vitKeras = "vit-keras"
        }

        @Option(
            help:
                """
                Reproduce a published implementation exactly: abnar (Abnar & Zuidema's), vit-explain (as written, \
                with its row-j division), chefer (Transformer-Explainability's baseline, from layer 1), vit-keras \
                (whole-matrix normalisation).
                """
        )
        var compat: Compat = .abnar

        var headFusion: HeadFusion { headFusionOption ?? (compat == .vitExplain ? .max : .mean) }
        var discardRatio: Double { discardRatioOption ?? (compat == .vitExplain ? 0.9 : 0) }
        var startLayer: Int { startLayerOption ?? (compat == .chefer ? 1 : 0) }

        @Option(
            name: .customLong("end-layer"), parsing: .unconditional, help: "Last layer of the rollout (-1 = the last).")
        var endLayer: Int = -1

        @Flag(
            help:
                """
                Gradient-weighted rollout (Chefer et al. 2021): R ← R + mean_h((∇A ⊙ A)⁺)·R from R = I, with the \
                attention gradients stored in the file (attn_grad, grads, ...).
                """
        )
        var gradients = false

        @Option(
            name: .customLong("gradient-dataset"),
            help: "The dataset or member holding the attention gradients (implies --gradients).")
        var gradientDataset: String?

        var gradientWeighted: Bool { gradients || gradientDataset != nil }

        @OptionGroup var grid: GridOptions

        @OptionGroup var limit: WorkLimitOptions
        @OptionGroup var probabilities: ProbabilityOptions

        func validate() throws {
            try blend.check(with: image)
            if gradientWeighted && (compat != .abnar || headFusionOption != nil || discardRatioOption != nil) {
                throw ValidationError(
                    """
                    --gradients weights every head by its gradient, so --compat, --head-fusion and \
                    --discard-ratio do not apply
                    """
                )
            }
            guard discardRatio >= 0 && discardRatio < 1 else {
                throw ValidationError("--discard-ratio must be at least 0 and below 1, got \(discardRatio)")
            }
            if compat == .vitKeras && discardRatio > 0 {
                throw ValidationError("--compat vit-keras has no discard step: drop --discard-ratio")
            }
            // Counted from the same end, the order is known without the file; otherwise run() checks it.
            if (startLayer < 0) == (endLayer < 0) && startLayer > endLayer {
                let start =
                    startLayerOption == nil ? "\(startLayer) (the default with --compat chefer)" : "\(startLayer)"
                throw ValidationError("--start-layer \(start) comes after --end-layer \(endLayer)")
            }
            try blend.checkOverlay(view: view)
        }

        func run() throws {
            let opened = try input.open()
            let source = opened.source
            let start = try opened.layer(startLayer), end = try opened.layer(endLayer)
            guard start <= end else {
                throw AttnError(
                    .analysis, file: input.file,
                    "--start-layer \(startLayer) (layer \(start)) comes after --end-layer \(endLayer) (layer \(end))")
            }
            if gradientWeighted { return try runGradientWeighted(opened, layers: start...end) }
            let normalisation: AttnAnalysis.Rollout.Normalisation =
                compat == .vitExplain ? .vitExplain : compat == .vitKeras ? .wholeMatrix : .rows
            var rollout = AttnAnalysis.Rollout(
                fusion: try opened.fusion(headFusion), discardRatio: discardRatio, layers: start...end,
                normalisation: normalisation)
            rollout.allowsUnnormalised = probabilities.allowUnnormalised
            if let why = source.chainRefusal("rollout") { throw AttnError(.analysis, file: input.file, why) }
            let chosen = try opened.view(view, overlay: blend.overlay != nil, grid: grid)
            try checkCost(
                of: opened, layers: start...end, products: end - start, heads: source.headCount, view: chosen,
                streamed: rollout.streamsRow)
            let what =
                "rollout of layers \(start)...\(end), head fusion \(headFusion)"
                + (discardRatio > 0 ? ", discard \(discardRatio)" : "")
                + (compat == .abnar ? "" : ", as \(compat.rawValue)")
            switch chosen {
            case .matrix:
                let progress = Progress.start("rollout", total: end - start + 1)
                let r = try opened.analysing { try rollout.compute(source, progress: progress?.step) }
                progress?.finish()
                try image.writer(blend).write(r, what: what, input: input.file, labels: opened.source.tokens)
            case .grid, .row:
                let patch = try opened.patchView(chosen, grid: grid)
                // Only row --token of R is shown: computed alone, as a vector through the layers.
                let progress = Progress.start("rollout", total: end - start + 1)
                let row = try opened.analysing {
                    try rollout.computeRow(source, token: grid.token, progress: progress?.step)
                }
                progress?.finish()
                try opened.writeRow(
                    row, token: grid.token, patch: patch, what: what, writer: image.writer(blend), input: input.file)
            }
        }
    }
}

extension AttnInspect.Rollout {
    /// `--gradients`: Chefer et al.'s rule with the gradients stored beside the attention.
    func runGradientWeighted(_ opened: OpenedDump, layers: ClosedRange<Int>) throws {
        let source = opened.source
        if let why = source.chainRefusal("gradient-weighted rollout") {
            throw AttnError(.analysis, file: input.file, why)
        }
        guard let gradients = try opened.gradients(named: gradientDataset) else {
            throw AttnError(
                file: input.file,
                """
                --gradients: no attention gradients found: expected a dataset or member named \
                \(AttentionLayout.gradientNames.joined(separator: ", ")) with the attention's shape, or name it \
                with --gradient-dataset NAME
                """
            )
        }
        let rollout = GradientRollout(layers: layers, allowsUnnormalised: probabilities.allowUnnormalised)
        if let why = source.chainRefusal("rollout") { throw AttnError(.analysis, file: input.file, why) }
        let chosen = try opened.view(view, overlay: blend.overlay != nil, grid: grid)
        try checkCost(of: opened, layers: layers, products: layers.count, heads: 2 * source.headCount, view: chosen)
        let what =
            """
            gradient-weighted rollout of layers \(layers.lowerBound)...\(layers.upperBound) (gradients from \
            \(gradients.summary.datasets))
            """
        switch chosen {
        case .matrix:
            let r = try opened.analysing { try rollout.compute(attention: source, gradients: gradients) }
            try image.writer(blend).write(r, what: what, input: input.file, labels: source.tokens)
        case .grid, .row:
            let patch = try opened.patchView(chosen, grid: grid)
            let row = try opened.analysing {
                try rollout.computeRow(attention: source, gradients: gradients, token: grid.token)
            }
            try opened.writeRow(
                row, token: grid.token, patch: patch, what: what, writer: image.writer(blend), input: input.file)
        }
    }
}

extension AttnInspect.Rollout {
    /// Refuses, before any work, a rollout whose token × token matrices exceed --max-memory or whose
    /// products are estimated over --max-seconds (a full matrix of a long sequence grows as L·n³).
    func checkCost(
        of opened: OpenedDump, layers: ClosedRange<Int>, products: Int, heads: Int, view: MapView,
        streamed: Bool = false
    ) throws {
        let n = opened.source.queryCount, full = view == .matrix
        let what = "\(full ? "the full \(n) × \(n) rollout matrix" : "a rollout row") through \(layers.count) layers"
        if let refusal = MemoryBudget.refusal(
            what,
            bytes: AttnAnalysis.Rollout.workingSetBytes(tokens: n, heads: heads, fullMatrix: full, streamed: streamed))
        {
            let row =
                "--view row --token i (or --view grid for a patch grid) rolls out one row, layer by layer in row blocks"
            throw AttnError(.resource, file: input.file, refusal + (full && streamed ? "; " + row : ""))
        }
        let seconds = AttnAnalysis.Rollout.estimatedSeconds(
            tokens: n, layers: layers.count, heads: heads, products: products, fullMatrix: full, workers: Workers.count)
        let size = Double(n)
        let work =
            full
            ? """
            \(products) products of \(n) × \(n) matrices \
            (\(formatScientific(Double(products) * 2 * size * size * size)) flop)
            """
            : "\(layers.count) vector × matrix products"
        // Asked only when the limit is exceeded: reading the patch_grid attribute may itself be an error.
        func gridView() throws -> String {
            let vision = try full && opened.isVisionDump(gridRequested: grid.grid != nil)
            return vision ? "the grid view (--view grid: one row, \(n)× less) or " : ""
        }
        try limit.check(
            seconds, file: input.file, work: "\(what) is \(work)",
            cheaper: "use \(try gridView())fewer layers (--start-layer, --end-layer)"
        )
    }
}

/// A map of rows × keys shown whole, or one row as a patch grid: `rollout` and `flow`.
enum MapView: String, ExpressibleByArgument, CaseIterable { case matrix, grid, row }

extension OpenedDump {
    /// The patch grid and prefix of the grid view, resolved before the work; nil for the other views.
    func patchView(_ view: MapView, grid: GridOptions) throws -> (grid: PatchGrid, prefix: Int)? {
        guard view == .grid else { return nil }
        let prefix = try prefix(grid.prefix)
        return (try patchGrid(grid.grid, prefix: prefix, note: Console.note), prefix)
    }

    /// Writes `row` (1 × keys: row `token` of a map): over the tokens, or without the prefix as the patch grid
    /// `patch` (rollout and flow's row and grid views).
    func writeRow(
        _ row: Matrix, token: Int, patch: (grid: PatchGrid, prefix: Int)?, what: String, writer: MapWriter,
        input: String
    ) throws {
        guard let patch else {
            return try writer.write(
                row, what: what + ", row of token \(token)", input: input, labels: source.tokens.map { [$0[token]] },
                columnLabels: source.keyTokens)
        }
        let map = try analysing { try patch.grid.extract(from: row, token: 0, prefix: patch.prefix) }
        try writer.write(
            map, what: what + ", token \(token) → \(patch.grid) grid", input: input, patchGrid: true,
            prefix: patch.prefix)
    }

    /// `requested`, else grid for a vision dump (or with an overlay) and matrix otherwise; the choice and its
    /// reason are said on stderr.
    func view(_ requested: MapView?, overlay: Bool, grid: GridOptions) throws -> MapView {
        if let requested { return requested }
        let chosen: MapView = try overlay || isVisionDump(gridRequested: grid.grid != nil) ? .grid : .matrix
        Console.note("view: \(chosen.rawValue) (\(try viewReason(overlay: overlay, grid: grid)))")
        return chosen
    }

    /// Why the default view was chosen, and the option that says otherwise.
    func viewReason(overlay: Bool, grid: GridOptions) throws -> String {
        if overlay { return "an overlay is a patch grid" }
        if grid.grid != nil { return "--grid was given; --view matrix for the whole map" }
        if try declaredGrid() != nil { return "the file declares patch_grid; --view matrix for the whole map" }
        return "not a vision dump: the file declares no patch_grid; --view grid or --grid ROWSxCOLS for a patch grid"
    }
}

/// Which row becomes a grid, and how: shared by `grid` and `rollout --view grid`.
struct GridOptions: ParsableArguments {
    @Option(parsing: .unconditional, help: "The query row to show (0: the CLS token).")
    var token: Int = 0

    @Option(
        parsing: .unconditional,
        help: "Tokens before the patches, dropped from the row (default: the file's prefix_tokens, else 1).")
    var prefix: Int?

    @Option(help: "The patch grid as ROWSxCOLS (default: the file's patch_grid, else square).")
    var grid: PatchGrid?

    func validate() throws {
        if token < 0 { throw ValidationError("--token must be 0 or more, got \(token)") }
        if let prefix, prefix < 0 { throw ValidationError("--prefix must be 0 or more, got \(prefix)") }
    }
}
