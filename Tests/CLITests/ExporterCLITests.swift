import Testing
import Foundation
import AttnTestSupport

/// The Python exporters (`exporters/`) write dumps that attninspect reads: the dumps their self-test wrote are
/// committed in TestData/synthetic/exporters with float64 numpy answers, and, where a Python with numpy and h5py
/// is at hand, the self-test runs live against this build's binary.
@Suite("Command line: dumps written by the Python exporters")
struct ExporterCLITests {
    static let folder = "synthetic/exporters"

    /// The self-test's answers: `{tolerance, dumps: {file: entry}}`.
    func expected() throws -> (tolerance: Double, dumps: [String: JSON]) {
        let json = try Fixtures.json("\(Self.folder)/expected.json")
        let data = try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("\(Self.folder)/expected.json")))
        let names = try #require(
            (try JSONSerialization.jsonObject(with: data) as? [String: Any])?["dumps"] as? [String: Any]
        ).keys
        return (json["tolerance"].double, Dictionary(uniqueKeysWithValues: names.map { ($0, json["dumps"][$0]) }))
    }

    /// `stats --json` entropies as [layer][head] with the reported shape.
    func stats(_ file: String, _ arguments: [String]) throws -> (shape: [Int], entropy: [[Double]], std: [[Double]]) {
        let r = try Run(["stats", file, "--json"] + arguments)
        #expect(r.status == 0, "\(file) \(arguments): \(r.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let shape = ["layers", "heads", "queries", "keys"].map { object[$0] as? Int ?? -1 }
        var entropy = [[Double]](repeating: [Double](repeating: .nan, count: shape[1]), count: max(shape[0], 0)),
            std = entropy
        for record in try #require(object["records"] as? [[String: Any]]) {
            let l = record["layer"] as! Int, h = record["head"] as! Int
            entropy[l][h] = record["entropy"] as! Double
            std[l][h] = record["entropy_std"] as? Double ?? .nan
        }
        return (shape, entropy, std)
    }

    func close(_ a: [[Double]], _ b: [[Double]], _ tolerance: Double) -> Bool {
        a.count == b.count
            && zip(a, b).allSatisfy { $0.count == $1.count && zip($0, $1).allSatisfy { abs($0 - $1) <= tolerance } }
    }

    /// Labels of an `info` line such as `tokens (3): "a" "b" "c"`.
    func labels(_ info: String, line prefix: String) throws -> [String]? {
        guard let line = info.split(separator: "\n").first(where: { $0.hasPrefix(prefix) }) else { return nil }
        let list = "[" + line.split(separator: ":", maxSplits: 1)[1].split(separator: " ").joined(separator: ",") + "]"
        return try JSONSerialization.jsonObject(with: Data(list.utf8)) as? [String]
    }

    @Test(
        """
        every exported dump: shape, per-sample entropies against numpy, tokens and key tokens per sample, --batch \
        all, q/k twins
        """
    )
    func committedDumps() throws {
        let (tolerance, dumps) = try expected()
        #expect(dumps.count == 11 && tolerance <= 1e-5)
        for (name, entry) in dumps.sorted(by: { $0.key < $1.key }) {
            let file = Fixtures.path("\(Self.folder)/\(name)")
            let arguments = entry["stats_args"].strings
            let batched = !entry["batch"].isNull
            let samples = batched ? entry["batch"]["samples"].array : [entry]
            for (index, sample) in samples.enumerated() {
                let pick = batched ? ["--batch", "\(index)"] : []
                let s = try stats(file, arguments + pick)
                #expect(
                    s.shape == [entry["layers"].int, entry["heads"].int, sample["queries"].int, sample["keys"].int],
                    "\(name) \(pick): \(s.shape)")
                #expect(
                    close(s.entropy, sample["entropy"].doubles2D, tolerance),
                    "\(name) \(pick): \(s.entropy) vs numpy \(sample["entropy"].doubles2D)")
                let info = try Run(["info", file] + arguments + pick)
                #expect(info.status == 0, "\(info.stderr)")
                if !sample["tokens"].isNull {
                    #expect(
                        try labels(info.stdout, line: "tokens (") == sample["tokens"].strings,
                        "\(name) \(pick): \(info.stdout)")
                }
                if !sample["key_tokens"].isNull {
                    #expect(
                        try labels(info.stdout, line: "key tokens (") == sample["key_tokens"].strings,
                        "\(name) \(pick): \(info.stdout)")
                }
            }
            if batched {
                let all = try stats(file, arguments + ["--batch", "all"])
                #expect(
                    close(all.entropy, entry["batch"]["entropy_mean"].doubles2D, tolerance), "\(name) --batch all mean")
                #expect(close(all.std, entry["batch"]["entropy_std"].doubles2D, tolerance), "\(name) --batch all std")
                // Each sample's own real tokens (a padded batch keeps different numbers), as the exporter's numpy side
                // counted them.
                let r = try Run(["stats", file] + arguments + ["--batch", "all", "--json"])
                let object = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
                #expect(
                    object?["queries_per_sample"] as? [Int] == samples.map { $0["queries"].int },
                    "\(name): \(r.stdout.prefix(300))")
                #expect(object?["keys_per_sample"] as? [Int] == samples.map { $0["keys"].int }, "\(name)")
            }
            if !entry["from_qk_args"].isNull {
                let twin = try stats(file, entry["from_qk_args"].strings)
                #expect(
                    close(twin.entropy, entry["entropy"].doubles2D, tolerance),
                    "\(name) \(entry["from_qk_args"].strings)")
            }
        }
    }

    @Test("vision exports carry patch_grid and prefix_tokens: grid draws the declared grid without options")
    func visionAttributes() throws {
        let scratch = try Scratch()
        for (name, rows, columns) in [("hf_vit.h5", 4, 4), ("hf_deit.h5", 3, 4)] {
            let out = scratch.file("\(name).npy")
            let r = try Run(["grid", Fixtures.path("\(Self.folder)/\(name)"), "-o", out])
            #expect(r.status == 0, "\(r.stderr)")
            #expect(try readFloat32NPY(out).shape == [rows, columns], "\(name)")
        }
    }

    /// A Python 3 with numpy and h5py: $ATTNINSPECT_PYTHON, else Debian's /usr/bin/python3, else python3 on PATH.
    static let python: String? = {
        let environment = ProcessInfo.processInfo.environment
        let candidates =
            [environment["ATTNINSPECT_PYTHON"], "/usr/bin/python3"].compactMap { $0 }
            + (environment["PATH"] ?? "").split(separator: ":").map { "\($0)/python3" }
        return candidates.first { candidate in
            guard FileManager.default.isExecutableFile(atPath: candidate) else { return false }
            let process = Process()
            process.executableURL = URL(fileURLWithPath: candidate)
            process.arguments = ["-c", "import numpy, h5py"]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            guard (try? process.run()) != nil else { return false }
            process.waitUntilExit()
            return process.terminationStatus == 0
        }
    }()

    /// `make test` sets ATTNINSPECT_REQUIRE_PYTHON=1 (after installing python3-h5py), so CI cannot skip the live run.
    static let pythonRequired = ProcessInfo.processInfo.environment["ATTNINSPECT_REQUIRE_PYTHON"] == "1"

    @Test(
        """
        live: exporters/selftest.py writes fresh dumps from arrays and fake framework objects, and this binary \
        reads them all
        """,
        .enabled(if: python != nil || pythonRequired, "no Python with numpy and h5py (set ATTNINSPECT_PYTHON)"))
    func liveSelfTest() throws {
        let python = try #require(
            Self.python, "ATTNINSPECT_REQUIRE_PYTHON=1 but no Python 3 with numpy and h5py was found")
        let scratch = try Scratch()
        let script = Fixtures.root.deletingLastPathComponent().appendingPathComponent("exporters/selftest.py").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [script, scratch.path, "--attninspect", Run.binary.path]
        let out = Pipe()
        process.standardOutput = out
        process.standardError = out
        try process.run()
        let output = String(
            decoding: Descriptors.readAll([out.fileHandleForReading.fileDescriptor])?.first ?? [], as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "\(output)")
        #expect(output.contains("all checks passed (attninspect included)"), "\(output)")
        #expect(scratch.contents.filter { $0.hasSuffix(".h5") }.count == 11)
    }
}
