import ArgumentParser
import AttnCore
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
        subcommands: [Info.self, Stats.self, Rollout.self, Flow.self, Heads.self, Heatmap.self, Grid.self, Entropy.self, Show.self, Tokens.self, Diff.self, Verify.self]
    )

    static func main() {
        // A closed stdout (`| head`) must end the process quietly through EPIPE, not kill it.
        signal(SIGPIPE, SIG_IGN)
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch let error as DumpError {
            Console.error("attninspect: \(error)")
            Glibc.exit(1)
        } catch {
            exit(withError: error)
        }
    }
}

/// Messages for people go to stderr; data goes to stdout.
enum Console {
    static func error(_ message: String) {
        write(message + "\n", to: 2)
    }

    static func note(_ message: String) {
        write("attninspect: " + message + "\n", to: 2)
    }

    /// Messages already given by `noteOnce` (the tool is single-threaded where it talks).
    nonisolated(unsafe) private static var given: Set<String> = []

    /// `note`, unless the same message was already given (a file reopened for each sample).
    static func noteOnce(_ message: String) {
        if given.insert(message).inserted { note(message) }
    }

    static func print(_ text: String) {
        write(text, to: 1)
    }

    /// Writes all of `text`; a closed pipe on stdout ends the process quietly.
    private static func write(_ text: String, to descriptor: Int32) {
        var text = text
        text.withUTF8 { bytes in
            var done = 0
            while done < bytes.count {
                let n = Glibc.write(descriptor, bytes.baseAddress! + done, bytes.count - done)
                if n < 0 {
                    if errno == EINTR { continue }
                    if errno == EPIPE { Glibc.exit(0) }
                    return
                }
                done += n
            }
        }
    }
}
