import Testing
import Foundation
import AttnTestSupport

/// `attninspect report`: the page's embedded data against the dumps' float64 oracles, its safety (no request, no
/// markup from the file), its size limit. What the page does with the data is tested in a real browser
/// (Tests/Browser/test_report.py, make test-browser).
@Suite("Command line: report")
struct ReportCLITests {
    /// The page written for `arguments`, and its embedded data.
    static func report(_ arguments: [String]) throws -> (page: String, data: [String: Any]) {
        let scratch = try Scratch()
        let out = scratch.file("r.html")
        let r = try Run(["report"] + arguments + ["-o", out])
        #expect(r.status == 0, "\(r.stderr)")
        let page = try String(contentsOfFile: out, encoding: .utf8)
        let start = try #require(page.range(of: "<script type=\"application/json\" id=\"attninspect-data\">"))
        let end = try #require(page.range(of: "</script>", range: start.upperBound..<page.endIndex))
        let json = String(page[start.upperBound..<end.lowerBound])
        #expect(json.hasPrefix("{\"schema\": \"attninspect/1\""))
        let data = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        return (page, data)
    }

    /// The embedded attention, decoded: float16 little-endian from base64.
    static func attention(_ data: [String: Any]) throws -> (shape: [Int], values: [Float]) {
        let array = try #require((data["arrays"] as? [String: Any])?["attention"] as? [String: Any])
        #expect(array["dtype"] as? String == "float16")
        let text = try #require(array["base64"] as? String)
        let bytes = try #require(Data(base64Encoded: text))
        let values = stride(from: 0, to: bytes.count, by: 2).map {
            Float(Float16(bitPattern: UInt16(bytes[$0]) | UInt16(bytes[$0 + 1]) << 8))
        }
        return (try #require(array["shape"] as? [Int]), values)
    }

    @Test("MiniLM: every layer and head embedded as stored, their mean over heads, the stats and tokens the oracle's")
    func minilm() throws {
        let (page, data) = try Self.report([Fixtures.path("real/minilm6_zen_layers_f16.h5"), "-q"])
        let oracle = try Fixtures.json("real/minilm6_zen_layers_f16.oracle.json")
        #expect(data["layers"] as? [Int] == Array(0..<6) && data["heads"] as? [Int] == Array(0..<12))
        #expect(data["queries"] as? Int == 26 && data["keys"] as? Int == 26 && data["origin"] as? String == "stored")
        #expect(data["tokens"] as? [String] == oracle["tokens"].array.map { $0.string ?? "" })
        let (shape, values) = try Self.attention(data)
        #expect(shape == [6, 12, 26, 26] && values.count == 6 * 12 * 26 * 26)
        // float16 stored, float16 embedded: the oracle's float64 mean over heads of the same values, to rounding.
        let means = oracle["head_mean"]["matrices"].array
        var worst = 0.0
        for l in 0..<6 {
            let expected = means[l].array.flatMap { $0.array.map(\.double) }
            for cell in 0..<(26 * 26) {
                let mean = (0..<12).reduce(0.0) { $0 + Double(values[(l * 12 + $1) * 676 + cell]) } / 12
                worst = max(worst, abs(mean - expected[cell]))
            }
        }
        #expect(worst < 1e-12, "max |mean − oracle| \(worst)")
        // The stats table: one row per layer and head, the entropy column the oracle's.
        let stats = try #require(data["stats"] as? [String: Any])
        let keys = try #require(stats["keys"] as? [String]), rows = try #require(stats["rows"] as? [[String: Any]])
        let column = try #require(keys.firstIndex(of: "entropy"))
        #expect(keys.first == "layer" && rows.count == 72)
        for row in rows {
            let l = row["layer"] as! Int, h = row["head"] as! Int
            let entropy = try #require((row["values"] as? [Any])?[column] as? Double)
            #expect(abs(entropy - oracle["per_head"]["mean_row_entropy_nats"][l][h].double) < 1e-6)
            #expect((row["text"] as? [String])?[column] == String(format: "%.4f", entropy))
        }
        // Nothing the page could fetch: no src or href attribute, a policy that forbids requests.
        #expect(!page.contains("src=") && !page.contains("href=") && !page.contains("@import"))
        #expect(page.contains("Content-Security-Policy\" content=\"default-src 'none';"))
    }

    @Test("the rollout at every depth: the oracle's through all layers, attninspect rollout's at each; the picture")
    func rolloutAndPicture() throws {
        let file = Fixtures.path("real/minilm6_zen_layers_f16.h5")
        let (_, data) = try Self.report([file, "-q"])
        let array = try #require((data["arrays"] as? [String: Any])?["rollout"] as? [String: Any])
        #expect(array["dtype"] as? String == "float32" && array["shape"] as? [Int] == [6, 26, 26])
        let text = try #require(array["base64"] as? String)
        let bytes = try #require(Data(base64Encoded: text))
        let values = stride(from: 0, to: bytes.count, by: 4).map { i in
            Float(bitPattern: (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[i + $1]) << (8 * $1) })
        }
        // Through all 6 layers: the oracle's float64 rollout (Abnar, mean of heads) to float32 accuracy.
        let oracle = try Fixtures.json("real/minilm6_zen_layers_f16.oracle.json")["rollout_abnar"]["matrix"].array
            .flatMap { $0.array.map(\.double) }
        let deepest = values[(5 * 676)..<(6 * 676)]
        #expect(zip(deepest, oracle).allSatisfy { abs(Double($0) - $1) < 1e-6 })
        // Each depth is what attninspect rollout --end-layer writes, value for value.
        let scratch = try Scratch()
        for depth in [0, 2, 5] {
            let out = scratch.file("r\(depth).npy")
            let r = try Run(["rollout", file, "--end-layer", "\(depth)", "-o", out, "-q"])
            #expect(r.status == 0, "\(r.stderr)")
            #expect(Array(values[(depth * 676)..<((depth + 1) * 676)]) == (try readFloat32NPY(out)).values)
        }
        // The picture given: a PNG holding the PPM's pixels.
        let (_, board) = try Self.report([
            Fixtures.path("real/vits14_board_small.h5"), "--image", Fixtures.path("real/vits14_board_input.ppm"), "-q"
        ])
        let image = try #require(board["image"] as? [String: Any])
        #expect(
            image["mime"] as? String == "image/png" && image["width"] as? Int == 224 && image["height"] as? Int == 224)
        let encoded = try #require(image["base64"] as? String)
        let png = try DecodedPNG([UInt8](try #require(Data(base64Encoded: encoded))))
        let ppm = try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("real/vits14_board_input.ppm")))
        #expect(png.channels == 3 && Array(ppm.suffix(224 * 224 * 3)) == png.pixels)
        #expect(board["patch_grid"] as? [String: Int] == ["rows": 16, "columns": 16, "prefix": 1])
    }

    @Test(
        """
        a long sequence from q and k under --max-memory 12M (below its whole layer): each head pooled while streamed, \
        numpy's 64 × 64 means; the rollout left out, said
        """)
    func longQueryKey() throws {
        let scratch = try Scratch()
        let file = Fixtures.path("synthetic/long/qk_2048.h5")
        // 2 heads × 32 × 32 cells × 2 bytes fit in 5,500 bytes of base64; 33 × 33 cells do not.
        let arguments = [file, "--max-memory", "12M", "--max-report-size", "5500"]
        let r = try Run(["report"] + arguments + ["-o", scratch.file("r.html")])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("pooled 64×64") && r.stderr.contains("the rollout view is left out"), "\(r.stderr)")
        let (_, data) = try Self.report(arguments + ["-q"])
        let (shape, values) = try Self.attention(data)
        #expect(shape == [1, 2, 32, 32] && (data["arrays"] as? [String: Any])?["rollout"] == nil)
        let expected = try readFloat64NPY(Fixtures.path("synthetic/long/expected_pool64.npy"))
        for head in 0..<2 {
            let want = expected.values[((head + 1) * 1024)..<((head + 2) * 1024)]
            let got = values[(head * 1024)..<((head + 1) * 1024)]
            // float16: within 2⁻¹¹ relative of numpy's float64 means.
            let worst = zip(got, want).map { abs(Double($0) - $1) / Swift.max(abs($1), 1e-4) }.max()!
            #expect(worst <= 1e-3, "head \(head): largest relative difference \(worst)")
        }
    }

    @Test("no labels and 1 + 4 × 4 keys, no grid declared: a patch grid inferred and said")
    func inferredGrid() throws {
        let scratch = try Scratch()
        let file = Fixtures.path("synthetic/report/vit_plain.npy")
        let r = try Run(["report", file, "-o", scratch.file("r.html")])
        #expect(r.status == 0 && r.stderr.contains("1 prefix token (CLS) and a 4×4 patch grid"), "\(r.stderr)")
        let (_, data) = try Self.report([file, "-q"])
        #expect(data["patch_grid"] as? [String: Int] == ["rows": 4, "columns": 4, "prefix": 1])
        let (_, labelled) = try Self.report([Fixtures.path("real/minilm6_zen_layers_f16.h5"), "-q"])
        #expect(labelled["patch_grid"] is NSNull)
    }

    @Test("markup and script in tokens are data: escaped in the page, the terminal's escapes for controls")
    func hostile() throws {
        let (page, data) = try Self.report([Fixtures.path("synthetic/report/hostile_tokens.h5"), "-q"])
        let written = try Fixtures.json("synthetic/report/expected.json")["hostile_tokens.h5"]["tokens"].array.map {
            $0.string ?? ""
        }
        let tokens = try #require(data["tokens"] as? [String])
        #expect(tokens[1] == written[1] && tokens[2] == written[2] && tokens[3] == written[3])
        #expect(tokens[4] == "\\u{202e}evil", "\(tokens[4])")
        for raw in ["</script><script>", "<img src=x", "<b>bold", "\u{202e}"] { #expect(!page.contains(raw), "\(raw)") }
        #expect(page.components(separatedBy: "<script").count == 3)  // the data and the page's script
    }

    @Test("--layer and --head embed one map; the stats still cover every layer")
    func selection() throws {
        let (_, data) = try Self.report([
            Fixtures.path("synthetic/report/hostile_tokens.h5"), "--layer", "-1", "--head", "0", "-q"
        ])
        #expect(data["layers"] as? [Int] == [1] && data["heads"] as? [Int] == [0])
        #expect(try Self.attention(data).shape == [1, 1, 6, 6])
        #expect(((data["stats"] as? [String: Any])?["rows"] as? [Any])?.count == 4)
    }

    @Test("over --max-report-size, text: the matrices pooled 2×2, their mean over heads the oracle's pooled, said")
    func pooled() throws {
        let scratch = try Scratch()
        let out = scratch.file("r.html")
        let r = try Run([
            "report", Fixtures.path("real/minilm6_zen_layers_f16.h5"), "--max-report-size", "100K", "-o", out
        ])
        #expect(r.status == 0 && r.stderr.contains("pooled 2×2") && r.stderr.contains("--layer N"), "\(r.stderr)")
        let (_, data) = try Self.report([
            Fixtures.path("real/minilm6_zen_layers_f16.h5"), "--max-report-size", "100K", "-q"
        ])
        let (shape, values) = try Self.attention(data)
        #expect(shape == [6, 12, 13, 13])
        let means = try Fixtures.json("real/minilm6_zen_layers_f16.oracle.json")["head_mean"]["matrices"].array
        var worst = 0.0
        for l in 0..<6 {
            let m = means[l].array.map { $0.array.map(\.double) }
            for i in 0..<13 {
                for j in 0..<13 {
                    // The oracle's mean over heads, pooled here: the mean of its 2 × 2 cell.
                    let cell =
                        (m[2 * i][2 * j] + m[2 * i][2 * j + 1] + m[2 * i + 1][2 * j] + m[2 * i + 1][2 * j + 1]) / 4
                    let got = (0..<12).reduce(0.0) { $0 + Double(values[((l * 12 + $1) * 13 + i) * 13 + j]) } / 12
                    worst = max(worst, abs(got - cell) / max(cell, 1e-3))
                }
            }
        }
        // float16 rounding of each head's pooled cell (2⁻¹¹ relative), averaged over 12 heads.
        #expect(worst < 1e-3, "max relative |Δ| \(worst)")
    }

    @Test("over --max-report-size: refused in one line naming --layer, --head and the option; nothing written")
    func tooLarge() throws {
        let scratch = try Scratch()
        let out = scratch.file("r.html")
        let r = try Run(["report", Fixtures.path("real/vits14_board_small.h5"), "--max-report-size", "1M", "-o", out])
        #expect(r.status == 1, "\(r.stderr)")
        let lines = r.stderr.split(separator: "\n").filter { !$0.contains("read as [layer") }
        #expect(
            lines.count == 1 && lines[0].contains("--layer N") && lines[0].contains("--max-report-size"), "\(lines)")
        #expect(!FileManager.default.fileExists(atPath: out))
        let usage = try Run(["report", Fixtures.path("real/vits14_board_small.h5"), "-o", scratch.file("r.png")])
        #expect(usage.status == 64 && usage.stderr.contains(".html"), "\(usage.stderr)")
    }
}
