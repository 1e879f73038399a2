import Testing
import Foundation
import AttnCore
import AttnTestSupport
@testable import AttnRender

@Suite("Overlay")
struct OverlayTests {
    @Test("outline: the ring of a filled square, one pixel wide; interior pixels are not on it")
    func outline() {
        let edge = Overlay.outline(Matrix(rows: 3, columns: 3, repeating: 1), width: 6, height: 6, thickness: 1)
        for y in 0..<6 {
            for x in 0..<6 {
                #expect(edge[y * 6 + x] == (x == 0 || y == 0 || x == 5 || y == 5), "(\(x), \(y))")
            }
        }
        let corner = Overlay.outline(
            Matrix(rows: 2, columns: 2, values: [1, 0, 0, 0]), width: 8, height: 8, thickness: 1)
        #expect(corner.filter { $0 }.count == 12)  // the ring of the 4×4 block: 16 pixels less its 2×2 interior
    }

    @Test(
        "reading pictures: palette (4-bit), RGBA, 16-bit grey, 1-bit, and a commented 16-bit PPM give Pillow's pixels",
        arguments: ["palette.png", "rgba.png", "gray16.png", "gray1.png", "comments.ppm"])
    func readPictures(name: String) throws {
        let image = try ImageFile.read(Fixtures.path("synthetic/images/" + name))
        let expected = try Fixtures.json("synthetic/images/expected.json")[name].doubles.map { UInt8($0) }
        #expect(image.channels == 3)
        #expect(image.pixels == expected)
    }

    @Test("our own PNG and PGM output read back as RGB")
    func readOwnOutput() throws {
        let folder = NSTemporaryDirectory() + "attninspect-overlay-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let grey = Image(width: 3, height: 2, channels: 1, pixels: [0, 50, 100, 150, 200, 250])
        try Data(try PNG.encode(grey)).write(to: URL(fileURLWithPath: folder + "/g.png"))
        try Data(grey.netpbm()).write(to: URL(fileURLWithPath: folder + "/g.pgm"))
        for file in ["g.png", "g.pgm"] {
            let read = try ImageFile.read(folder + "/" + file)
            #expect(read.pixels == grey.pixels.flatMap { [$0, $0, $0] })
        }
    }

    @Test("an interlaced PNG, a truncated PPM and a text file are refused with the file named")
    func badPictures() throws {
        let interlaced = try #require(throws: AttnError.self) {
            try ImageFile.read(Fixtures.path("synthetic/images/interlaced.png"))
        }
        #expect(interlaced.message.contains("interlaced"))
        #expect(throws: AttnError.self) { try ImageFile.read(Fixtures.path("synthetic/images/make_images.py")) }
        let folder = NSTemporaryDirectory() + "attninspect-overlay-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try Data(Array("P6\n4 4\n255\n".utf8) + [1, 2, 3]).write(to: URL(fileURLWithPath: folder + "/t.ppm"))
        let truncated = try #require(throws: AttnError.self) { try ImageFile.read(folder + "/t.ppm") }
        #expect(truncated.file == folder + "/t.ppm" && truncated.message.contains("truncated"))
    }

    @Test("bilinear enlargement, worked by hand: half-pixel centres, edges clamped")
    func bilinear() {
        // 1×2 → 1×4: u = (x + ½)·2/4 − ½ = x/2 − ¼ → clamp(−¼) = 0, ¼, ¾, clamp(1¼) = 1.
        let row = Overlay.upsample(Matrix(rows: 1, columns: 2, values: [0, 8]), width: 4, height: 1, mode: .bilinear)
        #expect(row.values == [0, 2, 6, 8])
        // 2×2 → 4×4: the centre four pixels mix all cells with weights ¾·¾, ¾·¼, ¼·¼.
        let square = Overlay.upsample(
            Matrix(rows: 2, columns: 2, values: [0, 16, 32, 48]), width: 4, height: 4, mode: .bilinear)
        // 0·9/16 + 16·3/16 + 32·3/16 + 48·1/16 = 3 + 6 + 3 = 12
        #expect(square[1, 1] == 12)
        #expect(square[0, 0] == 0 && square[3, 3] == 48 && square[0, 3] == 16)
    }

    @Test("nearest enlargement gives each cell a block")
    func nearest() {
        let big = Overlay.upsample(
            Matrix(rows: 2, columns: 2, values: [1, 2, 3, 4]), width: 4, height: 6, mode: .nearest)
        #expect(big.values == [1, 1, 2, 2, 1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4, 3, 3, 4, 4])
    }

    @Test("blending: alpha 0 is the picture, 1 the colours, ½ the rounded mean")
    func blend() {
        let picture = Image(width: 2, height: 1, channels: 3, pixels: [10, 20, 30, 200, 210, 220])
        let map = Matrix(rows: 1, columns: 2, values: [0, 1])
        let range = ValueRange(low: 0, high: 1)
        #expect(
            Overlay.blend(map, over: picture, range: range, colormap: .viridis, alpha: 0, resample: .nearest).pixels
                == picture.pixels)
        // viridis ends: (68, 1, 84) and (253, 231, 37).
        #expect(
            Overlay.blend(map, over: picture, range: range, colormap: .viridis, alpha: 1, resample: .nearest).pixels
                == [68, 1, 84, 253, 231, 37])
        // (10 + 68)/2 = 39, (20 + 1)/2 = 10.5 → 11, (30 + 84)/2 = 57; (200 + 253)/2 = 226.5 → 227, 220.5 → 221, 128.5 →
        // 129
        #expect(
            Overlay.blend(map, over: picture, range: range, colormap: .viridis, alpha: 0.5, resample: .nearest).pixels
                == [39, 11, 57, 227, 221, 129])
    }

    @Test("a grid fits a picture of the same aspect ratio (within 2%), and the message says how to fix a misfit")
    func fit() {
        #expect(Overlay.misfit(rows: 16, columns: 16, width: 224, height: 224) == nil)
        #expect(Overlay.misfit(rows: 37, columns: 37, width: 518, height: 520) == nil)
        let message = Overlay.misfit(rows: 16, columns: 16, width: 224, height: 148)
        #expect(message?.contains("does not fit the 224×148 picture") == true)
        #expect(message?.contains("--fit stretch") == true)
    }
}
