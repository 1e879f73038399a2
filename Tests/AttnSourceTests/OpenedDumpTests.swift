import Testing
#if canImport(Glibc)
    import Glibc
#endif
import AttnCore
import AttnTestSupport
import AttnSource

/// Mean over the rows of each head of −Σ p ln p: `[layer][head]`, computed here in Double from the values the
/// source gives, to hold them against numpy's float64 answers.
private func meanRowEntropy(_ source: AttentionSource) throws -> [[Double]] {
    try (0..<source.layerCount).map { l in
        let layer = try source.layer(l)
        return (0..<layer.heads).map { h in
            var total = 0.0
            for i in 0..<layer.queries {
                for j in 0..<layer.keys {
                    let p = Double(layer.values[(h * layer.queries + i) * layer.keys + j])
                    if p > 0 { total -= p * log(p) }
                }
            }
            return total / Double(layer.queries)
        }
    }
}

/// Opens a fixture through the entry point, collecting its notes.
private func open(_ relative: String, _ options: SourceOptions = SourceOptions()) throws -> (OpenedDump, [String]) {
    var notes: [String] = []
    let opened = try OpenedDump.open(Fixtures.path(relative), options: options, note: { notes.append($0) })
    // The note on axes read from their number (these fixtures declare none) is tested in AxesCLITests.
    return (opened, notes.filter { !$0.contains("from its number of axes") })
}

@Suite("OpenedDump.open: a file and the input options become the source every analysis reads")
struct OpenedDumpTests {
    @Test(
        """
        q and k with causal and scale attributes: recomputed with them, a note names them and the flags that \
        override them; entropies equal numpy's
        """
    )
    func fileAttributes() throws {
        let (opened, notes) = try open("synthetic/qk_attributes/qk_causal_scale.h5")
        #expect(opened.source.origin == .recomputed(scale: 0.3, causal: true))
        #expect(notes.count == 1)
        #expect(notes.first?.contains("the file's causal and scale 0.3 (override with --no-causal or --scale)") == true)
        let expected = try Fixtures.json("synthetic/qk_attributes/expected.json")["causal_scale"].doubles2D
        #expect(maxAbsDifference(try meanRowEntropy(opened.source).flatMap { $0 }, expected.flatMap { $0 }) < 1e-5)
    }

    @Test("an option given wins over the attribute: not causal, the file's scale kept and named")
    func optionsWin() throws {
        let (opened, notes) = try open("synthetic/qk_attributes/qk_causal_scale.h5", SourceOptions(causal: false))
        #expect(opened.source.origin == .recomputed(scale: 0.3, causal: false))
        #expect(
            notes == [
                Fixtures.path("synthetic/qk_attributes/qk_causal_scale.h5")
                    + ": recomputing attention from q and k with the file's scale 0.3 (override with --scale)"
            ])
        let expected = try Fixtures.json("synthetic/qk_attributes/expected.json")["plain_scale"].doubles2D
        #expect(maxAbsDifference(try meanRowEntropy(opened.source).flatMap { $0 }, expected.flatMap { $0 }) < 1e-5)
    }

    @Test("a malformed causal attribute is an error naming the file, what was found and the flag")
    func badAttribute() throws {
        let error = try #require(throws: AttnError.self) { try open("synthetic/qk_attributes/qk_bad_causal.h5") }
        #expect(error.message.contains("attribute causal should be true or false"))
        #expect(error.message.contains("--causal or --no-causal"))
    }

    @Test(
        "padding excluded: sample 1 of a masked batch keeps its 6 real tokens, said in a note; keeping it keeps all 8")
    func padding() throws {
        let (opened, notes) = try open("synthetic/padding/padded_mask.npz", SourceOptions(batch: 1))
        let kept = try Fixtures.json("synthetic/padding/expected.json")["padded_mask"]["sample1"]["kept"].array.map(
            \.int)
        #expect(opened.padding?.kept == kept)
        #expect((opened.source.queryCount, opened.source.keyCount) == (6, 6))
        #expect(
            notes.contains { $0.contains("keeps 6 of 8 tokens; padding is excluded (--keep-padding to include it)") })
        let expected = try Fixtures.json("synthetic/padding/expected.json")["padded_mask"]["sample1"]["stats"][
            "entropy"
        ].doubles2D
        #expect(maxAbsDifference(try meanRowEntropy(opened.source).flatMap { $0 }, expected.flatMap { $0 }) < 1e-5)

        let (whole, quiet) = try open("synthetic/padding/padded_mask.npz", SourceOptions(batch: 1, padding: .keep))
        #expect(whole.padding == nil && whole.source.queryCount == 8)
        #expect(quiet.isEmpty)
    }

    @Test("a batch read without --batch: sample 0, and a note naming the option")
    func batchNote() throws {
        let (_, notes) = try open("synthetic/padding/padded_mask.npz", SourceOptions(padding: .keep))
        #expect(
            notes == [
                Fixtures.path("synthetic/padding/padded_mask.npz")
                    + ": batch axis of 2 samples, using sample 0 (choose with --batch B)"
            ])
    }

    @Test("padded q and k: the softmax runs over the real keys only, as the model's mask made it")
    func paddedQueryKey() throws {
        let (opened, _) = try open("synthetic/padding/padded_qk.npz")
        #expect(opened.source.queryCount == 7)
        let expected = try Fixtures.json("synthetic/padding/expected.json")["padded_qk"]["stats"]["entropy"].doubles2D
        #expect(maxAbsDifference(try meanRowEntropy(opened.source).flatMap { $0 }, expected.flatMap { $0 }) < 1e-5)
    }

    @Test(
        "errors have kinds: malformed or lying input (a 4 TiB dataset never written), unsupported storage or filters",
        arguments: [
            ("synthetic/bad/truncated.npy", AttnError.Kind.input), ("hostile/external_attention.h5", .unsupported),
            ("hostile/virtual.h5", .unsupported), ("hostile/unknown_filter.h5", .unsupported),
            ("hostile/sparse_4tib.h5", .input)
        ])
    func kinds(file: String, kind: AttnError.Kind) throws {
        let error = try #require(throws: AttnError.self) { try open("\(file)") }
        #expect(error.kind == kind, "\(file): \(error)")
    }

    @Test("a layer or head out of range is an analysis error naming the valid range")
    func outOfRange() throws {
        let (opened, _) = try open("synthetic/base_f32.npy")
        let layer = try #require(throws: AttnError.self) { try opened.layer(7) }
        #expect(layer.kind == .analysis && layer.message.contains("0...2, or -3...-1 from the end"))
        let head = try #require(throws: AttnError.self) { try opened.head(-1) }
        #expect(head.kind == .analysis)
    }

    @Test("--causal or --scale on stored attention is refused, with --from-qk suggested")
    func storedRefusesRecomputeOptions() throws {
        let error = try #require(throws: AttnError.self) {
            try open("synthetic/base_f32.npy", SourceOptions(scale: 0.5))
        }
        #expect(error.message.contains("add --from-qk"))
    }
}
