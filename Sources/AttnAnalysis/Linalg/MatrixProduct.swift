internal import CAttnBLAS
import AttnCore

/// The one entry point for matrix products: OpenBLAS `cblas_sgemm`, with dimensions checked
/// against OpenBLAS's 32-bit integers. The corresponding C call is `cblas_sgemm`.
enum MatrixProduct {
    /// `C = alpha · A · op(B)`, all row-major. `A` is `m×k`, `op(B)` is `k×n`
    /// (`B` is `n×k` when `transposeB`).
    static func multiply(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, into c: UnsafeMutablePointer<Float>,
                         m: Int, n: Int, k: Int, transposeB: Bool = false, alpha: Float = 1) {
        _ = singleThreadedBLAS
        precondition(m >= 0 && n >= 0 && k >= 0)
        precondition(m <= Int32.max && n <= Int32.max && k <= Int32.max, "matrix too large for 32-bit BLAS: \(m)×\(k) · \(k)×\(n)")
        if m == 0 || n == 0 { return }
        if k == 0 {
            c.update(repeating: 0, count: m * n)
            return
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(k), b, Int32(transposeB ? k : n), 0, c, Int32(n))
    }

    /// OpenBLAS runs single-threaded: attninspect's own workers split the work. OpenBLAS's idle
    /// threads spin (`sched_yield`) for a while after each call and would take the cores from the
    /// workers that read and fuse the next layer. The corresponding C call is `openblas_set_num_threads`.
    private static let singleThreadedBLAS: Void = { openblas_set_num_threads(1) }()

    /// Products smaller than this many multiply-adds are not split across workers.
    private static let parallelWork = 1 << 22

    /// `A · B` for matrices.
    static func multiply(_ a: Matrix, _ b: Matrix) -> Matrix {
        var out = Matrix(rows: a.rows, columns: b.columns)
        multiply(a, b, into: &out)
        return out
    }

    /// `out = A · B`, reusing `out`'s storage when it has the right shape.
    static func multiply(_ a: Matrix, _ b: Matrix, into out: inout Matrix) {
        precondition(a.columns == b.rows, "matrix product: \(a.rows)×\(a.columns) · \(b.rows)×\(b.columns)")
        if out.rows != a.rows || out.columns != b.columns { out = Matrix(rows: a.rows, columns: b.columns) }
        a.values.withUnsafeBufferPointer { pa in
            b.values.withUnsafeBufferPointer { pb in
                out.values.withUnsafeMutableBufferPointer { pc in
                    // Rows of the result split across the workers, one single-threaded product each.
                    let (m, n, k) = (a.rows, b.columns, a.columns)
                    let parts = m * n * k >= parallelWork ? Swift.min(Workers.count, m) : 1
                    let (a, b, c) = (UncheckedSendable(pa.baseAddress!), UncheckedSendable(pb.baseAddress!), UncheckedSendable(pc.baseAddress!))
                    try? Workers.run(parts) { part, _ in
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
