import AttnCore

/// Is this really attention? Sums along both axes, signs, non-finite values and the upper triangle,
/// over every layer and head, read one layer at a time.
public struct AttentionChecks: Sendable {
    /// max |Σ_key − 1| over all rows (query rows summing over keys, as attention should).
    public var worstRowSum = 0.0
    /// max |Σ_query − 1| over all columns: small when the dump is transposed.
    public var worstColumnSum = 0.0
    public var negatives = 0
    public var nans = 0
    public var infinities = 0
    /// The largest value above the diagonal (keys after the query), and the number of cells there.
    public var upperMax = 0.0
    public var upperCells = 0
    public var square = true

    public init() {}

    /// Adds one layer.
    public mutating func add(_ layer: LayerAttention) {
        let q = layer.queries, k = layer.keys
        square = square && q == k
        layer.values.withUnsafeBufferPointer { v in
            for h in 0..<layer.heads {
                var columns = [Double](repeating: 0, count: k)
                for i in 0..<q {
                    var sum = 0.0
                    for j in 0..<k {
                        let x = v[(h * q + i) * k + j]
                        if x.isNaN { nans += 1; continue }
                        if x.isInfinite { infinities += 1; continue }
                        if x < 0 { negatives += 1 }
                        let d = Double(x)
                        sum += d
                        columns[j] += d
                        if j > i { upperMax = Swift.max(upperMax, abs(d)); upperCells += 1 }
                    }
                    worstRowSum = Swift.max(worstRowSum, abs(sum - 1))
                }
                for c in columns { worstColumnSum = Swift.max(worstColumnSum, abs(c - 1)) }
            }
        }
    }
}
