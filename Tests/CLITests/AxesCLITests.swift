import AttnTestSupport
import Foundation
import Testing

/// Axes said, not guessed: --axes and the root attribute `axes` (TestData/synthetic/layouts/make_axes_cases.py, from
/// batch_LBHQK.npy, whose answers are known).
@Suite("Command line: --axes and the axes attribute")
struct AxesCLITests {
    static let reference = Fixtures.path("synthetic/batch_LBHQK.npy")

    @Test("the batch first (B,L,H,Q,K), by --axes or by the attribute, reads what (L,B,H,Q,K) reads", arguments: [1, 2])
    func batchFirst(sample: Int) throws {
        let expected = try statsCSV([Self.reference, "--batch", "\(sample)"])
        #expect(
            try statsCSV([layoutFixture("batch_BLHQK.npy"), "--axes", "B,L,H,Q,K", "--batch", "\(sample)"]) == expected)
        #expect(
            try statsCSV([
                layoutFixture("batch_BLHQK.npy"), "--axes", "batch,layer,head,query,key", "--batch", "\(sample)"
            ])
                == expected)
        #expect(try statsCSV([layoutFixture("batch_BLHQK_axes.h5"), "--batch", "\(sample)"]) == expected)
        // Without a declaration five axes are [layer, batch, ...] (torch.stack(out.attentions)): other numbers.
        let guessed = try Run(["stats", layoutFixture("batch_BLHQK.npy"), "--batch", "\(sample)", "--csv"])
        #expect(guessed.stdout != expected)
    }

    @Test("one layer of a batch (np.save(out.attentions[2])): --axes B,H,Q,K; without it, a note names it")
    func oneLayerOfABatch() throws {
        let expected = try statsCSV([Self.reference, "--batch", "2", "--layer", "2"])
        let declared = try statsCSV([layoutFixture("layer2_BHQK.npy"), "--axes", "B,H,Q,K", "--batch", "2"])
        #expect(
            declared.split(separator: "\n").dropFirst().map { $0.dropFirst(2) }
                == expected.split(separator: "\n").dropFirst().map { $0.dropFirst(2) })  // layer 0 here, 2 there
        let guessed = try Run(["info", layoutFixture("layer2_BHQK.npy")])
        #expect(guessed.stderr.contains("read as [layer, head, query, key], from its number of axes; --axes B,H,Q,K"))
        #expect(try Run(["info", layoutFixture("layer2_BHQK.npy"), "-q"]).stderr.isEmpty)
    }

    @Test(
        "axes that cannot describe the tensor: one line naming the declaration",
        arguments: [
            (["--axes", "H,L,B,Q,K"], "the heads must come just before the queries"),
            (["--axes", "L,B,H,K,Q"], "the last two axes must be the queries and the keys"),
            (["--axes", "B,H,Q,K"], "--axes B,H,Q,K names 4 axes, but the tensor has 5"),
            (["--axes", "L,L,H,Q,K"], "names an axis twice")
        ])
    func refused(arguments: [String], message: String) throws {
        let r = try Run(["stats", layoutFixture("batch_BLHQK.npy")] + arguments)
        #expect(
            r.status == 1 && r.stderr.contains(message) && r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
    }

    @Test(
        """
        q and k: the qk_axes attribute (or --axes L,B,S,HD --heads 3) reads what the canonical layout reads; 4 axes \
        undeclared get a note naming --axes L,B,S,HD
        """
    )
    func queryKeyAxes() throws {
        let expected = try statsCSV([layoutFixture("qk_canonical.npz"), "--batch", "1"])
        #expect(try statsCSV([layoutFixture("qk_LBSHD_attrs.h5"), "--batch", "1"]) == expected)
        let merged = try statsCSV([layoutFixture("qk_LBSHD.npz"), "--axes", "L,B,S,HD", "--heads", "3", "--batch", "1"])
        #expect(merged == expected)
        let guessed = try Run(["stats", Fixtures.path("synthetic/qk_LHSd.h5"), "--csv"])
        #expect(guessed.status == 0, "\(guessed.stderr)")
        #expect(
            guessed.stderr.contains("read as [layer, head, position, dim], from its number of axes; --axes L,B,S,HD"),
            "\(guessed.stderr)")
    }
}
