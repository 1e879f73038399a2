import Testing
import AttnCore
import AttnTestSupport
@testable import AttnAnalysis

/// Attention held in memory whose layer `unreadable` cannot be read.
private final class FailingSource: AttentionSource {
    let file = "memory"
    let layers: [[Float]]
    let unreadable: Int
    let headCount = 2, queryCount = 3, keyCount = 3
    let origin = AttentionOrigin.stored
    let tokens: [String]? = nil
    var layerCount: Int { layers.count }

    init(layers: [[Float]], unreadable: Int) {
        self.layers = layers
        self.unreadable = unreadable
    }

    func layer(_ index: Int) throws -> LayerAttention {
        if index == unreadable { throw AnalysisError("layer \(index) is unreadable") }
        return LayerAttention(heads: 2, queries: 3, keys: 3, values: layers[index])
    }
}

/// Rollout finishes each layer (its Â and product) alongside the reading of the next, or in turn, whichever
/// it timed faster on the dump (with two workers or more); one worker does it all in turn. The results and
/// errors must not depend on that.
@Suite("Rollout: finishing a layer while the next is read")
struct RolloutPipelineTests {
    @Test("numpy's float64 rollout of base_f32, with 1, 2 and 3 workers", arguments: [1, 2, 3])
    func workers(_ workers: Int) throws {
        for name in ["mean_r0", "max_r0.9", "mean_r0_start1_end2", "mean_r0_start0_end0"] {
            let e = Fixtures.expected["base"]["rollout"][name]
            let s = try source("synthetic/base_f32.npy")
            let r = Rollout(
                fusion: try #require(HeadFusion(argument: e["fusion"].string!)),
                discardRatio: e["discard_ratio"].double,
                layers: e["start_layer"].int...e["end_layer"].int)
            var steps = 0
            let matrix = try r.compute(s, workers: workers) { steps += 1 }
            #expect(maxAbsDifference(matrix, e["matrix"].doubles2D) < 2e-6, "\(name), \(workers) workers")
            #expect(steps == e["end_layer"].int - e["start_layer"].int + 1)
        }
    }

    @Test(
        "a NaN in layer k is reported although layer k + 1, read at the same time, is unreadable (steps of both ways)",
        arguments: [1, 2], [1, 2, 3])
    func earlierErrorFirst(_ workers: Int, nanLayer: Int) {
        let good = [Float](repeating: 1.0 / 3, count: 18)
        var nan = good
        nan[4] = .nan
        var layers = [[Float]](repeating: good, count: 5)
        layers[nanLayer] = nan
        let source = FailingSource(layers: layers, unreadable: nanLayer + 1)
        #expect {
            _ = try Rollout(layers: 0...4).compute(source, workers: workers)
        } throws: { error in
            "\(error)".contains("layer \(nanLayer) holds 1 NaN")
        }
        // Without the NaN, the unreadable layer is the error.
        let unreadable = FailingSource(layers: [[Float]](repeating: good, count: 5), unreadable: nanLayer + 1)
        #expect {
            _ = try Rollout(layers: 0...4).compute(unreadable, workers: workers)
        } throws: { error in
            "\(error)" == "layer \(nanLayer + 1) is unreadable"
        }
    }
}
