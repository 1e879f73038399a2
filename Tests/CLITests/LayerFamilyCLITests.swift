import AttnTestSupport
import Foundation
import Testing

/// Layers however they are named (TestData/synthetic/layouts/make_family_cases.py, from base_f32.npy): a family of
/// datasets that differ only in one number is the layers, in numeric order.
@Suite("Command line: per-layer families under framework names")
struct LayerFamilyCLITests {
    static let reference = Fixtures.path("synthetic/base_f32.npy")

    @Test(
        "np.savez(*layers), Llama's model.layers.N.self_attn, BERT's encoder.layer.N.attention.self read as the layers",
        arguments: [
            ("savez_arr.npz", "arr_# (3 datasets, one per layer)"),
            ("layers_dotted.safetensors", "model.layers.#.self_attn (3 datasets, one per layer)"),
            ("bert_dotted.h5", "encoder.layer.#.attention.self (3 datasets, one per layer)")
        ])
    func family(file: String, label: String) throws {
        #expect(try statsCSV([layoutFixture(file)]) == statsCSV([Self.reference]))
        let info = try Run(["info", layoutFixture(file)])
        #expect(info.status == 0 && info.stdout.contains(label), "\(info.stdout)")
    }

    @Test("two families: the error lists them and names --dataset; --dataset PREFIX chooses one")
    func twoFamilies() throws {
        let path = layoutFixture("two_families.npz")
        let r = try Run(["stats", path])
        #expect(r.status == 1, "\(r.stderr)")
        #expect(
            r.stderr.contains("several families of per-layer datasets could be the attention: arr_# (3 datasets)")
                && r.stderr.contains("other_# (3 datasets)") && r.stderr.contains("--dataset arr_"), "\(r.stderr)")
        #expect(try statsCSV([path, "--dataset", "arr_"]) == statsCSV([Self.reference]))
        // other_ holds the layers in reverse: layer 0 of it is layer 2 of the reference.
        let reversed = try statsCSV([path, "--dataset", "other_", "--layer", "0"])
        let last = try statsCSV([Self.reference, "--layer", "2"])
        #expect(
            reversed.split(separator: "\n").dropFirst().map { $0.dropFirst(2) }
                == last.split(separator: "\n").dropFirst().map { $0.dropFirst(2) })
    }
}
