import Testing
import AttnCore
import AttnTestSupport
@testable import AttnReader

/// torch.save files from TestData/synthetic/torch/make_torch_cases.py (a real BertModel's and LlamaModel's
/// attention, saved by torch 2.13), each checked value for value against numpy's copy of the same attention.
@Suite("torch.save reader")
struct TorchReaderTests {
    static let folder = "synthetic/torch/"

    /// Every row of every layer through the row-block path (mapped where contiguous), `[layer, head, query, key]`.
    func blockValues(_ source: AttentionSource) throws -> [Float] {
        let (h, q, k) = (source.headCount, source.queryCount, source.keyCount)
        var out = [Float](repeating: .nan, count: source.layerCount * h * q * k)
        let lock = Lock()
        for l in 0..<source.layerCount {
            try source.visitBlocks(layer: l, heads: 0..<h, workers: 2) { block, values in
                lock.lock()
                defer { lock.unlock() }
                let start = ((l * h + block.head) * q + block.rows.lowerBound) * k
                for (i, v) in values.enumerated() { out[start + i] = v }
            }
        }
        return out
    }

    @Test(
        "each torch.save layout reads exactly numpy's copy of the model's attention",
        arguments: [
            ("bert_tuple.pt", "bert_reference.npy", nil), ("bert_tuple_be.pt", "bert_reference.npy", nil),
            ("bert_stacked_f16.pt", "bert_reference_f16.npy", nil),
            ("bert_dict_bf16.pt", "bert_reference_bf16.npy", nil), ("bert_views.pt", "bert_reference.npy", nil),
            ("bert_views.pt", "bert_reference.npy", "layer_inner"), ("llama_qk.pt", "llama_reference.npy", nil)
        ] as [(String, String, String?)])
    func sameValues(file: String, reference: String, dataset: String?) throws {
        let expected = try allValues(try attention(Self.folder + reference))
        let a = try attention(Self.folder + file, ReadOptions(dataset: dataset))
        #expect(try allValues(a) == expected)
        #expect(try blockValues(a) == expected)
    }

    @Test("names: a root tuple's items are [0], [1]; a dict's values by key; a lone tensor by the file's name")
    func names() throws {
        let tuple = try DumpFile(path: Fixtures.path(Self.folder + "bert_tuple.pt"))
        #expect(tuple.format == "PyTorch (torch.save, zip)")
        #expect(tuple.tensors.map(\.name) == ["[0]", "[1]"])
        #expect(try attention(Self.folder + "bert_tuple.pt").summary.layerNumbers == [0, 1])
        let stacked = try DumpFile(path: Fixtures.path(Self.folder + "bert_stacked_f16.pt"))
        #expect(stacked.tensors.map(\.name) == ["bert_stacked_f16"])
        #expect(stacked.tensors[0].shape == [2, 1, 4, 9, 9])
        let dict = try DumpFile(path: Fixtures.path(Self.folder + "bert_dict_bf16.pt"))
        #expect(dict.tensors.map(\.name) == ["attentions/0", "attentions/1", "tokens"])
        #expect(try attention(Self.folder + "bert_dict_bf16.pt").summary.datasets.hasPrefix("attentions/#"))
    }

    @Test("a list of strings is the token labels; the root dict's numbers and strings are its attributes")
    func labelsAndAttributes() throws {
        let dict = try DumpFile(path: Fixtures.path(Self.folder + "bert_dict_bf16.pt"))
        let tokens = try String(contentsOfFile: Fixtures.path(Self.folder + "tokens.txt"), encoding: .utf8)
        #expect(try dict.tokenLabels() == tokens.split(separator: "\n").map(String.init))
        #expect(dict.attribute("model") == .strings(["BertModel, random init (transformers 5)"]))
        let llama = try DumpFile(path: Fixtures.path(Self.folder + "llama_qk.pt"))
        #expect(llama.attribute("causal")?.booleanValue == true)
        #expect(llama.attribute("num_key_value_heads")?.integerValues == [2])
    }

    @Test("q and k of a grouped-query model: k with half the heads")
    func queryAndKey() throws {
        let qk = try queryKey(Self.folder + "llama_qk.pt", ReadOptions(fromQK: true))
        #expect((qk.layerCount, qk.headCount, qk.positionCount, qk.headDim) == (2, 4, 12, 16))
        #expect(qk.keyHeadCount == 2)
    }

    /// Runs the restricted reader on `bytes` and returns what it built, or the message it refused them with.
    func unpickle(_ bytes: [UInt8]) -> Result<String, AttnError> {
        Result {
            try RestrictedPickle.read(bytes, fail: { AttnError(file: "t", $0) }) { value in "\(value)" }
        }.mapError { $0 as! AttnError }
    }

    @Test("integers: BININT, LONG1 negative and 8-byte; a longer LONG is refused")
    func integers() throws {
        // PROTO 2, MARK, BININT -2, LONG1 -129 (2 bytes), LONG1 2^62 (8 bytes), TUPLE, STOP
        let bytes: [UInt8] =
            [0x80, 2, 0x28, 0x4A, 0xFE, 0xFF, 0xFF, 0xFF, 0x8A, 2, 0x7F, 0xFF]
            + [0x8A, 8, 0, 0, 0, 0, 0, 0, 0, 0x40, 0x74, 0x2E]
        let values = try RestrictedPickle.read(bytes, fail: { AttnError(file: "t", $0) }) { value -> [Int64] in
            guard case .tuple(let items) = value else { return [] }
            return items.compactMap { if case .int(let i) = $0 { return i } else { return nil } }
        }
        #expect(values == [-2, -129, 1 << 62])
        let long: [UInt8] = [0x80, 2, 0x8A, 9] + [UInt8](repeating: 1, count: 9) + [0x2E]
        #expect(throws: AttnError.self) { try unpickle(long).get() }
    }

    @Test(
        "refused: other globals (also by STACK_GLOBAL), calls of a non-global, stack underflow, truncation",
        arguments: [
            ([0x80, 2] + Array("cos\nsystem\n".utf8) + [0x2E], "os.system"),
            (
                [0x80, 4, 0x8C, 5] + Array("posix".utf8) + [0x8C, 6] + Array("system".utf8) + [0x93, 0x2E],
                "posix.system"
            ),
            ([0x80, 2, 0x4E, 0x29, 0x52, 0x2E], "calls something other than an allowed global"),
            ([0x80, 2, 0x74, 0x2E], "no MARK"),
            ([0x80, 2, 0x61, 0x2E], "stack empty"),
            ([0x80, 2, 0x58, 0xFF, 0xFF, 0xFF, 0x7F], "truncated"),
            ([0x80, 2, 0x68, 7, 0x2E], "never stored"),
            ([0x80, 2, 0x4E, 0x4E, 0x2E], "2 values on the stack"),
            ([0x80, 1, 0x4E, 0x2E], "protocol 1"),
            ([0x80, 2, 0x4E, 0x28, 0x2E], "it stops inside a MARK"),
            (
                [0x80, 2] + [UInt8](repeating: 0x4E, count: RestrictedPickle.maximumValues + 1) + [0x2E],
                "values on its stack or in its memo"
            )
        ] as [([UInt8], String)])
    func refused(bytes: [UInt8], fragment: String) {
        guard case .failure(let error) = unpickle(bytes) else {
            Issue.record("accepted")
            return
        }
        #expect(error.message.contains(fragment), "\(error.message)")
    }
}
