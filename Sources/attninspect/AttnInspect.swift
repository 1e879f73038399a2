import ArgumentParser
import AttnCore
import AttnSource
import AttnRender
import AttnReader
import CAttnProcess
#if canImport(Glibc)
    import Glibc
#endif

@main
struct AttnInspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "attninspect",
        abstract: "Post-hoc analysis of transformer attention dumped to NPY, NPZ, HDF5 or safetensors.",
        discussion: """
            Attention is addressed as [layer, head, query, key]. Layers are 0-based; a negative layer \
            counts from the end (-1 = last). Exit status: 0 success, 1 error in the input or the \
            analysis, 64 usage error.
            """,
        version: "0.1.0",
        subcommands: [
            Info.self, Stats.self, Rollout.self, Flow.self, Heads.self, Heatmap.self, Grid.self, Entropy.self,
            Show.self, Tokens.self, Diff.self, Verify.self, Merge.self, Report.self
        ]
    )

    /// The process-wide policy is set here, once, and nowhere in the libraries: SIGPIPE ignored; standard
    /// descriptors that were closed reopened on /dev/null; SIGINT/SIGTERM/SIGHUP remove the temporary output
    /// (CAttnProcess/signals.c); malloc tuning (CAttnProcess/memory.c); the SIGBUS guard of mapped reads
    /// (`MappingGuard`); the worker threads started (`Workers.prepare`); and `--quiet`, `--force` and
    /// `--max-memory` handed to the console, AtomicFile and MemoryBudget.
    static func main() {
        // A closed stdout (`| head`) must end the process quietly through EPIPE, not kill it.
        signal(SIGPIPE, SIG_IGN)
        // Standard input, output and error that were closed (`>&-`) are opened on /dev/null, read-only for output:
        // the first file opened must not become "standard output", and a write to a closed stdout fails (EBADF) and
        // is reported, instead of going nowhere.
        for fd: Int32 in 0...2 where fcntl(fd, F_GETFD) < 0 && errno == EBADF {
            let opened = open("/dev/null", fd == 2 ? O_WRONLY : O_RDONLY)
            if opened >= 0 && opened != fd { dup2(opened, fd); close(opened) }
        }
        // An interrupted run leaves no temporary output behind (SIGINT, SIGTERM, SIGHUP).
        cattn_remove_temporary_on_signals()
        // Layer buffers are allocated and freed once per layer: kept in malloc's heap, they are reused
        // instead of being mapped, zero-filled and faulted in again for every layer (CAttnProcess/memory.c).
        _ = cattn_keep_freed_memory()
        // Contiguous layers are read through a mapping, guarded against SIGBUS (a file truncated meanwhile).
        MappingGuard.install()
        do {
            // Arguments are bytes: a path that is not UTF-8 keeps its bytes (PathBytes) from here to `open`.
            let arguments = (1..<Int(CommandLine.argc)).map { i in
                PathBytes.decode(
                    Array(
                        UnsafeBufferPointer(
                            start: UnsafeRawPointer(CommandLine.unsafeArgv[i]!).assumingMemoryBound(to: UInt8.self),
                            count: strlen(CommandLine.unsafeArgv[i]!))))
            }
            if let odd = unknownDashArgument(arguments) {
                // swift-argument-parser reads `-x.h5` as the short flags x . h 5, and `-h` among them prints the help.
                throw ValidationError(
                    """
                    unknown option '\(PrintableText.escaped(odd))': to name a file that starts with '-', write \
                    ./\(PrintableText.escaped(odd)) (or put -- before it)
                    """
                )
            }
            // swift-argument-parser is the only parser. A command line that names a subcommand is parsed by that
            // subcommand's type directly, which skips building the root command's arguments (1.2-1.5 ms of a 15 ms
            // small
            // rollout); anything it refuses (help, errors) is parsed again from the root, whose messages name the tool.
            var command: ParsableCommand
            if let name = arguments.first,
                let sub = configuration.subcommands.first(where: { $0.configuration.commandName == name }),
                let parsed = try? sub.parseAsRoot(Array(arguments.dropFirst())), type(of: parsed) == sub
            {
                command = parsed
            } else {
                command = try parseAsRoot(arguments)
            }
            if let options = command as? GlobalOptions {
                Console.quiet = options.isQuiet
                AtomicFile.replacesOtherKinds = options.forcesOutput
                MemoryBudget.limitOverride = options.memoryLimit
            }
            // The worker threads start while the dump is opened, and are on their cores by the first layer.
            if !(command is Info) { Workers.prepare() }
            try command.run()
        } catch let error as AttnError {
            Console.error("attninspect: \(error)")
            Glibc.exit(1)
        } catch let error as AnalysisError {
            Console.error("attninspect: \(error.message)")
            Glibc.exit(1)
        } catch {
            // swift-argument-parser's messages: help, --version and completion scripts on stdout (a failed write is an
            // error here too), usage errors on stderr with any path in them escaped.
            let code = exitCode(for: error)
            let text = fullMessage(for: error)
            if code == .success {
                if !text.isEmpty { Console.printVerbatim(text + "\n") }
            } else {
                // The message itself (which may quote a path) on one line; the usage lines after it as they are.
                let message = self.message(for: error)
                if !message.isEmpty, let range = text.firstRange(of: message) {
                    var shown = text
                    shown.replaceSubrange(range, with: PrintableText.escaped(message))
                    Console.error(shown, lines: true)
                } else if !text.isEmpty {  // an ExitCode thrown after the messages were given has none
                    Console.error(text, lines: true)
                }
            }
            Glibc.exit(code.rawValue)
        }
    }
}

/// The first argument (before `--`) that starts with one dash and holds more than letters (`-x.h5`, `-out/map.png`):
/// never short flags, and not a negative number (`-1`, `-0.5:0.5`, `-.5`). nil when there is none.
func unknownDashArgument(_ arguments: [String]) -> String? {
    for argument in arguments {
        if argument == "--" { return nil }
        guard argument.hasPrefix("-"), !argument.hasPrefix("--"), argument.count > 2 else { continue }
        let rest = argument.dropFirst()
        if let first = rest.first, first.isNumber || first == "." { continue }
        if rest.contains(where: { !($0.isASCII && $0.isLetter) }) { return argument }
    }
    return nil
}

/// Messages for people go to stderr; data goes to stdout.
enum Console {
    /// One line on stderr: names and paths from files are shown escaped (`PrintableText`), so the message stays one
    /// line and nothing in it reaches the terminal as a control sequence.
    static func error(_ message: String, lines: Bool = false) {
        Progress.clearLine()
        write(PrintableText.escaped(message, keeping: lines ? ["\n"] : []) + "\n", to: 2)
    }

    /// `--quiet`: no notes and no progress; errors still go to stderr.
    nonisolated(unsafe) static var quiet = false

    static func note(_ message: String) {
        if quiet { return }
        Progress.clearLine()
        write("attninspect: " + PrintableText.escaped(message) + "\n", to: 2)
    }

    /// Writes to stderr without a newline (progress lines).
    static func status(_ text: String) {
        write(text, to: 2)
    }

    /// Messages already given by `noteOnce` (the tool is single-threaded where it talks).
    nonisolated(unsafe) private static var given: Set<String> = []

    /// `note`, unless the same message was already given (a file reopened for each sample).
    static func noteOnce(_ message: String) {
        if given.insert(message).inserted { note(message) }
    }

    /// Data on stdout: text of lines, with anything from a file that a terminal would act on escaped
    /// (`PrintableText`; JSON and CSV escape or quote what they need before this).
    static func print(_ text: String) {
        write(PrintableText.escaped(text, keeping: ["\n"]), to: 1)
    }

    /// CSV on stdout: CR and tab inside quoted fields are data and kept; other controls are escaped as in `print`.
    static func printCSV(_ text: String) {
        write(PrintableText.escaped(text, keeping: ["\n", "\r", "\t"]), to: 1)
    }

    /// Text whose every byte is attninspect's own: a picture for the terminal with its colour escapes (its labels
    /// are escaped where they are drawn), help, completion scripts.
    static func printVerbatim(_ text: String) {
        write(text, to: 1)
    }

    /// Writes all of `text`; a closed pipe on stdout ends the process quietly. Any other failure to write standard
    /// output (a full disk, /dev/full, a closed descriptor) is an error: the data did not arrive. (A failure to write
    /// stderr has nowhere to be reported.)
    private static func write(_ text: String, to descriptor: Int32) {
        var text = text
        text.withUTF8 { bytes in
            let failure = Descriptor.writeAll(descriptor, UnsafeRawBufferPointer(bytes))
            if failure == EPIPE { Glibc.exit(0) }
            if failure != 0 && descriptor == 1 {
                error("attninspect: cannot write standard output: \(String(cString: strerror(failure)))")
                Glibc.exit(1)
            }
        }
    }
}

/// Options every command takes: `--quiet`, `--force` and (where a dump is read) `--max-memory`.
protocol GlobalOptions {
    var isQuiet: Bool { get }
    var forcesOutput: Bool { get }
    var memoryLimit: Int? { get }
}

extension GlobalOptions {
    var memoryLimit: Int? { nil }
}

/// Progress of long work on stderr, when stderr is a terminal (or ATTNINSPECT_PROGRESS=1) and not
/// `--quiet`. On a terminal: one line rewritten in place, at most ten times a second, shown only once the work has
/// taken half a second, and cleared at the end. Elsewhere (forced into a log): plain lines, one at each tenth of
/// the work, no carriage returns or escape codes.
final class Progress: @unchecked Sendable {
    private let label: String
    private var total: Int
    private var done = 0
    private let started = Progress.now()
    private var lastDrawn = 0.0
    private var lastTenth = -1
    /// Whether the line is rewritten in place (stderr is a terminal), or written as plain lines.
    private static let inPlace = isatty(2) == 1
    private let lock = Lock()
    nonisolated(unsafe) private static var lineShown = false

    /// ATTNINSPECT_PROGRESS=1 shows progress even when stderr is not a terminal, from the first step
    /// (for scripts and tests); =0 never shows it.
    static let forced: Bool? = getenv("ATTNINSPECT_PROGRESS").map { String(cString: $0) == "1" }

    static var enabled: Bool {
        if Console.quiet { return false }
        return forced ?? (isatty(2) == 1)
    }

    /// A reporter for `total` steps of `label` (or a total given later with `setTotal`), or nil when
    /// progress is not shown. Work of one step shows none.
    static func start(_ label: String, total: Int = 0) -> Progress? {
        enabled ? Progress(label: label, total: total) : nil
    }

    func setTotal(_ steps: Int) { lock.locked { total = steps } }

    private init(label: String, total: Int) {
        self.label = label
        self.total = total
    }

    /// Counts `steps` more steps done; safe from any thread.
    func advance(_ steps: Int = 1) {
        lock.locked {
            done += steps
            let t = Progress.now()
            let delay = Progress.forced == true ? 0 : 0.5
            guard total > 1, t - started >= delay else { return }
            let percent = total > 0 ? min(100, 100 * done / total) : 100
            if Progress.inPlace {
                guard t - lastDrawn >= 0.1 || done >= total else { return }
                lastDrawn = t
                Console.status("\r\u{1B}[Kattninspect: \(label): \(done)/\(total) (\(percent)%)")
                Progress.lineShown = true
            } else {
                guard percent / 10 > lastTenth else { return }
                lastTenth = percent / 10
                Console.status("attninspect: \(label): \(done)/\(total) (\(percent)%)\n")
            }
        }
    }

    /// `advance()` as a closure, for analyses that report their steps.
    var step: @Sendable () -> Void { { [self] in self.advance() } }

    /// Clears the progress line, if one is shown.
    func finish() { Progress.clearLine() }

    static func clearLine() {
        if lineShown {
            Console.status("\r\u{1B}[K")
            lineShown = false
        }
    }

    private static func now() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
    }
}
