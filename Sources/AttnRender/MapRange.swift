import AttnCore

/// Ranges of a picture's colour scale that survive outliers: percentiles of its cells (`--range p1:p99`), and the
/// test for a map whose min–max scale one cell spoils (the high-norm artifact tokens of ViTs, Darcet et al. 2024,
/// "Vision Transformers Need Registers", or an attention sink): most cells then get a sliver of the colours.
public enum MapRange {
    /// The `low` and `high` percentiles (0...100) of the finite values of `maps` together, as numpy's
    /// `percentile` gives them by default (linear interpolation between the closest ranks); nil when they hold no
    /// finite value.
    public static func percentiles(of maps: [Matrix], low: Double, high: Double) -> ValueRange? {
        var values: [Float] = []
        values.reserveCapacity(maps.reduce(0) { $0 + $1.values.count })
        for map in maps { values.append(contentsOf: map.values.lazy.filter(\.isFinite)) }
        guard !values.isEmpty else { return nil }
        values.sort()
        return ValueRange(low: rank(low, of: values), high: rank(high, of: values))
    }

    /// The `p`th percentile (0...100) of `sorted` (not empty), interpolated in Double between its closest ranks.
    static func rank(_ p: Double, of sorted: [Float]) -> Float {
        let h = Double(sorted.count - 1) * p / 100
        let below = Swift.min(Swift.max(Int(h.rounded(.down)), 0), sorted.count - 1)
        let above = Swift.min(below + 1, sorted.count - 1)
        let a = Double(sorted[below]), b = Double(sorted[above])
        return Float(a + (h - Double(below)) * (b - a))
    }

    /// What spoils a min–max scale: the brightest cell, when the 99th percentile lies in the lowest third of the
    /// scale (99% of the cells drawn in a third of the colours or less, the brightest far above them).
    public struct Outlier: Equatable, Sendable {
        /// The map (of those given) and the cell's row and column in it.
        public let map, row, column: Int
        public let value: Float
        /// The 99th percentile of the maps' cells, and the share of the min–max scale under it.
        public let percentile99: Float
        public let share: Double
    }

    /// The brightest cell of `maps`, on one min–max scale, when it spoils that scale (see `Outlier`), else nil. A
    /// pass to count the cells under a third of the scale, and a sort only when the count cannot tell.
    public static func outlier(in maps: [Matrix]) -> Outlier? {
        let ranges = maps.compactMap(ValueRange.of)
        guard let low = ranges.map(\.low).min(), let high = ranges.map(\.high).max(), high > low else { return nil }
        let third = Double(low) + (Double(high) - Double(low)) / 3
        var finite = 0, under = 0
        var brightest: (map: Int, index: Int)?
        for (m, map) in maps.enumerated() {
            for (i, v) in map.values.enumerated() where v.isFinite {
                finite += 1
                if Double(v) < third { under += 1 }
                if v == high && brightest == nil { brightest = (m, i) }
            }
        }
        // The 99th percentile interpolates the sorted cells at rank h: under the third when the cell above rank h
        // is, not when the cell at rank h is not.
        let rank = Int((0.99 * Double(finite - 1)).rounded(.down))
        guard under > rank, let (m, i) = brightest, let p99 = percentiles(of: maps, low: 99, high: 99)?.high,
            Double(p99) < third
        else { return nil }
        let columns = maps[m].columns
        return Outlier(
            map: m, row: i / columns, column: i % columns, value: high, percentile99: p99,
            share: (Double(p99) - Double(low)) / (Double(high) - Double(low)))
    }

    /// `outlier(in:)` of one map.
    public static func outlier(in map: Matrix) -> Outlier? { outlier(in: [map]) }
}
