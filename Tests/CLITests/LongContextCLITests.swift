import Testing
import Foundation
import AttnCore
import AttnTestSupport

/// Attention recomputed from q and k a block of rows at a time (TestData/synthetic/long/make_long_qk.py): 2048
/// tokens, whose whole layer (64 MiB with its scores) is over the --max-memory given, while the streamed commands
/// hold a block of rows per worker.
@Suite("Command line: long sequences from q and k, streamed")
struct LongContextCLITests {
    static func long(_ name: String) -> String { Fixtures.path("synthetic/long/" + name) }

    @Test(
        """
        stats --max-memory 12M (below the whole layer's 32 MiB): every head's entropy, first-token share, diagonal \
        and maximum equal numpy's float64 values, causal and with a 256-token window
        """,
        arguments: ["qk_2048.h5", "qk_2048_window.h5"])
    func streamedStats(file: String) throws {
        let r = try Run(["stats", Self.long(file), "--json", "--max-memory", "12M", "-q"])
        #expect(r.status == 0, "\(r.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let expected = try Fixtures.json("synthetic/long/expected.json")[file]
        for record in try #require(object["records"] as? [[String: Any]]) {
            let h = record["head"] as! Int
            // float32 scores and exponentials against float64: each of 2048 probabilities is off by a few ulps, and
            // the entropy, a sum of 2048 terms per row, by about 1e-6 relative.
            for (key, field, tolerance) in [
                ("entropy", "entropy", 1e-5), ("first_token", "first_token", 1e-6), ("self", "self", 1e-6),
                ("max", "max", 1e-6)
            ] {
                let got = try #require(record[field] as? Double), want = expected[key][h].double
                #expect(abs(got - want) <= tolerance, "\(file) head \(h) \(key): \(got) vs \(want)")
            }
        }
    }

    /// The top keys of `keys_received` against numpy's: the same keys in the same order, their share (column sum /
    /// S) and mean (column sum / the queries that see the key) to 1e-7 (float32 probabilities summed over 2048 rows).
    static func expectTopKeys(_ object: [String: Any], file: String) throws {
        let expected = try Fixtures.json("synthetic/long/expected.json")[file]
        let received = try #require(object["keys_received"] as? [[String: Any]])
        #expect(received.count == 2)
        for entry in received {
            let h = entry["head"] as! Int
            let top = try #require(entry["top_keys"] as? [[String: Any]])
            #expect(top.count == 5)
            for (n, key) in top.enumerated() {
                let want = expected["top_keys"][h][n]
                #expect(key["key"] as? Int == want["key"].int, "\(file) head \(h) #\(n): \(key) vs \(want)")
                for field in ["share", "mean"] {
                    let got = try #require(key[field] as? Double)
                    #expect(abs(got - want[field].double) <= 1e-7, "\(file) head \(h) #\(n) \(field): \(got)")
                }
            }
        }
    }

    @Test(
        """
        heads --max-memory 12M: streamed in row blocks, its measures equal numpy's float64 values and the keys \
        receiving the most attention are numpy's; the head similarity, which needs whole layers, is skipped and said
        """,
        arguments: ["qk_2048.h5", "qk_2048_window.h5"])
    func streamedHeads(file: String) throws {
        let r = try Run(["heads", Self.long(file), "--json", "--max-memory", "12M"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(
            r.stderr.contains("head similarity skipped: one whole layer for the head similarity needs"), "\(r.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let expected = try Fixtures.json("synthetic/long/expected.json")[file]
        for record in try #require(object["records"] as? [[String: Any]]) {
            let h = record["head"] as! Int
            for (key, tolerance) in [
                ("entropy", 1e-5), ("mean_row_max", 1e-6), ("attn_previous", 1e-6), ("sink_share", 1e-6),
                ("previous_token", 1e-6)
            ] {
                let got = try #require(record[key] as? Double), want = expected[key][h].double
                #expect(abs(got - want) <= tolerance, "\(file) head \(h) \(key): \(got) vs \(want)")
            }
            let distance = try #require(record["mean_attention_distance"] as? Double)
            let want = expected["mean_attention_distance"][h].double
            #expect(abs(distance - want) <= 1e-6 * want, "\(file) head \(h): distance \(distance) vs \(want)")
        }
        #expect((object["similarity"] as? [String: Any])?["scope"] as? String == "none")
        try Self.expectTopKeys(object, file: file)
    }

    @Test("stats --json names the same top keys, found in the same pass as its statistics", arguments: ["qk_2048.h5"])
    func statsTopKeys(file: String) throws {
        let r = try Run(["stats", Self.long(file), "--json", "--max-memory", "12M", "-q"])
        #expect(r.status == 0, "\(r.stderr)")
        try Self.expectTopKeys(
            try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]), file: file)
    }

    @Test(
        """
        grid --token i and tokens --query i under the same limit compute that one row: numpy's head-mean row of \
        queries 0, 1000 and 2047 to 1e-7, causal and with a window
        """,
        arguments: ["qk_2048.h5", "qk_2048_window.h5"])
    func oneRow(file: String) throws {
        let scratch = try Scratch()
        let expected = try Fixtures.json("synthetic/long/expected_rows.json")[file]
        for query in [0, 1000, 2047] {
            let want = expected["\(query)"].doubles
            let out = scratch.file("row\(query).npy")
            let r = try Run(
                [
                    "grid", Self.long(file), "--max-memory", "12M", "--token", "\(query)", "--grid", "32x64",
                    "--prefix", "0", "-o", out, "-q"
                ])
            #expect(r.status == 0, "\(r.stderr)")
            let got = try readFloat32NPY(out)
            #expect(got.shape == [32, 64])
            #expect(
                maxAbsDifference(got.values.map(Double.init), want) <= 1e-7, "\(file) query \(query)")
            // tokens prints the same row, to 4 decimals.
            let t = try Run([
                "tokens", Self.long(file), "--max-memory", "12M", "--query", "\(query)", "--color", "never"
            ])
            #expect(t.status == 0, "\(t.stderr)")
            let printed = t.stdout.split(separator: " ").filter { $0.hasPrefix("(") }.map {
                Double($0.dropFirst().prefix { $0 != ")" })!
            }
            #expect(printed.count == 2048 && maxAbsDifference(printed, want) <= 5e-5, "\(file) query \(query)")
        }
        let out = try Run([
            "grid", Self.long(file), "--token", "2048", "--grid", "32x64", "--prefix", "0", "-o", scratch.file("x.npy")
        ])
        #expect(
            out.status == 1 && out.stderr.contains("token 2048 is out of range: expected 0...2047"), "\(out.stderr)")
    }

    @Test(
        """
        rollout --view row under the same limit, through two layers: numpy's float64 rollout rows to 1e-7; the full \
        matrix view refused with its memory estimate, naming the row view
        """)
    func streamedRolloutRow() throws {
        let scratch = try Scratch()
        let file = Self.long("qk_1024_2layers.h5")
        let expected = try Fixtures.json("synthetic/long/expected_rollout.json")
        for token in [1000, 511] {
            let out = scratch.file("r\(token).npy")
            let r = try Run(
                ["rollout", file, "--view", "row", "--token", "\(token)", "--max-memory", "12M", "-o", out, "-q"])
            #expect(r.status == 0, "\(r.stderr)")
            let got = try readFloat32NPY(out)
            #expect(got.shape == [1, 1024])
            #expect(
                maxAbsDifference(got.values.map(Double.init), expected["\(token)"].doubles) <= 1e-7, "token \(token)")
        }
        let matrix = try Run(["rollout", file, "--max-memory", "12M", "-o", scratch.file("m.npy"), "-q"])
        #expect(matrix.status == 1, "\(matrix.stderr)")
        #expect(
            matrix.stderr.contains("the full 1024 × 1024 rollout matrix through 2 layers needs")
                && matrix.stderr.contains("--view row --token i (or --view grid for a patch grid) rolls out one row"),
            "\(matrix.stderr)")
    }

    @Test(
        """
        diff of two q/k dumps under the same limit, a chunk of rows at a time: numpy's largest |A − B| (1e-6) and \
        mean row Jensen–Shannon divergence (1e-7) per head, causal against a 256-token window
        """)
    func streamedDiff() throws {
        let r = try Run(
            ["diff", Self.long("qk_2048.h5"), Self.long("qk_2048_window.h5"), "--max-memory", "12M", "--json", "-q"])
        #expect(r.status == 0, "\(r.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let expected = try Fixtures.json("synthetic/long/expected_rows.json")["diff"]
        let records = try #require(object["records"] as? [[String: Any]])
        #expect(records.count == 2)
        for record in records {
            let h = record["head"] as! Int
            let worst = try #require(record["max_abs_diff"] as? Double)
            let js = try #require(record["js_divergence"] as? Double)
            #expect(abs(worst - expected["max_abs_diff"][h].double) <= 1e-6, "head \(h): \(worst)")
            #expect(abs(js - expected["js_divergence"][h].double) <= 1e-7, "head \(h): \(js)")
        }
    }

    @Test(
        """
        a command that needs the whole layer (heatmap unpooled) under the same limit: refused, saying which commands \
        stream and that heatmap --pool does
        """
    )
    func wholeLayerRefused() throws {
        let scratch = try Scratch()
        let r = try Run(
            ["heatmap", Self.long("qk_2048.h5"), "--max-memory", "12M", "-o", scratch.file("h.png"), "-q"])
        #expect(r.status == 1, "\(r.stderr)")
        #expect(
            r.stderr.contains("for one whole layer (2 heads × 2048 × 2048) needs")
                && r.stderr.contains("stats, entropy, heads and verify read it in row blocks")
                && r.stderr.contains("heatmap --pool N (N ≥ 2) streams it, pooled"), "\(r.stderr)")
        #expect(scratch.contents.isEmpty)
    }

    @Test(
        """
        heatmap --pool 64 --max-memory 12M (below the whole layer): streamed, a 32×32 .npy whose cells are the means \
        of numpy's float64 map over 64×64 tokens, for the mean over heads and for one head
        """,
        arguments: [("mean", 0), ("1", 2)])
    func pooledHeatmap(head: String, reference: Int) throws {
        let scratch = try Scratch()
        let out = scratch.file("pooled.npy")
        let r = try Run(
            ["heatmap", Self.long("qk_2048.h5"), "--head", head, "--pool", "64", "--max-memory", "12M", "-o", out])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("pooled 64×64, 32×32 float32 values"), "\(r.stderr)")
        let (shape, values) = try readFloat32NPY(out)
        #expect(shape == [32, 32])
        let expected = try readFloat64NPY(Self.long("expected_pool64.npy"))
        #expect(expected.shape == [3, 32, 32])
        let want = Array(expected.values[(reference * 1024)..<((reference + 1) * 1024)])
        // float32 probabilities (a few ulps from float64's) summed in float64 over up to 4096 values per cell, and
        // the mean rounded once to float32: within 1e-6 relative.
        let worst = zip(values, want).map { abs(Double($0) - $1) / Swift.max(abs($1), 1e-6) }.max()!
        #expect(worst <= 1e-6, "largest relative difference \(worst)")
    }

    @Test("heatmap --head max --pool under the same limit: refused in one line, naming --head mean and --head H")
    func pooledMaximumRefused() throws {
        let scratch = try Scratch()
        let r = try Run(
            [
                "heatmap", Self.long("qk_2048.h5"), "--head", "max", "--pool", "64", "--max-memory", "12M", "-o",
                scratch.file("h.npy"), "-q"
            ])
        #expect(r.status == 1, "\(r.stderr)")
        #expect(r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
        #expect(
            r.stderr.contains("--head max reads the whole layer")
                && r.stderr.contains("--head mean or --head H stream it, pooled"), "\(r.stderr)")
        #expect(scratch.contents.isEmpty)
    }

    @Test("heatmap --head max --pool within the limit: the whole layer's maximum over heads, pooled")
    func pooledMaximum() throws {
        let scratch = try Scratch()
        var maps: [[Float]] = []
        for head in ["max", "mean"] {
            let out = scratch.file("\(head).npy")
            let r = try Run(["heatmap", Self.long("qk_2048.h5"), "--head", head, "--pool", "64", "-o", out, "-q"])
            #expect(r.status == 0, "\(r.stderr)")
            let (shape, values) = try readFloat32NPY(out)
            #expect(shape == [32, 32])
            maps.append(values)
        }
        // The mean of a cell's maxima over heads is at least the mean of its means.
        #expect(zip(maps[0], maps[1]).allSatisfy { $0 >= $1 * (1 - 1e-6) })
    }

    @Test(
        """
        heatmap of 2049 tokens without --pool: pooled 2×2 to 1025 × 1025 cells (the last row and column of cells \
        holding one token), said on stderr, the cells numpy's
        """
    )
    func defaultPooling() throws {
        let scratch = try Scratch()
        let out = scratch.file("default.npy")
        let r = try Run(["heatmap", Self.long("qk_2049.h5"), "-o", out])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(
            r.stderr.contains("qk_2049.h5: 2049 × 2049 pooled 2×2 to 1025 × 1025 cells (mean); --pool N to choose"),
            "\(r.stderr)")
        let (shape, values) = try readFloat32NPY(out)
        #expect(shape == [1025, 1025])
        for cell in try Fixtures.json("synthetic/long/expected.json")["qk_2049.h5"]["pool2"].array {
            let (i, j, want) = (cell[0].int, cell[1].int, cell[2].double)
            let got = Double(values[i * 1025 + j])
            #expect(abs(got - want) <= 1e-6 * want, "cell \(i), \(j): \(got) vs \(want)")
        }
    }

    @Test(
        """
        heatmap pooled to .svg: labelled with the tokens each cell holds (0–63, ...); too many cells for SVG refused \
        before anything is computed, naming a --pool that fits
        """
    )
    func pooledSVG() throws {
        let scratch = try Scratch()
        let out = scratch.file("pooled.svg")
        let r = try Run(["heatmap", Self.long("qk_2048.h5"), "--pool", "64", "--max-memory", "12M", "-o", out])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("32×32 cells labelled with the positions of the cells"), "\(r.stderr)")
        let svg = try String(contentsOfFile: out, encoding: .utf8)
        #expect(svg.contains(">0–63</text>") && svg.contains(">1984–2047</text>") && svg.contains("0–63 → 64–127: "))
        let big = try Run(["heatmap", Self.long("qk_2049.h5"), "-o", scratch.file("big.svg"), "-q"])
        #expect(big.status == 1)
        #expect(
            big.stderr.contains("a map pooled to 1025×1025 cells is too large for SVG")
                && big.stderr.contains("--pool 3"),
            "\(big.stderr)")
        #expect(!FileManager.default.fileExists(atPath: scratch.file("big.svg")))
    }

    @Test(
        "--pool below 1, or with a montage, is a usage error",
        arguments: [["--pool", "0"], ["--pool", "2", "--head", "all"], ["--pool", "2", "--layer", "all"]])
    func poolUsage(arguments: [String]) throws {
        let scratch = try Scratch()
        let r = try Run(["heatmap", Self.long("qk_2048.h5"), "-o", scratch.file("h.png")] + arguments)
        #expect(r.status == 64, "\(r.status) \(r.stderr)")
        #expect(r.stderr.contains("--pool"), "\(r.stderr)")
    }

    @Test(
        "entropy --max-memory 12M: the layers × heads table of mean row entropies equals numpy's, as stats gives it",
        arguments: ["qk_2048.h5", "qk_2048_window.h5"])
    func streamedEntropy(file: String) throws {
        let scratch = try Scratch()
        let r = try Run(["entropy", Self.long(file), "--max-memory", "12M", "-o", scratch.file("e.npy"), "-q"])
        #expect(r.status == 0, "\(r.stderr)")
        let table = try readFloat32NPY(scratch.file("e.npy"))
        let expected = try Fixtures.json("synthetic/long/expected.json")[file]["entropy"].doubles
        #expect(table.shape == [1, expected.count], "\(table.shape)")
        for (h, want) in expected.enumerated() {
            #expect(abs(Double(table.values[h]) - want) <= 1e-5, "\(file) head \(h): \(table.values[h]) vs \(want)")
        }
    }

    @Test("verify under the same limit: every check passes, each row read in a block (causal: nothing after the query)")
    func streamedVerify() throws {
        let r = try Run(["verify", Self.long("qk_2048_window.h5"), "--max-memory", "12M", "-q"])
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        #expect(
            r.stdout.contains("PASS rows sum to 1 over the keys")
                && r.stdout.contains("PASS causal: keys after the query get no attention"), "\(r.stdout)")
    }
}
