internal import CAttnBLAS
import AttnCore

/// The one entry point for matrix products: OpenBLAS `cblas_sgemm`, with dimensions checked
/// against OpenBLAS's 32-bit integers. The corresponding C call is `cblas_sgemm`.
enum MatrixProduct {
    /// `C = alpha · A · op(B)`, all row-major. `A` is `m×k`, `op(B)` is `k×n`
    /// (`B` is `n×k` when `transposeB`).
    static func multiply(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, into c: UnsafeMutablePointer<Float>,
                         m: Int, n: Int, k: Int, transposeB: Bool = false, alpha: Float = 1) {
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

    /// Runs `body` with OpenBLAS limited to one thread, for products issued from several of our own
    /// worker threads at once. The corresponding C calls are `openblas_get_num_threads` and
    /// `openblas_set_num_threads`.
    static func singleThreaded<T>(_ body: () throws -> T) rethrows -> T {
        let threads = openblas_get_num_threads()
        openblas_set_num_threads(1)
        defer { openblas_set_num_threads(threads) }
        return try body()
    }

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
                    multiply(pa.baseAddress!, pb.baseAddress!, into: pc.baseAddress!, m: a.rows, n: b.columns, k: a.columns)
                }
            }
        }
    }
}

extension Matrix {
    /// The matrix product `self · other` (through BLAS).
    public func multiplied(by other: Matrix) -> Matrix { MatrixProduct.multiply(self, other) }
}
