import Foundation

/// How a row of scores becomes attention when it is recomputed from q and k, beyond softmax(Q·Kᵀ·scale): the
/// masks and logit terms of decoder models, each as the model applies it (Hugging Face's eager attention):
///
///     s[j] = q·k[j] · scale                      (BLAS)
///     s[j] = C · tanh(s[j] / C)                  softcap C (Gemma 2), before the mask
///     s[j] = s[j] + slope_h · (j − i)            ALiBi (BLOOM; per row the same as its slope_h · j)
///     softmax over the visible keys: all; j ≤ i (causal); i − W < j ≤ i (causal with a sliding window W)
public struct ScoreRules: Sendable, Equatable {
    /// The factor on Q·Kᵀ.
    public var scale: Double
    /// Keys after the query are masked.
    public var causal: Bool
    /// The sliding window of each layer (nil: the layer attends to every earlier key); empty: no layer has one.
    public var windows: [Int?]
    /// Logit soft-capping C, or nil.
    public var softcap: Double?
    /// Whether the ALiBi bias is added.
    public var alibi: Bool

    public init(scale: Double, causal: Bool, windows: [Int?] = [], softcap: Double? = nil, alibi: Bool = false) {
        self.scale = scale
        self.causal = causal
        self.windows = windows
        self.softcap = softcap
        self.alibi = alibi
    }

    /// The window of `layer`, if it has one.
    public func window(layer: Int) -> Int? { layer < windows.count ? windows[layer] : nil }

    /// The keys query `row` sees in `layer`, of `keys`.
    public func visible(row i: Int, keys: Int, layer: Int) -> Range<Int> {
        guard causal else { return 0..<keys }
        let end = Swift.min(i + 1, keys)
        guard let w = window(layer: layer) else { return 0..<end }
        return Swift.max(0, i - w + 1)..<end
    }

    /// Query rows per block when attention is recomputed a block of rows at a time: about 1 MiB of scores, so that
    /// a block's softmax reads its rows from cache rather than memory, and at least 32 rows (at most all), so that
    /// each panel of keys read for a block serves 32 rows (`KeyPanels`); a worker's buffer stays small at any length.
    /// Measured on 2 cores at 4096 and 8192 tokens: 256 Ki scores a block as fast as 128 Ki, 6% faster than 1 Mi.
    public static func rowsPerBlock(positions s: Int) -> Int {
        Swift.min(Swift.max(s, 1), Swift.max(32, (1 << 18) / Swift.max(s, 1)))
    }

    /// The bytes a whole layer of recomputed attention holds: H × S × S float32, and as much again for its scores
    /// or its analysis (nil: more than any machine has).
    public static func wholeLayerBytes(heads: Int, positions s: Int) -> Int? {
        MemoryBudget.bytes([heads, s, s], elementSize: 2 * 4)
    }

    /// Whether anything beyond the scale and the causal mask applies (a window, softcap or ALiBi).
    public var hasExtras: Bool { windows.contains { $0 != nil } || softcap != nil || alibi }

    /// ALiBi's slope of each of `heads` heads, as BLOOM computes them (transformers' `build_alibi_tensor`): for
    /// the largest power of two n ≤ heads, 2^(−8k/n) for k = 1…n; the heads beyond n take every other slope of
    /// the series for 2n, 2^(−4k/n) for k = 1, 3, 5, … (3 heads: 1/16, 1/256, 1/4).
    public static func alibiSlopes(heads: Int) -> [Double] {
        guard heads > 0 else { return [] }
        var n = 1
        while n * 2 <= heads { n *= 2 }
        let base = pow(2.0, -pow(2.0, -(log2(Double(n)) - 3)))
        var slopes = (1...n).map { pow(base, Double($0)) }
        if n != heads {
            let extraBase = pow(2.0, -pow(2.0, -(log2(Double(2 * n)) - 3)))
            let remaining = Swift.min(n, heads - n)
            slopes += stride(from: 1, through: 2 * remaining - 1, by: 2).map { pow(extraBase, Double($0)) }
        }
        return slopes
    }

    /// Applies the softcap and the ALiBi bias to the scaled scores of query `row` over `visible` keys; `slope` is
    /// the head's ALiBi slope (ignored without ALiBi).
    public func adjust(_ scores: UnsafeMutablePointer<Float>, row i: Int, visible: Range<Int>, slope: Double) {
        if let c = softcap {
            let cap = Float(c)
            for j in visible { scores[j] = cap * tanhf(scores[j] / cap) }
        }
        if alibi {
            for j in visible { scores[j] += Float(slope * Double(j - i)) }
        }
    }

    /// What is applied, for `info`: "scale 0.125, causal, sliding window 4096 on layers 0, 2, 4, softcap 50".
    public var summary: String {
        (["scale \(scale)", causal ? "causal" : "not causal"] + extras).joined(separator: ", ")
    }

    /// The rules beyond the scale and the causal mask, as said: the window, the softcap, ALiBi.
    public var extras: [String] {
        var parts: [String] = []
        let windowed = windows.enumerated().compactMap { l, w in w.map { (layer: l, size: $0) } }
        if !windowed.isEmpty {
            let layers =
                windowed.count == windows.count
                ? "every layer" : "layers " + windowed.map { "\($0.layer)" }.joined(separator: ", ")
            parts.append(
                Set(windowed.map(\.size)).count == 1
                    ? "sliding window \(windowed[0].size) on \(layers)"
                    : "sliding windows " + windowed.map { "\($0.size) (layer \($0.layer))" }.joined(separator: ", "))
        }
        if let softcap { parts.append("softcap \(softcap)") }
        if alibi { parts.append("ALiBi") }
        return parts
    }
}
