import Testing
import AttnCore
import AttnTestSupport
@testable import AttnReader

/// Fixtures from TestData/synthetic/layouts/make_layout_cases.py: each holds base_f32.npy's values
/// in a legal but unusual layout, or is corrupt in one precise way.
@Suite("Layout cases")
struct LayoutCaseTests {
    @Test(
        "unusual layouts read exactly base_f32's values",
        arguments: [
            "synthetic/layouts/nested_single.h5", "synthetic/layouts/blocks.h5",
            "synthetic/layouts/links.h5", "synthetic/layouts/userblock.h5"
        ])
    func sameValues(file: String) throws {
        let a = try attention(file)
        #expect((a.layerCount, a.headCount, a.queryCount, a.keyCount) == (3, 2, 10, 10))
        #expect(try allValues(a) == ReaderTests.base)
    }

    @Test("a single dataset with digits in its path is not taken for per-layer datasets")
    func nestedSingle() throws {
        let a = try attention("synthetic/layouts/nested_single.h5")
        #expect(a.summary.datasets == "/vit_b16/attentions")
        #expect(a.summary.layerNumbers == nil)
    }

    @Test("timm-style blocks.N.attn datasets are layers, ordered by N")
    func blocks() throws {
        let a = try attention("synthetic/layouts/blocks.h5")
        #expect(a.summary.layerNumbers == [0, 1, 2])
    }

    @Test("links: hard-link cycles are visited once, soft and external links are not followed")
    func links() throws {
        let dump = try DumpFile(path: Fixtures.path("synthetic/layouts/links.h5"))
        #expect(dump.tensors.map(\.name).sorted() == ["/layer_0/attn", "/layer_1/attn", "/layer_2/attn"])
        #expect(try attention("synthetic/layouts/links.h5").summary.layerNumbers == [0, 1, 2])
    }

    @Test("--dataset / names the root group of per-layer datasets")
    func rootGroup() throws {
        let a = try attention("synthetic/layouts/blocks.h5", ReadOptions(dataset: "/"))
        #expect(try allValues(a) == ReaderTests.base)
    }

    @Test(
        "an npz member whose bytes do not match its CRC-32 is refused once it has been read",
        arguments: ["synthetic/layouts/crc_stored.npz", "synthetic/layouts/crc_deflated.npz"])
    func crcMismatch(file: String) throws {
        let a = try attention(file)
        let error = try #require(throws: AttnError.self) { try allValues(a) }
        #expect(error.dataset == "attentions")
        #expect(error.message.contains("CRC-32"))
    }

    @Test(
        "intact npz members pass the CRC-32 check, stored and deflated",
        arguments: ["synthetic/dump_savez.npz", "synthetic/dump_savez_compressed.npz"])
    func crcIntact(file: String) throws {
        #expect(try allValues(attention(file)) == ReaderTests.base)
        let qk = try queryKey(file, ReadOptions(fromQK: true))
        for l in 0..<qk.layerCount { _ = try qk.layer(l) }
    }

    @Test(
        """
        a layer that cannot fit in memory is refused with the estimate, before any read; a huge claim with no \
        chunk written is refused as such first (q and k of a long sequence are refused where a whole layer is \
        asked for: LongContextCLITests)
        """,
        arguments: [
            (
                "synthetic/layouts/huge_attention.h5", "/attentions",
                "claims shape (1, 1, 300000, 300000) (167.6 GiB) in 85849 chunks, but only 0 were ever written"
            )
        ])
    func hugeLayers(file: String, dataset: String, message: String) throws {
        let dump = try DumpFile(path: Fixtures.path(file))
        let error = try #require(throws: AttnError.self) { try AttentionLayout.resolve(dump, options: ReadOptions()) }
        #expect(error.dataset == dataset)
        #expect(error.message.contains(message), "\(error.message)")
    }
}

@Suite("safetensors")
struct SafetensorsTests {
    @Test(
        "F32 and F64 read base_f32's values exactly; F16 its float16 rounding; BF16 its bfloat16 rounding",
        arguments: [
            ("base_f32", "synthetic/base_f32.npy"), ("base_f64", "synthetic/base_f32.npy"),
            ("base_f16", "synthetic/base_f16.npy"), ("base_bf16", "synthetic/safetensors/base_bf16_values.npy")
        ])
    func values(stem: String, reference: String) throws {
        let a = try attention("synthetic/safetensors/\(stem).safetensors")
        #expect((a.layerCount, a.headCount, a.queryCount, a.keyCount) == (3, 2, 10, 10))
        #expect(try allValues(a) == allValues(attention(reference)))
    }

    @Test(
        """
        --dtype bfloat16 reads an .npy of |V2 and an HDF5 2-byte opaque dataset as bfloat16; without it they are \
        refused with the hint
        """,
        arguments: ["synthetic/safetensors/base_bf16_void.npy", "synthetic/safetensors/base_bf16_opaque.h5"])
    func rawBFloat16(file: String) throws {
        let dump = try DumpFile(path: Fixtures.path(file), rawAs: .bfloat16)
        guard case .attention(let a) = try AttentionLayout.resolve(dump, options: ReadOptions()) else {
            Issue.record("not attention"); return
        }
        #expect(try allValues(a) == allValues(attention("synthetic/safetensors/base_bf16_values.npy")))
        let error = try #require(throws: AttnError.self) { try attention(file) }
        #expect(error.message.contains("add --dtype bfloat16"))
    }

    @Test("the header is listed: dtype, shape, byte range; __metadata__ becomes attributes, numbers as integers")
    func header() throws {
        let dump = try DumpFile(path: Fixtures.path("synthetic/safetensors/base_bf16.safetensors"))
        #expect(dump.format == "safetensors")
        #expect(dump.tensors.map(\.name) == ["attentions"])
        #expect(dump.tensors[0].element == .floating(.bfloat16) && dump.tensors[0].storage == "BF16, bytes 0..<1200")
        #expect(dump.attribute("patch_grid")?.integerValues == [3, 3])
        #expect(dump.attribute("prefix_tokens")?.integerValues == [1])
        #expect(dump.attribute("model") == .strings(["synthetic base"]))
    }

    @Test("q and k in a safetensors file read the same values as in dump_savez.npz")
    func queryKeyValues() throws {
        let a = try queryKey("synthetic/safetensors/qk.safetensors", ReadOptions(fromQK: true))
        let b = try queryKey("synthetic/dump_savez.npz", ReadOptions(fromQK: true))
        for l in 0..<3 {
            let x = try a.layer(l), y = try b.layer(l)
            #expect(x.queries == y.queries && x.keys == y.keys && x.dim == 4)
        }
    }

    @Test("the JSON header parser: escapes, surrogate pairs, nesting, numbers; corrupt text refused")
    func json() throws {
        func fail(_ m: String) -> AttnError { AttnError(file: "t", m) }
        let v = try HeaderJSON.parse(
            Array(#"{"a\u00e9\n": [1, -2.5e3, true, null], "\ud83d\ude00": {"x": "y"}}"#.utf8), fail: fail)
        #expect(v["aé\n"] == .array([.number(1), .number(-2500), .bool(true), .null]))
        #expect(v["😀"]?["x"] == .string("y"))
        for bad in [
            #"{"a": }"#, #"{"a": 1"#, #"{"a" 1}"#, #"{"a": 1} x"#, "[" + String(repeating: "[", count: 80) + "]"
        ] {
            #expect(throws: AttnError.self) { try HeaderJSON.parse(Array(bad.utf8), fail: fail) }
        }
    }

    @Test(
        "corrupt files: each a clear error naming the file",
        arguments: ["truncated", "offsets", "shape", "header_length", "not_json", "int64"])
    func bad(name: String) throws {
        let path = "synthetic/safetensors/bad/\(name).safetensors"
        let error = try #require(throws: AttnError.self) {
            let dump = try DumpFile(path: Fixtures.path(path))
            _ = try AttentionLayout.resolve(dump, options: ReadOptions())
        }
        #expect(error.file == Fixtures.path(path))
    }
}
