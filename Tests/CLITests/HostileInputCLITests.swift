import Testing
import Foundation
import AttnCore
import AttnTestSupport

/// The regression set of the untrusted-dumps issue: one test per attack, each with its minimal input in
/// TestData/hostile (made by make_hostile.py) or made here. `.ci/run` runs this suite again against the release
/// binary (ATTNINSPECT_TEST_BINARY).
/// Runs `command` with /bin/sh; returns its exit status.
@discardableResult
func shell(_ command: String, environment: [String: String] = [:]) throws -> Int32 {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/sh")
    process.arguments = ["-c", command]
    if !environment.isEmpty { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    try process.run()
    process.waitUntilExit()
    return process.terminationStatus
}

@Suite("Command line: hostile dumps (TestData/hostile)")
struct HostileInputCLITests {
    static func hostile(_ name: String) -> String { Fixtures.path("hostile/" + name) }

    /// A run that must fail with exactly one line on stderr containing `message`, and print nothing on stdout.
    func refused(
        _ arguments: [String], _ message: String, cwd: String? = nil, environment: [String: String] = [:],
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        // --quiet: notes (the view chosen, the batch used) are not what is checked.
        let r = try Run(arguments + ["--quiet"], environment: environment, directory: cwd)
        // verify says "could not check" with 2, as cmp does; every other command fails with 1.
        #expect(
            r.status == (arguments.first == "verify" ? 2 : 1), "\(arguments): status \(r.status), \(r.stderr)",
            sourceLocation: sourceLocation)
        #expect(r.stdout.isEmpty, "\(arguments): stdout \(r.stdout)", sourceLocation: sourceLocation)
        #expect(
            r.stderr.split(separator: "\n").count == 1 && r.stderr.contains(message), "\(arguments): \(r.stderr)",
            sourceLocation: sourceLocation)
    }

    // MARK: 1. Data in other files

    @Test(
        """
        external raw storage pointing at /etc/passwd: never read; info names it; every command refuses it, no \
        output written
        """
    )
    func externalPasswd() throws {
        let scratch = try Scratch()
        let tokens = Self.hostile("external_tokens.h5")
        let info = try Run(["info", tokens])
        #expect(!info.stdout.contains("root:") && !info.stderr.contains("root:"), "\(info.stdout)")
        #expect(
            info.stdout.contains("/tokens")
                && info.stdout.contains("external raw storage in '/etc/passwd' (offset 0, unlimited)"), "\(info.stdout)"
        )
        #expect(
            info.status == 1
                && info.stderr.contains(
                    "dataset '/tokens': stores its data in another file (HDF5 external storage: '/etc/passwd'"),
            "\(info.stderr)")
        let attention = Self.hostile("external_attention.h5")
        for command in [
            ["stats"], ["heatmap", "-o", scratch.file("e.npy")], ["rollout", "-o", scratch.file("r.npy")], ["show"],
            ["heads"], ["verify"]
        ] {
            try refused(
                command + [attention],
                """
                dataset '/attentions': stores its data in another file (HDF5 external storage: '/etc/passwd' \
                (offset 0, unlimited)); attninspect reads only the file it was given
                """
            )
        }
        #expect(scratch.contents.isEmpty, "\(scratch.contents)")
    }

    @Test("external storage named relative to the current folder, or a FIFO there: refused without opening it")
    func externalRelativeAndFIFO() throws {
        let scratch = try Scratch()
        // The files the dumps point at exist in the current folder of the run: a secret, and a FIFO no one writes.
        try Data("SECRET-VALUE".utf8).write(to: URL(fileURLWithPath: scratch.file("secret.bin")))
        #expect(mkfifo(scratch.file("fifo"), 0o600) == 0)
        try refused(
            ["stats", Self.hostile("external_relative.h5")],
            "stores its data in another file (HDF5 external storage: 'secret.bin' (offset 0, 256 bytes))",
            cwd: scratch.path)
        try refused(
            ["stats", Self.hostile("external_fifo.h5")],
            "stores its data in another file (HDF5 external storage: 'fifo' (offset 0, 256 bytes))", cwd: scratch.path)
        let info = try Run(["info", Self.hostile("external_relative.h5")], directory: scratch.path)
        #expect(
            !info.stdout.contains("SECRET") && info.stdout.contains("external raw storage in 'secret.bin'"),
            "\(info.stdout)")
    }

    @Test("a virtual dataset mapping another file: refused naming the file it maps; info shows it as virtual")
    func virtualDataset() throws {
        let path = Self.hostile("virtual.h5")
        try refused(
            ["stats", path],
            """
            dataset '/attentions': is a virtual dataset whose data is read from 'virtual_source.h5' dataset \
            'attentions'; attninspect reads only the file it was given
            """,
            cwd: Fixtures.path("hostile"))
        let info = try Run(["info", path], directory: Fixtures.path("hostile"))
        #expect(info.stdout.contains("virtual, mapped from 'virtual_source.h5' dataset 'attentions'"), "\(info.stdout)")
    }

    @Test(
        """
        a virtual dataset with an unlimited mapping whose source is a FIFO: refused without opening the source \
        (no hang)
        """
    )
    func virtualUnlimited() throws {
        let scratch = try Scratch()
        try FileManager.default.copyItem(atPath: Self.hostile("virtual_unlimited.h5"), toPath: scratch.file("v.h5"))
        #expect(mkfifo(scratch.file("virtual_unlimited_source.h5"), 0o600) == 0)
        try refused(
            ["stats", "v.h5"],
            """
            dataset '/attentions': is a virtual dataset whose data is read from 'virtual_unlimited_source.h5' \
            dataset 'attentions'
            """,
            cwd: scratch.path)
        let info = try Run(["info", "v.h5"], directory: scratch.path)
        #expect(
            info.status == 0 && info.stdout.contains("virtual, mapped from 'virtual_unlimited_source.h5'"),
            "\(info.stdout) \(info.stderr)")
    }

    @Test("a link name holding '/' (which would reach through an external link into another file) is refused")
    func slashInLinkName() throws {
        for command in [["info"], ["stats"]] {
            try refused(
                command + [Self.hostile("slash_link.h5")],
                "dataset '/': holds a link named 'e/attentions': a name with '/' (or '.') is not a link HDF5 writes")
        }
    }

    // MARK: 2. Filter plugins

    @Test(
        """
        a filter libhdf5 lacks: named, refused, and no plugin folder is loaded (a library there would run its \
        constructor)
        """
    )
    func filterPlugins() throws {
        let scratch = try Scratch()
        // A plugin whose constructor leaves a file behind, where HDF5_PLUGIN_PATH points.
        let marker = scratch.file("constructor-ran")
        let source = scratch.file("plugin.c")
        try """
        #include <stdio.h>\n__attribute__((constructor)) static void ran(void) { FILE *f = \
        fopen(\"\(marker)\", \"w\"); if (f) fclose(f); }\n
        """
        .write(toFile: source, atomically: true, encoding: .utf8)
        let plugins = scratch.file("plugins")
        try FileManager.default.createDirectory(atPath: plugins, withIntermediateDirectories: true)
        // Built with the C compiler at hand (gcc, or the Swift toolchain's clang); without one, the check is skipped.
        let compiled = try shell(
            """
            cc -shared -fPIC -o '\(plugins)/libevil.so' '\(source)' 2>/dev/null || clang -shared -fPIC -o \
            '\(plugins)/libevil.so' '\(source)'
            """
        )
        let environment = ["HDF5_PLUGIN_PATH": plugins]
        try refused(
            ["stats", Self.hostile("lzf.h5")],
            """
            dataset '/attentions': uses filter 32000 (lzf), which attninspect does not read (it reads deflate \
            (gzip), shuffle, fletcher32
            """,
            environment: environment)
        try refused(
            ["stats", Self.hostile("unknown_filter.h5")], "uses filter 32001 (blosc), which attninspect does not read",
            environment: environment)
        let info = try Run(["info", Self.hostile("lzf.h5")], environment: environment)
        #expect(info.stdout.contains("filter 32000 (lzf), not available"), "\(info.stdout)")
        if compiled == 0 {
            #expect(!FileManager.default.fileExists(atPath: marker), "a plugin's constructor ran")
        }
    }

    // MARK: 3. Terminal escapes

    /// No byte of `text` is ESC, a C1 control (as UTF-8) or a bidirectional override.
    func inert(_ text: String) -> Bool {
        !text.unicodeScalars.contains { PrintableText.needsEscape($0) && $0 != "\n" }
    }

    @Test(
        """
        names and values with ESC, OSC 52, C1 and RLO reach the terminal escaped: info, errors listing tensors, \
        stats, JSON
        """,
        arguments: ["escapes.h5", "escapes_candidates.h5", "escapes.npz", "escapes.safetensors"])
    func escapes(file: String) throws {
        let path = Self.hostile(file)
        for command in [["info"], ["stats"], ["stats", "--json"], ["heads", "--json"], ["tokens", "--query", "1"]] {
            let r = try Run(command + [path])
            #expect(inert(r.stdout), "\(command) \(file) stdout: \(r.stdout.debugDescription)")
            #expect(inert(r.stderr), "\(command) \(file) stderr: \(r.stderr.debugDescription)")
            #expect(r.stderr.split(separator: "\n").count <= 3, "\(command) \(file): \(r.stderr)")
        }
        if file == "escapes.h5" {
            let info = try Run(["info", path])
            #expect(
                info.stdout.contains("model\\u{202e} = \"evil\\u{1b}[2J\\u{0a}next line\\u{1b}]52;c;SGVsbG8=\\u{07}\""),
                "\(info.stdout)")
            #expect(
                info.stdout.contains("/x\\u{1b}[2Jq") && info.stdout.contains("csi = \"\\u{9b}31m red\""),
                "\(info.stdout)")
        }
        if file == "escapes_candidates.h5" {
            try refused(
                ["stats", path],
                """
                several tensors could be the attention: /x\\u{1b}[2J (2, 2, 4, 4) float32, \
                /y\\u{1b}]52;c;SGVsbG8=\\u{07} (2, 2, 4, 4) float32
                """
            )
        }
    }

    @Test("a newline in a file name does not split the one-line error")
    func newlineInName() throws {
        let scratch = try Scratch()
        try refused(["stats", scratch.file("two\nlines.npy")], "two\\u{0a}lines.npy: no such file")
    }

    // MARK: 4. JSON strings with surrogates

    @Test(
        "a safetensors header with an unpaired surrogate: one line, exit 1, no crash",
        arguments: [
            (
                "surrogate_high_then_ascii",
                "a high surrogate \\ud800 followed by \\u0041, not a low surrogate, at byte 29"
            ),
            ("surrogate_high_alone", "a high surrogate \\ud800 without its low surrogate at byte 29"),
            ("surrogate_low_alone", "a low surrogate \\udc00 without a high one before it at byte 29"),
            ("surrogate_high_high", "a high surrogate \\ud800 followed by \\udbff, not a low surrogate, at byte 29")
        ])
    func surrogates(file: String, message: String) throws {
        for command in [["info"], ["stats"]] {
            try refused(command + [Self.hostile(file + ".safetensors")], "corrupt JSON header: " + message)
        }
    }

    @Test("a surrogate pair decodes to its character")
    func surrogatePair() throws {
        let r = try Run(["info", Self.hostile("surrogate_pair.safetensors")])
        #expect(r.status == 0 && r.stdout.contains("model = \"x\u{1F600}y\""), "\(r.stdout) \(r.stderr)")
    }

    // MARK: 5. Data never written

    @Test(
        """
        a tiny file claiming terabytes of unwritten chunks, an interrupted export, storage never allocated: \
        refused before any read
        """,
        arguments: [
            (
                "sparse_4tib.h5",
                "claims shape (1024, 1024, 1024, 1024) (4.0 TiB) in 1099511627776 chunks, but only 0 were ever written"
            ),
            (
                "sparse_512mib.h5",
                "claims shape (4, 8, 2048, 2048) (512.0 MiB) in 134217728 chunks, but only 0 were ever written"
            ),
            (
                "partial_chunks.h5",
                """
                claims shape (4, 2, 8, 8) (2.0 KiB) in 4 chunks, but only 1 was ever written (the rest would read \
                as the fill value)
                """
            ),
            ("never_written.h5", "claims shape (4, 2, 8, 8) (2.0 KiB), but its data was never written"),
            (
                "../synthetic/layouts/fill.h5",
                "claims shape (3, 2, 10, 10) (2.3 KiB) in 12 chunks, but only 4 were ever written"
            )
        ])
    func neverWritten(file: String, message: String) throws {
        for command in ["stats", "rollout", "heads"] {
            let extra = command == "rollout" ? ["-o", "/nonexistent-folder/r.npy"] : []
            try refused([command] + extra + [Self.hostile(file)], "dataset '/attentions': " + message)
        }
        let info = try Run(["info", Self.hostile(file)])
        #expect(info.stdout.contains("written") && info.status == 0, "\(info.stdout) \(info.stderr)")
    }

    @Test("4096 one-element chunks, all written: read by index lookups, the values of the same array as .npy")
    func tinyChunks() throws {
        let h5 = try Run(["stats", "--json", Self.hostile("tiny_chunks.h5")])
        let npy = try Run(["stats", "--json", Self.hostile("tiny_chunks.npy")])
        #expect(h5.status == 0 && npy.status == 0, "\(h5.stderr) \(npy.stderr)")
        let records = { (text: String) in text.split(separator: "\"records\"").last.map(String.init) }
        #expect(records(h5.stdout) == records(npy.stdout) && records(h5.stdout) != nil)
    }

    // MARK: 6. Attributes by the thousand

    @Test("2000 string attributes: the commands read only the ones they use; info lists them all")
    func manyAttributes() throws {
        let path = Self.hostile("attrs_2000.h5")
        let stats = try Run(["stats", path])
        #expect(stats.status == 0, "\(stats.stderr)")
        let info = try Run(["info", path])
        #expect(
            info.status == 0 && info.stdout.contains("note_0000 = \"value 0\"")
                && info.stdout.contains("note_1999 = \"value 1999\""), "\(info.stderr)")
        #expect(info.stdout.contains("patch_grid = [1, 3]"))
        let scratch = try Scratch()
        let map = try Run(["grid", path, "-o", scratch.file("g.npy")])
        #expect(map.status == 0 && map.stderr.contains("1×3"), "\(map.stderr)")
    }

    @Test("more attributes than attninspect reads: one line naming how many")
    func tooManyAttributes() throws {
        try refused(
            ["stats", Self.hostile("attrs_over_limit.h5")],
            "dataset '/': carries 4100 attributes, more than the 4096 attninspect reads in one file")
    }

    // MARK: 7. Costs without a guard

    @Test(
        """
        head similarity estimated over --max-seconds: refused with the estimate and the cheaper choice when asked \
        for; skipped with a note by default
        """)
    func headsCost() throws {
        let path = Fixtures.path("synthetic/base_f32.npy")
        try refused(
            ["heads", path, "--similarity", "layer", "--max-seconds", "1e-9"],
            "head similarity (--similarity layer) between 2 heads in each of 3 layers over 10 × 10 values, estimated at"
        )
        let auto = try Run(["heads", path, "--max-seconds", "1e-9", "--json"])
        #expect(
            auto.status == 0 && auto.stdout.contains("\"similarity\": {\"scope\": \"none\"}")
                && auto.stderr.contains("head similarity skipped: estimated at")
                && auto.stderr.contains("over --max-seconds 1.0e-09 (--similarity none to say so)"), "\(auto.stderr)")
        try refused(
            ["heads", path, "--similarity", "all", "--max-seconds", "1e-9"],
            "use --similarity layer or none, or raise --max-seconds")
        let none = try Run(["heads", path, "--similarity", "none", "--max-seconds", "1e-9", "--json"])
        #expect(none.status == 0 && none.stdout.contains("\"similarity\": {\"scope\": \"none\"}"), "\(none.stderr)")
    }

    @Test("a montage or a flow graph over --max-memory is refused before any work")
    func montageCost() throws {
        let scratch = try Scratch()
        try refused(
            ["flow", Fixtures.path("synthetic/base_f32.npy"), "--max-memory", "5K", "-o", scratch.file("f.npy")],
            "attention flow through 3 layers of 10 tokens (the graph, and a residual network per worker) needs")
        try refused(
            [
                "heatmap", Fixtures.path("synthetic/base_f32.npy"), "--layer", "all", "--head", "all", "--max-memory",
                "16K", "-o", scratch.file("m.png")
            ],
            "a montage of 6 maps of 10×10 needs")
        // One picture too: the picture and PNG's buffers are counted.
        try refused(
            [
                "heatmap", Fixtures.path("synthetic/base_f32.npy"), "--zoom", "64", "--max-memory", "1M", "-o",
                scratch.file("z.png")
            ],
            """
            drawing a 10×10 map at zoom 64 needs 4.7 MiB of memory, more than the 1.0 MiB allowed (set by \
            --max-memory); lower --zoom or write .npy
            """
        )
        #expect(scratch.contents.isEmpty)
    }

    @Test("a deflated member claiming more than deflate can expand is refused before inflating")
    func zipRatio() throws {
        try refused(
            ["stats", Self.hostile("zip_ratio.npz")], "dataset 'attentions': claims 4294967294 bytes inflated from")
    }

    @Test(
        """
        a compressed member read last layer first is inflated once (same rollout as the .npy), or refused with a \
        hint over --max-memory
        """
    )
    func backwardsRead() throws {
        let scratch = try Scratch()
        let npz = try Run(["rollout", Self.hostile("backwards.npz"), "--view", "grid", "-o", scratch.file("a.npy")])
        let npy = try Run(["rollout", Self.hostile("backwards.npy"), "--view", "grid", "-o", scratch.file("b.npy")])
        #expect(npz.status == 0 && npy.status == 0, "\(npz.stderr) \(npy.stderr)")
        #expect(
            try Data(contentsOf: URL(fileURLWithPath: scratch.file("a.npy")))
                == Data(contentsOf: URL(fileURLWithPath: scratch.file("b.npy"))))
        // The rollout row needs 107 KiB, inflating the member whole 235 KiB.
        try refused(
            [
                "rollout", Self.hostile("backwards.npz"), "--view", "grid", "--max-memory", "200K", "-o",
                scratch.file("c.npy")
            ],
            "dataset 'attentions': is compressed, and inflating it whole (it is read out of order")
    }

    @Test("a compressed Fortran-order member reads as numpy has it")
    func fortranCompressed() throws {
        let r = try Run(["stats", "--json", Self.hostile("fortran.npz")])
        let base = try Run(["stats", "--json", Fixtures.path("synthetic/base_f32.npy")])
        let records = { (text: String) in text.split(separator: "\"records\"").last.map(String.init) }
        #expect(r.status == 0 && records(r.stdout) == records(base.stdout), "\(r.stderr)")
    }

    // MARK: 10. Not probabilities

    @Test(
        """
        rollout, flow, grid and show --rollout refuse logits, naming the first bad row; --allow-unnormalised lets \
        them through
        """,
        arguments: [
            ["rollout", "-o", "OUT.npy"], ["rollout", "--gradients", "-o", "OUT.npy"], ["flow", "-o", "OUT.npy"],
            ["grid", "--grid", "3x3", "-o", "OUT.npy"], ["show", "--rollout"]
        ])
    func logits(command: [String]) throws {
        let scratch = try Scratch()
        let path = Fixtures.path("synthetic/verify/logits.npy")
        let arguments = command.map { $0 == "OUT.npy" ? scratch.file("out.npy") : $0 } + [path]
        if command.contains("--gradients") {
            try refused(arguments, "no attention gradients found")  // logits.npy has none: that is said first
            return
        }
        try refused(arguments, "the row holds a negative value")
        // Flow's capacities cannot be negative whatever it is told: no flag is offered.
        try refused(
            arguments,
            """
            needs attention probabilities, and these look like scores or logits (`attninspect verify` checks \
            every row); 
            """
                + (command[0] == "flow"
                    ? "attention flow's capacities cannot be negative"
                    : "add --allow-unnormalised to use them as they are"))
        #expect(scratch.contents.isEmpty)
        if command[0] == "flow" {
            // Flow's capacities must be non-negative whatever the flag says.
            try refused(
                arguments + ["--allow-unnormalised"], "negative values: attention flow needs non-negative capacities")
        } else {
            let allowed = try Run(arguments + ["--allow-unnormalised"])
            #expect(allowed.status == 0, "\(allowed.stderr)")
        }
    }

    // MARK: 11. An existing dump in the way

    @Test("an output never replaces an array of another shape (a dump) without --force; the same command again does")
    func replacingDump() throws {
        let scratch = try Scratch()
        let target = scratch.file("dump.npy")
        try FileManager.default.copyItem(atPath: Fixtures.path("synthetic/base_f32.npy"), toPath: target)
        let before = try Data(contentsOf: URL(fileURLWithPath: target))
        try refused(
            ["rollout", Fixtures.path("synthetic/base_f32.npy"), "--view", "matrix", "-o", target],
            """
            exists and holds a NumPy array of shape (3,2,10,10) (<f4), which could be a dump, not the output's \
            shape (10,10) (<f4): refusing to replace it; choose another output, or add --force
            """
        )
        #expect(try Data(contentsOf: URL(fileURLWithPath: target)) == before)
        let again = scratch.file("r.npy")
        #expect(
            try Run(["rollout", Fixtures.path("synthetic/base_f32.npy"), "--view", "matrix", "-o", again]).status == 0)
        #expect(
            try Run([
                "rollout", Fixtures.path("synthetic/base_f32.npy"), "--view", "matrix", "--end-layer", "1", "-o", again
            ]).status == 0)
        #expect(
            try Run(["rollout", Fixtures.path("synthetic/base_f32.npy"), "--view", "matrix", "-o", target, "--force"])
                .status == 0)
        // An array whose header is longer than the bytes looked at (numpy pads headers of any length) is not replaced.
        let long = scratch.file("long.npy")
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': (10, 10), }"
        header += String(repeating: " ", count: 1024 - 10 - header.utf8.count - 1) + "\n"
        var bytes: [UInt8] =
            [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.utf8.count & 0xFF), UInt8(header.utf8.count >> 8)]
            + Array(header.utf8)
        bytes += [UInt8](repeating: 0, count: 400)
        try Data(bytes).write(to: URL(fileURLWithPath: long))
        try refused(
            ["rollout", Fixtures.path("synthetic/base_f32.npy"), "--view", "matrix", "-o", long],
            "exists and holds a NumPy array of a header longer than 512 bytes, which could be a dump")
    }

    // MARK: 14. Messages

    @Test(
        "a one-token dump: the views that need no grid work; the grid says the prefix is the default, not an attribute")
    func oneToken() throws {
        let scratch = try Scratch()
        let path = Self.hostile("one_token.npy")
        for command in [
            ["rollout", "--view", "matrix", "-o", scratch.file("r.npy")], ["flow", "-o", scratch.file("f.npy")],
            ["show"]
        ] {
            let r = try Run(command + [path])
            #expect(r.status == 0, "\(command): \(r.stderr)")
        }
        try refused(
            ["grid", path, "-o", scratch.file("g.npy")],
            """
            one_token.npy: the default of 1 prefix token (CLS; the file declares no prefix_tokens), but the \
            attention has 1 key(s): expected 0...0 prefix tokens before the patches; give --prefix N
            """
        )
    }

    @Test(
        "a malformed patch_grid attribute is an error naming it, never ignored",
        arguments: [
            ("patch_grid_negative.h5", "[-3, -3]"), ("patch_grid_fraction.h5", "[2.5, 3.6]"),
            ("patch_grid_text.h5", "3x3")
        ])
    func malformedGrid(file: String, found: String) throws {
        let scratch = try Scratch()
        for command in [["grid", "-o", scratch.file("g.npy")], ["rollout", "-o", scratch.file("r.npy")], ["heads"]] {
            try refused(
                command + [Self.hostile(file)],
                """
                attribute patch_grid should be [rows, columns], two positive integers, found \(found); give the \
                grid with --grid ROWSxCOLS
                """
            )
        }
    }

    @Test("object-dtype token labels (a pickle) are never unpickled, and the reason is said")
    func objectTokens() throws {
        let path = Self.hostile("object_tokens.npz")
        // tokens shows positions instead, and the note says why the labels were not used.
        let tokens = try Run(["tokens", path])
        #expect(tokens.status == 0 && tokens.stdout.hasPrefix("#0 ("), "\(tokens.stdout)")
        #expect(
            tokens.stderr.contains(
                """
                no token labels used: its token labels 'tokens' are an object array (pickled Python objects, which \
                attninspect never unpickles); save them as strings
                """), "\(tokens.stderr)")
        let stats = try Run(["stats", path])
        #expect(
            stats.status == 0
                && stats.stderr.contains("no token labels used: its token labels 'tokens' are an object array"),
            "\(stats.stderr)")
    }

    @Test("a uint64 attribute of 2^64 - 1 is shown as it is")
    func unsignedAttribute() throws {
        let r = try Run(["info", Self.hostile("uint64_attribute.h5")])
        #expect(r.stdout.contains("big = 18446744073709551615"), "\(r.stdout)")
    }

    @Test("Q·Kᵀ overflowing float32 is said as such, not as NaN in the file")
    func overflow() throws {
        try refused(
            ["stats", Self.hostile("qk_overflow.npz")],
            "layer 0, head 0, query 0: Q·Kᵀ·scale overflows float32 (beyond ±3.4e38) although q and k are finite")
    }

    @Test("a path in a usage error is escaped, on the error's own line; help to /dev/full is an error")
    func usageEscapes() throws {
        let scratch = try Scratch()
        let r = try Run(["heatmap", Fixtures.path("synthetic/base_f32.npy"), "-o", "a\nb\u{1b}[2J.xyz"])
        #expect(
            r.status == 64
                && r.stderr.hasPrefix(
                    "Error: cannot tell the format of 'a\\u{0a}b\\u{1b}[2J.xyz': give an output ending in"),
            "\(r.stderr)")
        #expect(r.stderr.split(separator: "\n").count == 3)
        let help = try bash("'\(Run.binary.path)' stats --help > /dev/full", in: scratch.path)
        #expect(
            help.status == 1 && help.stderr == "attninspect: cannot write standard output: No space left on device\n",
            "\(help.stderr)")
    }

    @Test("usage: a file named -x.h5 is not read as flags (no help, exit 64); --dataset '' is refused")
    func dashFile() throws {
        let scratch = try Scratch()
        try FileManager.default.copyItem(atPath: Fixtures.path("synthetic/base_f32.npy"), toPath: scratch.file("-x.h5"))
        let r = try Run(["stats", "-x.h5"], directory: scratch.path)
        #expect(
            r.status == 64 && r.stdout.isEmpty
                && r.stderr.contains("unknown option '-x.h5': to name a file that starts with '-', write ./-x.h5"),
            "\(r.stderr)")
        #expect(try Run(["stats", "./-x.h5"], directory: scratch.path).status == 0)
        #expect(try Run(["stats", "--", "-x.h5"], directory: scratch.path).status == 0)
        let empty = try Run(["stats", "--dataset", "", Fixtures.path("synthetic/base_f32.npy")])
        #expect(empty.status == 64 && empty.stderr.contains("--dataset needs a name"), "\(empty.stderr)")
    }

    @Test("an output name near NAME_MAX is written (the temporary name stays short enough)")
    func longName() throws {
        let scratch = try Scratch()
        let name = String(repeating: "n", count: 251) + ".npy"
        let r = try Run(["heatmap", Fixtures.path("synthetic/base_f32.npy"), "-o", scratch.file(name)])
        #expect(r.status == 0 && scratch.contents == [name], "\(r.stderr) \(scratch.contents)")
    }

    @Test("an output that is a symbolic link to /dev/stdout is said to be a link to a device, not a missing file")
    func linkToStdout() throws {
        let scratch = try Scratch()
        try FileManager.default.createSymbolicLink(atPath: scratch.file("out.npy"), withDestinationPath: "/dev/stdout")
        let r = try Run(["heatmap", Fixtures.path("synthetic/base_f32.npy"), "-o", scratch.file("out.npy")])
        #expect(
            r.status == 1
                && r.stderr.contains(
                    "cannot write: it is a symbolic link to '/dev/stdout', which is not a regular file"),
            "\(r.stderr)")
    }
}

/// Runs `command` with bash in `directory`; its status and what it wrote on stderr.
func bash(_ command: String, in directory: String) throws -> (status: Int32, stderr: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/bash")
    process.arguments = ["-c", command]
    process.currentDirectoryURL = URL(fileURLWithPath: directory)
    let err = Pipe()
    process.standardOutput = FileHandle.nullDevice
    process.standardError = err
    try process.run()
    let data = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

@Suite("Command line: nothing lost (untrusted-dumps issue, items 8, 9, 13)")
struct NothingLostCLITests {
    let binary = Run.binary.path
    let dump = Fixtures.path("synthetic/base_f32.npy")

    @Test("a failed write to stdout is an error: /dev/full, a closed stdout; a reader closing the pipe stays quiet")
    func stdoutFailures() throws {
        let scratch = try Scratch()
        let full = try bash("'\(binary)' stats '\(dump)' --json -q > /dev/full", in: scratch.path)
        #expect(
            full.status == 1 && full.stderr == "attninspect: cannot write standard output: No space left on device\n",
            "\(full.stderr)")
        let closed = try bash("'\(binary)' stats '\(dump)' -q >&-", in: scratch.path)
        #expect(
            closed.status == 1 && closed.stderr == "attninspect: cannot write standard output: Bad file descriptor\n",
            "\(closed.stderr)")
        let piped = try bash(
            "set -o pipefail; '\(binary)' stats '\(dump)' --json -q | head -c 1 > /dev/null", in: scratch.path)
        #expect(piped.status == 0 && piped.stderr.isEmpty, "\(piped.stderr)")
        // A closed stdout must not become the first file opened: the output file gets none of the table.
        let output = scratch.file("r.npy")
        let both = try bash("'\(binary)' rollout '\(dump)' --view matrix -o '\(output)' >&-", in: scratch.path)
        #expect(both.status == 0, "\(both.stderr)")
        #expect(try Run(["info", output]).stdout.contains("(10, 10)"))
    }

    @Test(
        "an interrupted write leaves no temporary file, and the process ends by the signal (the shell's 130, 143, 129)",
        arguments: [SIGINT, SIGTERM, SIGHUP])
    func interrupted(signal: Int32) throws {
        let scratch = try Scratch()
        // One 2048 × 2048 map written as .npy: 16 MiB, long enough to write to be interrupted.
        let n = 2048
        var bytes: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0]
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': (\(n), \(n)), }"
        while (10 + header.utf8.count + 1) % 64 != 0 { header += " " }
        header += "\n"
        bytes += [UInt8(header.utf8.count & 0xFF), UInt8(header.utf8.count >> 8)] + Array(header.utf8)
        var data = Data(bytes)
        // little-endian here
        data.append([Float](repeating: Float(1) / Float(n), count: n * n).withUnsafeBytes { Data($0) })
        try data.write(to: URL(fileURLWithPath: scratch.file("map.npy")))
        // bash with job control (so that a background job keeps SIGINT): start the write, wait for its temporary file,
        // send the signal; `wait` gives 128 + the signal when the process ended by it. 3: the write ended first.
        let script = """
            set -m
            '\(binary)' heatmap map.npy -o big.npy --quiet --force & pid=$!
            until compgen -G '.big.npy.tmp-*' > /dev/null; do kill -0 $pid 2>/dev/null || { wait $pid; exit 3; }; done
            kill -\(signal) $pid
            wait $pid
            """
        var result = try bash(script, in: scratch.path)
        for _ in 0..<4 where result.status == 3 {
            try? FileManager.default.removeItem(atPath: scratch.file("big.npy"))
            result = try bash(script, in: scratch.path)
        }
        #expect(result.status == 128 + signal, "status \(result.status): \(result.stderr)")
        try? FileManager.default.removeItem(atPath: scratch.file("big.npy"))
        #expect(scratch.contents.sorted() == ["map.npy"], "\(scratch.contents)")
    }

    @Test(
        """
        paths are bytes: a Latin-1 name is read, two names differing in a non-UTF-8 byte stay two files, errors \
        show the byte
        """
    )
    func nonUTF8Paths() throws {
        let scratch = try Scratch()
        let steps = """
            set -e
            cp '\(dump)' "$(printf 'lat\\351.npy')"
            '\(binary)' stats --quiet "$(printf 'lat\\351.npy')"
            '\(binary)' heatmap --quiet '\(dump)' -o "$(printf 'a\\351.png')"
            '\(binary)' heatmap --quiet '\(dump)' --layer 0 -o "$(printf 'a\\350.png')"
            test -f "$(printf 'a\\351.png')" && test -f "$(printf 'a\\350.png')"
            ! cmp -s "$(printf 'a\\351.png')" "$(printf 'a\\350.png')"
            test "$(ls | wc -l)" = 3
            """
        let r = try bash(steps, in: scratch.path)
        #expect(r.status == 0, "\(r.stderr)")
        let missing = try bash("'\(binary)' stats \"$(printf 'gone\\351.h5')\"", in: scratch.path)
        #expect(
            missing.status == 1 && missing.stderr == "attninspect: gone\\xE9.h5: no such file\n", "\(missing.stderr)")
    }
}
