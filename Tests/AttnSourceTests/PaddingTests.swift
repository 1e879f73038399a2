import Testing
import Foundation
import AttnCore
import AttnTestSupport
@testable import AttnReader
import AttnSource

@Suite("Padding and integer tensors")
struct PaddingTests {
    func dump(_ name: String) throws -> DumpFile { try DumpFile(path: Fixtures.path("synthetic/padding/\(name)")) }

    @Test(
        "integers read exactly from NPY (big-endian int16, Fortran order), NPZ int64, HDF5 bool enum, safetensors I64")
    func integers() throws {
        let masks: [Int64] = [1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1]
        #expect(try dump("mask_be_fortran.npy").container.tensors[0].readIntegers() == masks)
        #expect(try dump("padded_mask.npz").tensor(named: "attention_mask")?.readIntegers() == masks)
        #expect(try dump("padded_mask_bool.h5").tensor(named: "attention_mask")?.readIntegers() == masks)
        #expect(
            try dump("padded_mask_sample1.safetensors").tensor(named: "attention_mask")?.readIntegers()
                == Array(masks[8...]))
        #expect(try dump("padded_lengths.h5").tensor(named: "lengths")?.readIntegers() == [5])
        #expect(throws: AttnError.self) { try dump("padded_mask.npz").tensor(named: "attentions")?.readIntegers() }
    }

    @Test("the selection per sample: right padding, left padding, a scalar length")
    func selections() throws {
        let mask = try dump("padded_mask.npz")
        #expect(try Padding.selection(in: mask, positions: 8, batch: nil, length: nil)?.kept == [0, 1, 2, 3, 4, 5])
        #expect(try Padding.selection(in: mask, positions: 8, batch: 1, length: nil)?.kept == [2, 3, 4, 5, 6, 7])
        #expect(try Padding.selection(in: mask, positions: 8, batch: 1, length: 4)?.kept == [0, 1, 2, 3])
        #expect(throws: AttnError.self) { try Padding.selection(in: mask, positions: 8, batch: 2, length: nil) }
        #expect(
            try Padding.selection(in: try dump("padded_lengths.h5"), positions: 8, batch: nil, length: nil)?.kept == [
                0, 1, 2, 3, 4
            ])
        #expect(
            try Padding.selection(
                in: try DumpFile(path: Fixtures.path("synthetic/base_f32.npy")), positions: 10, batch: nil, length: nil)
                == nil)
    }

    @Test("a scattered selection read in row blocks equals the same selection of the whole layer, on the real ViT dump")
    func blocksAgreeWithLayers() throws {
        let file = try DumpFile(path: Fixtures.path("real/vits14_board_small.h5"))
        guard case .attention(let stored) = try AttentionLayout.resolve(file, options: ReadOptions()) else { return }
        // Every third token dropped, plus a run at the end: runs of kept rows split every block.
        let kept = (0..<257).filter { $0 % 3 != 1 && !(240..<250).contains($0) }
        let selection = TokenSelection(kept: kept, total: 257, origin: "test")
        let selected = SelectedAttention(stored, queries: selection, keys: selection)
        let layer = try selected.layer(2)
        #expect(layer.queries == kept.count && layer.keys == kept.count)
        var seen = [Bool](repeating: false, count: layer.heads * kept.count)
        let lock = NSLock()  // the workers mark rows concurrently
        try selected.visitBlocks(layer: 2, heads: 0..<layer.heads, workers: 2) { block, values in
            for (r, i) in block.rows.enumerated() {
                let want = (block.head * kept.count + i) * kept.count
                #expect(
                    Array(values[(r * kept.count)..<((r + 1) * kept.count)])
                        == Array(layer.values[want..<(want + kept.count)]))
                lock.withLock { seen[block.head * kept.count + i] = true }
            }
        }
        #expect(seen.allSatisfy { $0 })
        // And the kept values are the stored ones at the kept positions.
        let full = try stored.layer(2)
        #expect(layer.values[1 * kept.count + 2] == full.values[kept[1] * 257 + kept[2]])
    }
}
