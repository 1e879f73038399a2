import Testing
import Foundation
import AttnCore
import AttnTestSupport

/// HDF5 files mutated by scripts/mutate_hdf5.py that once crashed attninspect (an overflowing claimed
/// shape, a value too large for the table, a chunk larger than its dataset that made libhdf5 read past
/// its buffers, an extent beyond its maximum that made stats allocate for 2³¹ layers, a global heap object
/// claiming 2⁵⁸ bytes that made libhdf5's H5HG_read copy from a bad pointer, under token labels or under a string
/// attribute). Each must now give
/// one line on stderr and exit 0 or 1, promptly.
@Suite("Command line: mutated HDF5 files (regressions from the mutation run)")
struct MutantCLITests {
    static let mutants = [
        "big_endian.m3", "cross_vision.m5", "huge_attention.m1", "layers_numbered.m7", "padded_mask_bool.m5",
        "per_layer_grads.m13", "single_f32.m1", "single_f32.m5", "userblock_gzip.m9", "nested_single.m39", "hf_text.m5",
        "arrays_f16_gzip.m15", "hf_cross.m7", "userblock_gzip.m9.m7", "hf_deit.m3"
    ]

    @Test("a damaged attribute table (which crashed libhdf5 in H5Aiterate2) is listed in a child: info says so")
    func damagedAttributeTable() throws {
        let r = try Run(["info", Fixtures.path("synthetic/bad/mutants/hf_deit.m3.h5"), "-q"])
        #expect(r.status == 0 && r.stderr.isEmpty, "\(r.stderr)")
        #expect(r.stdout.contains("(attributes) = <damaged: libhdf5 could not list them all>"), "\(r.stdout)")
        #expect(r.stdout.contains("layers: 2, heads: 3, queries: 14, keys: 14"))
    }

    @Test("info and stats end cleanly", arguments: mutants)
    func clean(name: String) throws {
        let path = Fixtures.path("synthetic/bad/mutants/\(name).h5")
        for command in ["info", "stats"] {
            let r = try Run([command, path, "-q"])
            #expect(
                r.status == 0 || (r.status == 1 && r.stderr.filter { $0 == "\n" }.count == 1),
                "\(command) \(name): \(r.status) \(r.stderr)")
        }
    }

    @Test(
        """
        a corrupted global heap under the token labels (libhdf5 copies from a bad pointer): the child process \
        reading them dies, the labels are refused
        """
    )
    func globalHeap() throws {
        let path = Fixtures.path("synthetic/bad/mutants/hf_text.m5.h5")
        try expectLabelsRefused(path)
    }

    /// `stats` on a file whose token labels sit in a corrupt global heap: one line, nothing on stdout.
    private func expectLabelsRefused(_ path: String) throws {
        let r = try Run(["stats", path])
        #expect(r.status == 1 && r.stdout.isEmpty)
        #expect(
            r.stderr
                == """
                attninspect: \(path): dataset '/tokens': cannot read the strings: their global heap is corrupt \
                (libhdf5 crashed or hung reading it)\n
                """,
            "\(r.stderr)")
    }

    @Test(
        """
        a corrupted global heap under a string attribute: libhdf5 reads it in a child process, and info shows it \
        as unreadable
        """
    )
    func attributeHeap() throws {
        let r = try Run(["info", Fixtures.path("synthetic/bad/mutants/arrays_f16_gzip.m15.h5")])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("  model = <unreadable string: its global heap is corrupt>\n"), "\(r.stdout)")
    }

    @Test(
        """
        a global heap that makes libhdf5 loop forever: the string attribute shows as unreadable, the labels are \
        refused (the child reading them is stopped after 2 s of CPU)
        """
    )
    func loopingHeap() throws {
        let path = Fixtures.path("synthetic/bad/mutants/hf_cross.m7.h5")
        try expectLabelsRefused(path)
    }

    @Test("a looping global heap under chunked labels: the child process reading them is stopped")
    func loopingHeapChunked() throws {
        let path = Fixtures.path("synthetic/bad/heap_loop_chunked.h5")
        try expectLabelsRefused(path)
    }

    @Test(
        """
        a gzip chunk that inflates short of its size (libhdf5 1.10 accepts it): every command that reads it names \
        the chunk, writes nothing, and the intact layer still reads
        """,
        arguments: [
            ["stats"], ["verify"], ["show", "--layer", "1", "--head", "0"],
            ["heatmap", "--layer", "1", "-o", "OUT.pgm"], ["heads"],
            ["rollout", "-o", "OUT.npy"], ["grid", "--layer", "1", "--grid", "2x3", "--prefix", "0", "-o", "OUT.pgm"],
            ["diff", "SELF"]
        ])
    func shortChunk(command: [String]) throws {
        let path = Fixtures.path("synthetic/bad/short_chunk_gzip.h5")
        let scratch = try Scratch()
        let arguments = command.map { $0.hasPrefix("OUT") ? scratch.file($0) : $0 == "SELF" ? path : $0 } + [path]
        let r = try Run(arguments)
        #expect(r.status == (command == ["verify"] ? 2 : 1) && r.stdout.isEmpty, "\(command): \(r.status) \(r.stdout)")
        #expect(
            r.stderr.hasSuffix(
                """
                attninspect: \(path): dataset '/attentions': corrupt chunk at (1, 0, 0, 0): inflated to 40 bytes, \
                expected 144\n
                """
            ), "\(command): \(r.stderr)")
        #expect(scratch.contents.isEmpty, "\(command) left \(scratch.contents)")
        let intact = try Run(["show", "--layer", "0", "--head", "0", path])
        #expect(intact.status == 0 && !intact.stdout.isEmpty, "\(intact.stderr)")
    }

    @Test(
        "a short chunk after a user block (fetched with H5Dread_chunk): whole-layer readers refuse it too",
        arguments: ["verify", "show", "heads"])
    func shortChunkAfterUserBlock(command: String) throws {
        let path = Fixtures.path("synthetic/bad/mutants/userblock_gzip.m9.m7.h5")
        // show reads the last layer first, the others layer 0: each chunk of this file is short, and the one
        // named is the first in reading order whatever the number of threads and their scheduling.
        let layer = command == "show" ? 2 : 0
        for threads in ["1", "2", "3", "5", "2", "3", "5", "2"] {
            let r = try Run([command, path, "-q"], environment: ["ATTNINSPECT_THREADS": threads])
            #expect(r.status == (command == "verify" ? 2 : 1) && r.stdout.isEmpty)
            #expect(
                r.stderr
                    == """
                    attninspect: \(path): dataset '/attentions': corrupt chunk at (\(layer), 0, 0, 0): inflated \
                    to 400 bytes, expected 164240\n
                    """,
                "\(command), \(threads) threads: \(r.stderr)")
        }
    }
}
