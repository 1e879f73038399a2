internal import CAttnBLAS
import AttnCore
#if canImport(Glibc)
    import Glibc
#endif

/// The one entry point for BLAS's matrix products: OpenBLAS `cblas_sgemm`, with dimensions checked
/// against OpenBLAS's 32-bit integers. The corresponding C call is `cblas_sgemm`. (Recomputed attention's scores,
/// block by block, come from `KeyPanels` instead, which calls this only on CPUs without AVX2.)
public enum MatrixProduct {
    /// `C = alpha · A · op(B)`, all row-major. `A` is `m×k`, `op(B)` is `k×n`
    /// (`B` is `n×k` when `transposeB`); C's rows are `rowStride` floats apart (default `n`).
    public static func multiply(
        _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, into c: UnsafeMutablePointer<Float>,
        m: Int, n: Int, k: Int, transposeB: Bool = false, alpha: Float = 1, rowStride: Int? = nil
    ) {
        let ldc = rowStride ?? n
        precondition(m >= 0 && n >= 0 && k >= 0 && ldc >= n && ldc <= Int32.max)
        precondition(
            m <= Int32.max && n <= Int32.max && k <= Int32.max,
            "matrix too large for 32-bit BLAS: \(m)×\(k) · \(k)×\(n)")
        if m == 0 || n == 0 { return }
        if k == 0 {
            for i in 0..<m { (c + i * ldc).update(repeating: 0, count: n) }
            return
        }
        let serialise = callsMustNotOverlap
        if serialise { pthread_mutex_lock(callLock) }
        cblas_sgemm(
            CblasRowMajor, CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
            Int32(m), Int32(n), Int32(k), alpha, a, Int32(k), b, Int32(transposeB ? k : n), 0, c, Int32(ldc))
        if serialise { pthread_mutex_unlock(callLock) }
    }

    /// Each call runs on the calling thread only (attninspect's own workers split the work; OpenBLAS's
    /// pool is not used), and calls from several workers may run at once only
    /// with OpenBLAS's threaded build (`openblas_get_parallel() == 1`): with its serial build, concurrent
    /// calls corrupt each other now and then (OpenBLAS 0.3.21 as Debian builds it returned wrong products for
    /// a few in a thousand calls on two threads), and its OpenMP build is not known to be safe outside OpenMP.
    /// With those, calls are made one at a time. The corresponding C calls are `openblas_set_num_threads` and
    /// `openblas_get_parallel`.
    static let callsMustNotOverlap: Bool = {
        openblas_set_num_threads(1)
        return openblas_get_parallel() != 1
    }()

    nonisolated(unsafe) private static let callLock: UnsafeMutablePointer<pthread_mutex_t> = {
        let lock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
        pthread_mutex_init(lock, nil)
        return lock
    }()

    /// Products smaller than this many multiply-adds are not split across workers.
    private static let parallelWork = 1 << 22

    /// `A · B` for matrices.
    public static func multiply(_ a: Matrix, _ b: Matrix) -> Matrix {
        var out = Matrix(rows: a.rows, columns: b.columns)
        multiply(a, b, into: &out)
        return out
    }

    /// `out = A · B`, reusing `out`'s storage when it has the right shape; large products are split across
    /// up to `workers` workers.
    public static func multiply(_ a: Matrix, _ b: Matrix, into out: inout Matrix, workers: Int = Workers.count) {
        precondition(a.columns == b.rows, "matrix product: \(a.rows)×\(a.columns) · \(b.rows)×\(b.columns)")
        if out.rows != a.rows || out.columns != b.columns { out = Matrix(rows: a.rows, columns: b.columns) }
        a.values.withUnsafeBufferPointer { pa in
            b.values.withUnsafeBufferPointer { pb in
                out.values.withUnsafeMutableBufferPointer { pc in
                    // Rows of the result split across the workers, one single-threaded product each.
                    let (m, n, k) = (a.rows, b.columns, a.columns)
                    let parts = m * n * k >= parallelWork ? Swift.max(1, Swift.min(workers, m)) : 1
                    let (a, b, c) = (
                        UncheckedSendable(pa.baseAddress!), UncheckedSendable(pb.baseAddress!),
                        UncheckedSendable(pc.baseAddress!)
                    )
                    Workers.run(parts) { part, _ in
                        let first = m * part / parts, last = m * (part + 1) / parts
                        multiply(a.value + first * k, b.value, into: c.value + first * n, m: last - first, n: n, k: k)
                    }
                }
            }
        }
    }
}

extension Matrix {
    /// The matrix product `self · other` (through BLAS).
    public func multiplied(by other: Matrix) -> Matrix { MatrixProduct.multiply(self, other) }
}
