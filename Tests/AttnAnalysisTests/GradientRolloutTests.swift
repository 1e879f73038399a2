import Testing
import Foundation
import AttnCore
import AttnTestSupport
@testable import AttnReader
@testable import AttnAnalysis

@Suite("Gradient-weighted rollout")
struct GradientRolloutTests {
    /// The attention and its stored gradients.
    func sources(_ relative: String) throws -> (AttentionSource, AttentionSource) {
        let dump = try DumpFile(path: Fixtures.path(relative))
        guard case .attention(let attention) = try AttentionLayout.resolve(dump, options: ReadOptions()) else {
            throw AnalysisError("expected stored attention")
        }
        let gradients = try #require(
            try AttentionLayout.gradients(dump, named: nil, options: ReadOptions(), matching: attention))
        return (attention, gradients)
    }

    @Test(
        "R = (I + Ā_end)⋯(I + Ā_start) equals numpy's float64 Chefer rule, one tensor or one dataset per layer",
        arguments: ["synthetic/gradients/attn_grad.npz", "synthetic/gradients/per_layer_grads.h5"])
    func matchesNumpy(file: String) throws {
        let expected = try Fixtures.json("synthetic/gradients/expected.json")
        let (attention, gradients) = try sources(file)
        let all = try GradientRollout(layers: 0...2).compute(attention: attention, gradients: gradients)
        let want = expected["rollout_all_layers"].doubles2D
        // R − I is of order 0.3; float32 storage of R: agreement to a few float32 ulps of 1.
        #expect(maxAbsDifference(all, want) < 5e-7)
        let later = try GradientRollout(layers: 1...2).compute(attention: attention, gradients: gradients)
        #expect(maxAbsDifference(later, expected["rollout_from_layer_1"].doubles2D) < 5e-7)
        // Row 0 alone, carried as a vector, is row 0 of R.
        let row = try GradientRollout(layers: 0...2).computeRow(attention: attention, gradients: gradients, token: 0)
        #expect(maxAbsDifference(row.values.map(Double.init), want[0]) < 5e-7)
    }

    @Test("Ā₀ clamps negative products to 0 before the head mean (hand-checked row)")
    func clamp() throws {
        let expected = try Fixtures.json("synthetic/gradients/expected.json")
        let (attention, gradients) = try sources("synthetic/gradients/attn_grad.npz")
        let weighted = try GradientRollout.weighted(layer: 0, attention: attention, gradients: gradients, checked: true)
        let want = (0..<10).map { expected["hand_worked"]["cam0_row0"][$0].double }
        #expect(maxAbsDifference(Array(weighted.values[0..<10]).map(Double.init), want) < 1e-7)
        #expect(weighted.values.allSatisfy { $0 >= 0 })
    }

    @Test("gradients of another shape are refused naming both shapes; a file without them has none")
    func shapes() throws {
        let wrong = try DumpFile(path: Fixtures.path("synthetic/gradients/wrong_shape.npz"))
        guard case .attention(let attention) = try AttentionLayout.resolve(wrong, options: ReadOptions()) else {
            return
        }
        let error = #expect(throws: AttnError.self) {
            try AttentionLayout.gradients(wrong, named: nil, options: ReadOptions(), matching: attention)
        }
        #expect(error?.message.contains("(3, 2, 10, 10), found (2, 2, 10, 10)") == true)
        let none = try DumpFile(path: Fixtures.path("synthetic/gradients/no_grads.npz"))
        #expect(try AttentionLayout.gradients(none, named: nil, options: ReadOptions(), matching: attention) == nil)
    }
}
