import Testing
import AttnCore
import AttnTestSupport
@testable import AttnReader

/// Opens a fixture and resolves its attention.
func attention(_ relative: String, _ options: ReadOptions = ReadOptions()) throws -> StoredAttention {
    let dump = try DumpFile(path: Fixtures.path(relative))
    guard case .attention(let a) = try AttentionLayout.resolve(dump, options: options) else {
        Issue.record("\(relative): expected stored attention")
        throw AttnError(file: relative, "not stored attention")
    }
    return a
}

func queryKey(_ relative: String, _ options: ReadOptions = ReadOptions()) throws -> StoredQueryKey {
    let dump = try DumpFile(path: Fixtures.path(relative))
    guard case .queryKey(let q) = try AttentionLayout.resolve(dump, options: options) else {
        Issue.record("\(relative): expected q and k")
        throw AttnError(file: relative, "not q and k")
    }
    return q
}

/// Every layer's values, concatenated: `[layer, head, query, key]`.
func allValues(_ source: AttentionSource) throws -> [Float] {
    try (0..<source.layerCount).flatMap { try source.layer($0).values }
}

@Suite("Readers")
struct ReaderTests {
    static let base = try! allValues(try! attention("synthetic/base_f32.npy"))

    @Test("base_f32.npy agrees with numpy's head mean, max and min")
    func baseAgreesWithNumpy() throws {
        let a = try attention("synthetic/base_f32.npy")
        #expect((a.layerCount, a.headCount, a.queryCount, a.keyCount) == (3, 2, 10, 10))
        let e = Fixtures.expected["base"]["fusion"]
        for l in 0..<3 {
            let layer = try a.layer(l)
            for i in 0..<100 {
                let h0 = layer.values[i], h1 = layer.values[100 + i]
                let expectedMean = e["mean"][l][i / 10][i % 10].double
                #expect(abs((Double(h0) + Double(h1)) / 2 - expectedMean) < 1e-7)
                // expected.json prints float64 values that agree with float32 ones to ~1e-16; float32 spacing here is ≥
                // 1e-10.
                #expect(abs(Double(max(h0, h1)) - e["max"][l][i / 10][i % 10].double) < 1e-12)
                #expect(abs(Double(min(h0, h1)) - e["min"][l][i / 10][i % 10].double) < 1e-12)
            }
        }
    }

    @Test(
        "float32 and float64 encodings read the same values as base_f32.npy",
        arguments: [
            "synthetic/base_f64.npy", "synthetic/base_f32_be.npy", "synthetic/base_f64_be.npy",
            "synthetic/base_f32_fortran.npy", "synthetic/base_v2.npy", "synthetic/base_v3.npy",
            "synthetic/dump_savez.npz", "synthetic/dump_savez_compressed.npz",
            "synthetic/single_f32.h5", "synthetic/single_f64_batch.h5", "synthetic/both_attn_and_qk.h5"
        ])
    func sameValues(file: String) throws {
        let a = try attention(file)
        #expect((a.layerCount, a.headCount, a.queryCount, a.keyCount) == (3, 2, 10, 10))
        #expect(try allValues(a) == Self.base)
    }

    @Test(
        "float16 encodings read the base values rounded to float16, subnormals included",
        arguments: [
            "synthetic/base_f16.npy", "synthetic/base_f16_be.npy", "synthetic/base_f16_fortran_be.npy",
            "synthetic/single_f16_gzip.h5", "synthetic/per_layer_groups_f16.h5"
        ])
    func float16Values(file: String) throws {
        let a = try attention(file)
        let rounded = Self.base.map { Float(Float16($0)) }
        #expect(try allValues(a) == rounded)
    }

    @Test("a batch axis: --batch picks the sample, default 0")
    func batchAxis() throws {
        let b1 = try attention("synthetic/batch_LBHQK.npy", ReadOptions(batch: 1))
        #expect(try allValues(b1) == Self.base)
        #expect(b1.summary.batch?.size == 3 && b1.summary.batch?.used == 1)
        let b0 = try attention("synthetic/batch_LBHQK.npy")
        #expect(b0.summary.batch?.used == 0)
        #expect(try allValues(b0) != Self.base)
        #expect(throws: AttnError.self) { try attention("synthetic/batch_LBHQK.npy", ReadOptions(batch: 3)) }
        #expect(throws: AttnError.self) { try attention("synthetic/base_f32.npy", ReadOptions(batch: 1)) }
    }

    @Test("one layer (H,Q,K) and one map (Q,K)")
    func smallerRanks() throws {
        let layer = try attention("synthetic/one_layer_HQK.npy")
        #expect((layer.layerCount, layer.headCount) == (1, 2))
        #expect(try layer.layer(0).values == Array(Self.base[400..<600]))
        let map = try attention("synthetic/one_map_QK.npy")
        #expect((map.layerCount, map.headCount, map.queryCount) == (1, 1, 10))
        #expect(try map.layer(0).values == Array(Self.base[200..<300]))
    }

    @Test(
        "per-layer datasets are ordered by their number, not lexicographically",
        arguments: [
            ("synthetic/layers_numbered.h5", "synthetic/layers12_reference.npy", 12),
            ("synthetic/attn_flat.h5", "synthetic/attn11_reference.npy", 11)
        ])
    func perLayerOrder(file: String, reference: String, layers: Int) throws {
        let a = try attention(file)
        let r = try attention(reference)
        #expect(a.layerCount == layers)
        #expect(a.summary.layerNumbers == Array(0..<layers))
        #expect(try allValues(a) == allValues(r))
    }

    @Test(
        "token labels: numpy unicode, HDF5 variable- and fixed-length strings",
        arguments: [
            "synthetic/dump_savez.npz", "synthetic/dump_savez_compressed.npz", "synthetic/single_f32.h5",
            "synthetic/single_f16_gzip.h5"
        ])
    func tokens(file: String) throws {
        let tokens = try #require(try attention(file).tokens)
        #expect(tokens.count == 10)
        #expect(tokens[0] == "[CLS]")
        #expect(tokens[1] == "café")
    }

    @Test("HDF5 attributes are read: model, patch_grid, prefix_tokens")
    func attributes() throws {
        let dump = try DumpFile(path: Fixtures.path("synthetic/single_f32.h5"))
        #expect(dump.attribute("patch_grid")?.integerValues == [3, 3])
        #expect(dump.attribute("prefix_tokens")?.integerValues == [1])
        guard case .strings(let model)? = dump.attribute("model") else { Issue.record("model is not a string"); return }
        #expect(!model[0].isEmpty)
    }

    @Test(
        "Q and K in every layout read the same per-head values",
        arguments: [
            ("synthetic/qk_LShd.h5", ReadOptions()), ("synthetic/qk_LBHSd.h5", ReadOptions()),
            ("synthetic/qk_only.npz", ReadOptions()), ("synthetic/dump_savez.npz", ReadOptions(fromQK: true)),
            ("synthetic/qk_LShd.h5", ReadOptions(heads: 2))
        ])
    func queryKeyLayouts(file: String, options: ReadOptions) throws {
        let reference = try queryKey("synthetic/qk_LHSd.h5")
        let q = try queryKey(file, options)
        #expect((q.layerCount, q.headCount, q.positionCount, q.headDim) == (3, 2, 10, 4))
        for l in 0..<3 {
            let a = try q.layer(l), b = try reference.layer(l)
            #expect(a.queries == b.queries)
            #expect(a.keys == b.keys)
        }
    }

    @Test("--heads that does not divide H·d, or contradicts the head axis, is refused")
    func headsChecked() throws {
        #expect(throws: AttnError.self) { try queryKey("synthetic/qk_LShd.h5", ReadOptions(heads: 3)) }
        #expect(throws: AttnError.self) { try queryKey("synthetic/qk_LHSd.h5", ReadOptions(heads: 4)) }
    }

    @Test("--dataset chooses a tensor or a group of per-layer datasets")
    func datasetOption() throws {
        let a = try attention("synthetic/bad/two_candidates.npz", ReadOptions(dataset: "bar"))
        #expect(a.layerCount == 3)
        let grouped = try attention("synthetic/layers_numbered.h5", ReadOptions(dataset: "/layers"))
        #expect(grouped.layerCount == 12)
        #expect(throws: AttnError.self) { try attention("synthetic/single_f32.h5", ReadOptions(dataset: "/nope")) }
    }

    @Test("a deflated NPZ member is read correctly out of order (the stream restarts)")
    func deflatedOutOfOrder() throws {
        let a = try attention("synthetic/dump_savez_compressed.npz")
        let l2 = try a.layer(2).values, l0 = try a.layer(0).values, l2again = try a.layer(2).values
        #expect(l2 == Array(Self.base[400..<600]))
        #expect(l0 == Array(Self.base[0..<200]))
        #expect(l2again == l2)
    }

    @Test("real dumps: MiniLM NPY and per-layer HDF5, ViT gzip HDF5")
    func realDumps() throws {
        let pride = try attention("real/minilm6_pride_LHSS_f32.npy")
        #expect((pride.layerCount, pride.headCount, pride.queryCount) == (6, 12, 28))
        let zen = try attention("real/minilm6_zen_layers_f16.h5")
        #expect((zen.layerCount, zen.headCount, zen.queryCount) == (6, 12, 26))
        let oracle = try Fixtures.json("real/minilm6_zen_layers_f16.oracle.json")
        #expect(zen.tokens == oracle["tokens"].strings)
        let board = try attention("real/vits14_board_small.h5")
        #expect((board.layerCount, board.headCount, board.queryCount) == (3, 6, 257))
        let dump = try DumpFile(path: Fixtures.path("real/vits14_board_small.h5"))
        #expect(dump.attribute("patch_grid")?.integerValues == [16, 16])
        #expect(dump.tensors.first { $0.name == "/attentions" }?.storage?.contains("gzip") == true)
    }
}

@Suite("Bad input")
struct BadInputTests {
    @Test(
        "every malformed file gives an AttnError naming the file and what was expected",
        arguments: [
            ("synthetic/bad/truncated.npy", "truncated"),
            ("synthetic/bad/header_truncated.npy", "truncated .npy header"),
            ("synthetic/bad/corrupt_header.npy", "expected exactly the keys descr, fortran_order, shape"),
            ("synthetic/bad/bad_magic.npy", "magic"),
            ("synthetic/bad/int32.npy", "unsupported dtype int32"),
            ("synthetic/bad/complex64.npy", "unsupported dtype complex64"),
            ("synthetic/bad/object.npy", "unsupported dtype object"),
            ("synthetic/bad/rank1.npy", "expected 2 to 5 axes"),
            ("synthetic/bad/rank6.npy", "expected 2 to 5 axes"),
            ("synthetic/bad/truncated.npz", "truncated"),
            ("synthetic/bad/not_a_dump.txt", "not an NPY, NPZ, HDF5, safetensors or torch.save file"),
            ("synthetic/bad/no_attention.h5", "no attention found"),
            ("synthetic/bad/qk_mismatch.h5", "different shapes"),
            ("synthetic/bad/two_candidates.npz", "choose one with --dataset"),
            ("synthetic/bad/truncated.h5", "truncated"),
            ("synthetic/does_not_exist.npy", "no such file")
        ])
    func malformed(file: String, message: String) throws {
        let path = Fixtures.path(file)
        do {
            let dump = try DumpFile(path: path)
            _ = try AttentionLayout.resolve(dump, options: ReadOptions())
            Issue.record("\(file): no error")
        } catch let error as AttnError {
            #expect(error.file == path)
            #expect(error.description.contains(message), "\(error)")
            #expect(!error.description.contains("\n"))
        }
    }
}
