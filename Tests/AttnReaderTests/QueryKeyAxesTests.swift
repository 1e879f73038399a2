import Testing
import AttnCore
import AttnTestSupport
@testable import AttnReader

/// q and k in other axis orders (TestData/synthetic/layouts/make_qk_axes_cases.py): each, read with its declaration,
/// holds exactly the q and k of qk_canonical.npz.
@Suite("q and k axes said, not guessed")
struct QueryKeyAxesTests {
    static func path(_ name: String) -> String { "synthetic/layouts/" + name }

    func values(_ file: String, _ axes: String?, heads: Int? = nil, batch: Int) throws -> [[Float]] {
        let options = ReadOptions(
            batch: batch, heads: heads, axes: axes.flatMap { DeclaredAxes($0, origin: "--axes \($0)") })
        let qk = try queryKey(Self.path(file), options)
        #expect((qk.layerCount, qk.headCount, qk.keyHeadCount, qk.positionCount, qk.headDim) == (2, 3, 1, 5, 4))
        return try (0..<qk.layerCount).flatMap { l in
            let layer = try qk.layer(l)
            return [layer.queries, layer.keys]
        }
    }

    @Test(
        "every declared layout reads the reference's q and k, sample by sample",
        arguments: [
            ("qk_LBSHD.npz", "L,B,S,HD", 3), ("qk_BLHSD.npz", "B,L,H,S,D", nil),
            ("qk_BLHSD.npz", "batch,layer,head,position,dim", nil), ("qk_LBSHD5.npz", "L,B,S,H,D", nil),
            ("qk_LBSHD_attrs.h5", nil, nil)
        ] as [(String, String?, Int?)])
    func sameValues(file: String, axes: String?, heads: Int?) throws {
        for b in 0..<3 {
            #expect(try values(file, axes, heads: heads, batch: b) == values("qk_canonical.npz", nil, batch: b))
        }
    }

    @Test("4 axes with --heads and no declaration: refused, naming both readings (B = H = 3 here)")
    func ambiguous() throws {
        let dump = try DumpFile(path: Fixtures.path(Self.path("qk_LBSHD.npz")))
        let error = try #require(throws: AttnError.self) {
            try AttentionLayout.resolve(dump, options: ReadOptions(heads: 3))
        }
        #expect(error.message.contains("say which with --axes L,B,S,HD (projections of a batch) or --axes L,H,S,D"))
    }

    @Test(
        "q/k axes that cannot describe q: one message naming the declaration",
        arguments: [
            ("L,S,B,HD", "must be layer and batch (in either order), then H,S,D, S,H,D or S,HD"),
            ("L,B,HD,S", "must be layer and batch (in either order), then H,S,D, S,H,D or S,HD"),
            ("L,B,S", "names 3 axes, but q has 4")
        ])
    func refused(axes: String, message: String) throws {
        let error = try #require(throws: AttnError.self) {
            _ = try values("qk_LBSHD.npz", axes, heads: 3, batch: 0)
        }
        #expect(error.message.contains(message), "\(error.message)")
    }

    @Test("per-layer q and k under framework names (model.layers.N.self_attn.q) are q and k, not attention")
    func dottedFamilies() throws {
        let qk = try queryKey(Self.path("qk_family_dotted.npz"))
        #expect((qk.layerCount, qk.headCount, qk.keyHeadCount, qk.positionCount, qk.headDim) == (2, 3, 1, 5, 4))
        let got = try (0..<2).flatMap { l in try [qk.layer(l).queries, qk.layer(l).keys] }
        #expect(got == (try values("qk_canonical.npz", nil, batch: 0)))
    }

    @Test(
        "TransformerLens hooks under nested names: hook_rot_q/k as [batch, position, head, dim]; hook_result ignored"
    )
    func transformerLensHooks() throws {
        let qk = try queryKey(Self.path("qk_tl_hooks.npz"))
        #expect(qk.summary.axes == "[batch, position, head, dim]")
        let got = try (0..<2).flatMap { l in try [qk.layer(l).queries, qk.layer(l).keys] }
        #expect(got == (try values("qk_canonical.npz", nil, batch: 0)))
    }
}
