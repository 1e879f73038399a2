import Testing
import Foundation
import AttnTestSupport

@Suite("Command line: the file's causal and scale attributes steer recomputation from q and k")
struct QKAttributesCLITests {
    func path(_ name: String) -> String { Fixtures.path("synthetic/qk_attributes/\(name)") }

    /// stats --json entropies as [layer][head], after checking the run succeeded.
    func entropies(_ arguments: [String]) throws -> (entropy: [[Double]], stderr: String, source: String) {
        let r = try Run(["stats"] + arguments + ["--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        var table = [[Double]](repeating: [Double](repeating: .nan, count: 2), count: 2)
        for record in try #require(object["records"] as? [[String: Any]]) {
            table[record["layer"] as! Int][record["head"] as! Int] = record["entropy"] as! Double
        }
        return (table, r.stderr, object["source"] as? String ?? "")
    }

    func expect(_ got: [[Double]], _ key: String, _ context: String) throws {
        let want = try Fixtures.json("synthetic/qk_attributes/expected.json")[key].doubles2D
        for l in 0..<2 {
            for h in 0..<2 {
                #expect(
                    abs(got[l][h] - want[l][h]) < 1e-6,
                    "\(context): \(key)[\(l)][\(h)] \(got[l][h]) vs numpy \(want[l][h])")
            }
        }
    }

    @Test(
        """
        HDF5 bool causal + scale 0.3, and safetensors metadata \"true\"/\"0.3\": numpy's causal \
        softmax(q·kᵀ·0.3); the note names both
        """
    )
    func fromAttributes() throws {
        for file in ["qk_causal_scale.h5", "qk_causal_meta.safetensors"] {
            let r = try entropies([path(file)])
            try expect(r.entropy, "causal_scale", file)
            #expect(r.source.contains("causal"), "\(r.source)")
            #expect(
                r.stderr.contains("the file's causal and scale 0.3 (override with --no-causal or --scale)"),
                "\(r.stderr)")
        }
        let int = try entropies([path("qk_causal_int.h5")])
        try expect(int.entropy, "causal_default", "int8 causal, no scale")
    }

    @Test("--no-causal and --scale override the attributes")
    func overrides() throws {
        try expect(try entropies([path("qk_causal_scale.h5"), "--no-causal"]).entropy, "plain_scale", "--no-causal")
        try expect(
            try entropies([path("qk_causal_scale.h5"), "--scale", "0.5"]).entropy, "causal_default", "--scale 1/√4")
        try expect(
            try entropies([path("qk_causal_int.h5"), "--no-causal"]).entropy, "plain_default", "int8 --no-causal")
        // An explicit flag equal to the attribute still works, and a file without attributes is unchanged.
        try expect(try entropies([path("qk_causal_int.h5"), "--causal"]).entropy, "causal_default", "--causal")
    }

    @Test("verify checks the causality the file claims")
    func verifyClaim() throws {
        let r = try Run(["verify", path("qk_causal_scale.h5")])
        #expect(r.status == 0 && r.stdout.contains("PASS causal: keys after the query get no attention"), "\(r.stdout)")
    }

    @Test(
        """
        an attribute that is not a boolean or not a positive number: one line naming it and the override; the \
        flag bypasses it
        """
    )
    func badAttributes() throws {
        for (file, message) in [
            (
                "qk_bad_causal.h5",
                """
                attribute causal should be true or false (or 1 or 0), found maybe; override it with --causal or \
                --no-causal
                """
            ),
            ("qk_bad_scale.h5", "attribute scale should be one positive number, found -1.0; override it with --scale")
        ] {
            let r = try Run(["stats", path(file)])
            #expect(r.status == 1 && r.stdout.isEmpty, "\(file)")
            #expect(r.stderr == "attninspect: \(path(file)): \(message)\n", "\(r.stderr)")
        }
        try expect(
            try entropies([path("qk_bad_causal.h5"), "--no-causal"]).entropy, "plain_default", "bad causal, --no-causal"
        )
        try expect(
            try entropies([path("qk_bad_scale.h5"), "--scale", "0.3"]).entropy, "plain_scale", "bad scale, --scale 0.3")
    }
}
