import AttnCore
import AttnLinalg

/// Gradient-weighted rollout (Chefer, Gur & Wolf 2021, "Generic Attention-model Explainability",
/// hila-chefer/Transformer-MM-Explainability): with the attention Aₗ and the gradient of the
/// explained output with respect to it ∇Aₗ, each layer contributes Āₗ = mean_h((∇Aₗ ⊙ Aₗ)⁺)
/// (`avg_heads`), and R ← R + Āₗ·R (`apply_self_attention_rules`), from R = I through the layers
/// in order. So R = (I + Ā_end) ⋯ (I + Ā_start), with no normalisation.
public struct GradientRollout: Sendable {
    /// First and last layer, inclusive, 0-based.
    public var layers: ClosedRange<Int>
    /// Stored attention whose rows are not distributions is used as it is instead of refused (`ProbabilityCheck`).
    public var allowsUnnormalised = false

    public init(layers: ClosedRange<Int>, allowsUnnormalised: Bool = false) {
        self.layers = layers
        self.allowsUnnormalised = allowsUnnormalised
    }

    /// R, `[query, key]`; the products go through BLAS.
    public func compute(attention: AttentionSource, gradients: AttentionSource) throws -> Matrix {
        let n = try check(attention, gradients)
        var r = Matrix(rows: n, columns: n)
        for i in 0..<n { r.values[i * n + i] = 1 }
        var product = Matrix(rows: n, columns: n)
        for l in layers {
            let weighted = try Self.weighted(
                layer: l, attention: attention, gradients: gradients, checked: !allowsUnnormalised)
            MatrixProduct.multiply(weighted, r, into: &product)
            for i in r.values.indices { r.values[i] += product.values[i] }
        }
        return r
    }

    /// Row `token` of R alone, eᵀ(I + Ā_end)⋯(I + Ā_start), carried from the last layer to the first.
    /// - Returns: `[1, key]`.
    public func computeRow(attention: AttentionSource, gradients: AttentionSource, token: Int) throws -> Matrix {
        let n = try check(attention, gradients)
        guard token >= 0 && token < n else {
            throw AnalysisError("token \(token) is out of range: expected 0...\(n - 1)")
        }
        var row = Matrix(rows: 1, columns: n)
        row.values[token] = 1
        var next = Matrix(rows: 1, columns: n)
        for l in layers.reversed() {
            let weighted = try Self.weighted(
                layer: l, attention: attention, gradients: gradients, checked: !allowsUnnormalised)
            MatrixProduct.multiply(row, weighted, into: &next)
            for i in row.values.indices { row.values[i] += next.values[i] }
        }
        return row
    }

    private func check(_ attention: AttentionSource, _ gradients: AttentionSource) throws -> Int {
        if let why = attention.chainRefusal("gradient-weighted rollout") { throw AnalysisError(why) }
        guard layers.lowerBound >= 0 && layers.upperBound < attention.layerCount else {
            throw AnalysisError("layers \(layers) are out of range: expected 0...\(attention.layerCount - 1)")
        }
        return attention.queryCount
    }

    /// Āₗ = mean over heads of max(0, ∇Aₗ ⊙ Aₗ), summed in `Double`.
    static func weighted(layer l: Int, attention: AttentionSource, gradients: AttentionSource, checked: Bool) throws
        -> Matrix
    {
        let a = try attention.layer(l), g = try gradients.layer(l)
        if checked && attention.origin == .stored {
            try ProbabilityCheck.check(a, index: l, command: "gradient-weighted rollout")
        }
        let size = a.queries * a.keys
        var sums = [Double](repeating: 0, count: size)
        var bad = 0
        for h in 0..<a.heads {
            for i in 0..<size {
                let p = Double(a.values[h * size + i]) * Double(g.values[h * size + i])
                if !p.isFinite { bad += 1 }
                sums[i] += Swift.max(0, p)
            }
        }
        guard bad == 0 else {
            throw AttnError(
                .analysis, file: attention.file,
                """
                layer \(l): \(bad) products of attention and gradient are NaN or infinite: gradient-weighted \
                rollout is undefined
                """
            )
        }
        return Matrix(rows: a.queries, columns: a.keys, values: sums.map { Float($0 / Double(a.heads)) })
    }
}
