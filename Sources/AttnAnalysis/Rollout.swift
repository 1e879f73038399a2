import AttnCore
import Synchronization
import AttnLinalg

/// Attention rollout (Abnar & Zuidema 2020): Âₗ = rows-normalised(Fₗ + I), R = Â_end ⋯ Â_start,
/// where Fₗ is the fused attention of layer l.
///
/// With a discard ratio r > 0, before adding I the k = ⌊r·Q·K⌋ smallest entries of the whole
/// matrix Fₗ are zeroed, found by a stable ascending sort (on ties the lower flat index goes
/// first); entry (0, 0) is kept if it is among them. This follows jacobgil/vit-explain's discard,
/// but rows are then renormalised properly (vit-explain divides a[i,j] by the sum of row j).
///
/// `normalisation` reproduces published implementations exactly (see `Normalisation`).
public struct Rollout: Sendable {
    /// How each layer's fused map becomes Âₗ.
    public enum Normalisation: String, Sendable, CaseIterable {
        /// Abnar & Zuidema (samiraabnar/attention_flow), and Chefer et al.'s baseline
        /// (hila-chefer/Transformer-Explainability, `compute_rollout_attention`): rows of F + I divided by their sums.
        case rows
        /// jacobgil/vit-explain `rollout()` as written: a = (F + I)/2, then `a / a.sum(dim=-1)` without
        /// keepdim, which divides a[i, j] by the sum of row j.
        case vitExplain
        /// faustomorales/vit-keras `attention_map`: F + I divided by the sum of all its entries.
        case wholeMatrix
    }

    public var fusion: HeadFusion
    public var discardRatio: Double
    /// First and last layer, inclusive, 0-based.
    public var layers: ClosedRange<Int>
    public var normalisation: Normalisation
    /// Stored attention whose rows are not distributions (scores, logits) is used as it is instead of refused
    /// (`ProbabilityCheck`).
    public var allowsUnnormalised = false

    public init(
        fusion: HeadFusion = .mean, discardRatio: Double = 0, layers: ClosedRange<Int>,
        normalisation: Normalisation = .rows
    ) {
        self.fusion = fusion
        self.discardRatio = discardRatio
        self.layers = layers
        self.normalisation = normalisation
    }

    /// The command named when a stored row is not a distribution; nil when `allowsUnnormalised`.
    private var checked: String? { allowsUnnormalised ? nil : "rollout" }

    /// Rolls attention out through `layers` of `source`, reading one layer at a time in row blocks
    /// on `workers` threads; the products go through BLAS.
    /// - Returns: R, `[query, key]`.
    /// `progress` is called after each layer; `each` with the layer and the rollout through it (layers' lower bound
    /// to that layer), in order: every depth of the rollout for the cost of the deepest.
    public func compute(
        _ source: AttentionSource, workers: Int = Workers.count, progress: (() -> Void)? = nil,
        each: ((_ layer: Int, _ rollout: Matrix) -> Void)? = nil
    ) throws -> Matrix {
        try check(source)
        let n = source.queryCount
        // With two workers or more, a layer can be finished (its workers' partial sums combined, Âₗ made and
        // multiplied in) alongside the reading of the next (see `Workers.alongside`, and the timing below):
        // reading is bound by memory, the product by arithmetic. Two workspaces take turns, so that layer l's
        // partial sums stay while layer l + 1's are read.
        let pipelined = workers >= 2 && layers.count >= 2
        let workspaces = try (0..<(pipelined ? 2 : 1)).map { _ in
            try HeadFusionWorkspace(fusion, source: source, workers: workers, checking: checked)
        }
        var result = Matrix(rows: n, columns: n)
        var product = Matrix(rows: n, columns: n)
        var layerMatrix = Matrix(rows: n, columns: n)
        var first = true
        // Finishes layer `l`, read into `workspace`, on up to `workers` workers: R ← Âₗ · R (R ← Âₗ for the first).
        // A mean's summed heads are divided as each row is augmented (one pass over rows in cache instead of a
        // pass over the matrix first), where nothing else needs the fused map: no discard, rows normalised.
        let dividesInAugment = fusion == .mean && discardRatio == 0 && normalisation == .rows
        func finish(_ l: Int, _ workspace: HeadFusionWorkspace, workers: Int) throws {
            try workspace.combine(workers: workers, dividing: !dividesInAugment)
            try augmentFused(
                l, of: source, workspace: workspace, into: &layerMatrix, workers: workers,
                dividing: dividesInAugment ? Double(source.headCount) : nil)
            if first {
                result.values.withUnsafeMutableBufferPointer { r in _ = r.update(fromContentsOf: layerMatrix.values) }
                first = false
            } else {
                MatrixProduct.multiply(layerMatrix, result, into: &product, workers: workers)
                swap(&result, &product)
            }
            each?(l, result)
            progress?()
        }
        // Each step finishes layer l − 1 and reads layer l, either alongside each other or one after the other
        // on all the workers. Both give the same result; which is faster depends on the dump and the machine
        // (a 197-token ViT: 0.35 ms a step alongside against 0.6; 1024 tokens: the single-threaded product makes
        // the step alongside take 24 ms against 20 one after the other), so the first two steps time both ways
        // (after the first, which has no product) and the others take the faster.
        var alongsideTime: Duration?, inTurnTime: Duration?
        let clock = ContinuousClock()
        var unfinished: (layer: Int, workspace: HeadFusionWorkspace)?
        for (step, l) in layers.enumerated() {
            let workspace = workspaces[step % workspaces.count]
            guard pipelined, let last = unfinished else {
                if let last = unfinished { try finish(last.layer, last.workspace, workers: workers) }
                try workspace.read(layer: l)
                unfinished = (l, workspace)
                continue
            }
            let overlap = alongsideTime.map { a in inTurnTime.map { a <= $0 } ?? false } ?? true
            // The first layer is copied, not multiplied in: its step is timed by neither way.
            let timed = last.layer != layers.lowerBound
            let start = clock.now
            if overlap {
                // An error in the earlier layer is the one reported, as it would be without the overlap.
                var failure: Error?
                do {
                    try Workers.alongside({
                        do { try finish(last.layer, last.workspace, workers: 1) } catch { failure = error }
                    }) {
                        try workspace.read(layer: l)
                    }
                } catch {
                    throw failure ?? error
                }
                if let failure { throw failure }
                if timed && alongsideTime == nil { alongsideTime = clock.now - start }
            } else {
                try finish(last.layer, last.workspace, workers: workers)
                try workspace.read(layer: l)
                if timed && inTurnTime == nil { inTurnTime = clock.now - start }
            }
            unfinished = (l, workspace)
        }
        if let last = unfinished { try finish(last.layer, last.workspace, workers: workers) }
        return result
    }

    /// Refuses cross-attention and a discard ratio outside 0 ≤ r < 1.
    private func check(_ source: AttentionSource) throws {
        if let why = source.chainRefusal("rollout") { throw AnalysisError(why) }
        guard discardRatio >= 0 && discardRatio < 1 else {
            throw AnalysisError("discard ratio \(discardRatio) is out of range: expected 0 ≤ r < 1")
        }
    }

    /// Âₗ of layer `l` into `out`: the heads fused by `workspace`, checked for NaN and Inf, augmented.
    private func augmentedLayer(
        _ l: Int, of source: AttentionSource, fusing workspace: HeadFusionWorkspace, into out: inout Matrix
    ) throws {
        try workspace.fuse(layer: l)
        try augmentFused(l, of: source, workspace: workspace, into: &out, workers: Workers.count)
    }

    /// Âₗ of layer `l` into `out` from the heads `workspace` has fused, checked for NaN and Inf; rows split
    /// across up to `workers` workers. With `dividing`, `workspace` holds summed heads, divided by it here
    /// (no discard, rows normalised).
    private func augmentFused(
        _ l: Int, of source: AttentionSource, workspace: HeadFusionWorkspace, into out: inout Matrix, workers: Int,
        dividing divisor: Double? = nil
    ) throws {
        // Without a discard the check rides on augment's pass over the rows; a discard sorts the values first.
        let bad =
            divisor.map { augmentDividing(workspace, by: $0, size: source.queryCount, into: &out, workers: workers) }
            ?? (discardRatio > 0
                ? workspace.fused.reduce(0) { $0 + ($1.isFinite ? 0 : 1) }
                : augment(workspace.fused, size: source.queryCount, into: &out, workers: workers))
        guard bad == 0 else {
            throw AttnError(
                .analysis, file: source.file, "layer \(l) holds \(bad) NaN or infinite values: rollout is undefined")
        }
        if discardRatio > 0 { augment(workspace.fused, size: source.queryCount, into: &out, workers: workers) }
    }

    /// Whether `computeRow` streams each layer in row blocks (never holding it whole): the heads' mean, rows
    /// normalised, nothing discarded (the default rollout). The other fusions, the discard and the published
    /// variants need each layer's fused matrix.
    public var streamsRow: Bool { fusion == .mean && discardRatio == 0 && normalisation == .rows }

    /// Row `token` of R alone: eᵀ Â_end ⋯ Â_start, the layers read from the last to the first, each
    /// a vector–matrix product, O(L·S²) instead of the full product's O(L·S³). When `streamsRow`, each layer is
    /// visited in row blocks (`streamedRow`), at any length.
    /// - Returns: `[1, key]`.
    public func computeRow(
        _ source: AttentionSource, token: Int, workers: Int = Workers.count, progress: (() -> Void)? = nil
    ) throws -> Matrix {
        try check(source)
        let n = source.queryCount
        guard token >= 0 && token < n else {
            throw AnalysisError("token \(token) is out of range: expected 0...\(n - 1)")
        }
        if streamsRow { return try streamedRow(source, token: token, workers: workers, progress: progress) }
        let workspace = try HeadFusionWorkspace(fusion, source: source, workers: workers, checking: checked)
        var row = Matrix(rows: 1, columns: n)
        row.values[token] = 1
        var next = Matrix(rows: 1, columns: n)
        var layerMatrix = Matrix(rows: n, columns: n)
        for l in layers.reversed() {
            try augmentedLayer(l, of: source, fusing: workspace, into: &layerMatrix)
            MatrixProduct.multiply(row, layerMatrix, into: &next)
            swap(&row, &next)
            progress?()
        }
        return row
    }

    /// vᵀ Â_end ⋯ Â_start with v = e_token and Âₗ = rows-normalised(mean over heads of Aₗ + I), in `Double`, each
    /// layer never whole: with sᵢ the mean over heads of row i's sum and cᵢ = vᵢ/(sᵢ + 1), the next v is
    /// (1/H) Σₕ Σᵢ cᵢ Aₕ[i, ·] + c. The last layer needs only row `token` (`AttentionSource.rows`); every other layer
    /// is visited twice in row blocks: the row sums (checked as distributions), then the weighted column sums, each
    /// head's added in row order (`ColumnSums`), the heads in order: the same bits from run to run.
    func streamedRow(_ source: AttentionSource, token: Int, workers: Int, progress: (() -> Void)?) throws -> Matrix {
        let n = source.queryCount, h = source.headCount
        var v = [Double](repeating: 0, count: n)
        v[token] = 1
        for l in layers.reversed() {
            let sums = RowTable<Double>(count: h * n)
            var rows: LayerAttention?
            if l == layers.upperBound && source.origin != .stored {
                // v = e_token: only that row of Â is needed (stored attention is read whole anyway, and checked).
                let one = try source.rows(token..<(token + 1), layer: l)
                one.values.withUnsafeBufferPointer { all in
                    for head in 0..<h {
                        sums[head * n + token] = all[(head * n)..<((head + 1) * n)].reduce(0.0) { $0 + Double($1) }
                    }
                }
                rows = one
            } else {
                let finding = ProbabilityCheck.Finding()
                let checking = checked != nil && source.origin == .stored
                let nonFinite = Atomic<Int>(0)
                try source.visitBlocks(layer: l, heads: 0..<h, workers: workers) { block, values in
                    for (r, i) in block.rows.enumerated() {
                        let row = UnsafeBufferPointer(rebasing: values[(r * n)..<((r + 1) * n)])
                        let s = block.statistics?[r] ?? RowKernels.statistics(row)
                        if s.nan + s.inf > 0 { nonFinite.add(s.nan + s.inf, ordering: .relaxed) }
                        let sum = s.nan + s.inf > 0 ? Double.nan : s.sum
                        if checking,
                            let bad = ProbabilityCheck.violation(
                                sum: sum, minimum: Float(s.min), head: block.head, row: i)
                        {
                            finding.note(bad)
                        }
                        sums[block.head * n + i] = sum
                    }
                }
                if let bad = finding.take() { throw AnalysisError(bad.message(layer: l, command: "rollout")) }
                let bad = nonFinite.load(ordering: .relaxed)
                guard bad == 0 else {
                    throw AttnError(
                        .analysis, file: source.file,
                        "layer \(l) holds \(bad) NaN or infinite values: rollout is undefined")
                }
            }
            var weights = [Double](repeating: 0, count: n)
            for i in 0..<n where v[i] != 0 {
                var s = 0.0
                for head in 0..<h { s += sums[head * n + i] ?? .nan }
                s /= Double(h)
                guard s.isFinite else {
                    throw AnalysisError("layer \(l): attention holds NaN or infinite values (query \(i)): no rollout")
                }
                weights[i] = v[i] / (s + 1)
            }
            var next = [Double](repeating: 0, count: n)
            if let rows {
                rows.values.withUnsafeBufferPointer { all in
                    for head in 0..<h {
                        for j in 0..<n { next[j] += weights[token] * Double(all[head * n + j]) }
                    }
                }
            } else {
                let columns = ColumnSums(heads: h, keys: n, workers: workers)
                let weight = weights
                try source.visitBlocks(layer: l, heads: 0..<h, workers: workers) { block, values in
                    columns.add(block, values, weight: { weight[$0] }) { source.visibleKeys(row: $0, layer: l) }
                }
                for head in 0..<h { for (j, value) in columns.head(head).enumerated() { next[j] += value } }
            }
            for j in 0..<n { next[j] = next[j] / Double(h) + weights[j] }
            v = next
            progress?()
        }
        return Matrix(rows: 1, columns: n, values: v.map { Float($0) })
    }

    /// Âₗ = rows-normalised(discard(Fₗ) + I), computed in `Double` (so ties at the discard cut are
    /// decided on the exact fused values) and rounded to `Float` for the products.
    func augmented(_ fused: [Double], size n: Int) -> Matrix {
        var out = Matrix(rows: n, columns: n)
        augment(fused, size: n, into: &out)
        return out
    }

    /// Row-normalised Âₗ of the summed heads in `workspace`, each row divided by `divisor` in place first (so
    /// that `workspace.fused` becomes the mean, as `combine` would have made it) and augmented while in cache.
    /// - Returns: the number of NaN or infinite fused values (then `out` is meaningless).
    private func augmentDividing(
        _ workspace: HeadFusionWorkspace, by divisor: Double, size n: Int, into out: inout Matrix, workers: Int
    ) -> Int {
        precondition(out.rows == n && out.columns == n && normalisation == .rows && discardRatio == 0)
        let parts = n * n >= 1 << 16 ? Swift.max(1, workers) : 1
        var nonFinite = [Int](repeating: 0, count: parts)
        workspace.withMutableFused { f in
            out.values.withUnsafeMutableBufferPointer { o in
                nonFinite.withUnsafeMutableBufferPointer { bad in
                    let (f, o, bad) = (UncheckedSendable(f), UncheckedSendable(o), UncheckedSendable(bad))
                    Workers.run(parts) { part, _ in
                        var count = 0
                        for i in (n * part / parts)..<(n * (part + 1) / parts) {
                            count +=
                                RowKernels.augmentRow(
                                    dividing: f.value.baseAddress! + i * n, by: divisor, count: n, diagonal: i,
                                    into: o.value.baseAddress! + i * n
                                ).nonFinite
                        }
                        bad.value[part] = count
                    }
                }
            }
        }
        return nonFinite.reduce(0, +)
    }

    /// `augmented`, written into `out` (which must be n × n); rows are split across the workers.
    /// - Returns: the number of entries of `fused` that are NaN or infinite (then `out` is meaningless).
    @discardableResult
    func augment(_ fused: [Double], size n: Int, into out: inout Matrix, workers: Int = Workers.count) -> Int {
        precondition(out.rows == n && out.columns == n && fused.count == n * n)
        var discarded: [Double]?
        if discardRatio > 0 {
            var f = fused
            let k = Int((discardRatio * Double(f.count)).rounded(.down))
            if k > 0 {
                // Stable ascending order: by value, ties by flat index.
                let order = f.indices.sorted { a, b in f[a] != f[b] ? f[a] < f[b] : a < b }
                for index in order.prefix(k) where index != 0 { f[index] = 0 }
            }
            discarded = f
        }
        let parts = n * n >= 1 << 16 ? Swift.max(1, workers) : 1
        let source = discarded ?? fused
        // The divisor of each entry: its own row's sum (rows), row j's sum (vitExplain), or the total.
        // Pass 1, rows split across the workers: each row's sum of F + I and its count of non-finite entries.
        // With row normalisation the row is written in the same pass, while it is in cache.
        var rowSums = [Double](repeating: 0, count: n)
        var nonFinite = [Int](repeating: 0, count: n)
        let mode = normalisation
        source.withUnsafeBufferPointer { f in
            rowSums.withUnsafeMutableBufferPointer { sums in
                nonFinite.withUnsafeMutableBufferPointer { bad in
                    out.values.withUnsafeMutableBufferPointer { o in
                        let (f, sums, bad, o) = (
                            UncheckedSendable(f), UncheckedSendable(sums), UncheckedSendable(bad), UncheckedSendable(o)
                        )
                        Workers.run(parts) { part, _ in
                            for i in (n * part / parts)..<(n * (part + 1) / parts) {
                                let row = i * n
                                let (sum, count) = RowKernels.augmentRow(
                                    f.value.baseAddress! + row, count: n, diagonal: i,
                                    into: mode == .rows ? o.value.baseAddress! + row : nil)
                                sums.value[i] = sum
                                bad.value[i] = count
                            }
                        }
                    }
                }
            }
        }
        let bad = nonFinite.reduce(0, +)
        guard bad == 0 else { return bad }
        if mode == .rows { return 0 }
        let total = rowSums.reduce(0, +)
        let divisors = normalisation == .vitExplain ? rowSums.map { $0 / 2 } : rowSums
        source.withUnsafeBufferPointer { f in
            out.values.withUnsafeMutableBufferPointer { o in
                let (f, o, d) = (UncheckedSendable(f), UncheckedSendable(o), UncheckedSendable(divisors))
                Workers.run(parts) { part, _ in
                    for i in (n * part / parts)..<(n * (part + 1) / parts) {
                        let row = i * n
                        switch mode {
                        case .rows:
                            break  // written in pass 1
                        case .vitExplain:
                            for j in 0..<n {
                                let a = j == i ? f.value[row + j] + 1 : f.value[row + j]
                                o.value[row + j] = Float((a / 2) / d.value[j])
                            }
                        case .wholeMatrix:
                            for j in 0..<n {
                                let a = j == i ? f.value[row + j] + 1 : f.value[row + j]
                                o.value[row + j] = Float(a / total)
                            }
                        }
                    }
                }
            }
        }
        return 0
    }
}

extension Rollout {
    /// The memory a rollout over `n` tokens holds at most on `workers` workers: one layer as read (heads × n²
    /// floats, with its read buffer); each fusion workspace's fused heads and, when the source splits a row's
    /// heads across workers, a partial result per worker, in `Double` (a full matrix has two workspaces, see
    /// `compute`); and the token × token float matrices: three for the full product (the layer, the running
    /// product, the next product), one for a single row.
    /// `streamed`: a row by `streamedRow`, which holds per layer a sum per head and row and the heads' column sums
    /// (about 40·heads·n bytes), besides what the source holds to visit its rows.
    public static func workingSetBytes(
        tokens n: Int, heads: Int, fullMatrix: Bool, streamed: Bool = false, workers: Int = Workers.count
    ) -> Int? {
        if streamed && !fullMatrix { return MemoryBudget.bytes([n, 40 * heads + 8 * (workers + 4)], elementSize: 1) }
        let (square, overflow) = n.multipliedReportingOverflow(by: n)
        guard !overflow else { return nil }
        let workspaces = fullMatrix && workers >= 2 ? 2 : 1
        let perSquare =
            heads * 8 + workspaces * (1 + Swift.max(1, Swift.min(workers, heads))) * 8 + (fullMatrix ? 3 : 1) * 4
        let (bytes, tooMany) = square.multipliedReportingOverflow(by: perSquare)
        return tooMany ? nil : bytes
    }

    /// A rough wall-clock estimate: reading and fusing `layers` × `heads` × n² values (about 1 ns each per
    /// thread) and, for the full matrix, the n × n products (2n³ flop each, at about 30 GFLOP/s per thread:
    /// OpenBLAS's sgemm measured 53–88 GFLOP/s on this project's 2-core benchmark machine for n = 2048–3072).
    /// A row is a vector–matrix product per layer, 2n² flop.
    public static func estimatedSeconds(
        tokens n: Int, layers: Int, heads: Int, products: Int, fullMatrix: Bool, workers: Int
    ) -> Double {
        let n = Double(n), threads = Double(Swift.max(1, workers))
        let reading = Double(layers) * Double(heads) * n * n * 1e-9 / threads
        let flops = Double(products) * 2 * n * n * (fullMatrix ? n : 1)
        return reading + flops / (30e9 * threads)
    }
}
