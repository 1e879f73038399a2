import Testing
import Foundation
import AttnCore
import AttnTestSupport

@Suite("Command line: outputs never replace another kind of file without --force")
struct OutputSafetyCLITests {
    let dump = Fixtures.path("synthetic/base_f32.npy")

    @Test(
        """
        a dump, a text file or a PNG in the way of another kind of output is refused and untouched; --force \
        replaces it
        """
    )
    func otherKinds() throws {
        let scratch = try Scratch()
        let cases: [(String, String)] = [
            ("synthetic/single_f32.h5", "x.png"), ("synthetic/base_f32.npy", "y.png"),
            ("synthetic/bad/not_a_dump.txt", "z.npy"), ("synthetic/images/gray1.png", "w.svg")
        ]
        for (fixture, name) in cases {
            let source = Fixtures.path(fixture)
            guard FileManager.default.fileExists(atPath: source) else {
                Issue.record("missing fixture \(fixture)"); continue
            }
            let target = scratch.file(name)
            try FileManager.default.copyItem(atPath: source, toPath: target)
            let before = try Data(contentsOf: URL(fileURLWithPath: target))
            let refused = try Run(["heatmap", dump, "-o", target])
            #expect(
                refused.status == 1 && refused.stderr.contains("refusing to replace it")
                    && refused.stderr.contains("--force"), "\(name): \(refused.stderr)")
            #expect(try Data(contentsOf: URL(fileURLWithPath: target)) == before, "\(name) was changed")
            #expect(try Run(["heatmap", dump, "-o", target, "--force"]).status == 0, "\(name) with --force")
        }
    }

    @Test("an output of the same kind is replaced as before; an empty file too; an input never, even with --force")
    func sameKind() throws {
        let scratch = try Scratch()
        let png = scratch.file("m.png")
        #expect(try Run(["heatmap", dump, "-o", png]).status == 0)
        #expect(try Run(["heatmap", dump, "--layer", "0", "-o", png]).status == 0)
        #expect(FileManager.default.createFile(atPath: scratch.file("e.npy"), contents: Data()))
        #expect(try Run(["heatmap", dump, "-o", scratch.file("e.npy")]).status == 0)
        let copy = scratch.file("copy.npy")
        try FileManager.default.copyItem(atPath: dump, toPath: copy)
        let input = try Run(["heatmap", copy, "-o", copy, "--force"])
        #expect(input.status == 1 && input.stderr.contains("is an input file"))
    }
}
