import Testing
import Foundation
import AttnCore
import AttnTestSupport
@testable import AttnReader
@testable import AttnAnalysis
import AttnSource

/// The attention of a fixture as the tool opens it (`OpenedDump.open`, the entry point the CLI calls).
func source(_ relative: String, _ options: SourceOptions = SourceOptions()) throws -> AttentionSource {
    try OpenedDump.open(Fixtures.path(relative), options: options, note: { _ in }).source
}

/// Statistics of every layer, read in row blocks on `workers` threads (the path the tool uses).
func stats(_ s: AttentionSource, workers: Int = 3) throws -> [[HeadStatistics]] {
    try (0..<s.layerCount).map { try HeadStatistics.ofLayer(s, layer: $0, workers: workers) }
}

/// The statistics' names in expected.json, with the property each one is.
nonisolated(unsafe) let statisticKeys: [(String, KeyPath<HeadStatistics, Double>)] = [
    ("entropy", \.entropy), ("normalized_entropy", \.normalizedEntropy), ("min", \.min), ("max", \.max),
    ("mean", \.mean),
    ("row_sum_max_dev", \.rowSumMaxDeviation), ("first_token", \.firstToken), ("self", \.selfAttention),
    ("previous_token", \.previousToken)
]

@Suite("Statistics")
struct StatisticsTests {
    @Test(
        "per-head statistics equal numpy's float64 values",
        arguments: [
            ("synthetic/base_f32.npy", "base"), ("synthetic/single_f16_gzip.h5", "base_f16"),
            ("synthetic/dump_savez_compressed.npz", "base"), ("synthetic/per_layer_groups_f16.h5", "base_f16")
        ])
    func matchesNumpy(file: String, key: String) throws {
        let computed = try stats(try source(file))
        let expected = Fixtures.expected[key]["stats"]
        for (name, path) in statisticKeys {
            for l in 0..<3 {
                for h in 0..<2 {
                    let want = expected[name][l][h].double
                    // float32 inputs, Double sums: agreement to ~1e-7 of values of order 1.
                    #expect(abs(computed[l][h][keyPath: path] - want) < 2e-7, "\(file) \(name)[\(l)][\(h)]")
                }
            }
        }
    }

    @Test("statistics are the same bit for bit whatever the thread count and the reader's block sizes")
    func deterministic() throws {
        let vit = try source("real/vits14_board_small.h5")
        let one = try stats(vit, workers: 1)
        for workers in [2, 3, 5] {
            for _ in 0..<3 { #expect(try stats(vit, workers: workers) == one, "\(workers) workers") }
        }
        // The same values through two readers with different blocks: mapped safetensors and pread NPY.
        let mapped = try stats(try source("synthetic/safetensors/base_f32.safetensors"), workers: 2)
        let read = try stats(try source("synthetic/base_f32.npy"), workers: 2)
        #expect(mapped == read)
    }

    @Test("entropy of a uniform row is ln n, of a one-hot row 0; 0·ln 0 counts as 0")
    func entropyHandWorked() {
        let n = 8
        let uniform = LayerAttention(heads: 1, queries: 1, keys: n, values: [Float](repeating: 1 / Float(n), count: n))
        let s = HeadStatistics(of: uniform, layer: 0, head: 0)
        #expect(abs(s.entropy - log(Double(n))) < 1e-7)
        #expect(abs(s.normalizedEntropy - 1) < 1e-7)
        let oneHot = LayerAttention(heads: 1, queries: 3, keys: 3, values: [1, 0, 0, 0, 0.5, 0.5, 0.25, 0.25, 0.5])
        let t = HeadStatistics(of: oneHot, layer: 0, head: 0)
        let entropy: Double = 2.5 * log(2.0) / 3  // rows: 0, ln 2, 1.5 ln 2
        #expect(abs(t.entropy - entropy) < 1e-12)
        #expect(abs(t.firstToken - 1.25 / 3) < 1e-15)
        #expect(abs(t.selfAttention - 2.0 / 3) < 1e-15)  // (1 + 0.5 + 0.5) / 3
        #expect(t.previousToken == 0.125)  // (a[1,0] + a[2,1]) / 2
        // heads' names, ÷Q: (a[1,0] + a[2,1]) / 3; key 0 and the diagonal as first_token and self.
        #expect(abs(t.attnPrevious - 0.25 / 3) < 1e-15 && t.attnFirst == t.firstToken && t.attnSelf == t.selfAttention)
        #expect(t.rowSumMaxDeviation == 0)
        // Cross-attention (2 queries × 3 keys): query i and key i are different tokens.
        let cross = HeadStatistics(
            of: LayerAttention(heads: 1, queries: 2, keys: 3, values: [1, 0, 0, 0, 0.5, 0.5]), layer: 0, head: 0)
        #expect(abs(cross.entropy - log(2) / 2) < 1e-12 && cross.firstToken == 0.5)
        #expect(cross.selfAttention.isNaN && cross.previousToken.isNaN)
        #expect(cross.attnSelf.isNaN && cross.attnPrevious.isNaN && cross.attnFirst == 0.5)
        // A head holding NaN: heads' measures are undefined (null), and so are stats' copies of them.
        let nan = HeadStatistics(
            of: LayerAttention(heads: 1, queries: 2, keys: 2, values: [1, 0, 0.5, .nan]), layer: 0, head: 0)
        #expect(nan.attnFirst.isNaN && nan.attnSelf.isNaN && nan.attnPrevious.isNaN && nan.firstToken == 0.75)
    }

    @Test("NaN, Inf and negative values are counted, never a crash")
    func nonFinite() throws {
        let computed = try stats(try source("synthetic/nan_inf.npy"))
        let e = Fixtures.expected["base"]["nan_inf"]
        for l in 0..<3 {
            for h in 0..<2 {
                #expect(computed[l][h].nanCount == e["nan_count_per_head"][l][h].int)
                #expect(computed[l][h].infCount == e["inf_count_per_head"][l][h].int)
                #expect(computed[l][h].negativeCount == e["negative_count_per_head"][l][h].int)
                if computed[l][h].nanCount + computed[l][h].infCount > 0 { #expect(computed[l][h].entropy.isNaN) }
            }
        }
    }

    @Test(
        "real MiniLM dumps: per-head entropy, min, max, mean and row-sum deviation equal the oracle",
        arguments: ["real/minilm6_pride_LHSS_f32", "real/minilm6_zen_layers_f16"])
    func realOracle(stem: String) throws {
        let file = stem + (stem.contains("pride") ? ".npy" : ".h5")
        let computed = try stats(try source(file))
        let oracle = try Fixtures.json(stem + ".oracle.json")["per_head"]
        let pairs: [(String, KeyPath<HeadStatistics, Double>, Double)] = [
            ("mean_row_entropy_nats", \.entropy, 1e-6), ("min", \.min, 1e-12), ("max", \.max, 1e-12),
            ("mean", \.mean, 1e-8),
            ("row_sum_max_abs_dev", \.rowSumMaxDeviation, 1e-7)
        ]
        for (name, path, tolerance) in pairs {
            var worst = 0.0
            for l in 0..<6 {
                for h in 0..<12 { worst = max(worst, abs(computed[l][h][keyPath: path] - oracle[name][l][h].double)) }
            }
            #expect(worst <= tolerance, "\(stem) \(name): \(worst)")
        }
    }

    @Test("real ViT dump (3 layers of the board photo): statistics equal the fixture script's")
    func boardStatistics() throws {
        let computed = try stats(try source("real/vits14_board_small.h5"))
        let expected = try Fixtures.json("real/vits14_board_small.expected.json")["stats"]
        for (name, path) in statisticKeys {
            for l in 0..<3 {
                for h in 0..<6 {
                    #expect(
                        abs(computed[l][h][keyPath: path] - expected[name][l][h].double) < 1e-6, "\(name)[\(l)][\(h)]")
                }
            }
        }
    }
}

@Suite("Head fusion, rollout, grids")
struct MapTests {
    @Test("head fusion mean, max and min equal numpy's", arguments: ["mean", "max", "min"])
    func fusion(name: String) throws {
        let s = try source("synthetic/base_f64_be.npy")
        let fusion = try #require(HeadFusion(argument: name))
        for l in 0..<3 {
            let m = try fusion.fuse(try s.layer(l))
            #expect(maxAbsDifference(m, Fixtures.expected["base"]["fusion"][name][l].doubles2D) < 1e-7)
        }
    }

    @Test("a head index out of range is an error, not a crash")
    func headOutOfRange() throws {
        let layer = try source("synthetic/base_f32.npy").layer(0)
        #expect(throws: AnalysisError.self) { try HeadFusion.head(2).fuse(layer) }
        #expect(try HeadFusion.head(1).fuse(layer).values == Array(layer.values[100..<200]))
    }

    @Test(
        "rollout cases equal numpy's float64 rollout",
        arguments: [
            "mean_r0", "max_r0", "min_r0", "mean_r0.5", "max_r0.9", "mean_r0_start1_end2", "mean_r0_start0_end0"
        ])
    func rollout(name: String) throws {
        let e = Fixtures.expected["base"]["rollout"][name]
        let s = try source("synthetic/base_f32.npy")
        let r = Rollout(
            fusion: try #require(HeadFusion(argument: e["fusion"].string!)), discardRatio: e["discard_ratio"].double,
            layers: e["start_layer"].int...e["end_layer"].int)
        #expect(maxAbsDifference(try r.compute(s), e["matrix"].doubles2D) < 2e-6)
    }

    @Test(
        "one row of the rollout, computed as a vector through the layers, equals that row of numpy's R",
        arguments: [
            "mean_r0", "max_r0", "min_r0", "mean_r0.5", "max_r0.9", "mean_r0_start1_end2", "mean_r0_start0_end0"
        ], [0, 3, 9])
    func rolloutRow(name: String, token: Int) throws {
        let e = Fixtures.expected["base"]["rollout"][name]
        let r = Rollout(
            fusion: try #require(HeadFusion(argument: e["fusion"].string!)), discardRatio: e["discard_ratio"].double,
            layers: e["start_layer"].int...e["end_layer"].int)
        let row = try r.computeRow(try source("synthetic/base_f32.npy"), token: token)
        #expect(row.rows == 1 && row.columns == 10)
        #expect(maxAbsDifference(row.values.map(Double.init), e["matrix"].doubles2D[token]) < 2e-6)
        #expect(throws: AnalysisError.self) { try r.computeRow(try source("synthetic/base_f32.npy"), token: 10) }
    }

    @Test("rollout of identity attention is the identity; of uniform attention, uniform rows")
    func rolloutHandWorked() throws {
        let n = 4
        let identity = ArraySource(layers: [[Float]](repeating: Matrix.identity(n).values, count: 3), heads: 1, size: n)
        #expect(try Rollout(layers: 0...2).compute(identity) == Matrix.identity(n))
        // Uniform A: Â = (U + I) normalised = (1/n + δ)/2; every product of row-stochastic matrices stays
        // row-stochastic.
        let uniform = ArraySource(layers: [[Float](repeating: 0.25, count: 16)], heads: 1, size: n)
        let r = try Rollout(layers: 0...0).compute(uniform)
        #expect(abs(r[0, 0] - 0.625) < 1e-7)  // (0.25 + 1) / 2
        #expect(abs(r[0, 1] - 0.125) < 1e-7)  // 0.25 / 2
    }

    @Test("discard: the k smallest by a stable sort, ties to the lower flat index, (0,0) protected")
    func discardTies() throws {
        // F = [[0.1, 0.1], [0.1, 0.7]]: k = ⌊0.5·4⌋ = 2 → flat indices 0 and 1 are the two smallest (ties by
        // index); 0 is protected, so only (0,1) is zeroed. Then rows of F + I: [1.1, 0] → [1, 0]; [0.1, 1.7] → [1/18,
        // 17/18].
        let a = Rollout(discardRatio: 0.5, layers: 0...0).augmented([0.1, 0.1, 0.1, 0.7], size: 2)
        #expect(a.values == [1, 0, Float(0.1 / 1.8), Float(1.7 / 1.8)])
    }

    @Test("rollout refuses NaN and cross-attention")
    func rolloutRefuses() throws {
        #expect(throws: AttnError.self) { try Rollout(layers: 0...2).compute(try source("synthetic/nan_inf.npy")) }
        let cross = ArraySource(layers: [[Float](repeating: 0.5, count: 6)], heads: 1, queries: 3, keys: 2)
        #expect(throws: AnalysisError.self) { try Rollout(layers: 0...0).compute(cross) }
    }

    @Test("CLS→patch grids equal numpy's reshape")
    func grids() throws {
        let s = try source("synthetic/single_f32.h5")
        let grid = PatchGrid(rows: 3, columns: 3)
        let layerMap = try grid.extract(from: try HeadFusion.mean.fuse(try s.layer(2)), token: 0, prefix: 1)
        #expect(
            maxAbsDifference(layerMap, Fixtures.expected["base"]["grid"]["layer2_mean_token0_prefix1"].doubles2D) < 1e-7
        )
        let r = try Rollout(layers: 0...2).compute(s)
        let rolloutMap = try grid.extract(from: r, token: 0, prefix: 1)
        #expect(
            maxAbsDifference(rolloutMap, Fixtures.expected["base"]["grid"]["rollout_mean_r0_token0_prefix1"].doubles2D)
                < 2e-6)
    }

    @Test("a grid that does not fit, a token or prefix out of range: errors that say how to fix it")
    func gridErrors() throws {
        let m = Matrix(rows: 10, columns: 10)
        #expect(throws: AnalysisError.self) { try PatchGrid(rows: 2, columns: 4).extract(from: m, token: 0, prefix: 1) }
        #expect(throws: AnalysisError.self) {
            try PatchGrid(rows: 3, columns: 3).extract(from: m, token: 10, prefix: 1)
        }
        #expect(PatchGrid.square(holding: 256) == PatchGrid(rows: 16, columns: 16))
        #expect(PatchGrid.square(holding: 27) == nil)
        #expect(PatchGrid(argument: "16x12") == PatchGrid(rows: 16, columns: 12))
        #expect(PatchGrid(argument: "16") == nil)
    }

    @Test(
        "real MiniLM: head means and Abnar rollout equal the oracle",
        arguments: ["real/minilm6_pride_LHSS_f32", "real/minilm6_zen_layers_f16"])
    func realRollout(stem: String) throws {
        let s = try source(stem + (stem.contains("pride") ? ".npy" : ".h5"))
        let oracle = try Fixtures.json(stem + ".oracle.json")
        for l in 0..<6 {
            #expect(
                maxAbsDifference(try HeadFusion.mean.fuse(try s.layer(l)), oracle["head_mean"]["matrices"][l].doubles2D)
                    < 1e-7)
        }
        let r = try Rollout(layers: 0...5).compute(s)
        #expect(maxAbsDifference(r, oracle["rollout_abnar"]["matrix"].doubles2D) < 2e-6)
    }

    @Test(
        "real MiniLM: discard 0.9 rollout equals vit-explain with the row normalisation done right (keepdim)",
        arguments: ["mean", "max", "min"])
    func realDiscard(fusion: String) throws {
        for stem in ["real/minilm6_pride_LHSS_f32", "real/minilm6_zen_layers_f16"] {
            let s = try source(stem + (stem.contains("pride") ? ".npy" : ".h5"))
            let oracle = try Fixtures.json(stem + ".oracle.json")["rollout_vit_explain_keepdim"][fusion]
            let r = try Rollout(fusion: HeadFusion(argument: fusion)!, discardRatio: 0.9, layers: 0...5).compute(s)
            // Stable tie order as in the oracle; float32 products give ~1e-7, the oracle's reverse-tie sensitivity is ≤
            // 1.4e-6.
            let tolerance = 2e-6 + oracle["sensitivity"]["reverse_ties"]["max_abs_diff_matrix"].double
            #expect(maxAbsDifference(r, oracle["matrix"].doubles2D) < tolerance, "\(stem) \(fusion)")
        }
    }

    @Test("real ViT (3 layers): last-layer CLS grid and rollout grid equal the fixture script's")
    func boardGrids() throws {
        let s = try source("real/vits14_board_small.h5")
        let e = try Fixtures.json("real/vits14_board_small.expected.json")
        let grid = PatchGrid(rows: 16, columns: 16)
        let cls = try grid.extract(from: try HeadFusion.mean.fuse(try s.layer(2)), token: 0, prefix: 1)
        #expect(maxAbsDifference(cls, e["cls_grid_last_layer_head_mean"]["grid"].doubles2D) < 1e-8)
        let r = try Rollout(layers: 0...2).compute(s)
        #expect(
            maxAbsDifference(
                try grid.extract(from: r, token: 0, prefix: 1), e["rollout_abnar"]["cls_row_grid"].doubles2D) < 1e-6)
        #expect(abs(r.values.reduce(0.0) { $0 + Double($1) } - e["rollout_abnar"]["summary"]["sum"].double) < 1e-4)
        // The microcontroller: the last-layer CLS grid peaks at patches (7–8, 7–8).
        let peak = cls.values.indices.max { cls.values[$0] < cls.values[$1] }!
        #expect((7...8).contains(peak / 16) && (7...8).contains(peak % 16))
    }
}

@Suite("Attention from Q and K")
struct QueryKeyTests {
    @Test(
        "softmax(Q Kᵀ/√d), causal and a custom scale equal numpy's",
        arguments: [("scale_default", nil as Double?, false), ("causal", nil, true), ("scale_0.25", 0.25, false)])
    func recompute(key: String, scale: Double?, causal: Bool) throws {
        for file in ["synthetic/qk_LHSd.h5", "synthetic/qk_LShd.h5", "synthetic/both_attn_and_qk.h5"] {
            let s = try source(file, SourceOptions(fromQK: true, scale: scale, causal: causal))
            #expect(s.origin == .recomputed(scale: scale ?? 0.5, causal: causal))
            let expected = Fixtures.expected["base"]["recompute_qk"][key]
            for l in 0..<3 {
                let layer = try s.layer(l)
                #expect(
                    maxAbsDifference(layer.values.map(Double.init), expected[l].doubles3D.flatMap { $0.flatMap { $0 } })
                        < 1e-6, "\(file) \(key) layer \(l)")
            }
        }
    }

    @Test("per-layer float16 q and k (/layer_NN/q, /layer_NN/k) recompute to numpy's values")
    func perLayerFloat16() throws {
        let s = try source("synthetic/per_layer_groups_f16.h5", SourceOptions(fromQK: true))
        #expect(s.origin != .stored)
        let expected = Fixtures.expected["base_f16"]["recompute_qk_f16"]["scale_default"]
        for l in 0..<3 {
            #expect(
                maxAbsDifference(
                    try s.layer(l).values.map(Double.init), expected[l].doubles3D.flatMap { $0.flatMap { $0 } }) < 1e-6)
        }
    }

    @Test("real MiniLM zen: recomputed attention differs from the stored float16 attention by the oracle's 6.9e-4")
    func realZen() throws {
        let recomputed = try source("real/minilm6_zen_layers_f16.h5", SourceOptions(fromQK: true))
        let stored = try source("real/minilm6_zen_layers_f16.h5")
        let oracle = try Fixtures.json("real/minilm6_zen_layers_f16.oracle.json")
        var worst = 0.0
        for l in 0..<6 {
            let a = try recomputed.layer(l).values, b = try stored.layer(l).values
            worst = max(worst, maxAbsDifference(a.map(Double.init), b.map(Double.init)))
        }
        #expect(abs(worst - oracle["recompute_from_qk"]["max_abs_diff_vs_stored"].double) < 1e-5)
        // Causal: entropies per head equal the oracle's causal recomputation.
        let causal = try stats(try source("real/minilm6_zen_layers_f16.h5", SourceOptions(fromQK: true, causal: true)))
        for l in 0..<6 {
            for h in 0..<12 {
                #expect(
                    abs(
                        causal[l][h].entropy - oracle["causal_recompute"]["per_head_mean_row_entropy_nats"][l][h].double
                    ) < 1e-5)
            }
        }
    }

    @Test("real ViT: entropy of attention recomputed from float16 q and k equals numpy's float64 recomputation")
    func realBoard() throws {
        let recomputed = try source("real/vits14_board_small.h5", SourceOptions(fromQK: true))
        #expect(recomputed.origin == .recomputed(scale: 1 / 8, causal: false))  // head dimension 64: 1/√64
        let computed = try stats(recomputed)
        let e = try Fixtures.json("real/vits14_board_small.expected.json")["recompute_from_qk"]["entropy"]
        // Scores q·k/8 reach |289|: float32 products round them by up to ~3e-5, which bounds the entropy error.
        for l in 0..<3 { for h in 0..<6 { #expect(abs(computed[l][h].entropy - e[l][h].double) < 1e-4) } }
    }

    @Test("the BLAS product equals a naive triple loop")
    func matrixProduct() {
        let a = Matrix(rows: 3, columns: 4, values: (0..<12).map { Float($0) * 0.5 - 2 })
        let b = Matrix(rows: 4, columns: 2, values: (0..<8).map { Float($0 * $0) * 0.25 })
        var naive = Matrix(rows: 3, columns: 2)
        for i in 0..<3 { for j in 0..<2 { for k in 0..<4 { naive[i, j] += a[i, k] * b[k, j] } } }
        let product = a.multiplied(by: b)
        #expect(maxAbsDifference(product.values.map(Double.init), naive.values.map(Double.init)) < 1e-5)
    }
}

/// Attention held in memory, for hand-worked cases.
final class ArraySource: AttentionSource {
    let file = "memory"
    let layers: [[Float]]
    let headCount: Int
    let queryCount: Int
    let keyCount: Int
    let origin = AttentionOrigin.stored
    let tokens: [String]? = nil
    var layerCount: Int { layers.count }

    init(layers: [[Float]], heads: Int, size: Int) {
        self.layers = layers; headCount = heads; queryCount = size; keyCount = size
    }

    init(layers: [[Float]], heads: Int, queries: Int, keys: Int) {
        self.layers = layers; headCount = heads; queryCount = queries; keyCount = keys
    }

    func layer(_ index: Int) throws -> LayerAttention {
        LayerAttention(heads: headCount, queries: queryCount, keys: keyCount, values: layers[index])
    }
}

@Suite("DINO masks")
struct AttentionMaskTests {
    @Test(
        "hand-worked: 0.125, 0.25, 0.375, 0.25 at 60% keeps 0.375 and the later 0.25 (stable order), 62.5% of the mass")
    func handWorked() throws {
        // Ascending, stable: 0.125 (i0), 0.25 (i1), 0.25 (i3), 0.375 (i2); running sums 0.125, 0.375, 0.625, 1.
        // Kept where the running sum exceeds 1 − 0.6 = 0.4: i3 and i2.
        let mask = try AttentionMask.keeping(Matrix(rows: 2, columns: 2, values: [0.125, 0.25, 0.375, 0.25]), mass: 0.6)
        #expect(mask.values == [0, 0, 1, 1])
        let all = try AttentionMask.keeping(Matrix(rows: 2, columns: 2, values: [0.125, 0.25, 0.375, 0.25]), mass: 1)
        #expect(all.values == [1, 1, 1, 1])
        #expect(throws: AnalysisError.self) {
            try AttentionMask.keeping(Matrix(rows: 1, columns: 2, values: [0.5, -0.1]), mass: 0.5)
        }
        #expect(throws: AnalysisError.self) {
            try AttentionMask.keeping(Matrix(rows: 1, columns: 2, values: [0.5, 0.5]), mass: 0)
        }
    }

    @Test(
        "real ViT: every head's and the head mean's masks at 0.6 and 0.9 equal DINO's rule computed with numpy",
        arguments: ["0.6", "0.9"])
    func realMasks(threshold: String) throws {
        let expected = try Fixtures.json("real/vits14_board_small.dino_masks.json")
        let s = try source("real/vits14_board_small.h5")
        let layer = try s.layer(2)
        let grid = PatchGrid(rows: 16, columns: 16)
        for h in 0..<6 {
            let map = try grid.extract(from: layer.head(h), token: 0, prefix: 1)
            let mask = try AttentionMask.keeping(map, mass: Double(threshold)!)
            #expect(mask.values.map(Double.init) == expected["heads"][threshold][h].doubles, "head \(h)")
        }
        let mean = try grid.extract(from: try HeadFusion.mean.fuse(layer), token: 0, prefix: 1)
        #expect(
            try AttentionMask.keeping(mean, mass: Double(threshold)!).values.map(Double.init)
                == expected["mean"][threshold].doubles)
    }
}

@Suite("Review fixes")
struct ReviewFixTests {
    @Test(
        """
        softmax rows meeting a NaN or +inf score are refused, naming the value that caused them, not a made-up \
        distribution
        """
    )
    func nanScores() {
        var k = [Float](repeating: 0.5, count: 12 * 4), q = [Float](repeating: 0.25, count: 12 * 4)
        k[3 * 4] = .nan
        q[5 * 4 + 1] = .infinity
        func message(_ q: [Float], _ k: [Float]) -> String {
            do {
                _ = try RecomputedAttention.attention(
                    from: LayerQueryKey(heads: 1, positions: 12, dim: 4, queries: q, keys: k), scale: 0.5,
                    causal: false, layer: 2)
                return "no error"
            } catch { return "\(error)" }
        }
        // Row 0 meets k's NaN at key 3 first; with k finite, row 5 meets q's infinity.
        #expect(
            message(q, k)
                == """
                layer 2, head 0: k holds NaN or infinite values at position 3: attention cannot be recomputed \
                from it
                """
        )
        k[3 * 4] = 0.5
        #expect(
            message(q, k)
                == """
                layer 2, head 0: q holds NaN or infinite values at position 5: attention cannot be recomputed \
                from it
                """
        )
        // Finite q and k whose products overflow float32 (1e20 · 1e20 · 4 · 0.5 = 2e40).
        let big = [Float](repeating: 1e20, count: 12 * 4)
        #expect(message(big, big).hasPrefix("layer 2, head 0, query 0: Q·Kᵀ·scale overflows float32"))
    }

    @Test("max and min fusion keep a NaN of any head (not only head 0)")
    func fusionNaN() throws {
        var values = [Float](repeating: 1.0 / 3, count: 2 * 9)
        values[9 + 0] = .nan  // head 1, (0, 0)
        values[4] = .nan  // head 0, (1, 1)
        let layer = LayerAttention(heads: 2, queries: 3, keys: 3, values: values)
        for fusion in [HeadFusion.max, .min] {
            let fused = try fusion.fuse(layer)
            #expect(fused[0, 0].isNaN && fused[1, 1].isNaN && !fused[2, 2].isNaN)
        }
    }

    @Test("grids whose cell count overflows are refused, not a crash")
    func hugeGrid() {
        #expect(PatchGrid(argument: "4294967296x4294967296") == nil)
        let grid = PatchGrid(rows: 1 << 40, columns: 1 << 40)
        #expect(throws: AnalysisError.self) { try grid.extract(from: Matrix(rows: 1, columns: 5), token: 0, prefix: 1) }
    }
}
