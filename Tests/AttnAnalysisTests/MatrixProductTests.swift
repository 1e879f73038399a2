import Testing
import Dispatch
#if canImport(Glibc)
    import Glibc
#endif
import AttnCore
@testable import AttnLinalg

/// Matrix products made by several workers at once, as the Q/K recompute (one head per worker) and
/// rollout (rows split across workers) make them. Debian's serial OpenBLAS 0.3.21 sometimes returned
/// wrong products here (two concurrent calls corrupting each other, both wrong by O(1)): a few in a
/// thousand calls on two threads, up to 1 in 50 of 50 × 10 · (50 × 10)ᵀ on four; the Q/K and rollout tests then
/// failed now and then. Unlocked, with that build, this test (5000 rounds) failed on 20 runs of 20; with 2000 rounds
/// on 18 of 20, and a reviewer's C version with 400 rounds missed the bug in a quarter of its runs.
@Suite("Matrix products on several threads at once")
struct MatrixProductTests {
    /// A product `A · op(B)` with its inputs and its float64 value computed here.
    struct Case: Sendable {
        let m, n, k: Int
        let transposeB: Bool
        let a, b: [Float]
        let expected: [Double]
        /// |A| · |op(B)|, entry by entry: a float32 sum of k products is within k · 2⁻²⁴ of that.
        let magnitude: [Double]

        init(m: Int, n: Int, k: Int, transposeB: Bool, seed: UInt64) {
            self.m = m; self.n = n; self.k = k; self.transposeB = transposeB
            var state = seed
            func next() -> Float {  // a 64-bit LCG, top 24 bits: values in [-0.5, 0.5)
                state = state &* 6364136223846793005 &+ 1442695040888963407
                return Float(state >> 40) / Float(1 << 24) - 0.5
            }
            a = (0..<(m * k)).map { _ in next() }
            b = (0..<(k * n)).map { _ in next() }
            var expected = [Double](repeating: 0, count: m * n), magnitude = expected
            for i in 0..<m {
                for j in 0..<n {
                    for p in 0..<k {
                        let x = Double(a[i * k + p]), y = Double(transposeB ? b[j * k + p] : b[p * n + j])
                        expected[i * n + j] += x * y
                        magnitude[i * n + j] += abs(x * y)
                    }
                }
            }
            self.expected = expected
            self.magnitude = magnitude
        }

        /// Whether `c` is this product to float32 accuracy.
        func holds(_ c: [Float]) -> Bool {
            let bound = Double(k) * 0x1p-24 * 2
            return c.withUnsafeBufferPointer { c in
                expected.withUnsafeBufferPointer { e in
                    magnitude.withUnsafeBufferPointer { g in
                        for i in 0..<c.count where !(abs(Double(c[i]) - e[i]) <= bound * g[i] + 1e-30) { return false }
                        return true
                    }
                }
            }
        }
    }

    @Test("four threads making products of the shapes that failed at once: each equals the same product made alone")
    func concurrent() throws {
        let cases = [
            Case(m: 50, n: 50, k: 10, transposeB: true, seed: 1), Case(m: 12, n: 12, k: 10, transposeB: true, seed: 2),
            Case(m: 100, n: 100, k: 10, transposeB: true, seed: 3),
            Case(m: 160, n: 160, k: 64, transposeB: false, seed: 4),
            Case(m: 129, n: 129, k: 64, transposeB: true, seed: 5)
        ]
        // Each product made alone equals the float64 one to float32 accuracy; the products made concurrently
        // must equal it bit for bit (one call runs on one thread, in the same order whatever else runs).
        let alone = cases.map { product($0) }
        for (c, p) in zip(cases, alone) { #expect(c.holds(p), "\(c.m)×\(c.k)·\(c.k)×\(c.n)") }
        let threads = 4, rounds = 5000
        let wrong = UnsafeMutableBufferPointer<Int>.allocate(capacity: threads * cases.count)
        wrong.initialize(repeating: 0)
        defer { wrong.deallocate() }
        let slots = UncheckedSendable(wrong)
        for (index, c) in cases.enumerated() {
            DispatchQueue.concurrentPerform(iterations: threads) { t in
                var out = [Float](repeating: 0, count: c.m * c.n)
                for _ in 0..<rounds {
                    product(c, into: &out)
                    if memcmp(out, alone[index], out.count * MemoryLayout<Float>.size) != 0 {
                        slots.value[index * threads + t] += 1
                    }
                }
            }
        }
        for index in cases.indices {
            let c = cases[index], counts = Array(wrong[(index * threads)..<((index + 1) * threads)])
            #expect(
                counts.allSatisfy { $0 == 0 },
                """
                \(c.m)×\(c.k)·\(c.k)×\(c.n): wrong products per thread \(counts) of \(rounds); calls overlap: \
                \(!MatrixProduct.callsMustNotOverlap)
                """
            )
        }
    }

    @Test("with OpenBLAS's threaded archive installed, it is the one linked: calls overlap, no lock")
    func threadedBuildLinked() {
        var found = glob_t()
        defer { globfree(&found) }
        guard glob("/usr/lib/*/openblas-pthread/libopenblasp-r*.a", 0, nil, &found) == 0, found.gl_pathc > 0 else {
            return
        }
        // Package.swift prefers it; a .build made before it was installed links the serial build (rm -rf .build).
        #expect(
            !MatrixProduct.callsMustNotOverlap,
            "the serial OpenBLAS is linked although the threaded archive is installed")
    }

    private func product(_ c: Case) -> [Float] {
        var out = [Float](repeating: .nan, count: c.m * c.n)
        product(c, into: &out)
        return out
    }

    private func product(_ c: Case, into out: inout [Float]) {
        c.a.withUnsafeBufferPointer { a in
            c.b.withUnsafeBufferPointer { b in
                out.withUnsafeMutableBufferPointer { o in
                    MatrixProduct.multiply(
                        a.baseAddress!, b.baseAddress!, into: o.baseAddress!, m: c.m, n: c.n, k: c.k,
                        transposeB: c.transposeB)
                }
            }
        }
    }
}

/// Scores from packed keys (`KeyPanels`, the AVX2 kernel of recomputed attention) against the float64 product:
/// tiles cut by the rows (not a multiple of 6), by the key range (not on a panel of 16) and by the key count (the
/// last panel padded); lengths d from 1 to 128; nothing outside the range written.
@Suite("Score blocks from packed keys")
struct KeyPanelTests {
    /// A block's scores through `KeyPanels` (or, with `level`, the kernel of that level, nil when this CPU lacks
    /// it), into rows of `stride` floats that start as −7.
    private func scores(
        _ c: MatrixProductTests.Case, range: Range<Int>, stride: Int, scale: Float, panels: KeyPanels?, level: Int?
    ) -> [Float]? {
        var out = [Float](repeating: -7, count: c.m * stride)
        let done = c.a.withUnsafeBufferPointer { q in
            c.b.withUnsafeBufferPointer { k in
                out.withUnsafeMutableBufferPointer { o in
                    if let level {
                        return KeyPanels.scores(
                            queries: q.baseAddress!, rows: c.m, keys: k.baseAddress!, keyCount: c.n, range: range,
                            dim: c.k, scale: scale, into: o.baseAddress!, rowStride: stride, kernels: level)
                    }
                    panels!.scores(
                        queries: q.baseAddress!, rows: c.m, keys: k.baseAddress!, keyCount: c.n, range: range,
                        dim: c.k, scale: scale, into: o.baseAddress!, rowStride: stride)
                    return true
                }
            }
        }
        return done ? out : nil
    }

    /// Whether `out` holds scale × the product in `range` (to float32 accuracy) and −7 everywhere else.
    private func holds(
        _ out: [Float], _ c: MatrixProductTests.Case, range: Range<Int>, stride: Int, scale: Float
    ) -> Bool {
        let bound = Double(c.k) * 0x1p-24 * 2
        for i in 0..<c.m {
            for j in 0..<stride {
                let got = Double(out[i * stride + j])
                if !range.contains(j) {
                    if got != -7 { return false }
                    continue
                }
                let e = c.expected[i * c.n + j], g = c.magnitude[i * c.n + j]
                if !(abs(got - Double(scale) * e) <= Double(scale) * (bound * g) + 1e-30) { return false }
            }
        }
        return true
    }

    @Test(
        "every cut of rows, keys and length equals the float64 product, and nothing outside the range is written",
        arguments: [1, 3, 8, 64, 80, 128])
    func cuts(dim: Int) throws {
        let panels = KeyPanels()
        var seed: UInt64 = 100
        for m in [1, 5, 6, 7, 13, 64] {
            for n in [1, 15, 16, 17, 100] {
                seed += 1
                let c = MatrixProductTests.Case(m: m, n: n, k: dim, transposeB: true, seed: seed)
                let ranges = [0..<n, 1..<n, 0..<(n - 1), (n / 3)..<(2 * n / 3 + 1), (n - 1)..<n].filter {
                    !$0.isEmpty && $0.lowerBound >= 0 && $0.upperBound <= n
                }
                for range in ranges {
                    let stride = n + 5
                    let out = try #require(
                        scores(c, range: range, stride: stride, scale: 0.125, panels: panels, level: nil))
                    #expect(
                        holds(out, c, range: range, stride: stride, scale: 0.125), "\(m)×\(dim) · \(n) keys, \(range)")
                    // The AVX2 kernel itself, when this CPU has it (the instance above uses BLAS without it).
                    if let vector = scores(c, range: range, stride: stride, scale: 0.125, panels: nil, level: 1) {
                        #expect(holds(vector, c, range: range, stride: stride, scale: 0.125))
                    }
                }
            }
        }
        // The portable kernels have no such kernel: the caller is told, and nothing is written.
        let c = MatrixProductTests.Case(m: 2, n: 3, k: dim, transposeB: true, seed: 1)
        #expect(scores(c, range: 0..<3, stride: 3, scale: 1, panels: nil, level: 0) == nil)
    }

    @Test("keys packed once serve every head that shares them; other keys, or forget(), pack afresh")
    func reuse() throws {
        let a = MatrixProductTests.Case(m: 7, n: 40, k: 64, transposeB: true, seed: 7)
        let b = MatrixProductTests.Case(m: 7, n: 40, k: 64, transposeB: true, seed: 8)
        let panels = KeyPanels()
        for c in [a, a, b, a] {
            let out = try #require(scores(c, range: 0..<40, stride: 40, scale: 1, panels: panels, level: nil))
            #expect(holds(out, c, range: 0..<40, stride: 40, scale: 1))
        }
        // A new layer's keys written where the last one's were: forget() makes the panels packed again.
        var keys = a.b, out = [Float](repeating: 0, count: 7 * 40)
        for c in [a, b] {
            keys.withUnsafeMutableBufferPointer { k in
                _ = k.initialize(from: c.b)
                panels.forget()
                c.a.withUnsafeBufferPointer { q in
                    out.withUnsafeMutableBufferPointer { o in
                        panels.scores(
                            queries: q.baseAddress!, rows: 7, keys: UnsafePointer(k.baseAddress!), keyCount: 40,
                            range: 0..<40, dim: 64, scale: 1, into: o.baseAddress!, rowStride: 40)
                    }
                }
            }
            #expect(holds(out, c, range: 0..<40, stride: 40, scale: 1))
        }
    }
}
