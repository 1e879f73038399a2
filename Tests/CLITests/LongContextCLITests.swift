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

    @Test("a command that needs the whole layer (heatmap) under the same limit: refused, saying which commands stream")
    func wholeLayerRefused() throws {
        let scratch = try Scratch()
        let r = try Run(
            ["heatmap", Self.long("qk_2048.h5"), "--max-memory", "12M", "-o", scratch.file("h.png"), "-q"])
        #expect(r.status == 1, "\(r.stderr)")
        #expect(
            r.stderr.contains("for one whole layer (2 heads × 2048 × 2048) needs")
                && r.stderr.contains("stats, entropy and verify read it in row blocks"), "\(r.stderr)")
        #expect(scratch.contents.isEmpty)
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
