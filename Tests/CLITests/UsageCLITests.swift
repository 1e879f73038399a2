import AttnTestSupport
import Foundation
import Testing

/// A bad command line: the arguments (FILE is a real dump, run in a scratch folder) and what the message names.
struct UsageCase: CustomTestStringConvertible, Sendable {
    let arguments: [String]
    let names: String
    var testDescription: String { arguments.joined(separator: " ") }
}

/// Every combination of flags that the command line alone shows to be wrong is a usage error: exit 64, an `Error:`
/// line naming the flags, the usage, nothing written. (What needs the file to be known, a layer past the end, a
/// grid that does not fit, is an error in the input, exit 1, and is tested with the commands.)
@Suite("usage errors, every one")
struct UsageCLITests {
    static let text = Fixtures.path("real/minilm6_zen_layers_f16.h5")
    static let vit = Fixtures.path("real/vits14_board_small.h5")
    static let picture = Fixtures.path("real/vits14_board_input.ppm")

    static let cases: [UsageCase] = [
        // Input options, shared by every command.
        UsageCase(arguments: ["info", text, "--keep-padding", "--length", "5"], names: "--keep-padding and --length"),
        UsageCase(arguments: ["stats", text, "--length", "0"], names: "--length must be positive"),
        UsageCase(arguments: ["stats", text, "--heads", "0"], names: "--heads must be positive"),
        UsageCase(arguments: ["stats", text, "--batch", "-1"], names: "--batch must be 0 or more"),
        UsageCase(arguments: ["stats", text, "--dataset", ""], names: "--dataset needs a name"),
        UsageCase(arguments: ["stats", text, "--from-qk", "--dataset", "attn"], names: "--from-qk"),
        UsageCase(arguments: ["stats", text, "--scale", "0"], names: "--scale must be a positive number"),
        UsageCase(arguments: ["stats", text, "--max-memory", "lots"], names: "--max-memory expects a size"),
        UsageCase(arguments: ["heatmap", text, "--batch", "all", "-o", "x.png"], names: "--batch all is for stats"),
        UsageCase(arguments: ["stats", text, "--dtype", "int8"], names: "--dtype"),
        UsageCase(
            arguments: ["stats", text, "--axes", "L,X,Q,K"],
            names: "--axes expects letters in order: L, B, H, Q, K for attention"),
        UsageCase(
            arguments: ["stats", text, "--axes", "L,H,Q,K", "--from-qk"],
            names: "--axes L,H,Q,K describes stored attention; with --from-qk give q and k's axes (L,B,S,HD"),
        UsageCase(arguments: ["stats", text, "--window", "-1"], names: "--window must be 0 (none) or more"),
        UsageCase(arguments: ["stats", text, "--window", "4", "--no-causal"], names: "it needs causal masking"),
        UsageCase(arguments: ["stats", text, "--window-layers", "even"], names: "--window-layers goes with --window"),
        UsageCase(
            arguments: ["stats", text, "--window", "4", "--window-layers", "some"], names: "--window-layers expects"),
        UsageCase(arguments: ["stats", text, "--softcap", "-2"], names: "--softcap must be 0 (none)"),
        // Report formats.
        UsageCase(arguments: ["stats", text, "--json", "--csv"], names: "--json and --csv are exclusive"),
        UsageCase(arguments: ["heads", text, "--json", "--csv"], names: "--json and --csv are exclusive"),
        UsageCase(arguments: ["diff", text, text, "--json", "--csv"], names: "--json and --csv are exclusive"),
        UsageCase(arguments: ["stats", text, "--outliers", "--csv"], names: "--outliers goes with one file"),
        UsageCase(arguments: ["stats", text, "--outliers", "--batch", "all"], names: "--outliers goes with one file"),
        UsageCase(arguments: ["stats", text, text, "--outliers"], names: "--outliers goes with one file"),
        // Pictures.
        UsageCase(arguments: ["rollout", text, "-o", "x.txt"], names: ".txt"),
        UsageCase(arguments: ["entropy", text, "-o", "x.txt"], names: ".txt"),
        UsageCase(arguments: ["diff", text, text, "-o", "x.txt"], names: ".txt"),
        UsageCase(arguments: ["heatmap", text, "--zoom", "0", "-o", "x.png"], names: "--zoom"),
        UsageCase(arguments: ["heatmap", text, "--range", "2:1", "-o", "x.png"], names: "--range"),
        UsageCase(arguments: ["heatmap", text, "--colormap", "rainbow", "-o", "x.png"], names: "--colormap"),
        UsageCase(arguments: ["heatmap", text, "--head", "all", "-o", "x.svg"], names: "a montage is a picture"),
        UsageCase(arguments: ["heatmap", text, "--head", "all", "--legend", "-o", "x.png"], names: "--range shared"),
        UsageCase(arguments: ["heatmap", text, "--overlay", picture, "-o", "x.png"], names: "--overlay"),
        UsageCase(
            arguments: ["rollout", vit, "--overlay", picture, "--view", "matrix", "-o", "x.png"], names: "--view grid"),
        UsageCase(arguments: ["rollout", vit, "--overlay", picture, "--alpha", "2", "-o", "x.png"], names: "--alpha"),
        UsageCase(arguments: ["rollout", vit, "--overlay", picture, "-o", "x.npy"], names: "--overlay"),
        UsageCase(
            arguments: ["grid", vit, "--layer", "all", "--threshold", "0.5", "-o", "x.png"], names: "--threshold"),
        UsageCase(arguments: ["grid", vit, "--threshold", "0.5", "-o", "x.svg"], names: "--threshold"),
        UsageCase(arguments: ["grid", vit, "--threshold", "0.5", "--legend", "-o", "x.png"], names: "--legend"),
        UsageCase(arguments: ["grid", vit, "--threshold", "0", "-o", "x.png"], names: "--threshold"),
        UsageCase(arguments: ["grid", vit, "--token", "-1", "-o", "x.png"], names: "--token must be 0 or more"),
        UsageCase(arguments: ["grid", vit, "--prefix", "-1", "-o", "x.png"], names: "--prefix must be 0 or more"),
        // Rollout and flow.
        UsageCase(
            arguments: ["rollout", text, "--gradients", "--compat", "chefer", "-o", "x.npy"], names: "--gradients"),
        UsageCase(arguments: ["rollout", text, "--discard-ratio", "1", "-o", "x.npy"], names: "--discard-ratio"),
        UsageCase(
            arguments: ["rollout", text, "--compat", "vit-keras", "--discard-ratio", "0.5", "-o", "x.npy"],
            names: "--compat vit-keras has no discard step"),
        UsageCase(
            arguments: ["rollout", text, "--start-layer", "3", "--end-layer", "1", "-o", "x.npy"],
            names: "--start-layer 3 comes after --end-layer 1"),
        UsageCase(
            arguments: ["rollout", text, "--start-layer", "-1", "--end-layer", "-3", "-o", "x.npy"],
            names: "--start-layer -1 comes after --end-layer -3"),
        UsageCase(
            arguments: ["rollout", text, "--compat", "chefer", "--end-layer", "0", "-o", "x.npy"],
            names: "--start-layer 1 (the default with --compat chefer) comes after --end-layer 0"),
        UsageCase(arguments: ["rollout", text, "--head-fusion", "median", "-o", "x.npy"], names: "--head-fusion"),
        UsageCase(arguments: ["flow", text, "--max-seconds", "0", "-o", "x.npy"], names: "--max-seconds"),
        // heads, show, tokens, verify.
        UsageCase(arguments: ["heads", text, "--sink-tokens", "0"], names: "--sink-tokens"),
        UsageCase(arguments: ["heads", text, "--patch-size", "0"], names: "--patch-size"),
        UsageCase(arguments: ["heads", text, "--prefix", "-1"], names: "--prefix"),
        UsageCase(arguments: ["heads", text, "--outlier-z", "nan"], names: "--outlier-z"),
        UsageCase(
            arguments: ["heads", text, "--similarity", "none", "--similarity-out", "s.png"],
            names: "--similarity none"),
        UsageCase(arguments: ["heads", text, "--similarity-out", "s.txt"], names: ".txt"),
        UsageCase(arguments: ["show", text, "--width", "3"], names: "--width"),
        UsageCase(arguments: ["tokens", text, "--color", "sometimes"], names: "--color"),
        UsageCase(arguments: ["verify", text, "--tolerance", "2"], names: "--tolerance"),
        UsageCase(arguments: ["stats", text, "--no-such-flag"], names: "--no-such-flag")
    ]

    @Test("a bad command line: exit 64, an Error: line naming the flags, nothing written", arguments: cases)
    func usage(_ usage: UsageCase) throws {
        let scratch = try Scratch()
        let r = try Run(usage.arguments, directory: scratch.path)
        #expect(r.status == 64, "\(r.stderr)")
        let first = r.stderr.split(separator: "\n").first.map(String.init) ?? ""
        #expect(first.hasPrefix("Error: ") && first.contains(usage.names), "\(r.stderr)")
        #expect(r.stderr.contains("Usage: attninspect") || r.stderr.contains("USAGE:"), "\(r.stderr)")
        #expect(r.stdout.isEmpty)
        #expect(scratch.contents.isEmpty)
    }

    @Test("--help is written for people: no internal values, each default stated once")
    func helpTexts() throws {
        for command in [
            "info", "stats", "rollout", "flow", "heads", "heatmap", "grid", "entropy", "show", "tokens", "diff",
            "verify"
        ] {
            let help = try Run([command, "--help"])
            #expect(help.status == 0)
            for shown in ["one(", "fused(", "Optional(", "all(", "MapView", "Fusion."] {
                #expect(!help.stdout.contains(shown), "\(command) --help shows \(shown)")
            }
            // An option's paragraph: its line and the indented lines under it.
            var paragraphs: [String] = []
            for line in help.stdout.split(separator: "\n", omittingEmptySubsequences: false) {
                if line.hasPrefix("  -") {
                    paragraphs.append(String(line))
                } else if line.hasPrefix("      "), !paragraphs.isEmpty {
                    paragraphs[paragraphs.count - 1] += " " + line.trimmingCharacters(in: .whitespaces)
                }
            }
            for paragraph in paragraphs where paragraph.contains("(default: ") {
                let words = paragraph.components(separatedBy: "(default: ")[0]
                #expect(
                    !words.contains("(default ") && !words.contains("; default ") && !words.contains(", default ")
                        && !words.contains("the default"),
                    "\(command): the default is stated twice: \(paragraph)")
            }
        }
    }
}
