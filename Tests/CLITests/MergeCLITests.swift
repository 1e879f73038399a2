import Testing
import Foundation
import AttnTestSupport

/// `stats --layers A:B --json` on shards of a run and `merge` of their parts: the same bytes as one run.
@Suite("Command line: stats shards (--layers) and merge")
struct MergeCLITests {
    static let minilm = Fixtures.path("real/minilm6_zen_layers_f16.h5")

    /// `stats FILE ARGS --json -q` written to `scratch`/`name`; its path.
    func part(_ scratch: Scratch, _ name: String, _ arguments: [String]) throws -> String {
        let r = try Run(["stats", Self.minilm] + arguments + ["--json", "-q"])
        #expect(r.status == 0, "\(arguments): \(r.stderr)")
        try r.stdout.write(toFile: scratch.file(name), atomically: true, encoding: .utf8)
        return scratch.file(name)
    }

    @Test(
        """
        three shards (0:2, 2:5, -1:) merged in any order give stats --json's bytes, stored attention and attention \
        recomputed from q and k (keys_received included)
        """,
        arguments: [[String](), ["--from-qk"]])
    func shardsEqualOneRun(options: [String]) throws {
        let scratch = try Scratch()
        let whole = try Run(["stats", Self.minilm, "--json", "-q"] + options)
        #expect(whole.status == 0 && whole.stdout.contains("\"keys_received\": [{\"layer\": 0"), "\(whole.stderr)")
        let parts = [
            try part(scratch, "a.json", options + ["--layers", "0:2"]),
            try part(scratch, "b.json", options + ["--layers", "2:5"]),
            try part(scratch, "c.json", options + ["--layers", "-1:"])
        ]
        for order in [[0, 1, 2], [2, 0, 1]] {
            let merged = try Run(["merge"] + order.map { parts[$0] })
            #expect(merged.status == 0 && merged.stderr.isEmpty, "\(merged.stderr)")
            #expect(merged.stdout == whole.stdout, "merge of \(order) differs from one run")
        }
    }

    @Test("layers no part holds: named on stderr, the others joined in order")
    func missingLayers() throws {
        let scratch = try Scratch()
        let a = try part(scratch, "a.json", ["--layers", ":2"]), c = try part(scratch, "c.json", ["--layers", "5:"])
        let r = try Run(["merge", c, a])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr == "attninspect: no part holds layers 2–4: the result is that of the layers the parts hold\n")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let layers = (try #require(object["records"] as? [[String: Any]])).map { $0["layer"] as! Int }
        #expect(
            layers == [
                0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5,
                5
            ])
    }

    @Test("parts that are not shards of one run: one line naming the part and why, exit 1, nothing on stdout")
    func refusals() throws {
        let scratch = try Scratch()
        let a = try part(scratch, "a.json", ["--layers", "0:3"]), b = try part(scratch, "b.json", ["--layers", "2:4"])
        let other = scratch.file("other.json")
        try Run(["stats", Fixtures.path("real/minilm6_pride_LHSS_f32.npy"), "--json", "-q"]).stdout
            .write(toFile: other, atomically: true, encoding: .utf8)
        let heads = scratch.file("heads.json")
        try Run(["heads", Self.minilm, "--json", "-q"]).stdout.write(toFile: heads, atomically: true, encoding: .utf8)
        let outliers = try part(scratch, "outliers.json", ["--layers", "3:", "--outliers"])
        let deep = scratch.file("deep.json")
        try String(repeating: "[", count: 100_000).write(toFile: deep, atomically: true, encoding: .utf8)
        let truncated = scratch.file("truncated.json")
        try String(try String(contentsOfFile: a, encoding: .utf8).dropLast(40))
            .write(toFile: truncated, atomically: true, encoding: .utf8)
        let cases: [([String], String)] = [
            ([a, b], "b.json: layer 2 is in \(a) too: the parts must hold different layers"),
            (
                [a, a],
                "a.json: layer 0 is in \(a) too: the parts must hold different layers (the same part given twice?)"
            ),
            ([a, other], "other.json: its file is \""),
            ([heads], "heads.json: a heads document: merge joins the stats --json of shards of one file"),
            ([a, outliers], "outliers.json: made with --outliers, whose outlier tokens span the layers"),
            ([deep], "deep.json: not valid JSON at byte 65: nested more than 64 deep"),
            ([truncated], "truncated.json: not valid JSON at byte"),
            ([scratch.file("none.json")], "none.json: no such file"),
            ([scratch.path], "is not a regular file: expected a stats --json document")
        ]
        for (files, message) in cases {
            let r = try Run(["merge"] + files)
            #expect(r.status == 1, "\(files): \(r.stderr)")
            #expect(r.stdout.isEmpty)
            #expect(
                r.stderr.split(separator: "\n").count == 1 && r.stderr.contains(message), "\(files): \(r.stderr)")
        }
    }

    @Test("--layers out of range or empty: refused, naming the dump's layers")
    func layerRanges() throws {
        for (range, message) in [
            ("4:9", "--layers 4:9 is out of range: the dump has 6 layers (0...5)"),
            ("3:3", "--layers 3:3 selects no layer of the dump's 6"), ("-7:", "--layers -7: is out of range")
        ] {
            let r = try Run(["stats", Self.minilm, "--layers", range])
            #expect(r.status == 1 && r.stderr.contains(message), "\(range): \(r.stderr)")
        }
        let bad = try Run(["stats", Self.minilm, "--layers", "2-4"])
        #expect(bad.status != 0 && bad.stderr.contains("--layers"), "\(bad.stderr)")
    }
}
