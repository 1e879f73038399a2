import Testing
import Foundation
import AttnTestSupport

/// `--range pLO:pHI` and the note on a spoilt min–max scale, on the real ViT-S/14 dump fused over heads
/// (TestData/real/make_board_mean.py): its 12-layer CLS rollout is dominated by one artifact patch.
@Suite("Command line: percentile ranges and spoilt scales")
struct RangeCLITests {
    static let file = Fixtures.path("real/vits14_board_mean12_f16.h5")

    /// The centre pixel of each cell of a 16 × 16 grid drawn at zoom 16.
    static func cells(_ png: String) throws -> [[UInt8]] {
        let image = try DecodedPNG([UInt8](try Data(contentsOf: URL(fileURLWithPath: png))))
        #expect(image.width == 256 && image.height == 256 && image.channels == 3)
        return (0..<256).map { c in
            let x = (c % 16) * 16 + 8, y = (c / 16) * 16 + 8, at = (y * 256 + x) * 3
            return Array(image.pixels[at..<(at + 3)])
        }
    }

    @Test("the CLS rollout's min–max picture names the artifact patch numpy finds, and the option")
    func spoilt() throws {
        let scratch = try Scratch()
        let expected = try Fixtures.json("real/vits14_board_mean12.expected.json")
        let r = try Run(["rollout", Self.file, "--view", "grid", "-o", scratch.file("r.png")])
        #expect(r.status == 0, "\(r.stderr)")
        let token = expected["argmax_token"].int, patch = expected["argmax_patch"].array.map(\.int)
        let lines = r.stderr.split(separator: "\n").filter { $0.contains("stands far above the rest") }
        #expect(lines.count == 1, "\(r.stderr)")
        #expect(
            lines.first?.contains("token \(token) (patch row \(patch[0]), column \(patch[1]))") == true
                && lines.first?.contains("--range p1:p99") == true, "\(r.stderr)")
        // 99% of the map in the lowest 24% of the colours (numpy: 23.2%).
        #expect(lines.first?.contains("lowest 24%") == true, "\(r.stderr)")
    }

    @Test("--range p1:p99 maps numpy's percentiles to the ends: the 3 cells beyond each drawn in the end colours")
    func percentiles() throws {
        let scratch = try Scratch()
        let expected = try Fixtures.json("real/vits14_board_mean12.expected.json")
        let out = scratch.file("r.png")
        let r = try Run(["rollout", Self.file, "--view", "grid", "--range", "p1:p99", "-o", out])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(!r.stderr.contains("stands far above"), "\(r.stderr)")
        // The range said on stderr is numpy's (float32 rollout against float64: within 1e-6).
        let said = try #require(r.stderr.split(separator: "\n").first { $0.contains("wrote \(out)") })
        let words = said.components(separatedBy: "range ").last!.components(separatedBy: "...")
        let low = try #require(Double(words[0])), high = try #require(Double(words[1]))
        #expect(abs(low - expected["p1"].double) < 1e-6 && abs(high - expected["p99"].double) < 1e-6, "\(said)")
        // viridis' ends (matplotlib: 0.267004, 0.004874, 0.329415 and 0.993248, 0.906157, 0.143936).
        let grid = expected["rollout_cls_grid"].array.flatMap { $0.array.map(\.double) }
        let cells = try Self.cells(out)
        let top = grid.indices.filter { grid[$0] > expected["p99"].double }
        let bottom = grid.indices.filter { grid[$0] < expected["p1"].double }
        #expect(top.count == 3 && bottom.count == 3)
        #expect(cells.indices.filter { cells[$0] == [253, 231, 37] } == top)
        #expect(cells.indices.filter { cells[$0] == [68, 1, 84] } == bottom)
    }

    @Test("a legend over a montage needs one scale: p1:p99 is one per tile, shared:p1:p99 one for all")
    func montage() throws {
        let scratch = try Scratch()
        let each = try Run(
            ["grid", Self.file, "--layer", "all", "--range", "p1:p99", "--legend", "-o", scratch.file("a.png")])
        #expect(each.status == 64 && each.stderr.contains("shared:p1:p99"), "\(each.stderr)")
        let shared = try Run(
            ["grid", Self.file, "--layer", "all", "--range", "shared:p1:p99", "--legend", "-o", scratch.file("b.png")])
        #expect(shared.status == 0 && shared.stderr.contains("one range"), "\(shared.stderr)")
        let tiles = try Run(["grid", Self.file, "--layer", "all", "--range", "p1:p99", "-o", scratch.file("c.png")])
        #expect(tiles.status == 0 && tiles.stderr.contains("each tile its own percentile range"), "\(tiles.stderr)")
    }

    @Test(
        "a montage names the tiles whose own min–max scale is spoilt, as numpy finds them: every matrix, no grid"
    )
    func spoiltTiles() throws {
        let scratch = try Scratch()
        let expected = try Fixtures.json("real/vits14_board_mean12.expected.json")
        let matrices = try Run(["heatmap", Self.file, "--layer", "all", "-o", scratch.file("m.png")])
        let spoilt = expected["matrix_spoilt_layers"].array.count
        #expect(matrices.status == 0 && spoilt == 12, "\(matrices.stderr)")
        #expect(
            matrices.stderr.contains("\(spoilt) of 12 tiles (L0; L1; L2; …) have a cell far above the rest"),
            "\(matrices.stderr)")
        let grids = try Run(["grid", Self.file, "--layer", "all", "-o", scratch.file("g.png")])
        #expect(grids.status == 0 && expected["cls_grid_spoilt_layers"].array.isEmpty, "\(grids.stderr)")
        #expect(!grids.stderr.contains("far above the rest"), "\(grids.stderr)")
    }

    @Test("a malformed percentile range is a usage error", arguments: ["p99:p1", "p1:p101", "p1", "shared:p1"])
    func malformed(range: String) throws {
        let scratch = try Scratch()
        let r = try Run(["rollout", Self.file, "--view", "grid", "--range", range, "-o", scratch.file("r.png")])
        #expect(r.status == 64 && r.stderr.contains("--range"), "\(r.stderr)")
    }
}
