import Testing
import AttnCore
@testable import AttnAnalysis

/// verify's findings from hand-made maps (the CLI tests check the printed lines on TestData's dumps).
@Suite("Verification")
struct VerificationTests {
    func findings(_ values: [Float], queries: Int, keys: Int, claimsCausal: Bool = false) -> [VerifyFinding] {
        var checks = AttentionChecks()
        checks.add(LayerAttention(heads: 1, queries: queries, keys: keys, values: values))
        return checks.findings(tolerance: 1e-2, claimsCausal: claimsCausal)
    }

    @Test("a causal distribution passes every check, causality said when not claimed and checked when it is")
    func causal() {
        let map: [Float] = [1, 0, 0.25, 0.75]
        let said = findings(map, queries: 2, keys: 2)
        #expect(
            said == [
                .finite(nans: 0, infinities: 0), .nonNegative(negatives: 0), .rowSums(worst: 0),
                .causal(claimed: false, upperMax: 0, tolerance: 1e-2)
            ])
        #expect(said.map(\.passed) == [true, true, true, nil])
        #expect(findings(map, queries: 2, keys: 2, claimsCausal: true).last?.passed == true)
        // Attention to a later key, claimed causal: fails with the value found above the diagonal.
        let leaky = findings([0.5, 0.5, 0.25, 0.75], queries: 2, keys: 2, claimsCausal: true)
        #expect(leaky.last == .causal(claimed: true, upperMax: 0.5, tolerance: 1e-2) && leaky.last?.passed == false)
    }

    @Test("columns that sum to 1 where rows do not: transposed; neither: not probabilities; NaN and negatives counted")
    func failures() {
        // Columns (0.2 + 0.8, 0.6 + 0.4) sum to 1; rows are 0.8 and 1.2 (|Σ − 1| = 0.2 each).
        let transposed = findings([0.2, 0.6, 0.8, 0.4], queries: 2, keys: 2)
        guard case .transposed(let row, let column) = transposed[2] else {
            Issue.record("\(transposed[2])")
            return
        }
        #expect(abs(row - 0.2) < 1e-7 && column < 1e-7)
        #expect(transposed[2].passed == false)
        // Logits: rows 3 and 0 (|Σ − 1| = 2 and 1), columns 1 and 2 (not transposed either), a negative value.
        let logits = findings([2, 1, -1, 1], queries: 2, keys: 2)
        #expect(logits[1] == .nonNegative(negatives: 1) && logits[1].passed == false)
        #expect(logits[2] == .notProbabilities(worstRow: 2, tolerance: 1e-2) && logits[2].passed == false)
        let nan = findings([.nan, 1, .infinity, 0], queries: 2, keys: 2)
        #expect(nan[0] == .finite(nans: 1, infinities: 1) && nan[0].passed == false)
    }

    @Test("stored against recomputed: the largest |Δ| over every layer, passing within the tolerance")
    func recomputed() throws {
        let a = ArraySource(layers: [[1, 0, 0.5, 0.5]], heads: 1, size: 2)
        let b = ArraySource(layers: [[1, 0, 0.25, 0.75]], heads: 1, size: 2)
        let finding = try VerifyFinding.comparing(a, with: b, tolerance: 0.3, scale: nil, causal: false)
        #expect(finding == .recomputed(maxDifference: 0.25, tolerance: 0.3, scale: nil, causal: false))
        #expect(finding.passed == true)
        #expect(try VerifyFinding.comparing(a, with: b, tolerance: 0.2, scale: nil, causal: false).passed == false)
    }
}
