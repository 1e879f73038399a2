internal import CAttnKernels
import AttnCore

/// The vectorised loops over rows of attention (C, AVX2/FMA where the CPU has them). Every pointer
/// these kernels need stays in this file. The corresponding C calls are `cattn_row_statistics`,
/// `cattn_softmax_row`, `cattn_accumulate_f64`, `cattn_maximum_f32` and `cattn_minimum_f32`.
public enum RowKernels {
    /// Sums and extremes of one row; NaN and ±Inf are counted and left out of everything else.
    public static func statistics(_ row: UnsafeBufferPointer<Float>) -> RowStatistics {
        var out = cattn_row_stats()
        cattn_row_statistics(row.baseAddress!, row.count, &out)
        return RowStatistics(out)
    }

    /// The same with the kernels of one level (0 portable, 1 AVX2, 2 AVX-512), whatever the process uses;
    /// nil when this CPU lacks that level. For tests that hold the levels against each other.
    public static func statistics(_ row: UnsafeBufferPointer<Float>, kernels level: Int) -> RowStatistics? {
        var out = cattn_row_stats()
        guard cattn_row_statistics_at(Int32(level), row.baseAddress, row.count, &out) != 0 else { return nil }
        return RowStatistics(out)
    }

    /// A row of float16 values (bit patterns, byte-swapped when `swapped`) decoded into `values`, and its statistics
    /// from the same pass (`cattn_decode_f16_statistics_at`): as `statistics` gives them on the decoded row, the
    /// entropy's terms from a table. With the kernels of one level, as `statistics(_:kernels:)`: the readers call it
    /// through their own decoding; this is for tests.
    public static func decodeStatistics(
        float16 patterns: UnsafeBufferPointer<UInt16>, swapped: Bool, into values: UnsafeMutableBufferPointer<Float>,
        kernels level: Int
    ) -> RowStatistics? {
        precondition(values.count >= patterns.count)
        var out = cattn_row_stats()
        guard
            cattn_decode_f16_statistics_at(
                Int32(level), patterns.baseAddress, values.baseAddress, patterns.count, swapped ? 1 : 0, &out) != 0
        else { return nil }
        return RowStatistics(out)
    }

    /// `softmax` with the kernels of one level, as `statistics(_:kernels:)`; false when this CPU lacks it.
    public static func softmax(_ row: UnsafeMutablePointer<Float>, visible: Int, count: Int, kernels level: Int) -> Bool
    {
        cattn_softmax_row_at(Int32(level), row, visible, count) != 0
    }

    /// The kernel level this CPU supports (0, 1 or 2, as above).
    static var supportedLevel: Int { Int(cattn_kernels_supported()) }

    /// `row[j] = exp(row[j] − max) / Σ` over the first `visible` entries (Σ in Double); the rest 0.
    public static func softmax(_ row: UnsafeMutablePointer<Float>, visible: Int, count: Int) {
        cattn_softmax_row(row, visible, count)
    }

    /// `softmax`, and the statistics of the row it writes, in the same passes (`cattn_softmax_row_statistics`): as
    /// `statistics` gives them, but the entropy from the softmax's own terms, ln Σ − Σ e·t / Σ (t = x − max,
    /// e = exp t), instead of a logarithm per value.
    public static func softmaxStatistics(_ row: UnsafeMutablePointer<Float>, visible: Int, count: Int) -> RowStatistics
    {
        var out = cattn_row_stats()
        cattn_softmax_row_statistics(row, visible, count, &out)
        return RowStatistics(out)
    }

    /// `softmaxStatistics` with the kernels of one level, as `statistics(_:kernels:)`.
    public static func softmaxStatistics(
        _ row: UnsafeMutablePointer<Float>, visible: Int, count: Int, kernels level: Int
    ) -> RowStatistics? {
        var out = cattn_row_stats()
        guard cattn_softmax_row_statistics_at(Int32(level), row, visible, count, &out) != 0 else { return nil }
        return RowStatistics(out)
    }

    /// One row of rollout's augmented matrix: the row's sum of F + I and its count of NaN or infinite
    /// entries; when there are none and `out` is given, `out[j] = (F + I)[j] / sum`.
    public static func augmentRow(
        _ fused: UnsafePointer<Double>, count n: Int, diagonal: Int, into out: UnsafeMutablePointer<Float>?
    ) -> (sum: Double, nonFinite: Int) {
        var sum = 0.0
        let bad = cattn_augment_row(fused, n, diagonal, out, &sum)
        return (sum, Int(bad))
    }

    /// `augmentRow` after `sums[j] /= divisor` in place (the same divisions a separate pass would make).
    /// One row of Â = rownorm(F + I) in place, in Double (attention flow): the same sum as `augmentRow`.
    public static func augmentRowInPlace(_ fused: UnsafeMutablePointer<Double>, count n: Int, diagonal: Int) -> (
        sum: Double, nonFinite: Int
    ) {
        var sum = 0.0
        let bad = cattn_augment_row_f64(fused, n, diagonal, &sum)
        return (sum, Int(bad))
    }

    public static func augmentRow(
        dividing sums: UnsafeMutablePointer<Double>, by divisor: Double, count n: Int, diagonal: Int,
        into out: UnsafeMutablePointer<Float>?
    ) -> (sum: Double, nonFinite: Int) {
        var sum = 0.0
        let bad = cattn_augment_row_dividing(sums, n, diagonal, divisor, out, &sum)
        return (sum, Int(bad))
    }

    /// Σⱼ row[j]·|from − j|, in Double (`cattn_distance_sum`).
    public static func distanceSum(_ row: UnsafeBufferPointer<Float>, from: Int) -> Double {
        guard let base = row.baseAddress else { return 0 }
        return cattn_distance_sum(base, row.count, from)
    }

    /// `sums[i] += values[i]`.
    public static func accumulate(_ values: UnsafeBufferPointer<Float>, into sums: UnsafeMutablePointer<Double>) {
        cattn_accumulate_f64(sums, values.baseAddress!, values.count)
    }

    /// `sums[i] = 0 + values[i]` (`first`) or `sums[i] += values[i]`, and the row's sum and smallest value
    /// (`ProbabilityCheck`), in one pass.
    public static func accumulateChecking(
        _ values: UnsafeBufferPointer<Float>, into sums: UnsafeMutablePointer<Double>, first: Bool
    ) -> (sum: Double, minimum: Float) {
        var sum = 0.0
        var minimum: Float = 0
        cattn_accumulate_row_checked(sums, values.baseAddress!, values.count, first ? 1 : 0, &sum, &minimum)
        return (sum, minimum)
    }

    /// `extremes[i] = max(extremes[i], values[i])`, NaN propagating.
    public static func maximum(_ values: UnsafeBufferPointer<Float>, into extremes: UnsafeMutablePointer<Float>) {
        cattn_maximum_f32(extremes, values.baseAddress!, values.count)
    }

    /// `extremes[i] = min(extremes[i], values[i])`, NaN propagating.
    public static func minimum(_ values: UnsafeBufferPointer<Float>, into extremes: UnsafeMutablePointer<Float>) {
        cattn_minimum_f32(extremes, values.baseAddress!, values.count)
    }
}

extension RowStatistics {
    fileprivate init(_ s: cattn_row_stats) {
        self.init(
            sum: s.sum, entropy: s.entropy, min: s.min, max: s.max, finite: Int(s.finite), nan: Int(s.nan),
            inf: Int(s.inf), negative: Int(s.negative))
    }
}
