import Testing
import Foundation
import AttnCore
import AttnTestSupport
@testable import AttnReader
@testable import AttnAnalysis

/// Âₗ = rows-normalised(mean_h Aₗ + I) in Double, written here from the definition.
private func augmentedLayers(_ s: AttentionSource, through top: Int) throws -> [[[Double]]] {
    let n = s.queryCount
    return try (0...top).map { l in
        let layer = try s.layer(l)
        return (0..<n).map { i in
            var row = (0..<n).map { j in
                (0..<layer.heads).map { h in Double(layer.values[(h * n + i) * n + j]) }.reduce(0, +)
                    / Double(layer.heads) + (i == j ? 1 : 0)
            }
            let sum = row.reduce(0, +)
            row = row.map { $0 / sum }
            return row
        }
    }
}

@Suite("Attention flow")
struct AttentionFlowTests {
    @Test("one layer: the only path from token i to input j is the edge itself, so the flow is Â₀")
    func oneLayer() throws {
        let s = try source("synthetic/base_f32.npy")
        let a = try augmentedLayers(s, through: 0)[0]
        let flow = try AttentionFlow(layer: 0).compute(s, workers: 2)
        let n = s.queryCount
        for i in 0..<n { for j in 0..<n { #expect(abs(flow[i * n + j] - a[i][j]) < 1e-12) } }
    }

    @Test("two layers: the paths i → k → j are edge-disjoint, so the flow is Σₖ min(Â₁[i,k], Â₀[k,j]), rows normalised")
    func twoLayersClosedForm() throws {
        let s = try source("synthetic/base_f32.npy")
        let a = try augmentedLayers(s, through: 1)
        let n = s.queryCount
        let flow = try AttentionFlow(layer: 1).compute(s, workers: 3)
        for i in 0..<n {
            let raw = (0..<n).map { j in (0..<n).map { k in min(a[1][i][k], a[0][k][j]) }.reduce(0, +) }
            let total = raw.reduce(0, +)
            for j in 0..<n { #expect(abs(flow[i * n + j] - raw[j] / total) < 1e-12, "[\(i), \(j)]") }
        }
    }

    @Test("the flow of chosen tokens equals those rows of the whole matrix, on any number of threads")
    func rowsAndThreads() throws {
        let s = try source("real/minilm6_pride_LHSS_f32.npy")
        let n = s.queryCount
        let whole = try AttentionFlow(layer: s.layerCount - 1).compute(s, workers: 1)
        let rows = try AttentionFlow(layer: s.layerCount - 1).compute(s, tokens: [0, n - 1], workers: 2)
        #expect(Array(rows[0..<n]) == Array(whole[0..<n]))
        #expect(Array(rows[n...]) == Array(whole[((n - 1) * n)...]))
        #expect(try AttentionFlow(layer: s.layerCount - 1).compute(s, workers: 4) == whole)
    }

    @Test("cross-attention, NaN and an out-of-range token are refused with a reason")
    func refusals() throws {
        #expect(throws: AnalysisError.self) {
            try AttentionFlow(layer: 0).compute(try source("synthetic/base_f32.npy"), tokens: [10])
        }
        let error = #expect(throws: AttnError.self) {
            try AttentionFlow(layer: 2).compute(try source("synthetic/nan_inf.npy"))
        }
        #expect(error?.message.contains("NaN") == true)
    }
}

@Suite("Attention flow against networkx")
struct AttentionFlowReferenceTests {
    @Test(
        """
        every layer of every case equals networkx's Edmonds–Karp through the reference's pipeline (≤ 1e-6; zeros \
        exact)
        """,
        arguments: ["random_L3H2S6", "sparse_L2H2S5", "minilm6_pride"])
    func matchesNetworkx(name: String) throws {
        let expected = try Fixtures.json("synthetic/flow/expected.json")["cases"][name]
        let file = name == "minilm6_pride" ? "real/minilm6_pride_LHSS_f32.npy" : "synthetic/flow/\(name).npy"
        let s = try source(file)
        let n = s.queryCount
        for layer in 0..<s.layerCount {
            let want = expected["layers"]["\(layer)"].doubles2D
            #expect(want.count == n, "\(name) layer \(layer) in expected.json")
            let flow = try AttentionFlow(layer: layer).compute(s, workers: 2)
            var worst = 0.0
            for i in 0..<n {
                for j in 0..<n {
                    worst = max(worst, abs(flow[i * n + j] - want[i][j]))
                    if want[i][j] == 0 {
                        #expect(flow[i * n + j] == 0, "\(name) layer \(layer) [\(i), \(j)] should be exactly 0")
                    }
                }
            }
            #expect(worst <= 1e-6, "\(name) layer \(layer): max |Δ| = \(worst)")
        }
    }
}
