import Testing
import Foundation
import AttnCore
import AttnTestSupport

@Suite("Command line: --quiet and progress")
struct QuietProgressCLITests {
    @Test("--quiet silences notes but not errors; data still goes to stdout")
    func quiet() throws {
        let padded = Fixtures.path("synthetic/padding/padded_mask.npz")
        let loud = try Run(["stats", padded])
        #expect(loud.status == 0 && loud.stderr.contains("attention_mask keeps 6 of 8 tokens"))
        let quiet = try Run(["stats", padded, "--quiet"])
        #expect(quiet.status == 0 && quiet.stderr.isEmpty && quiet.stdout == loud.stdout, "\(quiet.stderr)")
        let scratch = try Scratch()
        let written = try Run([
            "rollout", Fixtures.path("real/vits14_board_small.h5"), "-q", "-o", scratch.file("r.png")
        ])
        #expect(
            written.status == 0 && written.stderr.isEmpty
                && FileManager.default.fileExists(atPath: scratch.file("r.png")))
        let failed = try Run(["stats", Fixtures.path("synthetic/does_not_exist.npy"), "--quiet"])
        #expect(failed.status == 1 && failed.stderr.contains("no such file"))
        #expect(try Run(["diff", padded, padded, "-q"]).stderr.isEmpty)
    }

    @Test(
        "progress goes to stderr as one rewritten line, cleared at the end; never when stderr is a pipe or with --quiet"
    )
    func progress() throws {
        let board = Fixtures.path("real/vits14_board_small.h5")
        let scratch = try Scratch()
        // Forced into a log: plain lines, one per tenth of the work, no carriage return or escape code.
        let shown = try Run(["flow", board, "-o", scratch.file("f.npy")], environment: ["ATTNINSPECT_PROGRESS": "1"])
        #expect(
            shown.status == 0 && shown.stderr.contains("\nattninspect: attention flow: 257/257 (100%)\n"),
            "\(shown.stderr)")
        #expect(!shown.stderr.contains("\r") && !shown.stderr.contains("\u{1B}"))
        let lines = shown.stderr.split(separator: "\n").filter { $0.contains("attention flow: ") }
        #expect(lines.count == 11, "\(lines)")  // 0%, 10%, ..., 100%
        // On a terminal (a pseudo-terminal by script(1)): one line rewritten in place, cleared before the next note.
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/script")
        let command = [Run.binary.path, "flow", board, "-o", scratch.file("t.npy")].map { "'\($0)'" }
        process.arguments = ["-qec", command.joined(separator: " "), "/dev/null"]
        process.environment = ProcessInfo.processInfo.environment.merging(["ATTNINSPECT_PROGRESS": "1"]) { $1 }
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let terminal = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "\(terminal)")
        #expect(terminal.contains("\r\u{1B}[Kattninspect: attention flow: 257/257 (100%)"), "\(terminal)")
        #expect(terminal.contains("\r\u{1B}[Kattninspect: wrote "))  // the line is cleared before the next note
        let piped = try Run(["stats", board])
        #expect(!piped.stderr.contains("\r"))
        let quiet = try Run(["stats", board, "-q"], environment: ["ATTNINSPECT_PROGRESS": "1"])
        #expect(quiet.stderr.isEmpty)
    }
}
