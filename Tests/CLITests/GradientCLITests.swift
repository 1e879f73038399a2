import Testing
import Foundation
import AttnCore
import AttnTestSupport

@Suite("Command line: rollout --gradients")
struct GradientCLITests {
    func path(_ name: String) -> String { Fixtures.path("synthetic/gradients/\(name)") }

    @Test("rollout --gradients -o r.npy equals numpy's Chefer rule; --gradient-dataset names unconventional gradients")
    func values() throws {
        let scratch = try Scratch()
        let want = try Fixtures.json("synthetic/gradients/expected.json")["rollout_all_layers"].doubles2D.flatMap { $0 }
        for (file, extra) in [
            ("attn_grad.npz", ["--gradients"]), ("per_layer_grads.h5", ["--gradients"]),
            ("custom_name.npz", ["--gradient-dataset", "relevance_grads"])
        ] {
            let out = scratch.file("\(file).npy")
            let r = try Run(["rollout", path(file), "-o", out] + extra)
            #expect(r.status == 0, "\(r.stderr)")
            #expect(maxAbsDifference(try readFloat32NPY(out).values.map(Double.init), want) < 5e-7, "\(file)")
        }
    }

    @Test("no gradients, gradients of the wrong shape: one line, exit 1, nothing written; with --compat: a usage error")
    func refusals() throws {
        let scratch = try Scratch()
        let out = scratch.file("r.npy")
        let none = try Run(["rollout", path("no_grads.npz"), "--gradients", "-o", out, "-q"])
        #expect(
            none.status == 1 && none.stderr.contains("no attention gradients found")
                && none.stderr.filter { $0 == "\n" }.count == 1)
        let wrong = try Run(["rollout", path("wrong_shape.npz"), "--gradients", "-o", out])
        #expect(
            wrong.status == 1 && wrong.stderr.contains("dataset 'grads'")
                && wrong.stderr.contains("found (2, 2, 10, 10)"), "\(wrong.stderr)")
        #expect(
            try Run(["rollout", path("attn_grad.npz"), "--gradients", "--compat", "vit-explain", "-o", out]).status
                == 64)
        #expect(
            try Run(["rollout", path("attn_grad.npz"), "--gradients", "--head-fusion", "max", "-o", out]).status == 64)
        #expect(!FileManager.default.fileExists(atPath: out))
    }
}
