import Testing
import Foundation
import AttnCore
import AttnTestSupport

@Suite("Command line: cross-attention (queries ≠ keys)")
struct CrossAttentionCLITests {
    let text = Fixtures.path("synthetic/cross/cross_text.npz")
    let vision = Fixtures.path("synthetic/cross/cross_vision.h5")

    func expected() throws -> JSON { try Fixtures.json("synthetic/cross/expected.json") }

    @Test("stats on a 5×8 map: numpy's entropy, normalised by ln 8, first key; self and previous token are null")
    func stats() throws {
        let r = try Run(["stats", text, "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        #expect(object["queries"] as? Int == 5 && object["keys"] as? Int == 8)
        let e = try expected()["cross_text"]["stats"]
        for record in try #require(object["records"] as? [[String: Any]]) {
            let l = record["layer"] as! Int, h = record["head"] as! Int
            for key in ["entropy", "normalized_entropy", "first_token", "min", "max", "mean"] {
                #expect(abs((record[key] as! Double) - e[key][l][h].double) < 1e-6, "\(key)[\(l)][\(h)]")
            }
            #expect(record["self"] is NSNull && record["previous_token"] is NSNull)
        }
    }

    @Test("heatmap to .npy and .svg: the 5×8 head mean, queries and keys labelled with their own tokens")
    func heatmap() throws {
        let scratch = try Scratch()
        #expect(try Run(["heatmap", text, "-o", scratch.file("m.npy")]).status == 0)
        let m = try readFloat32NPY(scratch.file("m.npy"))
        #expect(m.shape == [5, 8])
        #expect(
            maxAbsDifference(
                m.values.map(Double.init), try expected()["cross_text"]["layer1_mean"].doubles2D.flatMap { $0 }) < 1e-7)
        #expect(try Run(["heatmap", text, "-o", scratch.file("m.svg")]).status == 0)
        let svg = try String(contentsOfFile: scratch.file("m.svg"), encoding: .utf8)
        #expect(svg.contains(">chat</text>") && svg.contains(">asleep</text>") && svg.contains(">mats</text>"))
    }

    @Test("tokens shows the keys' own labels; info lists both sets")
    func labels() throws {
        let r = try Run(["tokens", text, "--query", "2"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(
            r.stdout.hasPrefix("[CLS] (") && r.stdout.contains("asleep (") && !r.stdout.contains("dort ("),
            "\(r.stdout)")
        let info = try Run(["info", text])
        #expect(info.stdout.contains("key tokens (8): \"[CLS]\" \"the\""), "\(info.stdout)")
    }

    @Test("grid --token 2: a text query's attention over an image's 3×4 patches")
    func grid() throws {
        let scratch = try Scratch()
        let r = try Run(["grid", vision, "--token", "2", "-o", scratch.file("g.npy")])
        #expect(r.status == 0, "\(r.stderr)")
        let g = try readFloat32NPY(scratch.file("g.npy"))
        #expect(g.shape == [3, 4])
        #expect(
            maxAbsDifference(
                g.values.map(Double.init), try expected()["cross_vision"]["grid_layer1_query2"].doubles2D.flatMap { $0 }
            ) < 1e-7)
    }

    @Test(
        "rollout, gradient rollout and flow refuse cross-attention and say why; nothing is written",
        arguments: [["rollout"], ["rollout", "--gradients"], ["flow"]])
    func chained(command: [String]) throws {
        let scratch = try Scratch()
        let r = try Run(command + [text, "-o", scratch.file("x.npy"), "-q"])
        #expect(
            r.status == 1
                && r.stderr.contains("needs self-attention with queries = keys; this attention has 5 queries × 8 keys"),
            "\(r.stderr)")
        #expect(r.stderr.filter { $0 == "\n" }.count == 1)
        #expect(!FileManager.default.fileExists(atPath: scratch.file("x.npy")))
    }

    @Test(
        """
        square cross-attention, declared by key_tokens or by the attribute cross_attention: no self or previous \
        token, keys labelled as keys, no chaining
        """,
        arguments: ["cross_square.npz", "cross_square_attr.h5"])
    func square(file: String) throws {
        let path = Fixtures.path("synthetic/cross/" + file)
        let r = try Run(["stats", path, "--json", "-q"])
        #expect(r.status == 0, "\(r.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let e = try expected()["cross_square"]["stats"]
        for record in try #require(object["records"] as? [[String: Any]]) {
            let l = record["layer"] as! Int, h = record["head"] as! Int
            for key in ["entropy", "first_token", "max"] {
                #expect(abs((record[key] as! Double) - e[key][l][h].double) < 1e-6, "\(key)[\(l)][\(h)]")
            }
            #expect(record["self"] is NSNull && record["previous_token"] is NSNull, "\(record)")
        }
        let tokens = try Run(["tokens", path, "--query", "2", "-q"])
        #expect(tokens.status == 0, "\(tokens.stderr)")
        // The keys' own labels, or positions when the file has none: never the queries' labels.
        let keyLabel = file.hasSuffix(".npz") ? "sleeps (" : "#3 ("
        #expect(tokens.stdout.contains(keyLabel) && !tokens.stdout.contains("dort ("), "\(tokens.stdout)")
        let scratch = try Scratch()
        for command in [["rollout"], ["flow"]] {
            let refused = try Run(command + [path, "-o", scratch.file("x.npy"), "-q"])
            #expect(refused.status == 1 && refused.stderr.contains("this is cross-attention"), "\(refused.stderr)")
        }
        #expect(scratch.contents.isEmpty)
    }
}
