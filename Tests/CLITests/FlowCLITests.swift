import Testing
import Foundation
import AttnCore
import AttnTestSupport

@Suite("Command line: flow")
struct FlowCLITests {
    let zen = Fixtures.path("real/minilm6_zen_layers_f16.h5")
    let board = Fixtures.path("real/vits14_board_small.h5")

    @Test("flow -o x.npy: tokens × tokens, rows summing to 1; the grid view is row --token of the matrix")
    func matrixAndGrid() throws {
        let scratch = try Scratch()
        let r = try Run(["flow", zen, "-o", scratch.file("f.npy")])
        #expect(r.status == 0, "\(r.stderr)")
        let f = try readFloat32NPY(scratch.file("f.npy"))
        #expect(f.shape == [26, 26])
        for i in 0..<26 { #expect(abs(f.values[(i * 26)..<((i + 1) * 26)].reduce(0, +) - 1) < 1e-5) }
        // Row 3 alone as a 2×13 "grid" of the 26 tokens, no prefix: the same numbers.
        #expect(
            try Run([
                "flow", zen, "--view", "grid", "--token", "3", "--prefix", "0", "--grid", "2x13", "-o",
                scratch.file("g.npy")
            ]).status == 0)
        let g = try readFloat32NPY(scratch.file("g.npy"))
        #expect(g.values == Array(f.values[(3 * 26)..<(4 * 26)]))
    }

    @Test("work over --max-seconds is refused up front with the estimate; a vision dump defaults to the grid view")
    func sizeGuard() throws {
        let scratch = try Scratch()
        let refused = try Run(["flow", board, "--view", "matrix", "--max-seconds", "1", "-o", scratch.file("m.npy")])
        #expect(refused.status == 1)
        #expect(
            refused.stderr.contains("66049 maximum-flow problems") && refused.stderr.contains("--max-seconds"),
            "\(refused.stderr)")
        #expect(!FileManager.default.fileExists(atPath: scratch.file("m.npy")))
        let grid = try Run(["flow", board, "--layer", "0", "-o", scratch.file("g.npy")])
        #expect(grid.status == 0 && grid.stderr.contains("view: grid"), "\(grid.stderr)")
        #expect(try readFloat32NPY(scratch.file("g.npy")).shape == [16, 16])
    }

    @Test("bad requests: a layer or token out of range, a bad --max-seconds")
    func badRequests() throws {
        let scratch = try Scratch()
        let layer = try Run(["flow", zen, "--layer", "6", "-o", scratch.file("x.npy")])
        #expect(layer.status == 1 && layer.stderr.contains("layer 6 is out of range"))
        let token = try Run(["flow", board, "--token", "300", "-o", scratch.file("x.npy")])
        #expect(token.status == 1 && token.stderr.contains("--token 300 is out of range"), "\(token.stderr)")
        #expect(try Run(["flow", zen, "--max-seconds", "0", "-o", scratch.file("x.npy")]).status == 64)
        #expect(!FileManager.default.fileExists(atPath: scratch.file("x.npy")))
    }
}
