import Testing
import Foundation
import AttnCore
import AttnTestSupport

/// `heads --json` against the float64 reference of TestData/synthetic/heads (docs/heads.md).
@Suite("Command line: heads")
struct HeadsCLITests {
    static let folder = "synthetic/heads"
    let expected = try! Fixtures.json("synthetic/heads/expected.json")

    func path(_ file: String) -> String { Fixtures.path("\(Self.folder)/\(file)") }

    func run(_ arguments: [String]) throws -> [String: Any] {
        let r = try Run(["heads"] + arguments + ["--json"])
        #expect(r.status == 0, "\(arguments): \(r.stderr)")
        return try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
    }

    func record(_ object: [String: Any], _ layer: Int, _ head: Int) -> [String: Any] {
        (object["records"] as! [[String: Any]]).first { $0["layer"] as? Int == layer && $0["head"] as? Int == head }!
    }

    /// A number against the reference: both null, or equal to 1e-9 relative.
    /// `tolerance`: relative (absolute with `absolute`), for values computed in Double from the stored values as numpy
    /// does (1e-9). The entropies come from the row kernel `stats` shares, whose ln p takes the mantissa's logarithm
    /// in float (Cephes logf, within 1 ulp = 2⁻²³ relative, of a value |ln m| ≤ ln √2): at most 0.35 × 1.2e-7 ≈ 4.1e-8
    /// per ln p, so at most that for −Σ p ln p with Σ p = 1, and for a mean of rows: 5e-8 absolute.
    func same(
        _ got: Any?, _ want: JSON, _ what: String, tolerance: Double = 1e-9, absolute: Bool = false,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        if want.value == nil || want.value is NSNull {
            #expect(
                got == nil || got is NSNull, "\(what): expected null, got \(String(describing: got))",
                sourceLocation: sourceLocation)
        } else if let list = want.value as? [Any] {
            let strings = list.compactMap { $0 as? String }
            if strings.count == list.count {
                #expect((got as? [String]) == strings, "\(what)", sourceLocation: sourceLocation)
            } else {
                let items = got as? [Any] ?? []
                #expect(
                    items.count == list.count, "\(what): \(items.count) items for \(list.count)",
                    sourceLocation: sourceLocation)
                for (i, item) in items.enumerated() where i < list.count {
                    same(
                        item, want[i], "\(what)[\(i)]", tolerance: tolerance, absolute: absolute,
                        sourceLocation: sourceLocation)
                }
            }
        } else if let text = want.value as? String {
            #expect(got as? String == text, "\(what)", sourceLocation: sourceLocation)
        } else if let n = got as? Double {
            let w = want.double
            #expect(
                abs(n - w) <= tolerance * (absolute ? 1 : max(1, abs(w))), "\(what): \(n) against \(w)",
                sourceLocation: sourceLocation)
        } else {
            Issue.record(
                "\(what): got \(String(describing: got)) for \(String(describing: want.value))",
                sourceLocation: sourceLocation)
        }
    }

    static let recordKeys = [
        "entropy", "first_query_entropy", "mean_row_max", "attn_first", "attn_cls", "attn_sep", "attn_punct",
        "attn_self",
        "attn_previous", "attn_next", "previous_token", "duplicate_token", "induction", "mean_attention_distance",
        "sink_share", "roles"
    ]

    @Test(
        "every record, the special tokens, the pattern sizes, the per-layer similarity and the outlier tokens",
        arguments: ["text", "text_strings", "text_nan", "vit", "minilm6_zen", "vits14_board"])
    func cases(name: String) throws {
        let e = expected["cases"][name]
        let object = try run([path(e["file"].value as! String)])
        let records = object["records"] as! [[String: Any]]
        #expect(records.count == e["records"].array.count)
        for (i, want) in e["records"].array.enumerated() {
            for key in Self.recordKeys {
                same(
                    records[i][key], want[key], "\(name) record \(i) \(key)",
                    tolerance: key.hasSuffix("entropy") ? 5e-8 : 1e-9, absolute: key.hasSuffix("entropy"))
            }
        }
        let parameters = object["parameters"] as! [String: Any]
        same(parameters["token_match"], e["parameters"]["token_match"], "\(name) token_match")
        let distance = parameters["distance"] as! [String: Any]
        #expect(distance["mode"] as? String == e["parameters"]["distance"]["mode"].value as? String)
        same(distance["prefix"], e["parameters"]["distance"]["prefix"], "\(name) prefix")
        for key in ["cls", "sep", "punct"] {
            same((object["special_tokens"] as? [String: Any])?[key], e["special_tokens"][key], "\(name) special \(key)")
        }
        for key in ["previous_token", "duplicate_token", "induction"] {
            same((object["tl_pairs"] as? [String: Any])?[key], e["tl_pairs"][key], "\(name) tl_pairs \(key)")
        }
        let matrices = (object["similarity"] as! [String: Any])["matrices"] as! [[String: Any]]
        for (l, m) in matrices.enumerated() {
            same(m["js_divergence"], e["similarity_layer"][l], "\(name) similarity layer \(l)")
        }
        let outliers = object["outlier_tokens"] as! [[String: Any]]
        #expect(outliers.count == e["outlier_tokens"].array.count, "\(name) outliers")
        for (i, o) in outliers.enumerated() where i < e["outlier_tokens"].array.count {
            let want = e["outlier_tokens"][i]
            #expect(
                o["position"] as? Int == want["position"].value as? Int
                    && o["prefix"] as? Bool == want["prefix"].value as? Bool)
            for key in ["layers", "layer_count", "max_share", "mean_share", "max_ratio", "shares", "token"] {
                same(o[key], want[key], "\(name) outlier \(i) \(key)")
            }
        }
    }

    @Test(
        """
        stats reports heads' attn_first, attn_self and attn_previous under the same names: the float64 reference's \
        values, bit for bit heads' own; stats' previous_token is attn_previous × Q/(Q − 1)
        """,
        arguments: ["text", "text_nan", "vit", "minilm6_zen"])
    func sharedWithStats(name: String) throws {
        let e = expected["cases"][name]
        let file = path(e["file"].value as! String)
        let heads = try run([file])["records"] as! [[String: Any]]
        let r = try Run(["stats", file, "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let stats = object["records"] as! [[String: Any]]
        let q = Double(object["queries"] as! Int)
        #expect(stats.count == heads.count && stats.count == e["records"].array.count)
        for (i, want) in e["records"].array.enumerated() {
            for key in ["attn_first", "attn_self", "attn_previous"] {
                same(stats[i][key], want[key], "\(name) record \(i) \(key)")
                #expect(
                    (stats[i][key] as? Double) == (heads[i][key] as? Double)
                        && (stats[i][key] is NSNull) == (heads[i][key] is NSNull),
                    "\(name) record \(i) \(key): stats \(stats[i][key] ?? "-") heads \(heads[i][key] ?? "-")")
            }
            if let previous = want["attn_previous"].value as? Double {
                let old = try #require(stats[i]["previous_token"] as? Double)
                #expect(abs(old - previous * q / (q - 1)) <= 1e-9 * max(1, abs(old)), "\(name) record \(i)")
            }
        }
    }

    @Test(
        "options: TransformerLens exclusions, --sink-tokens, --patch-size, --similarity all",
        arguments: ["text", "vit", "vits14_board"])
    func variants(name: String) throws {
        let e = expected["cases"][name]
        let file = path(e["file"].value as! String)
        let shape = e["shape"].array.map { Int($0.double) }
        let variants: [(String, [String])] = [
            ("exclude_bos", ["--exclude-bos"]), ("exclude_current_token", ["--exclude-current-token"]),
            ("exclude_bos_and_current_token", ["--exclude-bos", "--exclude-current-token"])
        ]
        for (key, flags) in variants {
            let object = try run([file] + flags)
            for l in 0..<shape[0] {
                for h in 0..<shape[1] {
                    for score in ["previous_token", "duplicate_token", "induction"] {
                        same(
                            record(object, l, h)[score], e["variants"][key][score][l][h],
                            "\(name) \(key) \(score)[\(l)][\(h)]")
                    }
                }
            }
        }
        for k in [1, 2] {
            let object = try run([file, "--sink-tokens", "\(k)"])
            for l in 0..<shape[0] {
                for h in 0..<shape[1] {
                    same(
                        record(object, l, h)["sink_share"], e["variants"]["sink_share_k\(k)"][l][h],
                        "\(name) sink k\(k)")
                }
            }
        }
        if let size = [("vit", 16), ("vits14_board", 14)].first(where: { $0.0 == name })?.1 {
            let object = try run([file, "--patch-size", "\(size)"])
            #expect(
                ((object["parameters"] as! [String: Any])["distance"] as! [String: Any])["unit"] as? String == "pixels")
            for l in 0..<shape[0] {
                for h in 0..<shape[1] {
                    same(
                        record(object, l, h)["mean_attention_distance"],
                        e["variants"]["mean_attention_distance_patch_size_\(size)"][l][h], "\(name) MAD px")
                }
            }
        }
        let all = try run([file, "--similarity", "all"])
        same((all["similarity"] as! [String: Any])["js_divergence"], e["similarity_all"], "\(name) similarity all")
    }

    @Test("hand-worked cases: closed forms from docs/heads.md")
    func handWorked() throws {
        let hand = expected["hand_worked"]
        func check(_ name: String, flags: [String] = [], head: Int = 0, expect pairs: [(String, String)]) throws {
            let object = try run([path(hand[name]["file"].value as! String)] + flags)
            for (key, wantKey) in pairs {
                same(record(object, 0, head)[key], hand[name]["expected"][wantKey], "\(name) \(wantKey)")
            }
        }
        for name in ["prev3", "next3", "uniform4", "repeat3"] {
            let keys = (hand[name]["expected"].value as! [String: Any]).keys.filter { Self.recordKeys.contains($0) }
            try check(name, expect: keys.map { ($0, $0) })
        }
        try check("prev3", flags: ["--exclude-bos"], expect: [("previous_token", "previous_token_exclude_bos")])
        try check("prev3", flags: ["--sink-tokens", "1"], expect: [("sink_share", "sink_share_k1")])
        try check("uniform4", flags: ["--sink-tokens", "1"], expect: [("sink_share", "sink_share_k1")])
        try check(
            "repeat3", flags: ["--exclude-current-token"], expect: [("induction", "induction_exclude_current_token")])
        try check(
            "induction6", head: 0,
            expect: [
                ("induction", "head0_induction"), ("duplicate_token", "head0_duplicate_token"),
                ("previous_token", "head0_previous_token")
            ])
        try check(
            "induction6", flags: ["--exclude-bos"], head: 0,
            expect: [
                ("induction", "head0_induction_exclude_bos"), ("previous_token", "head0_previous_token_exclude_bos")
            ])
        try check(
            "induction6", head: 1,
            expect: [("duplicate_token", "head1_duplicate_token"), ("induction", "head1_induction")])
        try check(
            "induction6", flags: ["--exclude-bos"], head: 1,
            expect: [("duplicate_token", "head1_duplicate_token_exclude_bos")])
        try check("grid23", expect: [("mean_attention_distance", "mean_attention_distance")])
        try check(
            "grid23", flags: ["--patch-size", "16"],
            expect: [("mean_attention_distance", "mean_attention_distance_patch_size_16")])
        let js = try run([path(hand["js3"]["file"].value as! String)])
        same(
            ((js["similarity"] as! [String: Any])["matrices"] as! [[String: Any]])[0]["js_divergence"],
            hand["js3"]["expected"]["matrix"], "js3")
        let outlier = try run([path(hand["outlier10"]["file"].value as! String)])
        let found = outlier["outlier_tokens"] as! [[String: Any]]
        #expect(found.count == 1 && found.first?["position"] as? Int == 3)
        same(found.first?["max_ratio"], hand["outlier10"]["expected"]["outlier_tokens"][0]["max_ratio"], "outlier10")
    }

    @Test(
        """
        stats --outliers finds the same tokens as heads (real ViT: CLS, patches 173 and 150); --layer keeps that \
        layer's
        """
    )
    func statsOutliers() throws {
        let board = Fixtures.path("real/vits14_board_small.h5")
        let want = expected["cases"]["vits14_board"]["outlier_tokens"]
        let r = try Run(["stats", board, "--outliers", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let found = try #require(object["outlier_tokens"] as? [[String: Any]])
        #expect(found.map { $0["position"] as? Int } == want.array.map { Int($0["position"].double) })
        for (i, o) in found.enumerated() { same(o["shares"], want[i]["shares"], "stats outlier \(i) shares") }
        let one = try Run(["stats", board, "--outliers", "--layer", "1", "--json"])
        let layer1 = try #require(try JSONSerialization.jsonObject(with: Data(one.stdout.utf8)) as? [String: Any])
        let tokens = try #require(layer1["outlier_tokens"] as? [[String: Any]])
        #expect(
            tokens.count == 1 && tokens[0]["position"] as? Int == 0 && tokens[0]["layers"] as? [Int] == [1]
                && tokens[0]["prefix"] as? Bool == true)
        #expect(try Run(["stats", board, "--outliers", "--csv"]).status == 64)
    }

    @Test("CSV columns in the documented order; similarity written as CSV rows; bad options are refused")
    func outputs() throws {
        let scratch = try Scratch()
        let r = try Run(["heads", path("text.npz"), "--csv", "--similarity-out", scratch.file("s.csv")])
        #expect(r.status == 0, "\(r.stderr)")
        let lines = r.stdout.split(separator: "\n")
        #expect(
            lines[0]
                == "layer,head,entropy,first_query_entropy,mean_row_max,attn_first,attn_cls,attn_sep,attn_punct,"
                + "attn_self,attn_previous,attn_next,previous_token,duplicate_token,induction,mean_attention_distance,"
                + "sink_share,roles"
        )
        #expect(lines.count == 7 && lines[1].hasSuffix(",previous"))
        let similarity = try String(contentsOfFile: scratch.file("s.csv"), encoding: .utf8).split(separator: "\n")
        #expect(similarity.count == 1 + 2 * 3 * 3 && similarity[0] == "layer_a,head_a,layer_b,head_b,js_divergence")
        // --patch-size asks for a grid: without patch_grid the keys after the prefix are taken as a square, as grid
        // does; these 6 tokens are not one.
        let grid = try Run(["heads", path("text.npz"), "--patch-size", "16"])
        #expect(grid.status == 1 && grid.stderr.contains("not a perfect square"), "\(grid.stderr)")
        let square = Fixtures.path("hostile/backwards.npy")  // 50 tokens, no attributes: CLS + 7 × 7
        let inferred = try Run(["heads", square, "--patch-size", "14", "--csv", "--similarity", "none"])
        let given = try Run(["heads", square, "--grid", "7x7", "--patch-size", "14", "--csv", "--similarity", "none"])
        #expect(inferred.status == 0 && inferred.stderr.contains("patch grid 7×7, the square"), "\(inferred.stderr)")
        #expect(given.status == 0 && inferred.stdout == given.stdout && !inferred.stdout.isEmpty)
        #expect(try Run(["heads", path("text.npz"), "--sink-tokens", "0"]).status == 64)
        let unwritable = try Run(["heads", path("text.npz"), "--similarity-out", "/nonexistent/folder/s.csv"])
        #expect(unwritable.status == 1 && unwritable.stdout.isEmpty && unwritable.stderr.contains("cannot write"))
        #expect(try Run(["heads", path("text.npz"), "--similarity-out", scratch.file("s.txt")]).status == 64)
    }
}
