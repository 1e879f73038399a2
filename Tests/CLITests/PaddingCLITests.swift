import Testing
import Foundation
import AttnCore
import AttnTestSupport

@Suite("Command line: padding excluded")
struct PaddingCLITests {
    func path(_ name: String) -> String { Fixtures.path("synthetic/padding/\(name)") }
    func expected() throws -> JSON { try Fixtures.json("synthetic/padding/expected.json") }

    /// `stats --json` records, checked against numpy's statistics of the real tokens' sub-matrix.
    func checkStats(
        _ arguments: [String], against e: JSON, tokens: Int, sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        let r = try Run(["stats"] + arguments + ["--json"])
        #expect(r.status == 0, "\(r.stderr)", sourceLocation: sourceLocation)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        #expect(object["queries"] as? Int == tokens && object["keys"] as? Int == tokens, sourceLocation: sourceLocation)
        for record in try #require(object["records"] as? [[String: Any]]) {
            let l = record["layer"] as! Int, h = record["head"] as! Int
            for (key, name) in [
                ("entropy", "entropy"), ("normalized_entropy", "normalized_entropy"), ("first_token", "first_token"),
                ("self", "self"), ("row_sum_max_dev", "row_sum_max_dev")
            ] {
                #expect(
                    abs((record[key] as! Double) - e[name][l][h].double) < 2e-7, "\(arguments) \(key)[\(l)][\(h)]",
                    sourceLocation: sourceLocation)
            }
        }
    }

    @Test("attention_mask (int64 in NPZ, bool in HDF5): right and left padding, per sample of the batch")
    func masks() throws {
        let e = try expected()["padded_mask"]
        for file in ["padded_mask.npz", "padded_mask_bool.h5"] {
            try checkStats([path(file), "--batch", "0"], against: e["sample0"]["stats"], tokens: 6)
            try checkStats([path(file), "--batch", "1"], against: e["sample1"]["stats"], tokens: 6)
        }
        let info = try Run(["info", path("padded_mask.npz"), "--batch", "1"])
        #expect(
            info.stdout.contains("padding: attention_mask keeps 6 of 8 positions (2...7)")
                && info.stdout.contains("queries: 6, keys: 6"), "\(info.stdout)")
        // safetensors: sample 1 alone, its mask an I64 tensor of shape (1, 8).
        try checkStats([path("padded_mask_sample1.safetensors")], against: e["sample1"]["stats"], tokens: 6)
    }

    @Test("lengths as a scalar in per-layer HDF5; --length N overrides it; --keep-padding reads every position")
    func lengths() throws {
        let e = try expected()
        try checkStats([path("padded_lengths.h5")], against: e["padded_lengths"]["stats"], tokens: 5)
        try checkStats(
            [path("padded_lengths.h5"), "--length", "3"], against: e["padded_lengths_length3"]["stats"], tokens: 3)
        let all = try Run(["stats", path("padded_lengths.h5"), "--keep-padding", "--json"])
        #expect(all.status == 0 && all.stdout.contains("\"queries\": 8") && !all.stderr.contains("padding is excluded"))
    }

    @Test("q and k with a mask: softmax over the real keys only, as the model computed it")
    func recomputed() throws {
        try checkStats([path("padded_qk.npz")], against: try expected()["padded_qk"]["stats"], tokens: 7)
    }

    @Test("verify compares padding-excluded attention with q and k recomputed over the same real tokens")
    func verifyPadded() throws {
        let r = try Run(["verify", path("padded_attn_qk.npz")])
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        #expect(r.stderr.contains("attention_mask keeps 7 of 8 tokens"))
        let line = r.stdout.split(separator: "\n").first { $0.contains("recomputed from q and k") }.map(String.init)
        #expect(line?.hasPrefix("PASS") == true, "\(r.stdout)")
        // The fixture's attention is softmax over the 7 real keys of its own q and k: the difference is rounding.
        let delta = line.flatMap { $0.components(separatedBy: "max |Δ| = ").last?.split(separator: ",").first }
        #expect(delta.flatMap { Double($0) }.map { $0 < 1e-6 } == true, "\(line ?? "")")
    }

    @Test("rollout and the token view see only the real tokens")
    func rolloutAndTokens() throws {
        let scratch = try Scratch()
        let r = try Run(["rollout", path("padded_mask.npz"), "--batch", "1", "-o", scratch.file("r.npy")])
        #expect(r.status == 0 && r.stderr.contains("attention_mask keeps 6 of 8 tokens"), "\(r.stderr)")
        let want = try expected()["padded_mask"]["sample1"]["rollout"].doubles2D
        #expect(
            maxAbsDifference(try readFloat32NPY(scratch.file("r.npy")).values.map(Double.init), want.flatMap { $0 })
                < 1e-6)
        let t = try Run(["tokens", path("padded_mask.npz"), "--query", "1"])
        #expect(t.status == 0 && t.stdout.contains("[SEP] (") && !t.stdout.contains("[PAD]"), "\(t.stdout)")
    }

    @Test(
        "a mask of the wrong length, a mask with no token, a length beyond the sequence: one line each, exit 1",
        arguments: [
            ("bad_mask_length.npz", "expected a mask of 8 positions"), ("bad_mask_empty.npz", "keeps no token"),
            ("bad_lengths.npz", "length 9 of sample 0 is out of range: expected 1...8")
        ])
    func bad(file: String, message: String) throws {
        let r = try Run(["stats", path(file)])
        #expect(r.status == 1 && r.stderr.contains(message) && r.stderr.filter { $0 == "\n" }.count == 1, "\(r.stderr)")
        #expect(try Run(["stats", path("padded_lengths.h5"), "--length", "9"]).status == 1)
        #expect(try Run(["stats", path("padded_lengths.h5"), "--length", "0"]).status == 64)
    }
}
