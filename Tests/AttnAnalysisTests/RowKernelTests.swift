import Foundation
import Testing
import AttnCore
@testable import AttnLinalg
@testable import AttnAnalysis

/// The row-statistics kernels (portable, AVX2, AVX-512) against a float64 reference computed here with
/// Foundation's log, on rows of every length up to 300 and some long ones, plain probability rows and rows
/// holding NaN, ±Inf, negative values, −0, zeros and subnormals (which the vector kernels send from their
/// fast pass to the careful one); float16 rows decoded with their statistics; and the softmax kernels the same way.
@Suite("Row statistics kernels")
struct RowKernelTests {
    struct Lcg {
        var state: UInt64
        mutating func next() -> Double {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Double(state >> 11) / Double(1 << 53)
        }
    }

    static let specials: [Float] = [
        .nan, .infinity, -.infinity, -0.0, -1e-3, .leastNormalMagnitude / 16, 0, .leastNormalMagnitude,
        .leastNonzeroMagnitude, 1
    ]

    @Test("every level matches the float64 reference: counts, min and max exactly, sums to 1e-12, entropy to 1e-8")
    func levels() throws {
        var random = Lcg(state: 12345)
        var lengths = Array(0...300)
        lengths += [511, 512, 1023, 1024, 1025, 4099]
        var checked = [0, 0, 0]
        for (trial, n) in (lengths + lengths).enumerated() {
            // Softmax-like rows: widely spread magnitudes, normalised.
            var row = (0..<n).map { _ in Float(exp(6 * random.next() - 3)) }
            let total = row.reduce(0, +)
            if total > 0 { row = row.map { $0 / total } }
            if n % 50 == 7 { row = [Float](repeating: 0, count: n) }  // rows of zeros (masked rows)
            if trial >= lengths.count && n > 0 {
                for _ in 0..<(1 + trial % 3) {
                    row[Int(random.next() * Double(n))] =
                        Self.specials[Int(random.next() * Double(Self.specials.count))]
                }
            }
            var sum = 0.0, entropy = 0.0, lo = Double.infinity, hi = -Double.infinity
            var finite = 0, nan = 0, inf = 0, negative = 0
            for p in row {
                if p.isNaN { nan += 1; continue }
                if p.isInfinite { inf += 1; continue }
                finite += 1
                if p < 0 { negative += 1 }
                lo = min(lo, Double(p)); hi = max(hi, Double(p))
                sum += Double(p)
                if p >= .leastNormalMagnitude { entropy -= Double(p) * log(Double(p)) }
            }
            for level in 0...2 {
                guard let s = row.withUnsafeBufferPointer({ RowKernels.statistics($0, kernels: level) }) else {
                    continue
                }
                checked[level] += 1
                #expect(
                    s.finite == finite && s.nan == nan && s.inf == inf && s.negative == negative,
                    "level \(level), n \(n)")
                #expect(s.min == lo && s.max == hi, "level \(level), n \(n): \(s.min) \(s.max) vs \(lo) \(hi)")
                #expect(abs(s.sum - sum) <= 1e-12 * max(1, abs(sum)), "level \(level), n \(n)")
                #expect(abs(s.entropy - entropy) < 1e-8, "level \(level), n \(n): \(s.entropy) vs \(entropy)")
                #expect(s.entropy != 0 || s.entropy.sign == .plus, "level \(level), n \(n): −0 entropy")
            }
        }
        #expect(checked[0] == 2 * lengths.count)
        #expect(RowKernels.supportedLevel < 1 || checked[1] == 2 * lengths.count)
        #expect(RowKernels.supportedLevel < 2 || checked[2] == 2 * lengths.count)
    }

    /// float16 bit patterns of every class: normal, subnormal, ±0, negative normal and subnormal, NaN (quiet,
    /// signalling, negative), ±Inf, the largest finite value and the smallest normal.
    static let float16Specials: [UInt16] = [
        0x3C00, 0x0001, 0x03FF, 0x0000, 0x8000, 0xBC00, 0x8001, 0x7E00, 0x7C01, 0xFE00, 0x7C00, 0xFC00, 0x7BFF, 0x0400
    ]

    @Test(
        """
        float16 rows decoded with their statistics at every level: the values cattn_decode_f16 gives; counts, min and \
        max exactly, sums to 1e-12 and the entropy to 1e-12 of a float64 reference (the table holds the exact terms); \
        as the row-statistics kernel on the decoded row (entropy to 2e-8); the same from byte-swapped patterns and at \
        every level
        """)
    func float16Rows() throws {
        var random = Lcg(state: 2024)
        var lengths = Array(0...300)
        lengths += [511, 512, 1023, 1024, 1025, 4099]
        var checked = [0, 0, 0]
        for (trial, n) in (lengths + lengths).enumerated() {
            // Softmax-like rows rounded to float16 (the small values become subnormals or 0), rows of zeros, rows of
            // subnormals only; the second round with special patterns put in.
            var row = (0..<n).map { _ in exp(12 * random.next() - 6) }
            let total = row.reduce(0, +)
            var patterns = row.map { Float16(Float($0 / total)).bitPattern }
            if n % 50 == 7 { patterns = [UInt16](repeating: 0, count: n) }
            if n % 50 == 13 { patterns = (0..<n).map { _ in UInt16(random.next() * 1024) } }
            if trial >= lengths.count && n > 0 {
                for _ in 0..<(1 + trial % 3) {
                    patterns[Int(random.next() * Double(n))] =
                        Self.float16Specials[Int(random.next() * Double(Self.float16Specials.count))]
                }
            }
            row = patterns.map { Double(Float(Float16(bitPattern: $0))) }
            var sum = 0.0, entropy = 0.0, lo = Double.infinity, hi = -Double.infinity
            var finite = 0, nan = 0, inf = 0, negative = 0
            for p in row {
                if p.isNaN { nan += 1; continue }
                if p.isInfinite { inf += 1; continue }
                finite += 1
                if p < 0 { negative += 1 }
                lo = min(lo, p); hi = max(hi, p)
                sum += p
                if p > 0 { entropy -= p * log(p) }
            }
            let swapped = patterns.map(\.byteSwapped)
            var first: RowStatistics?
            for level in 0...2 {
                var values = [Float](repeating: -1, count: n), fromSwapped = values
                guard
                    let s = patterns.withUnsafeBufferPointer({ p in
                        values.withUnsafeMutableBufferPointer {
                            RowKernels.decodeStatistics(float16: p, swapped: false, into: $0, kernels: level)
                        }
                    }),
                    let t = swapped.withUnsafeBufferPointer({ p in
                        fromSwapped.withUnsafeMutableBufferPointer {
                            RowKernels.decodeStatistics(float16: p, swapped: true, into: $0, kernels: level)
                        }
                    })
                else { continue }
                checked[level] += 1
                let at = "level \(level), n \(n), trial \(trial)"
                #expect(
                    zip(values, row).allSatisfy { Double($0) == $1 || ($0.isNaN && $1.isNaN) }, "\(at): values")
                #expect(values.map(\.bitPattern) == fromSwapped.map(\.bitPattern), "\(at): swapped values")
                #expect(
                    s.finite == finite && s.nan == nan && s.inf == inf && s.negative == negative, "\(at): counts")
                #expect(s.min == lo && s.max == hi, "\(at): \(s.min) \(s.max) vs \(lo) \(hi)")
                #expect(abs(s.sum - sum) <= 1e-12 * max(1, abs(sum)), "\(at): \(s.sum) vs \(sum)")
                #expect(abs(s.entropy - entropy) <= 1e-12 * max(1, abs(entropy)), "\(at): \(s.entropy) vs \(entropy)")
                #expect(s.entropy != 0 || s.entropy.sign == .plus, "\(at): −0 entropy")
                #expect(
                    [t.sum, t.entropy, t.min, t.max] == [s.sum, s.entropy, s.min, s.max]
                        && (t.finite, t.nan, t.inf, t.negative) == (s.finite, s.nan, s.inf, s.negative),
                    "\(at): from swapped patterns")
                let kernel = values.withUnsafeBufferPointer { RowKernels.statistics($0) }
                #expect(
                    (kernel.finite, kernel.nan, kernel.inf, kernel.negative) == (s.finite, s.nan, s.inf, s.negative)
                        && kernel.min == s.min && kernel.max == s.max, "\(at): row-statistics kernel")
                #expect(abs(kernel.sum - s.sum) <= 1e-12 * max(1, abs(sum)), "\(at): row-statistics kernel's sum")
                // That kernel's logarithm is good to about 1e-8 of ln p: absolute for probabilities, relative for
                // the few values far above 1.
                #expect(
                    abs(kernel.entropy - s.entropy) < 2e-8 * max(1, abs(s.entropy)),
                    "\(at): row-statistics kernel's entropy \(kernel.entropy) vs \(s.entropy)")
                // The levels sum the entropy's terms in the same order.
                if let first { #expect(s.entropy == first.entropy, "\(at): entropy differs from level 0's") }
                first = first ?? s
            }
        }
        #expect(checked[0] == 2 * lengths.count)
        #expect(RowKernels.supportedLevel < 1 || checked[1] == 2 * lengths.count)
        #expect(RowKernels.supportedLevel < 2 || checked[2] == 2 * lengths.count)
    }

    @Test(
        "softmax at every level matches exp in float64 to 5e-7 of each value; NaN makes the row NaN; masked keys are 0")
    func softmax() throws {
        var random = Lcg(state: 777)
        var checked = [0, 0, 0]
        for trial in 0..<1200 {
            let n = trial < 1000 ? 1 + trial % 300 : 1024 + trial % 7
            let visible = trial % 5 == 0 && n > 3 ? n - 3 : n
            // Logits of a few units, some rows with a far-off group (underflowing to 0), some with a NaN.
            var logits = (0..<n).map { _ in
                Float(8 * random.next() - 4) - (trial % 13 == 0 && random.next() < 0.5 ? 200 : 0)
            }
            if trial % 17 == 0 { logits[Int(random.next() * Double(visible))] = .nan }
            let peak = logits[..<visible].map(Double.init).max()!
            let total = logits[..<visible].reduce(0.0) { $0 + exp(Double($1) - peak) }
            let hasNaN = logits[..<visible].contains { $0.isNaN }
            for level in 0...2 {
                var row = logits
                guard
                    row.withUnsafeMutableBufferPointer({
                        RowKernels.softmax($0.baseAddress!, visible: visible, count: n, kernels: level)
                    })
                else { continue }
                checked[level] += 1
                for j in 0..<n {
                    if j >= visible { #expect(row[j] == 0); continue }
                    if hasNaN { #expect(row[j].isNaN, "level \(level), trial \(trial)"); continue }
                    let expected = exp(Double(logits[j]) - peak) / total
                    // Values below float's normal range are held to an absolute bound instead.
                    #expect(
                        abs(Double(row[j]) - expected) <= 5e-7 * expected + 1e-38,
                        "level \(level), trial \(trial), j \(j): \(row[j]) vs \(expected)")
                }
            }
        }
        #expect(checked[0] == 1200)
        #expect(RowKernels.supportedLevel < 1 || checked[1] == 1200)
        #expect(RowKernels.supportedLevel < 2 || checked[2] == 1200)
    }

    @Test(
        """
        softmax with statistics writes the softmax's very values, and their statistics: sum, min, max and counts as \
        the row-statistics kernel gives them on the row written, entropy within 1e-6 of −Σ p ln p of the exact \
        softmax in float64
        """)
    func softmaxStatistics() throws {
        var random = Lcg(state: 4242)
        var checked = [0, 0, 0]
        for trial in 0..<1200 {
            let n = trial < 1000 ? 1 + trial % 300 : 1024 + trial % 7 * 509
            let visible = trial % 5 == 0 && n > 3 ? n - 3 : n
            // Logits spread over tens of units (rows from flat to one-hot), some with a group far below (exp
            // underflows to 0), some with a NaN or an infinity (the caller reports the row).
            let spread = [0.5, 8, 40][trial % 3]
            var logits = (0..<n).map { _ in
                Float(spread * (2 * random.next() - 1)) - (trial % 13 == 0 && random.next() < 0.5 ? 200 : 0)
            }
            if trial % 17 == 0 { logits[Int(random.next() * Double(visible))] = .nan }
            if trial % 19 == 0 { logits[Int(random.next() * Double(visible))] = .infinity }
            let peak = logits[..<visible].map(Double.init).max()!
            let total = logits[..<visible].reduce(0.0) { $0 + exp(Double($1) - peak) }
            let entropy = logits[..<visible].reduce(0.0) { h, x in
                let p = exp(Double(x) - peak) / total
                return p > 0 ? h - p * log(p) : h
            }
            for level in 0...2 {
                var plain = logits, fused = logits
                guard
                    let s = fused.withUnsafeMutableBufferPointer({
                        RowKernels.softmaxStatistics($0.baseAddress!, visible: visible, count: n, kernels: level)
                    })
                else { continue }
                checked[level] += 1
                plain.withUnsafeMutableBufferPointer {
                    _ = RowKernels.softmax($0.baseAddress!, visible: visible, count: n, kernels: level)
                }
                let where_ = "level \(level), trial \(trial)"
                #expect(
                    zip(plain, fused).allSatisfy { $0.bitPattern == $1.bitPattern || ($0.isNaN && $1.isNaN) },
                    "\(where_): values differ from the plain softmax")
                let direct = fused.withUnsafeBufferPointer { RowKernels.statistics($0) }
                #expect(
                    s.finite == direct.finite && s.nan == direct.nan && s.inf == direct.inf
                        && s.negative == direct.negative, "\(where_)")
                if direct.nan > 0 { continue }
                #expect(s.min == direct.min && s.max == direct.max, "\(where_): \(s.min) \(s.max)")
                #expect(abs(s.sum - direct.sum) <= 1e-12, "\(where_): \(s.sum) vs \(direct.sum)")
                #expect(abs(s.entropy - entropy) <= 1e-6, "\(where_): \(s.entropy) vs \(entropy)")
            }
        }
        #expect(checked[0] == 1200)
        #expect(RowKernels.supportedLevel < 1 || checked[1] == 1200)
        #expect(RowKernels.supportedLevel < 2 || checked[2] == 1200)
    }

    @Test("augmenting summed heads while dividing them gives the very values, sums and NaN counts of dividing first")
    func augmentDividing() {
        var state: UInt64 = 7
        func next() -> Double {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Double(state >> 11) / Double(1 << 53) * 12
        }
        for n in [1, 7, 8, 9, 197] {
            for poison in [false, true] {
                var sums = (0..<n).map { _ in next() }
                if poison { sums[n / 2] = .nan }
                let diagonal = n / 3
                var divided = sums.map { $0 / 12 }
                var expected = [Float](repeating: -1, count: n), got = [Float](repeating: -1, count: n)
                let want = divided.withUnsafeMutableBufferPointer { f in
                    expected.withUnsafeMutableBufferPointer {
                        RowKernels.augmentRow(f.baseAddress!, count: n, diagonal: diagonal, into: $0.baseAddress!)
                    }
                }
                let have = sums.withUnsafeMutableBufferPointer { f in
                    got.withUnsafeMutableBufferPointer {
                        RowKernels.augmentRow(
                            dividing: f.baseAddress!, by: 12, count: n, diagonal: diagonal, into: $0.baseAddress!)
                    }
                }
                #expect(have.nonFinite == want.nonFinite && have.nonFinite == (poison ? 1 : 0))
                #expect(have.sum.bitPattern == want.sum.bitPattern || (have.sum.isNaN && want.sum.isNaN), "n \(n)")
                #expect(got.map(\.bitPattern) == expected.map(\.bitPattern), "n \(n)")
                #expect(
                    sums.map(\.bitPattern) == divided.map(\.bitPattern) || poison, "the sums become the means in place")
            }
        }
    }

    @Test(
        """
        flow's Â in Double, in place: (f + I) / (Σ f + 1) as a float64 loop has it, and rollout's Float values \
        rounded from it
        """
    )
    func augmentInPlace() {
        var state: UInt64 = 11
        func next() -> Double {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Double(state >> 11) / Double(1 << 53)
        }
        for n in [1, 7, 8, 9, 197] {
            let f = (0..<n).map { _ in next() }
            let diagonal = n / 2
            let total = f.reduce(0, +) + 1
            var row = f
            let result = row.withUnsafeMutableBufferPointer {
                RowKernels.augmentRowInPlace($0.baseAddress!, count: n, diagonal: diagonal)
            }
            // A sum of n + 1 positive terms in any order is within n·ε of the exact one (relative); a division adds ε.
            let bound = Double(n + 2) * Double.ulpOfOne
            #expect(result.nonFinite == 0 && abs(result.sum - total) <= bound * total)
            for j in 0..<n {
                let want = (f[j] + (j == diagonal ? 1 : 0)) / total
                #expect(abs(row[j] - want) <= 2 * bound * want, "n \(n), j \(j)")
            }
            var rounded = [Float](repeating: 0, count: n)
            _ = f.withUnsafeBufferPointer { p in
                rounded.withUnsafeMutableBufferPointer {
                    RowKernels.augmentRow(p.baseAddress!, count: n, diagonal: diagonal, into: $0.baseAddress!)
                }
            }
            #expect(rounded == row.map { Float($0) }, "n \(n)")
        }
    }
}

@Suite("Head fusion with the probability check in one pass")
struct CheckedAccumulationTests {
    @Test(
        "accumulateChecking writes what the plain paths write (0 + x first, += after), with the row's sum and minimum",
        arguments: [0, 1, 7, 8, 9, 16, 197, 257, 1025])
    func sameAsPlain(n: Int) {
        var random = RowKernelTests.Lcg(state: UInt64(n) + 99)
        var row = (0..<n).map { _ in Float(random.next() * 2 - 0.5) }
        if n > 3 { row[1] = -0.0; row[2] = 0 }
        let start = (0..<n).map { _ in random.next() }
        for first in [true, false] {
            var checked = start, plain = start
            let (sum, minimum) = row.withUnsafeBufferPointer {
                RowKernels.accumulateChecking($0, into: &checked, first: first)
            }
            for j in 0..<n { plain[j] = first ? 0.0 + Double(row[j]) : plain[j] + Double(row[j]) }
            #expect(checked.map(\.bitPattern) == plain.map(\.bitPattern), "first \(first)")
            #expect(abs(sum - row.reduce(0.0) { $0 + Double($1) }) < 1e-12)
            #expect(minimum == (row.min() ?? .infinity))
        }
    }

    @Test(
        "the first row that is not a distribution is named: by head, then row; rows with NaN are left to the NaN report"
    )
    func violations() {
        #expect(ProbabilityCheck.violation(sum: 1.005, minimum: 0, head: 0, row: 0) == nil)
        #expect(ProbabilityCheck.violation(sum: 1.02, minimum: 0, head: 1, row: 2)?.row == 2)
        #expect(ProbabilityCheck.violation(sum: 1, minimum: -0.5, head: 0, row: 0) != nil)
        #expect(ProbabilityCheck.violation(sum: .nan, minimum: 0, head: 0, row: 0) == nil)
        let rows: [Float] = [0.5, 0.5, 0.25, 0.25, 0.7, 0.3, -1, 2]
        let v = rows.withUnsafeBufferPointer { ProbabilityCheck.firstViolation($0, rows: 10..<14, keys: 2, head: 3) }
        #expect(v == ProbabilityCheck.Violation(head: 3, row: 11, sum: 0.5, minimum: 0.25))
        #expect(
            v?.message(layer: 4, command: "rollout").hasPrefix(
                """
                layer 4, head 3, query 11: the row sums to 0.5, not 1 (within 0.01): rollout needs attention \
                probabilities
                """
            ) == true)
    }
}
