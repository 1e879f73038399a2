import ArgumentParser

/// Reads a plain command line without swift-argument-parser's reflection, which costs 2–4 ms at every start
/// (the Swift runtime instantiates the metadata of every property wrapper and scans the conformance
/// records for each dynamic cast): half of a small dump's whole run.
///
/// swift-argument-parser stays the definition of every command, of its help, completions, man page and
/// error messages. Each subcommand also lists its names (`QuickName`) and sets its properties from what was
/// read (`quick`); anything this reader does not fully understand makes it give up (nil), and the
/// command line then goes through swift-argument-parser as before: help, `--version`, an unknown or
/// repeated option, combined short flags, `--`, a value that does not convert, a failed `validate()`.
/// CLITests' QuickParseTests check, for every command, that the names are swift-argument-parser's and
/// that a command read here equals the one swift-argument-parser makes of the same arguments.
enum QuickParse {
    /// The command of `arguments` (without the program name), validated; nil when swift-argument-parser
    /// must read them. (A switch rather than a table of types: building the table, each command's
    /// configuration and its existential metadata, took a sixth of a parse. QuickParseTests check that every
    /// subcommand swift-argument-parser knows is here, under its own name.)
    static func command(_ arguments: [String]) -> ParsableCommand? {
        guard let name = arguments.first else { return nil }
        let rest = arguments.dropFirst()
        switch name {
        case "info": return AttnInspect.Info.quickCommand(rest)
        case "stats": return AttnInspect.Stats.quickCommand(rest)
        case "rollout": return AttnInspect.Rollout.quickCommand(rest)
        case "flow": return AttnInspect.Flow.quickCommand(rest)
        case "heads": return AttnInspect.Heads.quickCommand(rest)
        case "heatmap": return AttnInspect.Heatmap.quickCommand(rest)
        case "grid": return AttnInspect.Grid.quickCommand(rest)
        case "entropy": return AttnInspect.Entropy.quickCommand(rest)
        case "show": return AttnInspect.Show.quickCommand(rest)
        case "tokens": return AttnInspect.Tokens.quickCommand(rest)
        case "diff": return AttnInspect.Diff.quickCommand(rest)
        case "verify": return AttnInspect.Verify.quickCommand(rest)
        default: return nil
        }
    }
}

/// A subcommand that `QuickParse` can read.
protocol QuickCommand: ParsableCommand, QuickArguments {}

extension QuickCommand {
    static func quickCommand(_ arguments: ArraySlice<String>) -> ParsableCommand? {
        guard var line = QuickLine(arguments, names: quickNames) else { return nil }
        do {
            var command = try Self.quick(&line)
            guard line.isUsedUp else { return nil }
            try command.validate()
            return command
        } catch {
            return nil
        }
    }
}

/// Options whose properties `QuickParse` can set: the names they answer to, and `quick`, which makes a value
/// with every property set (an option group also validates itself, as swift-argument-parser's do).
///
/// `quick` sets the properties of `Self()` from outside an initialiser: inside one, `flag = value` would
/// make a new definition through the wrapper's `init(wrappedValue:)` instead of setting the value.
protocol QuickArguments: ParsableArguments {
    static var quickNames: [QuickName] { get }
    static func quick(_ line: inout QuickLine) throws -> Self
}

/// How one long name (without its dashes) is written on the command line.
struct QuickName: Sendable {
    enum Kind: Sendable {
        /// A value follows: `--name V` or `--name=V`; with `unconditional`, V may start with a dash
        /// (swift-argument-parser's `parsing: .unconditional`).
        case option(unconditional: Bool)
        /// `--name` alone.
        case flag
        /// `--name` or `--no-name` (`inversion: .prefixedNo`).
        case invertible
        /// The positional arguments, in order (`name` is the property's, for the tests).
        case positional
    }

    let long: String
    let short: Character?
    let kind: Kind

    static func option(_ long: String, short: Character? = nil, unconditional: Bool = false) -> QuickName {
        QuickName(long: long, short: short, kind: .option(unconditional: unconditional))
    }

    static func flag(_ long: String, short: Character? = nil) -> QuickName {
        QuickName(long: long, short: short, kind: .flag)
    }

    static func invertible(_ long: String) -> QuickName { QuickName(long: long, short: nil, kind: .invertible) }

    static func positional(_ name: String) -> QuickName { QuickName(long: name, short: nil, kind: .positional) }
}

/// One command line split by `QuickName`s: option values and flags by long name, then the positional
/// arguments in order. Each is taken once by `quick`; `isUsedUp` says whether all were.
struct QuickLine {
    /// A value that does not convert, or a positional argument missing.
    struct Unreadable: Error {}

    private var values: [String: String] = [:]
    private var flags: [String: Bool] = [:]
    private var positionals: [String] = []
    private var nextPositional = 0

    /// nil when an argument is not a plain use of `names`.
    init?(_ arguments: ArraySlice<String>, names: [QuickName]) {
        var long: [String: QuickName.Kind] = [:]
        var short: [Character: String] = [:]
        for name in names {
            long[name.long] = name.kind
            if let s = name.short { short[s] = name.long }
        }
        var rest = arguments[...]
        while let argument = rest.popFirst() {
            guard argument.hasPrefix("-") else {
                positionals.append(argument)
                continue
            }
            var name: String, attached: String?
            if argument.hasPrefix("--") {
                let body = argument.dropFirst(2)
                if let equals = body.firstIndex(of: "=") {
                    name = String(body[..<equals])
                    attached = String(body[body.index(after: equals)...])
                } else {
                    name = String(body)
                }
            } else {
                // One short name alone: `-o`, `-q` (not `-qo`, `-o=V` or `-oV`).
                guard argument.count == 2, let s = short[argument.last!] else { return nil }
                name = s
            }
            var inverted = false
            var kind = long[name]
            if kind == nil, name.hasPrefix("no-"), case .invertible? = long[String(name.dropFirst(3))], attached == nil {
                name = String(name.dropFirst(3))
                inverted = true
                kind = .invertible
            }
            switch kind {
            case .option(let unconditional)?:
                guard values[name] == nil else { return nil }
                if let attached {
                    // `--name=` is a missing value to swift-argument-parser.
                    guard !attached.isEmpty else { return nil }
                    values[name] = attached
                } else {
                    guard let value = rest.popFirst(), unconditional || !value.hasPrefix("-") else { return nil }
                    values[name] = value
                }
            case .flag?, .invertible?:
                guard attached == nil, flags[name] == nil else { return nil }
                flags[name] = !inverted
            case .positional?, nil:
                return nil
            }
        }
    }

    /// True when every value, flag and positional argument has been taken.
    var isUsedUp: Bool { values.isEmpty && flags.isEmpty && nextPositional == positionals.count }

    /// The value of `--name`, converted as swift-argument-parser does (`init(argument:)`), or nil when absent.
    mutating func value<T: ExpressibleByArgument>(_ name: String) throws -> T? {
        guard let text = values.removeValue(forKey: name) else { return nil }
        guard let value = T(argument: text) else { throw Unreadable() }
        return value
    }

    /// Whether `--name` was given.
    mutating func flag(_ name: String) -> Bool { flags.removeValue(forKey: name) ?? false }

    /// true for `--name`, false for `--no-name`, nil for neither.
    mutating func invertible(_ name: String) -> Bool? { flags.removeValue(forKey: name) }

    /// The next positional argument; throws when there is none.
    mutating func positional() throws -> String {
        guard nextPositional < positionals.count else { throw Unreadable() }
        defer { nextPositional += 1 }
        return positionals[nextPositional]
    }

    /// Every positional argument not yet taken.
    mutating func remainingPositionals() -> [String] {
        defer { nextPositional = positionals.count }
        return Array(positionals[nextPositional...])
    }
}
