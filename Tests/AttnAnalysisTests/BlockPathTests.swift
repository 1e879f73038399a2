import Testing
import Foundation
import AttnCore
import AttnLinalg
import AttnTestSupport
@testable import AttnReader
@testable import AttnAnalysis

/// The parallel row-block path (direct `pread`, chunks inflated on worker threads, Q/K recomputed
/// per head) must give what numpy gives, whatever the storage and the number of workers.
@Suite("Row blocks on several workers")
struct BlockPathTests {
    static let float32Files = [
        "synthetic/base_f32.npy", "synthetic/base_f64.npy", "synthetic/base_f32_be.npy", "synthetic/base_f64_be.npy",
        "synthetic/base_f32_fortran.npy", "synthetic/base_v3.npy", "synthetic/dump_savez.npz",
        "synthetic/dump_savez_compressed.npz",
        "synthetic/single_f32.h5", "synthetic/single_f64_batch.h5", "synthetic/layouts/nested_single.h5",
        "synthetic/layouts/blocks.h5",
        "synthetic/layouts/userblock.h5", "synthetic/layouts/chunks_layers.h5", "synthetic/layouts/chunks_plain.h5",
        "synthetic/layouts/big_endian.h5", "synthetic/layouts/fletcher.h5", "synthetic/layouts/userblock_gzip.h5",
        "synthetic/layouts/partial_nofilter.h5",
        "synthetic/safetensors/base_f32.safetensors", "synthetic/safetensors/base_f64.safetensors"
    ]
    static let float16Files = [
        "synthetic/base_f16.npy", "synthetic/base_f16_be.npy", "synthetic/base_f16_fortran_be.npy",
        "synthetic/single_f16_gzip.h5",
        "synthetic/per_layer_groups_f16.h5", "synthetic/layouts/chunks_shuffle.h5",
        "synthetic/safetensors/base_f16.safetensors"
    ]

    @Test(
        "statistics equal numpy's float64 values on every layout, with 1, 2 and 3 workers",
        arguments: float32Files.map { ($0, "base") } + float16Files.map { ($0, "base_f16") }, [1, 2, 3])
    func statistics(file: (String, String), workers: Int) throws {
        let computed = try stats(try source(file.0), workers: workers)
        let e = Fixtures.expected[file.1]["stats"]
        for (name, path) in statisticKeys {
            for l in 0..<3 {
                for h in 0..<2 {
                    #expect(
                        abs(computed[l][h][keyPath: path] - e[name][l][h].double) < 1e-6,
                        "\(file.0) \(name)[\(l)][\(h)]")
                }
            }
        }
    }

    @Test(
        "the block path reads exactly the values of the whole-layer read",
        arguments: float32Files + float16Files)
    func sameValues(file: String) throws {
        let s = try source(file)
        for l in 0..<s.layerCount {
            let whole = try s.layer(l)
            var seen = [Float](repeating: .nan, count: whole.values.count)
            let keys = s.keyCount, size = s.queryCount * keys
            try s.visitBlocks(layer: l, heads: 0..<s.headCount, workers: 1) { block, values in
                for (r, row) in block.rows.enumerated() {
                    for j in 0..<keys { seen[block.head * size + row * keys + j] = values[r * keys + j] }
                }
            }
            #expect(seen == whole.values, "\(file) layer \(l)")
        }
    }

    @Test(
        """
        float16 row blocks read from the file carry each row's statistics when asked for, as the row-statistics kernel \
        gives them on the values handed on (Fortran order is read whole, without them)
        """,
        arguments: float16Files.filter { !$0.contains("fortran") })
    func float16Statistics(file: String) throws {
        let s = try source(file)
        var rows = 0
        try s.visitBlocks(layer: 1, heads: 0..<s.headCount, workers: 1) { block, _ in
            #expect(block.statistics == nil, "\(file): statistics not asked for")
        }
        try s.visitBlocks(layer: 1, heads: 0..<s.headCount, workers: 1, rowStatistics: true) { block, values in
            let statistics = try #require(block.statistics, "\(file): no statistics")
            for r in 0..<block.rows.count {
                let kernel = RowKernels.statistics(
                    UnsafeBufferPointer(rebasing: values[(r * s.keyCount)..<((r + 1) * s.keyCount)]))
                let given = statistics[r]
                #expect(
                    (given.finite, given.nan, given.inf, given.negative, given.min, given.max)
                        == (kernel.finite, kernel.nan, kernel.inf, kernel.negative, kernel.min, kernel.max)
                        && abs(given.sum - kernel.sum) < 1e-12 && abs(given.entropy - kernel.entropy) < 2e-8,
                    "\(file): head \(block.head), row \(block.rows.lowerBound + r)")
                rows += 1
            }
        }
        #expect(rows == s.headCount * s.queryCount)
    }

    @Test(
        "head fusion on row blocks (mean, max, min, one head) equals numpy's, with 1 and 3 workers",
        arguments: ["mean", "max", "min"], [1, 3])
    func fusion(name: String, workers: Int) throws {
        for file in ["synthetic/base_f32.npy", "synthetic/layouts/chunks_layers.h5", "synthetic/dump_savez.npz"] {
            let s = try source(file)
            let workspace = try HeadFusionWorkspace(
                try #require(HeadFusion(argument: name)), source: s, workers: workers)
            for l in 0..<3 {
                try workspace.fuse(layer: l)
                let expected = Fixtures.expected["base"]["fusion"][name][l].doubles2D.flatMap { $0 }
                #expect(maxAbsDifference(workspace.fused, expected) < 1e-7, "\(file) \(name) layer \(l)")
            }
        }
        let one = try HeadFusionWorkspace(.head(1), source: try source("synthetic/base_f32.npy"), workers: workers)
        try one.fuse(layer: 2)
        #expect(one.fused == (try source("synthetic/base_f32.npy").layer(2).values[100..<200].map(Double.init)))
    }

    @Test(
        "attention recomputed from q and k per head on workers equals numpy's",
        arguments: [1, 3])
    func recomputed(workers: Int) throws {
        try recomputed(file: "synthetic/qk_LHSd.h5", workers: workers)
        try recomputed(file: "synthetic/safetensors/qk.safetensors", workers: workers)
    }

    func recomputed(file: String, workers: Int) throws {
        let s = try source(file)
        let e = Fixtures.expected["base"]["recompute_qk"]["scale_default"]
        for l in 0..<3 {
            var values = [Float](repeating: .nan, count: 2 * 100)
            let lock = NSLock()  // the workers write their rows concurrently
            try s.visitBlocks(layer: l, heads: 0..<2, workers: workers) { block, v in
                lock.withLock {
                    for (r, row) in block.rows.enumerated() {
                        for j in 0..<10 { values[block.head * 100 + row * 10 + j] = v[r * 10 + j] }
                    }
                }
            }
            #expect(maxAbsDifference(values.map(Double.init), e[l].doubles3D.flatMap { $0.flatMap { $0 } }) < 1e-6)
        }
    }
}
