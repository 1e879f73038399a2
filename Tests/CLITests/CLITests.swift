import Testing
import Foundation
import AttnCore
import AttnTestSupport

/// Runs the built `attninspect` binary.
struct Run {
    let status: Int32
    let stdout: String
    let stderr: String

    static let binary: URL = {
        // ATTNINSPECT_TEST_BINARY runs the suites against another build (CI: the release binary).
        if let path = ProcessInfo.processInfo.environment["ATTNINSPECT_TEST_BINARY"], !path.isEmpty {
            return URL(fileURLWithPath: path)
        }
        // The test bundle sits next to the executable in .build/<triple>/debug.
        var folder = Bundle.main.bundleURL
        for _ in 0..<3 {
            let candidate = folder.appendingPathComponent("attninspect")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            folder = folder.deletingLastPathComponent()
        }
        return Fixtures.root.deletingLastPathComponent().appendingPathComponent(".build/debug/attninspect")
    }()

    /// How long one run may take (ATTNINSPECT_TEST_TIMEOUT, default 300 s: debug builds under the sanitizers are slow).
    static let seconds: Double =
        ProcessInfo.processInfo.environment["ATTNINSPECT_TEST_TIMEOUT"].flatMap(Double.init) ?? 300

    init(_ arguments: [String], environment: [String: String] = [:], directory: String? = nil) throws {
        let process = Process()
        process.executableURL = Run.binary
        process.arguments = arguments
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        // Both pipes at once, with read(2) (see Descriptors), for at most `Run.seconds`: a hang is a failure, not a
        // test run that never ends.
        let outputs = Descriptors.readAll(
            [out.fileHandleForReading.fileDescriptor, err.fileHandleForReading.fileDescriptor], seconds: Run.seconds)
        // Unread pipes could keep the child writing forever: stop it before waiting.
        if outputs == nil { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        guard let outputs else {
            throw RunError(
                """
                attninspect \(arguments.joined(separator: " ")) did not finish within \(Run.seconds) s (or its \
                output could not be read)
                """
            )
        }
        status = process.terminationStatus
        stdout = String(decoding: outputs[0], as: UTF8.self)
        stderr = String(decoding: outputs[1], as: UTF8.self)
    }
}

/// A fixture of TestData/synthetic/layouts.
func layoutFixture(_ name: String) -> String { Fixtures.path("synthetic/layouts/\(name)") }

/// `attninspect stats ARGUMENTS --csv -q`, expected to succeed: its CSV, to compare two readings of the same values.
func statsCSV(_ arguments: [String], sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
    let r = try Run(["stats"] + arguments + ["--csv", "-q"])
    #expect(r.status == 0, "\(arguments): \(r.stderr)", sourceLocation: sourceLocation)
    return r.stdout
}

struct RunError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A fresh folder for outputs, removed afterwards.
final class Scratch {
    let path = NSTemporaryDirectory() + "attninspect-cli-" + UUID().uuidString
    init() throws { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) }
    deinit { try? FileManager.default.removeItem(atPath: path) }
    func file(_ name: String) -> String { path + "/" + name }
    var contents: [String] { (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? [] }
}

func readNetpbm(_ path: String) throws -> (magic: String, width: Int, height: Int, pixels: [UInt8]) {
    let data = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    var fields: [String] = [], current = "", index = 0
    while fields.count < 4 && index < data.count {
        let c = data[index]; index += 1
        if c == 0x20 || c == 0x0A {
            if !current.isEmpty { fields.append(current); current = "" }
        } else {
            current.append(Character(UnicodeScalar(c)))
        }
    }
    return (fields[0], Int(fields[1])!, Int(fields[2])!, Array(data[index...]))
}

/// Reads a float32 `.npy` written by attninspect (independently of the reader module).
func readFloat32NPY(_ path: String) throws -> (shape: [Int], values: [Float]) {
    let (shape, words) = try readNPYWords(path, descr: "<f4", size: 4)
    return (shape, words.map { Float(bitPattern: UInt32($0)) })
}

/// Reads a float64 `.npy` (numpy's references beside the fixtures).
func readFloat64NPY(_ path: String) throws -> (shape: [Int], values: [Double]) {
    let (shape, words) = try readNPYWords(path, descr: "<f8", size: 8)
    return (shape, words.map { Double(bitPattern: $0) })
}

/// The shape and the little-endian elements of `size` bytes of a C-order `.npy` v1.0 of type `descr`.
private func readNPYWords(_ path: String, descr: String, size: Int) throws -> (shape: [Int], words: [UInt64]) {
    let data = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    let headerLength = Int(data[8]) | Int(data[9]) << 8
    let header = String(decoding: data[10..<(10 + headerLength)], as: UTF8.self)
    #expect(header.contains("'descr': '\(descr)'") && header.contains("'fortran_order': False"))
    let shapeText = header.components(separatedBy: "'shape': (")[1].components(separatedBy: ")")[0]
    let shape = shapeText.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
    let body = Array(data[(10 + headerLength)...])
    let words = stride(from: 0, to: body.count, by: size).map { i in
        (0..<size).reduce(UInt64(0)) { $0 | UInt64(body[i + $1]) << (8 * $1) }
    }
    return (shape, words)
}

/// Writes a little-endian float32 `.npy` of `shape` holding `value` everywhere, byte by byte (not through the
/// writer under test).
func writeFloat32NPY(_ path: String, shape: [Int], filledWith value: Float) throws {
    let shapeText = shape.map(String.init).joined(separator: ", ") + (shape.count == 1 ? "," : "")
    var header = Array("{'descr': '<f4', 'fortran_order': False, 'shape': (\(shapeText)), }".utf8)
    while (10 + header.count + 1) % 64 != 0 { header.append(0x20) }
    header.append(0x0A)
    var bytes: [UInt8] =
        [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.count & 0xFF), UInt8(header.count >> 8)] + header
    let element = withUnsafeBytes(of: value.bitPattern.littleEndian) { Array($0) }
    for _ in 0..<shape.reduce(1, *) { bytes += element }
    try Data(bytes).write(to: URL(fileURLWithPath: path))
}

@Suite("attninspect, end to end", .serialized)
struct CLITests {
    let board = Fixtures.path("real/vits14_board_small.h5")
    let pride = Fixtures.path("real/minilm6_pride_LHSS_f32.npy")
    let zen = Fixtures.path("real/minilm6_zen_layers_f16.h5")

    @Test("info: tensors, attributes and the attention view of the ViT dump")
    func infoBoard() throws {
        let r = try Run(["info", board])
        #expect(r.status == 0)
        // Four axes without an axes attribute: read as [layer, head, query, key], and said.
        let note = """
            attninspect: \(board): /attentions read as [layer, head, query, key], from its number of axes; --axes \
            B,H,Q,K for one layer of a batch (or a root attribute axes)\n
            """
        #expect(r.stdout.contains("format: HDF5"))
        #expect(r.stdout.contains("/attentions  (3, 6, 257, 257)  float16  chunked (1, 1, 257, 257), gzip level 4"))
        #expect(r.stdout.contains("patch_grid = [16, 16]"))
        #expect(r.stdout.contains("layers: 3, heads: 6, queries: 257, keys: 257"))
        #expect(r.stderr == note, "\(r.stderr)")
    }

    @Test("info: per-layer groups and token labels of the text dump")
    func infoZen() throws {
        let r = try Run(["info", zen])
        #expect(r.status == 0)
        #expect(r.stdout.contains("/layer_#/attn (6 datasets, one per layer)"))
        #expect(r.stdout.contains("tokens (26): \"[CLS]\" \"beautiful\""))
    }

    @Test("info with --from-qk: attention recomputed from q and k")
    func infoFromQK() throws {
        let r = try Run(["info", zen, "--from-qk"])
        #expect(r.status == 0)
        #expect(
            r.stdout.contains(
                """
                source: recomputed from /layer_#/q (6 datasets, one per layer) and /layer_#/k (6 datasets, one \
                per layer)\n
                """
            ))
        #expect(r.stdout.contains("softmax(Q·Kᵀ · 0.17677669529663687)"))  // 1/√32
        let stored = try Run(["info", zen])
        #expect(stored.stdout.contains("source: stored attention in /layer_#/attn (6 datasets, one per layer)\n"))
    }

    @Test("stats --json: entropy per head equals the MiniLM oracle")
    func statsJSON() throws {
        let r = try Run(["stats", pride, "--json"])
        #expect(r.status == 0)
        let object = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        #expect(object["layers"] as? Int == 6 && object["heads"] as? Int == 12 && object["queries"] as? Int == 28)
        let records = object["records"] as! [[String: Any]]
        #expect(records.count == 72)
        let oracle = try Fixtures.json("real/minilm6_pride_LHSS_f32.oracle.json")["per_head"]["mean_row_entropy_nats"]
        for record in records {
            let l = record["layer"] as! Int, h = record["head"] as! Int
            #expect(abs((record["entropy"] as! Double) - oracle[l][h].double) < 1e-6)
        }
        for key in [
            "normalized_entropy", "min", "max", "mean", "row_sum_max_dev", "first_token", "self", "previous_token",
            "nan_count", "inf_count", "negative_count"
        ] {
            #expect(records[0][key] != nil, "missing \(key)")
        }
    }

    @Test("stats --csv: a header and one row per head; a table for people by default")
    func statsCSVAndTable() throws {
        let csv = try Run(["stats", zen, "--csv", "--layer", "-1"])
        #expect(csv.status == 0)
        let lines = csv.stdout.split(separator: "\n")
        #expect(lines.count == 13)
        #expect(lines[0].hasPrefix("layer,head,entropy,normalized_entropy,min,max,mean,row_sum_max_dev"))
        #expect(lines[1].hasPrefix("5,0,"))
        let table = try Run(["stats", board])
        #expect(table.status == 0)
        #expect(table.stdout.contains("layer 2: 6 heads, 257 queries × 257 keys"))
    }

    @Test("rollout to .npy equals the Abnar rollout of the oracle")
    func rolloutNPY() throws {
        let scratch = try Scratch()
        let out = scratch.file("r.npy")
        let r = try Run(["rollout", pride, "-o", out])
        #expect(r.status == 0)
        #expect(r.stderr.contains("view: matrix"))
        let (shape, values) = try readFloat32NPY(out)
        #expect(shape == [28, 28])
        let oracle = try Fixtures.json("real/minilm6_pride_LHSS_f32.oracle.json")["rollout_abnar"]["matrix"].doubles2D
        #expect(maxAbsDifference(values.map(Double.init), oracle.flatMap { $0 }) < 2e-6)
    }

    @Test("one vision rule: a square token count without patch_grid is a sequence; --grid or the attribute make a grid")
    func visionRule() throws {
        let scratch = try Scratch()
        // One layer, one head, 50 × 50 uniform attention (1 + 7 × 7 tokens), no attributes.
        let dump = scratch.file("square.npy")
        try writeFloat32NPY(dump, shape: [1, 1, 50, 50], filledWith: 1 / 50)
        for command in ["rollout", "flow"] {
            let plain = try Run([command, dump, "-o", scratch.file("\(command).npy")])
            #expect(plain.status == 0)
            #expect(plain.stderr.contains("view: matrix (not a vision dump: the file declares no patch_grid"))
            #expect(try readFloat32NPY(scratch.file("\(command).npy")).shape == [50, 50])
            let asked = try Run([command, dump, "--grid", "7x7", "-o", scratch.file("\(command)_grid.npy")])
            #expect(asked.status == 0 && asked.stderr.contains("view: grid (--grid was given"), "\(asked.stderr)")
            #expect(try readFloat32NPY(scratch.file("\(command)_grid.npy")).shape == [7, 7])
        }
        // Asking for a grid view without saying the grid: the square is taken, and said.
        let squared = try Run(["grid", dump, "-o", scratch.file("g.npy")])
        #expect(squared.status == 0)
        #expect(
            squared.stderr.contains(
                "patch grid 7×7, the square of the 49 keys after 1 prefix token(s) (the file declares no patch_grid"),
            "\(squared.stderr)")
        #expect(try readFloat32NPY(scratch.file("g.npy")).shape == [7, 7])
        // show follows the rule: the matrix view, 50 × 50, unless --grid says the grid.
        let shown = try Run(["show", dump, "--color", "never"])
        #expect(
            shown.status == 0 && shown.stderr.contains("range") && !shown.stderr.contains("grid"), "\(shown.stderr)")
        let shownGrid = try Run(["show", dump, "--grid", "7x7", "--color", "never"])
        #expect(shownGrid.status == 0 && shownGrid.stderr.contains("→ 7×7 grid"), "\(shownGrid.stderr)")
        // heads follows the same rule: a sequence, so distances are in tokens and the default prefix is 0.
        let heads = try Run(["heads", dump, "--json"])
        #expect(heads.status == 0 && !heads.stderr.contains("patch grid"), "\(heads.stderr)")
        let distance = try JSONSerialization.jsonObject(with: Data(heads.stdout.utf8)) as? [String: Any]
        let parameters = distance?["parameters"] as? [String: Any]
        let mode = (parameters?["distance"] as? [String: Any])?["mode"] as? String
        let prefix = (parameters?["distance"] as? [String: Any])?["prefix"] as? Int
        #expect(mode == "sequence" && prefix == 0, "\(parameters ?? [:])")
        // A DINOv2-with-registers layout without attributes (CLS, 4 registers, 16 × 16 patches): the grid's error
        // suggests the prefix that leaves a square.
        let registers = scratch.file("registers.npy")
        try writeFloat32NPY(registers, shape: [1, 1, 261, 261], filledWith: 1 / 261)
        let refused = try Run(["grid", registers, "-o", scratch.file("r.npy")])
        #expect(
            refused.status == 1 && refused.stderr.contains("--prefix 5 leaves 256 keys, a 16×16 grid"),
            "\(refused.stderr)")
        #expect(try Run(["grid", registers, "--prefix", "5", "-o", scratch.file("r.npy")]).status == 0)
        // The declared grid of the ViT dump makes it a vision dump, and the reason is said.
        let vit = try Run(["rollout", board, "-o", scratch.file("b.npy")])
        #expect(vit.stderr.contains("view: grid (the file declares patch_grid"), "\(vit.stderr)")
    }

    @Test("rollout of the ViT dump defaults to the 16×16 grid and writes a coloured heatmap")
    func rolloutGridImage() throws {
        let scratch = try Scratch()
        let out = scratch.file("map.ppm")
        let r = try Run(["rollout", board, "-o", out])
        #expect(r.status == 0)
        #expect(r.stderr.contains("view: grid"))
        let image = try readNetpbm(out)
        #expect(image.magic == "P6" && image.width == 256 && image.height == 256 && image.pixels.count == 256 * 256 * 3)
        // The grid values equal the fixture script's rollout grid (as .npy, same command).
        let npy = scratch.file("map.npy")
        #expect(try Run(["rollout", board, "-o", npy]).status == 0)
        let expected = try Fixtures.json("real/vits14_board_small.expected.json")["rollout_abnar"]["cls_row_grid"]
            .doubles2D
        #expect(maxAbsDifference(try readFloat32NPY(npy).values.map(Double.init), expected.flatMap { $0 }) < 1e-6)
    }

    @Test("heatmap, grid and entropy images have the sizes asked for")
    func images() throws {
        let scratch = try Scratch()
        #expect(
            try Run(["heatmap", zen, "--layer", "0", "--head", "3", "-o", scratch.file("h.pgm"), "--zoom", "2"]).status
                == 0)
        let h = try readNetpbm(scratch.file("h.pgm"))
        #expect(h.magic == "P5" && h.width == 52 && h.height == 52)
        #expect(try Run(["grid", board, "--head", "max", "-o", scratch.file("g.pgm"), "--zoom", "1"]).status == 0)
        let g = try readNetpbm(scratch.file("g.pgm"))
        #expect(g.width == 16 && g.height == 16 && g.pixels.max() == 255 && g.pixels.min() == 0)
        let e = try Run(["entropy", zen, "-o", scratch.file("e.ppm"), "--zoom", "10", "--colormap", "magma"])
        #expect(e.status == 0)
        #expect(e.stdout.contains("layer"))
        let ei = try readNetpbm(scratch.file("e.ppm"))
        #expect(ei.width == 120 && ei.height == 60)
    }

    @Test("grid values: the last-layer CLS grid equals the fixture script's")
    func gridValues() throws {
        let scratch = try Scratch()
        #expect(try Run(["grid", board, "-o", scratch.file("g.npy")]).status == 0)
        let expected = try Fixtures.json("real/vits14_board_small.expected.json")["cls_grid_last_layer_head_mean"][
            "grid"
        ].doubles2D
        #expect(
            maxAbsDifference(try readFloat32NPY(scratch.file("g.npy")).values.map(Double.init), expected.flatMap { $0 })
                < 1e-8)
    }

    @Test("--range fixes the scale: a value at HI is white")
    func rangeOption() throws {
        let scratch = try Scratch()
        #expect(
            try Run([
                "grid", Fixtures.path("synthetic/single_f32.h5"), "--range", "0:0.001", "-o", scratch.file("g.pgm"),
                "--zoom", "1"
            ]).status == 0)
        let g = try readNetpbm(scratch.file("g.pgm"))
        #expect(g.width == 3 && g.pixels.allSatisfy { $0 == 255 })
    }

    @Test(
        "bad input files: one line on stderr naming the file, exit 1, no output file",
        arguments: [
            "synthetic/bad/truncated.npy", "synthetic/bad/header_truncated.npy", "synthetic/bad/corrupt_header.npy",
            "synthetic/bad/bad_magic.npy", "synthetic/bad/int32.npy", "synthetic/bad/complex64.npy",
            "synthetic/bad/object.npy",
            "synthetic/bad/rank1.npy", "synthetic/bad/rank6.npy", "synthetic/bad/truncated.npz",
            "synthetic/bad/not_a_dump.txt",
            "synthetic/bad/no_attention.h5", "synthetic/bad/qk_mismatch.h5", "synthetic/bad/two_candidates.npz",
            "synthetic/bad/truncated.h5", "synthetic/missing.h5"
        ])
    func badFiles(file: String) throws {
        let scratch = try Scratch()
        let path = Fixtures.path(file)
        for command in [["stats", path], ["rollout", path, "-o", scratch.file("out.ppm")]] {
            let r = try Run(command)
            #expect(r.status == 1, "\(command)")
            #expect(r.stderr.hasPrefix("attninspect: \(path): "), "\(r.stderr)")
            #expect(r.stderr.filter { $0 == "\n" }.count == 1, "\(r.stderr)")
            #expect(!r.stderr.contains("HDF5-DIAG"))
            #expect(r.stdout.isEmpty)
        }
        #expect(scratch.contents.isEmpty)
    }

    @Test(
        "out-of-range requests and misfits: exit 1 with a message that names the file",
        arguments: [
            (["heatmap", "real/minilm6_zen_layers_f16.h5", "--layer", "6"], "layer 6 is out of range"),
            (["heatmap", "real/minilm6_zen_layers_f16.h5", "--layer", "-7"], "layer -7 is out of range"),
            (["heatmap", "real/minilm6_zen_layers_f16.h5", "--head", "12"], "head 12 is out of range"),
            (["grid", "synthetic/batch_LBHQK.npy", "--batch", "3"], "--batch 3 is out of range"),
            (["grid", "real/vits14_board_small.h5", "--token", "257"], "token 257 is out of range"),
            (
                ["grid", "real/minilm6_pride_LHSS_f32.npy"],
                "not a perfect square, and the file declares no patch_grid: --prefix 3 leaves 25 keys, a 5×5 grid"
            ),
            (["grid", "real/vits14_board_small.h5", "--grid", "8x8"], "grid 8×8 holds 64 patches"),
            (["rollout", "synthetic/base_f32.npy", "--start-layer", "2", "--end-layer", "-2"], "comes after"),
            (["rollout", "synthetic/nan_inf.npy"], "NaN or infinite"),
            (
                ["heatmap", "synthetic/base_f32.npy", "--causal"],
                "--causal, --scale, --window, --softcap and --alibi apply to attention recomputed"
            ),
            (["heatmap", "synthetic/base_f32.npy", "--from-qk"], "expected datasets named q and k")
        ])
    func outOfRange(arguments: [String], message: String) throws {
        let scratch = try Scratch()
        var args = arguments
        args[1] = Fixtures.path(args[1])
        let r = try Run(args + ["-o", scratch.file("out.pgm")])
        #expect(r.status == 1, "\(r.stderr)")
        #expect(r.stderr.contains(message), "\(r.stderr)")
        #expect(r.stderr.contains(args[1]))
        #expect(scratch.contents.isEmpty)
    }

    @Test("usage errors exit 64: unknown output format, exclusive flags, a bad discard ratio")
    func usage() throws {
        let scratch = try Scratch()
        for args in [
            ["rollout", pride, "-o", scratch.file("x.jpg")], ["stats", pride, "--json", "--csv"],
            ["rollout", pride, "--discard-ratio", "1", "-o", scratch.file("x.ppm")],
            ["heatmap", pride, "--head", "avg", "-o", scratch.file("x.ppm")]
        ] {
            let r = try Run(args)
            #expect(r.status == 64, "\(args): \(r.stderr)")
            #expect(!r.stderr.isEmpty)
        }
        #expect(scratch.contents.isEmpty)
    }

    @Test("an output that cannot be written: exit 1, the output named, nothing left behind")
    func unwritable() throws {
        let scratch = try Scratch()
        let r = try Run(["rollout", pride, "-o", scratch.file("no/such/folder/r.ppm")])
        #expect(r.status == 1)
        #expect(r.stderr.contains("no/such/folder/r.ppm: cannot write"))
        #expect(scratch.contents.isEmpty)
    }

    @Test("input files are opened read-only: a read-only copy is analysed without change")
    func readOnlyInput() throws {
        let scratch = try Scratch()
        let copy = scratch.file("z.h5")
        try FileManager.default.copyItem(atPath: zen, toPath: copy)
        try FileManager.default.setAttributes([.posixPermissions: 0o444], ofItemAtPath: copy)
        let before = try Data(contentsOf: URL(fileURLWithPath: copy))
        #expect(try Run(["stats", copy]).status == 0)
        #expect(try Data(contentsOf: URL(fileURLWithPath: copy)) == before)
    }

    @Test("an output that names the input file is refused and the input is untouched")
    func outputIsInput() throws {
        let scratch = try Scratch()
        let copy = scratch.file("base.npy")
        try FileManager.default.copyItem(atPath: Fixtures.path("synthetic/base_f32.npy"), toPath: copy)
        let before = try Data(contentsOf: URL(fileURLWithPath: copy))
        let r = try Run(["heatmap", copy, "-o", copy])
        #expect(r.status == 1)
        #expect(r.stderr.contains("is an input file: refusing to overwrite it"))
        #expect(try Data(contentsOf: URL(fileURLWithPath: copy)) == before)
        #expect(scratch.contents == ["base.npy"])
    }

    @Test("a directory or a FIFO as the input: a clear error, no hang")
    func notRegularFiles() throws {
        let scratch = try Scratch()
        let directory = try Run(["info", scratch.path])
        #expect(directory.status == 1 && directory.stderr.contains("is a directory"))
        let fifo = scratch.file("pipe")
        #expect(mkfifo(fifo, 0o600) == 0)
        let r = try Run(["stats", fifo])
        #expect(r.status == 1 && r.stderr.contains("is not a regular file"))
    }

    @Test("errors about a lone .npy name the file only, not a made-up dataset")
    func loneNPYErrors() throws {
        let r = try Run(["stats", Fixtures.path("synthetic/bad/rank1.npy")])
        #expect(!r.stderr.contains("dataset"))
    }

    @Test("a batch axis is announced on stderr with the sample used")
    func batchNote() throws {
        let r = try Run(["stats", Fixtures.path("synthetic/batch_LBHQK.npy"), "--layer", "0"])
        #expect(r.status == 0)
        #expect(r.stderr.contains("batch axis of 3 samples, using sample 0"))
    }
}

@Suite("Command line: edge cases")
struct CLIEdgeCaseTests {
    @Test("negative numbers are option values, not options: --range -0.5:1, --layer -1, --scale")
    func negativeValues() throws {
        let scratch = try Scratch()
        let r = try Run([
            "heatmap", Fixtures.path("synthetic/base_f32.npy"), "--layer", "-1", "--range", "-1:1", "--zoom", "1", "-o",
            scratch.file("h.pgm")
        ])
        #expect(r.status == 0, "\(r.stderr)")
        // Values in [0, 1] on a -1...1 scale land in the upper half of the grey levels.
        let h = try readNetpbm(scratch.file("h.pgm"))
        #expect(h.width == 10 && h.pixels.allSatisfy { $0 >= 127 })
        let bad = try Run([
            "heatmap", Fixtures.path("synthetic/qk_LHSd.h5"), "--scale", "-2", "-o", scratch.file("x.pgm")
        ])
        #expect(bad.status == 64 && bad.stderr.contains("--scale must be a positive number"))
    }

    @Test("--from-qk with --dataset is a usage error")
    func fromQKWithDataset() throws {
        let r = try Run([
            "stats", Fixtures.path("synthetic/both_attn_and_qk.h5"), "--from-qk", "--dataset", "attentions"
        ])
        #expect(r.status == 64 && r.stderr.contains("--from-qk"))
    }

    @Test("an image too large for memory is refused with its size; nothing is written")
    func imageTooLarge() throws {
        let scratch = try Scratch()
        // A 300×300 map of zeros as a float32 .npy.
        let map = scratch.file("map.npy")
        try writeFloat32NPY(map, shape: [300, 300], filledWith: 0)
        let r = try Run(["heatmap", map, "--zoom", "64", "-o", scratch.file("big.ppm")])
        #expect(r.status == 1)
        #expect(r.stderr.contains("a 300×300 map at zoom 64 would be 1.0 GiB of pixels"), "\(r.stderr)")
        #expect(scratch.contents == ["map.npy"])
    }

    @Test("a layer that cannot fit in memory (heatmap unpooled): exit 1 with the estimate")
    func hugeLayer() throws {
        let scratch = try Scratch()
        let r = try Run(
            ["heatmap", Fixtures.path("synthetic/layouts/huge_qk.h5"), "--pool", "1", "-o", scratch.file("x.png")])
        #expect(r.status == 1 && r.stderr.contains("needs 8.0 TiB of memory"), "\(r.stderr)")
        #expect(scratch.contents.isEmpty)
    }

    @Test("a symbolic link as the output: the file it points to is replaced, the link and its mode stay")
    func symlinkOutput() throws {
        let scratch = try Scratch()
        let target = scratch.file("target.pgm"), link = scratch.file("link.pgm")
        // an older picture of the same kind
        try Data("P5\n1 1\n255\n\u{0}".utf8).write(to: URL(fileURLWithPath: target))
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: target)
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: target)
        let r = try Run(["heatmap", Fixtures.path("synthetic/base_f32.npy"), "--zoom", "1", "-o", link])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: link) == target)
        #expect(try readNetpbm(target).width == 10)
        let mode = try FileManager.default.attributesOfItem(atPath: target)[.posixPermissions] as? Int
        #expect(mode == 0o600)
    }

    @Test("a directory as the output: exit 1, nothing written")
    func directoryOutput() throws {
        let scratch = try Scratch()
        try FileManager.default.createDirectory(atPath: scratch.file("d.npy"), withIntermediateDirectories: false)
        let r = try Run(["heatmap", Fixtures.path("synthetic/base_f32.npy"), "-o", scratch.file("d.npy")])
        #expect(r.status == 1 && r.stderr.contains("it is a directory"), "\(r.stderr)")
        #expect(scratch.contents == ["d.npy"])
    }

    @Test("a closed stdout ends the process quietly with status 0 (no SIGPIPE death)")
    func closedPipe() throws {
        let process = Process()
        process.executableURL = Run.binary
        process.arguments = ["stats", Fixtures.path("real/minilm6_pride_LHSS_f32.npy"), "--csv", "-q"]
        let out = Pipe(), err = Pipe()
        try out.fileHandleForReading.close()  // every write to stdout now fails with EPIPE
        process.standardOutput = out
        process.standardError = err
        try process.run()
        try out.fileHandleForWriting.close()
        process.waitUntilExit()
        #expect(process.terminationReason == .exit && process.terminationStatus == 0)
        #expect(Descriptors.readAll([err.fileHandleForReading.fileDescriptor])?.first == [])
    }

    @Test(
        "corrupt npz members fail the CRC-32 check: exit 1, member named",
        arguments: ["synthetic/layouts/crc_stored.npz", "synthetic/layouts/crc_deflated.npz"])
    func crc(file: String) throws {
        let r = try Run(["stats", Fixtures.path(file)])
        #expect(
            r.status == 1 && r.stderr.contains("dataset 'attentions': member is corrupt: its CRC-32"), "\(r.stderr)")
    }
}

@Suite("Command line: portable kernels and thread counts")
struct KernelVariantTests {
    /// ATTNINSPECT_PORTABLE_KERNELS=1 forces the C kernels' portable versions (what a CPU without
    /// AVX2/FMA/F16C runs), ATTNINSPECT_NO_AVX512=1 the AVX2 ones on a CPU with AVX-512;
    /// ATTNINSPECT_THREADS sets the number of workers.
    @Test(
        "stats equal the MiniLM oracle with the portable kernels and with 1 or 3 workers",
        arguments: [
            ["ATTNINSPECT_PORTABLE_KERNELS": "1"], ["ATTNINSPECT_NO_AVX512": "1"], ["ATTNINSPECT_THREADS": "1"],
            ["ATTNINSPECT_THREADS": "3", "ATTNINSPECT_PORTABLE_KERNELS": "1"]
        ])
    func stats(environment: [String: String]) throws {
        for stem in ["real/minilm6_pride_LHSS_f32", "real/minilm6_zen_layers_f16"] {
            let file = Fixtures.path(stem + (stem.contains("pride") ? ".npy" : ".h5"))
            let r = try Run(["stats", file, "--json"], environment: environment)
            #expect(r.status == 0, "\(r.stderr)")
            let records = try #require(
                (try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])?["records"]
                    as? [[String: Any]])
            let oracle = try Fixtures.json(stem + ".oracle.json")["per_head"]
            #expect(records.count == 72)
            for record in records {
                let l = record["layer"] as! Int, h = record["head"] as! Int
                #expect(abs((record["entropy"] as! Double) - oracle["mean_row_entropy_nats"][l][h].double) < 1e-6)
                #expect(abs((record["row_sum_max_dev"] as! Double) - oracle["row_sum_max_abs_dev"][l][h].double) < 1e-7)
            }
        }
    }

    @Test("rollout and recomputed attention agree with the oracle with the portable kernels")
    func rolloutAndRecompute() throws {
        let scratch = try Scratch()
        let env = ["ATTNINSPECT_PORTABLE_KERNELS": "1"]
        let r = try Run(
            ["rollout", Fixtures.path("real/minilm6_pride_LHSS_f32.npy"), "-o", scratch.file("r.npy")], environment: env
        )
        #expect(r.status == 0, "\(r.stderr)")
        let expected = try Fixtures.json("real/minilm6_pride_LHSS_f32.oracle.json")["rollout_abnar"]["matrix"].doubles2D
        #expect(
            maxAbsDifference(try readFloat32NPY(scratch.file("r.npy")).values.map(Double.init), expected.flatMap { $0 })
                < 1e-6)
        let q = try Run(
            ["stats", Fixtures.path("real/minilm6_zen_layers_f16.h5"), "--from-qk", "--json"], environment: env)
        let fast = try Run(["stats", Fixtures.path("real/minilm6_zen_layers_f16.h5"), "--from-qk", "--json"])
        #expect(q.status == 0 && fast.status == 0)
        let a = try #require(
            (try JSONSerialization.jsonObject(with: Data(q.stdout.utf8)) as? [String: Any])?["records"]
                as? [[String: Any]])
        let b = try #require(
            (try JSONSerialization.jsonObject(with: Data(fast.stdout.utf8)) as? [String: Any])?["records"]
                as? [[String: Any]])
        for (x, y) in zip(a, b) { #expect(abs((x["entropy"] as! Double) - (y["entropy"] as! Double)) < 1e-6) }
    }
}

@Suite("Command line: PNG output")
struct PNGOutputTests {
    @Test(
        "-o x.png writes the same pixels as .ppm (colour) and, with --colormap gray, as .pgm (greyscale PNG)",
        arguments: [
            ["rollout", "real/vits14_board_small.h5"], ["heatmap", "real/minilm6_pride_LHSS_f32.npy", "--layer", "2"],
            ["grid", "real/vits14_board_small.h5", "--head", "3"], ["entropy", "real/minilm6_zen_layers_f16.h5"]
        ])
    func samePixels(arguments: [String]) throws {
        let scratch = try Scratch()
        var args = arguments
        args[1] = Fixtures.path(args[1])
        for (png, netpbm, extra) in [("c.png", "c.ppm", [String]()), ("g.png", "g.pgm", ["--colormap", "gray"])] {
            #expect(try Run(args + extra + ["-o", scratch.file(png)]).status == 0)
            #expect(try Run(args + ["-o", scratch.file(netpbm)]).status == 0)
            let decoded = try DecodedPNG([UInt8](try Data(contentsOf: URL(fileURLWithPath: scratch.file(png)))))
            let reference = try readNetpbm(scratch.file(netpbm))
            #expect(decoded.channels == (netpbm.hasSuffix(".ppm") ? 3 : 1))
            #expect((decoded.width, decoded.height) == (reference.width, reference.height))
            #expect(decoded.pixels == reference.pixels)
        }
    }
}

@Suite("Command line: overlays")
struct OverlayCLITests {
    let board = Fixtures.path("real/vits14_board_small.h5")
    let picture = Fixtures.path("real/vits14_board_input.ppm")

    @Test("alpha 0 gives the picture; alpha 1 with nearest gives the grid zoomed 14× (224 = 16·14)")
    func ends() throws {
        let scratch = try Scratch()
        for command in ["grid", "rollout"] {
            #expect(
                try Run([command, board, "--overlay", picture, "--alpha", "0", "-o", scratch.file("a0.png")]).status
                    == 0)
            let plain = try DecodedPNG([UInt8](try Data(contentsOf: URL(fileURLWithPath: scratch.file("a0.png")))))
            #expect((plain.width, plain.height) == (224, 224))
            #expect(plain.pixels == (try readNetpbm(picture)).pixels)
            #expect(
                try Run([
                    command, board, "--overlay", picture, "--alpha", "1", "--resample", "nearest", "-o",
                    scratch.file("a1.ppm")
                ]).status == 0)
            #expect(try Run([command, board, "--zoom", "14", "-o", scratch.file("zoomed.ppm")]).status == 0)
            #expect(
                try readNetpbm(scratch.file("a1.ppm")).pixels == (try readNetpbm(scratch.file("zoomed.ppm"))).pixels)
        }
    }

    @Test(
        """
        a grid that does not fit the picture: exit 1 naming the picture and --fit stretch; stretched it has the \
        picture's size
        """
    )
    func misfit() throws {
        let scratch = try Scratch()
        let cropped = Fixtures.path("synthetic/images/board_148.ppm")
        let r = try Run(["grid", board, "--overlay", cropped, "-o", scratch.file("x.png"), "-q"])
        #expect(
            r.status == 1 && r.stderr.hasPrefix("attninspect: \(cropped): the 16×16 patch grid")
                && r.stderr.contains("--fit stretch"), "\(r.stderr)")
        #expect(scratch.contents.isEmpty)
        #expect(
            try Run(["grid", board, "--overlay", cropped, "--fit", "stretch", "-o", scratch.file("x.png")]).status == 0)
        let stretched = try DecodedPNG([UInt8](try Data(contentsOf: URL(fileURLWithPath: scratch.file("x.png")))))
        #expect((stretched.width, stretched.height) == (224, 148))
    }

    @Test("usage errors: --overlay with heatmap, rollout --view matrix, a .npy or .pgm output, --zoom, --alpha 2")
    func usage() throws {
        let scratch = try Scratch()
        for args in [
            ["heatmap", board, "--overlay", picture, "-o", scratch.file("x.png")],
            ["rollout", board, "--view", "matrix", "--overlay", picture, "-o", scratch.file("x.png")],
            ["grid", board, "--overlay", picture, "-o", scratch.file("x.npy")],
            ["grid", board, "--overlay", picture, "-o", scratch.file("x.pgm")],
            ["grid", board, "--overlay", picture, "--zoom", "2", "-o", scratch.file("x.png")],
            ["grid", board, "--overlay", picture, "--alpha", "2", "-o", scratch.file("x.png")]
        ] {
            let r = try Run(args)
            #expect(r.status == 64, "\(args): \(r.stderr)")
        }
        let missing = try Run(["grid", board, "--overlay", scratch.file("none.png"), "-o", scratch.file("x.png")])
        #expect(missing.status == 1 && missing.stderr.contains("none.png: no such file"))
        #expect(scratch.contents.isEmpty)
    }
}

@Suite("Command line: DINO masks")
struct MaskCLITests {
    let board = Fixtures.path("real/vits14_board_small.h5")

    @Test(
        """
        grid --threshold 0.6: the mask as 0/1 values equals numpy's DINO mask; as PNG, black and white; over a \
        picture, a white outline
        """
    )
    func mask() throws {
        let scratch = try Scratch()
        let r = try Run(["grid", board, "--threshold", "0.6", "-o", scratch.file("m.npy")])
        #expect(r.status == 0 && r.stderr.contains("72 of 256 patches kept"), "\(r.stderr)")
        let (shape, values) = try readFloat32NPY(scratch.file("m.npy"))
        #expect(shape == [16, 16])
        #expect(
            values.map(Double.init)
                == (try Fixtures.json("real/vits14_board_small.dino_masks.json"))["mean"]["0.6"].doubles)
        #expect(try Run(["grid", board, "--threshold", "0.6", "--zoom", "1", "-o", scratch.file("m.png")]).status == 0)
        let png = try DecodedPNG([UInt8](try Data(contentsOf: URL(fileURLWithPath: scratch.file("m.png")))))
        #expect(png.channels == 1 && png.pixels == values.map { $0 > 0 ? 255 : 0 })
        let picture = Fixtures.path("real/vits14_board_input.ppm")
        #expect(
            try Run([
                "grid", board, "--threshold", "0.6", "--overlay", picture, "--alpha", "0", "-o", scratch.file("o.ppm")
            ]).status == 0)
        let outlined = try readNetpbm(scratch.file("o.ppm")), original = try readNetpbm(picture)
        var changed = 0, white = 0
        for i in 0..<(224 * 224) where outlined.pixels[(3 * i)..<(3 * i + 3)] != original.pixels[(3 * i)..<(3 * i + 3)]
        {
            changed += 1
            if outlined.pixels[(3 * i)..<(3 * i + 3)].allSatisfy({ $0 == 255 }) { white += 1 }
        }
        #expect(changed > 0 && changed == white)
    }

    @Test("--threshold outside (0, 1] is a usage error")
    func badThreshold() throws {
        let scratch = try Scratch()
        for t in ["0", "1.5", "-0.2"] {
            #expect(try Run(["grid", board, "--threshold", t, "-o", scratch.file("m.png")]).status == 64)
        }
    }
}

@Suite("Command line: montages and legends")
struct MontageCLITests {
    let board = Fixtures.path("real/vits14_board_small.h5")

    @Test("grid --head all: 6 labelled tiles in 3 columns; each tile is that head's own picture")
    func heads() throws {
        let scratch = try Scratch()
        let r = try Run(["grid", board, "--head", "all", "-o", scratch.file("m.ppm")])
        #expect(r.status == 0 && r.stderr.contains("6 tiles of 16×16 at zoom 4"), "\(r.stderr)")
        let m = try readNetpbm(scratch.file("m.ppm"))
        #expect((m.width, m.height) == (3 * 64 + 4 * 4, 2 * (64 + 9) + 3 * 4))
        #expect(try Run(["grid", board, "--head", "4", "--zoom", "4", "-o", scratch.file("h4.ppm")]).status == 0)
        let h4 = try readNetpbm(scratch.file("h4.ppm"))
        // Head 4 is the second row's second tile: left = 4 + 64 + 4, top = 4 + (64 + 9) + 4 + 9.
        let left = 72, top = 4 + 73 + 4 + 9
        for y in 0..<64 {
            let row = Array(m.pixels[(3 * ((top + y) * m.width + left))..<(3 * ((top + y) * m.width + left + 64))])
            #expect(row == Array(h4.pixels[(3 * y * 64)..<(3 * (y + 1) * 64)]), "row \(y)")
        }
    }

    @Test("the text dump: heatmap --head all gives 12 tiles of 26×26 in 4 columns (zoom 2), --layer all 6 tiles")
    func textMontage() throws {
        let scratch = try Scratch()
        let zen = Fixtures.path("real/minilm6_zen_layers_f16.h5")
        #expect(try Run(["heatmap", zen, "--layer", "2", "--head", "all", "-o", scratch.file("h.pgm")]).status == 0)
        let heads = try readNetpbm(scratch.file("h.pgm"))
        #expect((heads.width, heads.height) == (4 * 52 + 5 * 4, 3 * (52 + 9) + 4 * 4))
        let r = try Run(["heatmap", zen, "--layer", "all", "-o", scratch.file("l.ppm")])
        #expect(r.status == 0 && r.stderr.contains("6 tiles of 26×26"), "\(r.stderr)")
        let layers = try readNetpbm(scratch.file("l.ppm"))
        #expect((layers.width, layers.height) == (3 * 52 + 4 * 4, 2 * (52 + 9) + 3 * 4))
    }

    @Test("--layer all --head all to .npy: an array [layers, heads, rows, cols] of the single grids")
    func array() throws {
        let scratch = try Scratch()
        #expect(try Run(["grid", board, "--layer", "all", "--head", "all", "-o", scratch.file("all.npy")]).status == 0)
        let all = try readFloat32NPY(scratch.file("all.npy"))
        #expect(all.shape == [3, 6, 16, 16])
        #expect(try Run(["grid", board, "--layer", "1", "--head", "5", "-o", scratch.file("one.npy")]).status == 0)
        #expect(
            Array(all.values[((1 * 6 + 5) * 256)..<((1 * 6 + 6) * 256)])
                == (try readFloat32NPY(scratch.file("one.npy"))).values)
    }

    @Test(
        """
        what the command line shows cannot be drawn is a usage error (64): a montage to .svg; --overlay only where a \
        patch grid is drawn (heatmap does not list it)
        """
    )
    func montageUsage() throws {
        let scratch = try Scratch()
        let svg = try Run(["heatmap", board, "--layer", "all", "-o", scratch.file("x.svg")])
        #expect(svg.status == 64 && svg.stderr.contains("a montage is a picture"), "\(svg.stderr)")
        #expect(scratch.contents.isEmpty)
        let heatmap = try Run(["heatmap", "--help"]), grid = try Run(["grid", "--help"])
        #expect(heatmap.status == 0 && !heatmap.stdout.contains("--overlay") && !heatmap.stdout.contains("--alpha"))
        for command in ["grid", "rollout", "flow"] {
            let help = try Run([command, "--help"])
            #expect(help.stdout.contains("--overlay") && help.stdout.contains("--fit"), "\(command)")
        }
        #expect(grid.stdout.contains("at most 256 pixels wide"))
        // The default zoom as documented: ⌊256 / 26⌋ = 9 pixels per cell, 234 pixels for 26 tokens.
        let zen = Fixtures.path("real/minilm6_zen_layers_f16.h5")
        let r = try Run(["heatmap", zen, "-o", scratch.file("z.png")])
        #expect(r.status == 0 && r.stderr.contains("at zoom 9"), "\(r.stderr)")
        let png = try DecodedPNG([UInt8](try Data(contentsOf: URL(fileURLWithPath: scratch.file("z.png")))))
        #expect(png.width == 234 && png.height == 234)
    }

    @Test("--legend on a montage needs one scale; with --range shared it is drawn")
    func legend() throws {
        let scratch = try Scratch()
        let refused = try Run(["heatmap", board, "--head", "all", "--legend", "-o", scratch.file("x.png")])
        // Known from the command line: a usage error (64), like the other bad combinations.
        #expect(refused.status == 64 && refused.stderr.contains("--range shared"))
        #expect(scratch.contents.isEmpty)
        let r = try Run([
            "heatmap", board, "--head", "all", "--legend", "--range", "shared", "-o", scratch.file("x.png")
        ])
        #expect(r.status == 0 && r.stderr.contains("one range"), "\(r.stderr)")
        let plain = try Run(["heatmap", board, "--head", "all", "--range", "shared", "-o", scratch.file("y.png")])
        #expect(plain.status == 0)
        let with = try DecodedPNG([UInt8](try Data(contentsOf: URL(fileURLWithPath: scratch.file("x.png")))))
        let without = try DecodedPNG([UInt8](try Data(contentsOf: URL(fileURLWithPath: scratch.file("y.png")))))
        #expect(with.width == without.width && with.height > without.height)
    }
}

@Suite("Command line: terminal and token views")
struct TokenViewCLITests {
    let zen = Fixtures.path("real/minilm6_zen_layers_f16.h5")

    @Test("tokens without colour: each token with the attention it receives from --query, equal to the heatmap row")
    func plainTokens() throws {
        let scratch = try Scratch()
        let r = try Run(["tokens", zen, "--layer", "2", "--query", "3"])
        #expect(r.status == 0 && !r.stdout.contains("\u{1B}"))
        #expect(r.stdout.hasPrefix("[CLS] (0.4488) beautiful (0.0620) is (0.1010) better (0.0239)"), "\(r.stdout)")
        #expect(try Run(["heatmap", zen, "--layer", "2", "-o", scratch.file("h.npy")]).status == 0)
        let row = Array((try readFloat32NPY(scratch.file("h.npy"))).values[(3 * 26)..<(4 * 26)])
        let numbers = r.stdout.split(separator: "(").dropFirst().map { Double($0.prefix { $0 != ")" })! }
        #expect(numbers.count == 26)
        for (n, v) in zip(numbers, row) { #expect(abs(n - Double(v)) <= 0.00005 + 1e-9) }
    }

    @Test("tokens with --color always: 24-bit backgrounds; NO_COLOR does not override always")
    func colourTokens() throws {
        let r = try Run(
            ["tokens", zen, "--layer", "2", "--query", "3", "--color", "always"], environment: ["NO_COLOR": "1"])
        // the row's maximum
        #expect(r.status == 0 && r.stdout.contains("\u{1B}[48;2;253;231;37m\u{1B}[38;2;0;0;0m[CLS]"), "\(r.stdout)")
        #expect(r.stdout.components(separatedBy: "\u{1B}[48;2;").count - 1 == 26)
    }

    @Test(
        "show: the ViT grid as 16 lines of half blocks at width 40 (cells repeated twice), or as a ramp without colour")
    func show() throws {
        let board = Fixtures.path("real/vits14_board_small.h5")
        let colour = try Run(["show", board, "--color", "always", "--width", "40"])
        #expect(colour.status == 0)
        let lines = colour.stdout.split(separator: "\n")
        #expect(lines.count == 16 && lines.allSatisfy { $0.filter { $0 == "\u{2580}" }.count == 32 })
        let plain = try Run(["show", board, "--width", "40"])
        #expect(
            plain.status == 0 && !plain.stdout.contains("\u{1B}") && plain.stdout.split(separator: "\n").count == 16)
        #expect(plain.stdout.contains("@@"))  // the maximum cell
        #expect(try Run(["show", zen, "--color", "never", "--width", "80"]).stdout.split(separator: "\n").count == 26)
    }

    @Test("heatmap to .svg: a rect per cell and the tokens on both axes; tokens on a file without labels: positions")
    func svg() throws {
        let scratch = try Scratch()
        #expect(try Run(["heatmap", zen, "--layer", "2", "-o", scratch.file("m.svg")]).status == 0)
        let text = try String(contentsOfFile: scratch.file("m.svg"), encoding: .utf8)
        #expect(text.components(separatedBy: "<rect x=").count - 1 == 26 * 26)
        #expect(text.contains(">complicated</text>") && text.contains(">[SEP]</text>"))
        // Without labels, tokens shows positions (and says so); the values are row 3 of the fused last layer.
        let pride = Fixtures.path("real/minilm6_pride_LHSS_f32.npy")
        let none = try Run(["tokens", pride, "--query", "3", "--color", "never"])
        #expect(none.status == 0 && none.stderr.contains("no token labels"), "\(none.stderr)")
        let shown = none.stdout.split(separator: " ").enumerated().filter { $0.offset % 2 == 0 }.map {
            String($0.element)
        }
        #expect(shown == (0..<28).map { "#\($0)" })
        let oracle = try Fixtures.json("real/minilm6_pride_LHSS_f32.oracle.json")["head_mean"]["matrices"][5]
            .doubles2D
        let printed = none.stdout.split(separator: " ").enumerated().filter { $0.offset % 2 == 1 }
            .compactMap { Double($0.element.trimmingCharacters(in: CharacterSet(charactersIn: "()\n"))) }
        #expect(printed.count == 28 && zip(printed, oracle[3]).allSatisfy { abs($0 - $1) <= 5e-5 })
    }
}

@Suite("Command line: safetensors")
struct SafetensorsCLITests {
    @Test("stats on F32 safetensors equals stats on the same values in .npy; info lists the header and metadata")
    func stats() throws {
        let a = try Run(["stats", Fixtures.path("synthetic/safetensors/base_f32.safetensors"), "--csv"])
        let b = try Run(["stats", Fixtures.path("synthetic/base_f32.npy"), "--csv"])
        #expect(a.status == 0 && a.stdout == b.stdout)
        let info = try Run(["info", Fixtures.path("synthetic/safetensors/base_bf16.safetensors")])
        #expect(
            info.stdout.contains("format: safetensors")
                && info.stdout.contains("attentions  (3, 2, 10, 10)  bfloat16  BF16, bytes 0..<1200"))
        #expect(info.stdout.contains("patch_grid = [3, 3]"))
    }

    @Test(
        "corrupt safetensors files: exit 1, one line naming the file",
        arguments: ["truncated", "offsets", "shape", "header_length", "not_json", "int64"])
    func bad(name: String) throws {
        let path = Fixtures.path("synthetic/safetensors/bad/\(name).safetensors")
        let r = try Run(["stats", path])
        #expect(
            r.status == 1 && r.stderr.hasPrefix("attninspect: \(path): ") && r.stderr.filter { $0 == "\n" }.count == 1,
            "\(r.stderr)")
    }
}

@Suite("Command line: rollout --compat")
struct CompatCLITests {
    let pride = Fixtures.path("real/minilm6_pride_LHSS_f32.npy")

    @Test(
        """
        vit-explain as written (row-j division, discard 0.9, its default max fusion and our mean and min) equals \
        the shared oracle
        """,
        arguments: [("max", [String]()), ("mean", ["--head-fusion", "mean"]), ("min", ["--head-fusion", "min"])])
    func vitExplain(fusion: String, extra: [String]) throws {
        let scratch = try Scratch()
        let r = try Run(["rollout", pride, "--compat", "vit-explain", "-o", scratch.file("r.npy")] + extra)
        #expect(r.status == 0 && r.stderr.contains("discard 0.9, as vit-explain"), "\(r.stderr)")
        let oracle = try Fixtures.json("real/minilm6_pride_LHSS_f32.oracle.json")["rollout_vit_explain"][fusion]
        let tolerance = max(1e-6, oracle["sensitivity"]["reverse_ties"]["max_abs_diff_matrix"].double)
        #expect(
            maxAbsDifference(
                try readFloat32NPY(scratch.file("r.npy")).values.map(Double.init),
                oracle["matrix"].doubles2D.flatMap { $0 }) < tolerance)
    }

    @Test(
        """
        vit-keras (whole-matrix normalisation) and chefer (rows, from layer 1) equal numpy transcriptions of \
        their code
        """,
        arguments: [("vit-keras", "vit_keras"), ("chefer", "chefer_start1")])
    func others(compat: String, key: String) throws {
        let scratch = try Scratch()
        #expect(try Run(["rollout", pride, "--compat", compat, "-o", scratch.file("r.npy")]).status == 0)
        let expected = try Fixtures.json("real/minilm6_pride_compat.expected.json")[key].doubles2D.flatMap { $0 }
        let got = try readFloat32NPY(scratch.file("r.npy")).values.map(Double.init)
        let scale = expected.map(abs).max()!
        // Relative to the largest entry: vit-keras divides by the whole sum each layer, so its entries are ~1e-9.
        #expect(maxAbsDifference(got, expected) <= 1e-5 * scale, "\(compat)")
    }

    @Test("--compat vit-keras with a discard ratio is a usage error")
    func kerasDiscard() throws {
        let scratch = try Scratch()
        #expect(
            try Run(["rollout", pride, "--compat", "vit-keras", "--discard-ratio", "0.5", "-o", scratch.file("r.npy")])
                .status == 64)
    }
}

@Suite("Command line: diff")
struct DiffCLITests {
    let a = Fixtures.path("synthetic/diff/a.npy"), b = Fixtures.path("synthetic/diff/b.npy")

    @Test("per head max |A − B| and Jensen–Shannon divergence equal numpy's; the difference map too")
    func values() throws {
        let scratch = try Scratch()
        let r = try Run(["diff", a, b, "--json", "-o", scratch.file("d.npy")])
        #expect(r.status == 0, "\(r.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let records = try #require(object["records"] as? [[String: Any]])
        let e = try Fixtures.json("synthetic/diff/expected.json")
        #expect(records.count == 6)
        for record in records {
            let l = record["layer"] as! Int, h = record["head"] as! Int
            #expect(abs((record["max_abs_diff"] as! Double) - e["max_abs_diff"][l][h].double) < 1e-7)
            #expect(abs((record["js_divergence"] as! Double) - e["js_divergence"][l][h].double) < 1e-7)
        }
        #expect(
            maxAbsDifference(
                try readFloat32NPY(scratch.file("d.npy")).values.map(Double.init),
                e["diff_last_mean"].doubles2D.flatMap { $0 }) < 1e-7)
    }

    @Test("-o naming either input is refused and the input is untouched")
    func protectsBothInputs() throws {
        let scratch = try Scratch()
        let copy = scratch.file("b.npy")
        try FileManager.default.copyItem(atPath: b, toPath: copy)
        let before = try Data(contentsOf: URL(fileURLWithPath: copy))
        let r = try Run(["diff", a, copy, "-o", copy])
        #expect(r.status == 1 && r.stderr.contains("is an input file"))
        #expect(try Data(contentsOf: URL(fileURLWithPath: copy)) == before)
    }

    @Test("a file against itself: zero everywhere; different shapes: exit 1 naming the second file")
    func edges() throws {
        let same = try Run(["diff", a, a, "--csv"])
        #expect(same.status == 0)
        for line in same.stdout.split(separator: "\n").dropFirst() { #expect(line.hasSuffix(",0.0,0.0")) }
        let other = Fixtures.path("real/minilm6_pride_LHSS_f32.npy")
        let r = try Run(["diff", a, other, "-q"])
        #expect(r.status == 1 && r.stderr.hasPrefix("attninspect: \(other): shape (6, 12, 28, 28)"), "\(r.stderr)")
    }

    @Test(
        """
        the input options apply to both files: --batch and --keep-padding choose what is read (no note then); a \
        sample out of range is an error
        """
    )
    func inputOptions() throws {
        let batch = Fixtures.path("synthetic/padding/padded_mask.npz")
        let plain = try Run(["diff", batch, batch, "--csv"])
        #expect(plain.status == 0)
        #expect(plain.stderr.contains("batch axis of 2 samples, using sample 0 (choose with --batch B)"))
        #expect(plain.stderr.contains("attention_mask keeps 6 of 8 tokens"))
        let chosen = try Run(["diff", batch, batch, "--batch", "1", "--keep-padding", "--csv"])
        #expect(chosen.status == 0 && chosen.stderr.isEmpty, "\(chosen.stderr)")
        #expect(chosen.stdout.split(separator: "\n").count == 5)  // header + 2 layers × 2 heads
        let outside = try Run(["diff", batch, batch, "--batch", "5"])
        #expect(outside.status == 1 && outside.stderr.contains("--batch 5 is out of range"), "\(outside.stderr)")
        let both = try Run(["diff", batch, batch, "--from-qk", "--dataset", "attentions"])
        #expect(both.status == 64)
    }
}

@Suite("Command line: verify")
struct VerifyCLITests {
    func verify(_ file: String, _ extra: [String] = []) throws -> Run {
        try Run(["verify", Fixtures.path(file)] + extra)
    }

    @Test(
        """
        exit status as cmp's: 1 when a check fails, 2 when the file cannot be checked (missing, not attention, \
        corrupt), the reason on one stderr line
        """
    )
    func couldNotCheck() throws {
        let failed = try verify("synthetic/nan_inf.npy")
        #expect(failed.status == 1 && failed.stdout.contains("FAIL "))
        for file in ["synthetic/missing.h5", "synthetic/bad/truncated.npy", "hostile/external_tokens.h5"] {
            let r = try verify(file)
            #expect(r.status == 2, "\(file): \(r.status) \(r.stderr)")
            #expect(
                r.stdout.isEmpty && r.stderr.hasPrefix("attninspect: ") && r.stderr.split(separator: "\n").count == 1,
                "\(file): \(r.stderr)")
        }
        #expect(try verify("synthetic/base_f32.npy", ["--tolerance", "2"]).status == 64)
    }

    @Test("the real text dump passes, including stored against recomputed from q and k (6.9e-4, as its oracle says)")
    func real() throws {
        let r = try verify("real/minilm6_zen_layers_f16.h5")
        #expect(r.status == 0, "\(r.stdout)")
        #expect(
            r.stdout.contains(
                "PASS stored attention equals softmax(q·kᵀ/√d) recomputed from q and k (max |Δ| = 6.9e-04"))
        #expect(!r.stdout.contains("FAIL") && !r.stdout.contains("3-D tensor"))
    }

    @Test("a transposed dump fails, named as transposed")
    func transposed() throws {
        let r = try verify("synthetic/verify/transposed.npy")
        #expect(
            r.status == 1 && r.stdout.contains("FAIL rows sum to 1 along the query axis")
                && r.stdout.contains("looks transposed"))
    }

    @Test("causal: a lower-triangular dump passes --causal; a full one fails it")
    func causal() throws {
        let r = try verify("synthetic/verify/causal.npy", ["--causal"])
        #expect(r.status == 0 && r.stdout.contains("PASS causal"), "\(r.stdout)")
        let plain = try verify("synthetic/verify/causal.npy")
        #expect(plain.status == 0 && plain.stdout.contains("INFO looks causal"))
        let full = try verify("synthetic/base_f32.npy", ["--causal"])
        #expect(full.status == 1 && full.stdout.contains("FAIL causal"))
    }

    @Test("logits and NaN/Inf fail with what is wrong")
    func broken() throws {
        let logits = try verify("synthetic/verify/logits.npy")
        #expect(
            logits.status == 1 && logits.stdout.contains("FAIL no negative values")
                && logits.stdout.contains("FAIL rows do not sum to 1"))
        let nan = try verify("synthetic/nan_inf.npy")
        #expect(nan.status == 1 && nan.stdout.contains("FAIL no NaN or infinite values (3 NaN, 2 infinite)"))
    }
}

@Suite("Command line: review fixes")
struct ReviewFixCLITests {
    @Test(
        """
        NaN or +inf in q·kᵀ: refused with both kernels, naming the tensor and position, not reported as NaN in \
        the file
        """,
        arguments: ["0", "1"])
    func nanQK(portable: String) throws {
        let path = Fixtures.path("synthetic/layouts/qk_nan.npz")
        let r = try Run(
            ["stats", path, "--json", "--no-causal", "-q"], environment: ["ATTNINSPECT_PORTABLE_KERNELS": portable])
        #expect(r.status == 1 && r.stdout.isEmpty)
        #expect(
            r.stderr
                == """
                attninspect: \(path): layer 0, head 0: k holds NaN or infinite values at position 3: attention \
                cannot be recomputed from it\n
                """,
            "\(r.stderr)")
    }

    @Test("a prefix beyond the keys is an error naming where it came from")
    func prefix() throws {
        let scratch = try Scratch()
        let r = try Run(["grid", Fixtures.path("synthetic/base_f32.npy"), "--prefix", "10", "-o", scratch.file("g.png")]
        )
        #expect(
            r.status == 1 && r.stderr.contains("--prefix is 10, but the attention has 10 key(s): expected 0...9"),
            "\(r.stderr)")
    }

    @Test("a mask cannot be written as SVG, or with --legend/--range without --overlay")
    func maskUsage() throws {
        let scratch = try Scratch()
        let board = Fixtures.path("real/vits14_board_small.h5")
        #expect(try Run(["grid", board, "--threshold", "0.6", "-o", scratch.file("m.svg")]).status == 64)
        #expect(try Run(["grid", board, "--threshold", "0.6", "--legend", "-o", scratch.file("m.png")]).status == 64)
    }
}

@Suite("Command line: --batch all")
struct BatchAllCLITests {
    @Test("stats --batch all: per head the mean and standard deviation (ddof 0) of numpy's per-sample entropies")
    func meanAndStd() throws {
        let r = try Run(["stats", Fixtures.path("synthetic/batch_LBHQK.npy"), "--batch", "all", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        #expect(object["samples"] as? Int == 3)
        let records = try #require(object["records"] as? [[String: Any]])
        let e = Fixtures.expected["batch_LBHQK"]
        #expect(records.count == 6)
        for record in records {
            let l = record["layer"] as! Int, h = record["head"] as! Int
            let values = (0..<3).map { e["batch\($0)_stats_entropy"][l][h].double }
            let mean = values.reduce(0, +) / 3
            let std = (values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 3).squareRoot()
            #expect(abs((record["entropy"] as! Double) - mean) < 1e-6)
            #expect(abs((record["entropy_std"] as! Double) - std) < 1e-6)
        }
    }

    @Test("stats --batch all's table drops no column of the per-layer table; ± after entropies and shares")
    func table() throws {
        let path = Fixtures.path("synthetic/batch_LBHQK.npy")
        let table = try Run(["stats", path, "--batch", "all"])
        let one = try Run(["stats", path, "--batch", "0"])
        #expect(table.status == 0 && one.status == 0)
        func header(_ text: String, from prefix: String) -> [Substring] {
            (text.split(separator: "\n").first { $0.hasPrefix(prefix) } ?? "").split(separator: " ")
        }
        let columns = header(table.stdout, from: "layer")
        #expect(
            columns == [
                "layer", "head", "entropy", "±", "norm_ent", "±", "min", "max", "mean", "row_sum_dev", "first", "±",
                "self", "±", "prev", "±", "nan", "inf", "neg"
            ])
        // Every column of one sample's table is there.
        for column in header(one.stdout, from: "head") { #expect(columns.contains(column), "\(column)") }
    }

    @Test("stats on several files: each file's records as alone, then the aggregate over all their samples")
    func severalFiles() throws {
        let base = Fixtures.path("synthetic/base_f32.npy"), batch = Fixtures.path("synthetic/batch_LBHQK.npy")
        let r = try Run(["stats", base, batch, "--batch", "all", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let files = try #require(object["files"] as? [[String: Any]])
        #expect(files.map { $0["file"] as? String } == [base, batch])
        #expect((object["failed"] as? [Any])?.isEmpty == true)
        let aggregate = try #require(object["aggregate"] as? [String: Any])
        #expect(aggregate["samples"] as? Int == 4)
        let records = try #require(aggregate["records"] as? [[String: Any]])
        #expect(records.count == 6)
        // Four samples: base.npy (no batch axis: one sample) and the three of batch_LBHQK; numpy's entropies.
        let e = Fixtures.expected
        for record in records {
            let l = record["layer"] as! Int, h = record["head"] as! Int
            let values =
                [e["base"]["stats"]["entropy"][l][h].double]
                + (0..<3).map { e["batch_LBHQK"]["batch\($0)_stats_entropy"][l][h].double }
            let mean = values.reduce(0, +) / 4
            let std = (values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 4).squareRoot()
            #expect(abs((record["entropy"] as! Double) - mean) < 1e-6)
            #expect(abs((record["entropy_std"] as! Double) - std) < 1e-6)
        }
        // The first file's own records are those of `stats base.npy` alone.
        let alone = try #require(
            try JSONSerialization.jsonObject(with: Data(try Run(["stats", base, "--json"]).stdout.utf8))
                as? [String: Any])
        var aloneFields = alone
        #expect(aloneFields.removeValue(forKey: "schema") as? String == "attninspect/1")
        #expect(NSDictionary(dictionary: files[0]).isEqual(to: aloneFields))
    }

    @Test("stats keeps going past files it cannot read, names each on stderr and exits 1; CSV is one table")
    func badFilesAmongGood() throws {
        let good = Fixtures.path("synthetic/base_f32.npy"), f16 = Fixtures.path("synthetic/base_f16.npy")
        let missing = Fixtures.path("synthetic/does_not_exist.npy"),
            truncated = Fixtures.path("synthetic/bad/truncated.h5")
        let r = try Run(["stats", good, missing, truncated, f16, "--csv"])
        #expect(r.status == 1)
        // The errors and the count, without the notes on how the good files' axes were read.
        let errors = r.stderr.split(separator: "\n").filter { !$0.contains("from its number of axes") }
        #expect(errors.count == 3, "\(r.stderr)")
        #expect(errors[0].hasPrefix("attninspect: \(missing): ") && errors[1].hasPrefix("attninspect: \(truncated): "))
        #expect(errors[2].contains("2 of 4 files could not be read"))
        let lines = r.stdout.split(separator: "\n").map {
            $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        }
        #expect(lines[0].prefix(4) == ["file", "sample", "layer", "head"])
        #expect(lines.dropFirst().allSatisfy { $0.count == lines[0].count })
        #expect(lines.filter { $0[0] == good }.count == 6 && lines.filter { $0[0] == f16 }.count == 6)
        let means = lines.filter { $0[0] == "aggregate" && $0[1] == "mean" }
        #expect(means.count == 6)
        // Aggregate mean of entropy for layer 0 head 0: numpy's float32 and float16 entropies.
        let e = Fixtures.expected
        let want = (e["base"]["stats"]["entropy"][0][0].double + e["base_f16"]["stats"]["entropy"][0][0].double) / 2
        #expect(abs(Double(means[0][4])! - want) < 1e-6)
        // Nothing readable: exit 1, nothing on stdout.
        let none = try Run(["stats", missing, truncated])
        #expect(none.status == 1 && none.stdout.isEmpty)
    }

    @Test("--batch all without a batch axis is an error; on other commands a usage error")
    func misuse() throws {
        let scratch = try Scratch()
        #expect(try Run(["stats", Fixtures.path("synthetic/base_f32.npy"), "--batch", "all"]).status == 1)
        #expect(
            try Run([
                "heatmap", Fixtures.path("synthetic/batch_LBHQK.npy"), "--batch", "all", "-o", scratch.file("x.png")
            ]).status == 64)
    }
}
