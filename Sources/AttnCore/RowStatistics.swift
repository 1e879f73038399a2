/// Sums and extremes of one row of attention; NaN and ±Inf are counted and left out of everything else.
public struct RowStatistics: Sendable {
    public var sum: Double
    /// −Σ p ln p over finite p > 0.
    public var entropy: Double
    public var min: Double
    public var max: Double
    public var finite: Int
    public var nan: Int
    public var inf: Int
    public var negative: Int

    public init(
        sum: Double, entropy: Double, min: Double, max: Double, finite: Int, nan: Int, inf: Int, negative: Int
    ) {
        self.sum = sum
        self.entropy = entropy
        self.min = min
        self.max = max
        self.finite = finite
        self.nan = nan
        self.inf = inf
        self.negative = negative
    }
}
