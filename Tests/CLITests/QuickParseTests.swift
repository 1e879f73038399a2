import Testing
import Foundation
import ArgumentParser
@testable import attninspect

/// QuickParse reads plain command lines without swift-argument-parser, which stays the definition of every
/// command. These tests hold the two together: the names, kinds and parsing strategies QuickParse knows are
/// swift-argument-parser's, and any command line QuickParse reads gives the very command swift-argument-parser
/// makes of it (when QuickParse gives up, swift-argument-parser reads it, so giving up is always allowed).
@Suite("QuickParse: the command swift-argument-parser makes, without its reflection")
struct QuickParseTests {
    /// One argument of a command as swift-argument-parser describes it (`--experimental-dump-help`).
    struct Described {
        let kind: String           // positional, option, flag
        let names: [String]        // "--long", "-s"
        let unconditional: Bool
        let isRepeating: Bool
        let allValues: [String]
    }

    static func described(_ command: String) throws -> [Described] {
        var message = ""
        do {
            _ = try AttnInspect.parseAsRoot([command, "--experimental-dump-help"])
        } catch {
            message = AttnInspect.fullMessage(for: error)
        }
        let json = try #require(try JSONSerialization.jsonObject(with: Data(message.utf8)) as? [String: Any])
        let arguments = try #require((json["command"] as? [String: Any])?["arguments"] as? [[String: Any]])
        return arguments.compactMap { a in
            let names = (a["names"] as? [[String: Any]] ?? []).map { n in
                (n["kind"] as? String == "short" ? "-" : "--") + (n["name"] as? String ?? "")
            }
            if names.contains("--help") || names.contains("--version") { return nil }
            return Described(kind: a["kind"] as? String ?? "", names: names,
                             unconditional: a["parsingStrategy"] as? String == "unconditional",
                             isRepeating: a["isRepeating"] as? Bool ?? false,
                             allValues: a["allValues"] as? [String] ?? [])
        }
    }

    /// The command as the program would run it: QuickParse's, or nil when it gives up.
    static func quick(_ arguments: [String]) -> String? {
        QuickParse.command(arguments).map { String(reflecting: $0) }
    }

    /// swift-argument-parser's command, or nil when it refuses the arguments (or prints help).
    static func full(_ arguments: [String]) -> String? {
        (try? AttnInspect.parseAsRoot(arguments)).map { String(reflecting: $0) }
    }

    /// Every subcommand's name, as swift-argument-parser knows it.
    static let commands = AttnInspect.configuration.subcommands.map { $0.configuration.commandName! }.sorted()

    /// The command type QuickParse reads `name` as (nil when it reads no plain line of it).
    static func quickType(_ name: String) -> (any QuickCommand.Type)? {
        QuickParse.command(base(name)).map { type(of: $0) as? any QuickCommand.Type } ?? nil
    }

    @Test("every subcommand is read by QuickParse, as its own type", arguments: commands)
    func everyCommand(_ name: String) throws {
        let type = try #require(Self.quickType(name), "QuickParse does not read \(name)")
        #expect(type.configuration.commandName == name)
        #expect(AttnInspect.configuration.subcommands.contains { ObjectIdentifier($0) == ObjectIdentifier(type) })
    }

    @Test("the names, kinds and parsing strategies are swift-argument-parser's", arguments: commands)
    func names(_ command: String) throws {
        let type = try #require(Self.quickType(command))
        var expected: [String] = [], found: [String] = []
        for d in try Self.described(command) {
            switch d.kind {
            case "positional": expected.append("positional\(d.isRepeating ? " repeating" : "")")
            case "option": expected.append("option \(d.names.sorted()) \(d.unconditional ? "unconditional" : "next")")
            default: expected.append("flag \(d.names.sorted())")
            }
        }
        for n in type.quickNames {
            let names = ["--" + n.long] + (n.short.map { ["-\($0)"] } ?? [])
            switch n.kind {
            case .positional: found.append(n.long == "more-files" ? "positional repeating" : "positional")
            case .option(let unconditional): found.append("option \(names.sorted()) \(unconditional ? "unconditional" : "next")")
            case .flag: found.append("flag \(names.sorted())")
            case .invertible: found += ["flag [\"--\(n.long)\"]", "flag [\"--no-\(n.long)\"]"]
            }
        }
        #expect(found.sorted() == expected.sorted())
    }

    /// A value swift-argument-parser accepts for each option without an `allValues` list.
    static let sampleValues: [String: [String]] = [
        "dataset": ["attentions", "a=b", ""], "batch": ["1", "all", "-1"], "heads": ["2", "x"], "scale": ["0.5", "-1"],
        "length": ["5", "0"], "max-memory": ["512M", "lots"], "output": ["out.png", "out.npy", "out.txt"],
        "range": ["0:1", "shared", "-1:1"], "zoom": ["4", "0"], "overlay": ["picture.png"], "alpha": ["0.3", "2"],
        "token": ["2", "-3"], "prefix": ["1"], "grid": ["3x3", "3"], "max-seconds": ["10", "-5"],
        "head-fusion": ["max", "2", "-1"], "discard-ratio": ["0.5", "1.5"], "start-layer": ["1", "-2"],
        "end-layer": ["-2", "3"], "gradient-dataset": ["grads"], "layer": ["-1", "2", "all", "0,2"], "head": ["mean", "3", "all", "-1"],
        "threshold": ["0.5"], "sink-tokens": ["3"], "patch-size": ["14"], "similarity-out": ["sim.npy"],
        "outlier-z": ["3"], "outlier-ratio": ["4"], "cls-token": ["<s>"], "sep-token": ["</s>"], "query": ["1", "-1"],
        "tolerance": ["0.01"], "qk-tolerance": ["0.02"], "width": ["80", "2"], "colormap": ["viridis", "nope"],
    ]

    /// The arguments every command line of `command` needs (its positionals and required options).
    static func base(_ command: String) -> [String] {
        switch command {
        case "diff": return [command, "a.npy", "b.npy"]
        case "rollout", "flow", "heatmap", "grid": return [command, "dump.npy", "-o", "out.png"]
        default: return [command, "dump.npy"]
        }
    }

    /// Command lines that use each option, flag and positional alone, in each spelling, and whether QuickParse
    /// must read it when swift-argument-parser does: always, but for `--option -value` of an option that
    /// does not take a value starting with a dash unconditionally (QuickParse leaves those to it).
    static func lines(_ command: String) throws -> [(line: [String], mustBeQuick: Bool)] {
        let base = base(command)
        var lines = [(base, true)]
        for d in try described(command) {
            switch d.kind {
            case "positional":
                if d.isRepeating { lines.append((base + ["more.npy", "andmore.h5"], true)) }
            case "option":
                let long = d.names.first { $0.hasPrefix("--") }!
                // The output itself is given once: the base's `-o out.png` is left out.
                let base = long == "--output" ? base.filter { $0 != "-o" && $0 != "out.png" } : base
                let values = d.allValues.isEmpty ? sampleValues[String(long.dropFirst(2)), default: ["1"]] : d.allValues + ["nonsense"]
                for value in values {
                    let separate = d.unconditional || !value.hasPrefix("-")
                    lines.append((base + [long, value], separate))
                    lines.append((base + ["\(long)=\(value)"], true))
                    if let short = d.names.first(where: { !$0.hasPrefix("--") }) { lines.append((base + [short, value], separate)) }
                }
            default:
                for name in d.names { lines.append((base + [name], true)) }
            }
        }
        return lines
    }

    @Test("each option, flag and positional alone: the same command as swift-argument-parser's, and read quickly when valid",
          arguments: commands)
    func alone(_ command: String) throws {
        for (line, mustBeQuick) in try Self.lines(command) {
            let full = Self.full(line)
            if let fast = Self.quick(line) {
                #expect(full == fast, "\(line)")
            } else if full != nil {
                #expect(!mustBeQuick, "a valid plain command line QuickParse did not read: \(line)")
            }
        }
    }

    @Test("tricky command lines: QuickParse gives up or agrees with swift-argument-parser", arguments: commands)
    func tricky(_ command: String) {
        let base = Self.base(command)
        let tricky: [[String]] = [
            [command], [command, "--help"], [command, "-h"], [command, "help"], ["help", command], [command, "--version"],
            base + ["--"], base + ["--", "-x.npy"], base + ["--nonsense"], base + ["-z"], base + ["-qq"], base + ["-q", "-q"],
            base + ["--quiet", "--quiet"], base + ["-qo", "x.png"], base + ["-o=x.png"], base + ["-ox.png"],
            base + ["--dataset"], base + ["--dataset", "-x"], base + ["--dataset", "a", "--dataset", "b"], base + ["--layer"],
            base + ["--layer", "--json"], base + ["--no-causal"], base + ["--causal", "--no-causal"], base + ["--no-causal=1"],
            base + ["--no-legend"], base + ["--legend=1"], base + ["--json", "--csv"], base + ["extra"], base + ["extra", "more"],
            base + ["-"], base + ["--max-memory", "0"], base + ["--keep-padding", "--length", "3"], base + ["--from-qk", "--dataset", "q"],
            base + ["--overlay", "p.png", "--zoom", "2"], base + ["--compat", "vit-keras", "--discard-ratio", "0.5"],
            base + ["--gradients", "--compat", "chefer"], base + ["--causal", "--scale", "0.25", "--from-qk"],
            base + ["--generate-completion-script", "bash"], base + ["--experimental-dump-help"],
        ]
        for line in tricky {
            if let fast = Self.quick(line) {
                #expect(Self.full(line) == fast, "\(line)")
            }
        }
    }

    @Test("a whole rollout command line, options in any order, is read quickly and as swift-argument-parser reads it")
    func wholeLine() throws {
        let line = ["rollout", "--head-fusion", "max", "dump.h5", "--discard-ratio=0.9", "-o", "r.npy", "--view", "matrix",
                    "--batch", "2", "--end-layer", "-2", "--start-layer", "1", "-q", "--force", "--max-memory", "2G",
                    "--max-seconds", "30", "--token", "0", "--no-causal", "--dataset", "/attn"]
        let fast = try #require(Self.quick(line))
        #expect(Self.full(line) == fast)
        let command = try #require(QuickParse.command(line) as? AttnInspect.Rollout)
        #expect(command.input.file == "dump.h5" && command.input.batch == 2 && command.input.quiet && command.input.causal == false)
        #expect(command.headFusion == .max && command.discardRatio == 0.9 && command.endLayer == -2 && command.startLayer == 1)
        #expect(command.image.output == "r.npy" && command.limit.maxSeconds == 30)
    }
}
