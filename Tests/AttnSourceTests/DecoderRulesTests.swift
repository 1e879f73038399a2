import Testing
import AttnCore
import AttnTestSupport
import AttnSource

/// The largest |stored − recomputed| over every layer of a decoders fixture, recomputed with `options` (the file's
/// attributes unless the options override them), and the notes said.
private func difference(_ name: String, _ options: SourceOptions = SourceOptions()) throws -> (Double, [String]) {
    let path = Fixtures.path("synthetic/decoders/\(name)")
    var notes: [String] = []
    let stored = try OpenedDump.open(path, note: { _ in }).source
    var fromQK = options
    fromQK.fromQK = true
    let recomputed = try OpenedDump.open(path, options: fromQK, note: { notes.append($0) }).source
    var worst = 0.0
    for l in 0..<stored.layerCount {
        let a = try stored.layer(l).values, b = try recomputed.layer(l).values
        worst = max(worst, maxAbsDifference(a.map(Double.init), b.map(Double.init)))
    }
    return (worst, notes)
}

/// Decoder models' own attention (transformers 5, eager, TestData/synthetic/decoders/make_decoders.py) against
/// attention recomputed from the q and k they were given: each rule exact to float32, and each one needed.
@Suite("Decoder models from q and k: GQA, sliding windows, softcap, scale, ALiBi")
struct DecoderRulesTests {
    @Test("Llama with 4 query heads over 2 key heads: query head h uses key head ⌊h·2/4⌋, K never repeated")
    func groupedQuery() throws {
        let (worst, _) = try difference("llama_gqa.h5")
        #expect(worst < 1e-6, "\(worst)")
        let opened = try OpenedDump.open(Fixtures.path("synthetic/decoders/llama_gqa.h5"), note: { _ in })
        let fromQK = try OpenedDump.open(
            Fixtures.path("synthetic/decoders/llama_gqa.h5"), options: SourceOptions(fromQK: true), note: { _ in })
        let qk = try #require((fromQK.source as? RecomputedAttention)?.source)
        #expect(qk.headCount == 4 && qk.keyHeadCount == 2 && opened.source.headCount == 4)
        let layer = try qk.layer(0)
        #expect(layer.keys.count == 2 * 12 * 16 && layer.queries.count == 4 * 12 * 16)  // k as stored, not repeated
    }

    @Test("Mistral's sliding window 4 (i − 4 < j ≤ i) from the attribute; without it the attention differs")
    func slidingWindow() throws {
        let (worst, notes) = try difference("mistral_window.h5")
        #expect(worst < 1e-6, "\(worst)")
        #expect(
            notes.contains {
                $0.contains("the file's causal and sliding window 4 (override with --no-causal or --window 0)")
            }, "\(notes)")
        #expect(try difference("mistral_window.h5", SourceOptions(window: 0)).0 > 1e-2)
        // The same window given on the command line.
        #expect(try difference("mistral_window.h5", SourceOptions(window: 4)).0 < 1e-6)
    }

    @Test("Gemma 2: scale 24^-½, softcap 2 before the mask, a window on layers 0 and 2 only (layer_types)")
    func gemma2() throws {
        let (worst, notes) = try difference("gemma2.h5")
        #expect(worst < 1e-6, "\(worst)")
        #expect(
            notes.contains { $0.contains("scale 0.2041241452319315, softcap 2.0 and sliding window 4 on layers 0, 2") },
            "\(notes)")
        #expect(try difference("gemma2.h5", SourceOptions(softcap: 0)).0 > 1e-2)
        #expect(try difference("gemma2.h5", SourceOptions(window: 0)).0 > 1e-2)
        #expect(try difference("gemma2.h5", SourceOptions(scale: 0.25)).0 > 1e-2)
        // The window on every layer is wrong for layer 1; on the even layers, as the option says, it is right.
        #expect(try difference("gemma2.h5", SourceOptions(window: 4)).0 > 1e-2)
        #expect(try difference("gemma2.h5", SourceOptions(window: 4, windowLayers: .even)).0 < 1e-6)
        #expect(try difference("gemma2.h5", SourceOptions(window: 4, windowLayers: WindowLayers("0,2"))).0 < 1e-6)
    }

    @Test("BLOOM's ALiBi with 3 heads: slopes 1/16, 1/256, 1/4 (BLOOM's interleaving, not a geometric series)")
    func alibi() throws {
        let three: [Double] = [0.0625, 0.00390625, 0.25]
        #expect(ScoreRules.alibiSlopes(heads: 3) == three)
        let powers: [Double] = (1...8).map { (k: Int) -> Double in 1 / Double(1 << k) }
        #expect(ScoreRules.alibiSlopes(heads: 8) == powers)
        let (worst, _) = try difference("bloom_alibi.h5")
        #expect(worst < 1e-6, "\(worst)")
        #expect(try difference("bloom_alibi.h5", SourceOptions(alibi: false)).0 > 1e-2)
    }

    @Test("no causal attribute and no option: bidirectional, said in a note naming --causal")
    func causalNote() throws {
        var notes: [String] = []
        _ = try OpenedDump.open(Fixtures.path("synthetic/qk_LHSd.h5"), note: { notes.append($0) })
        #expect(
            notes.contains {
                $0.contains("as bidirectional (not causal): the file has no causal attribute; add --causal")
            })
        notes = []
        _ = try OpenedDump.open(
            Fixtures.path("synthetic/qk_LHSd.h5"), options: SourceOptions(causal: false),
            note: {
                notes.append($0)
            })
        #expect(!notes.contains { $0.contains("bidirectional") })
    }

    @Test("a window without causal masking is refused, naming --causal")
    func windowNeedsCausal() throws {
        #expect {
            _ = try OpenedDump.open(
                Fixtures.path("synthetic/decoders/mistral_window.h5"),
                options: SourceOptions(fromQK: true, causal: false), note: { _ in })
        } throws: { "\($0)".contains("which needs causal masking: add --causal") }
    }
}
