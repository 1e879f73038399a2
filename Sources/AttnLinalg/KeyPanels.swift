internal import CAttnKernels
import AttnCore

/// Scores of recomputed attention, scale · Q·Kᵀ, block by block: one head's keys packed once into panels of 16
/// (`cattn_pack_keys`), then any block of query rows against any range of them (`cattn_score_block`: AVX2 + FMA, a
/// 6 × 16 tile of scores in registers, no packing per block), which is what makes blocks of a hundred rows against
/// thousands of keys run at the machine's FMA rate where a BLAS call per block packs the keys again each time.
/// Without AVX2 and FMA (or with ATTNINSPECT_PORTABLE_KERNELS set) each block is one BLAS product instead.
/// One worker's: keeps the last head packed until `forget`, and its buffer from head to head.
public final class KeyPanels {
    private var storage: UnsafeMutablePointer<Float>?
    private var capacity = 0
    /// The keys packed now: where they start, how many, their length.
    private var packed: (keys: UnsafePointer<Float>, count: Int, dim: Int)?

    public init() {}

    deinit { storage?.deallocate() }

    /// Whether this CPU has the kernel (else `scores` calls BLAS).
    static let vectorised = cattn_kernels_vectorised() >= 1

    /// Forgets the keys packed: call it before keys at the same address may have changed (a new layer).
    public func forget() { packed = nil }

    /// `into[i·rowStride + j] = scale · Σ_p queries[i·dim + p] · keys[j·dim + p]` for i < `rows` and j in
    /// `range`, where `keys` holds `keyCount` keys of `dim` floats (one head's); nothing else of `into` is written.
    /// Packs `keys` unless they are the ones packed last. Float sums, one FMA per product in the order of p.
    public func scores(
        queries: UnsafePointer<Float>, rows: Int, keys: UnsafePointer<Float>, keyCount: Int, range: Range<Int>,
        dim: Int, scale: Float, into out: UnsafeMutablePointer<Float>, rowStride: Int
    ) {
        precondition(range.lowerBound >= 0 && range.upperBound <= keyCount && rowStride >= range.upperBound)
        if rows == 0 || range.isEmpty { return }
        guard Self.vectorised, dim > 0 else {
            MatrixProduct.multiply(
                queries, keys + range.lowerBound * dim, into: out + range.lowerBound, m: rows, n: range.count, k: dim,
                transposeB: true, alpha: scale, rowStride: rowStride)
            return
        }
        if packed == nil || packed! != (keys, keyCount, dim) {
            let need = cattn_packed_keys_floats(keyCount, dim)
            if need > capacity {
                storage?.deallocate()
                storage = .allocate(capacity: need)
                capacity = need
            }
            cattn_pack_keys(keys, keyCount, dim, storage!)
            packed = (keys, keyCount, dim)
        }
        let done = cattn_score_block(
            queries, rows, dim, storage!, range.lowerBound, range.upperBound, scale, out, rowStride)
        precondition(done != 0)
    }

    /// The same block through the kernels of one level (1: AVX2), with these keys packed afresh; false when this CPU
    /// lacks that level. For tests that hold the kernel against BLAS.
    public static func scores(
        queries: UnsafePointer<Float>, rows: Int, keys: UnsafePointer<Float>, keyCount: Int, range: Range<Int>,
        dim: Int, scale: Float, into out: UnsafeMutablePointer<Float>, rowStride: Int, kernels level: Int
    ) -> Bool {
        var panels = [Float](repeating: .nan, count: cattn_packed_keys_floats(keyCount, dim))
        cattn_pack_keys(keys, keyCount, dim, &panels)
        return cattn_score_block_at(
            Int32(level), queries, rows, dim, panels, range.lowerBound, range.upperBound, scale, out, rowStride) != 0
    }
}
