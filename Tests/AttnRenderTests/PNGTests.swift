import Testing
import Foundation
import AttnCore
import AttnTestSupport
@testable import AttnRender

@Suite("PNG")
struct PNGTests {
    /// Deterministic pseudo-random bytes (a 64-bit LCG).
    static func noise(_ count: Int, seed: UInt64) -> [UInt8] {
        var s = seed
        return (0..<count).map { _ in
            s = s &* 6364136223846793005 &+ 1442695040888963407; return UInt8(s >> 56)
        }
    }

    @Test(
        "greyscale and RGB images decode to exactly their pixels, every chunk's CRC correct",
        arguments: [(1, 1, 1), (3, 2, 1), (2, 3, 3), (17, 5, 3), (64, 33, 1), (300, 7, 3)])
    func roundTrip(width: Int, height: Int, channels: Int) throws {
        let image = Image(
            width: width, height: height, channels: channels,
            pixels: Self.noise(width * height * channels, seed: UInt64(width * 1000 + height)))
        let decoded = try DecodedPNG(try PNG.encode(image))
        #expect((decoded.width, decoded.height, decoded.channels) == (width, height, channels))
        #expect(decoded.pixels == image.pixels)
        #expect(decoded.chunkTypes == ["IHDR", "IDAT", "IEND"])
    }

    @Test("a horizontal gradient uses Sub on its first row and Up below, and decodes exactly")
    func filters() throws {
        let width = 40, height = 6
        let pixels = (0..<height).flatMap { _ in (0..<width).map { UInt8($0 * 6) } }
        let decoded = try DecodedPNG(try PNG.encode(Image(width: width, height: height, channels: 1, pixels: pixels)))
        #expect(decoded.pixels == pixels)
        #expect(decoded.filters == [1, 2])
    }

    @Test("smooth images (a zoomed heatmap) also decode exactly, through Average and Paeth where chosen")
    func heatmap() throws {
        var values: [Float] = []
        for i in 0..<24 { for j in 0..<24 { values.append(Float(sin(Double(i) / 3) * cos(Double(j) / 4))) } }
        let map = Matrix(rows: 24, columns: 24, values: values)
        for colormap in [Colormap.viridis, .jet] {
            let image = Image(map: map, range: ValueRange.of(map)!, colormap: colormap).zoomed(by: 3)
            let decoded = try DecodedPNG(try PNG.encode(image))
            #expect(decoded.pixels == image.pixels)
        }
    }

    @Test("Paeth predictor: the specification's tie order a, b, c")
    func paeth() {
        #expect(PNG.paeth(10, 20, 10) == 20)  // p = 20: pa = 10, pb = 0
        #expect(PNG.paeth(20, 10, 10) == 20)  // p = 20: pa = 0
        #expect(PNG.paeth(5, 5, 5) == 5)
        #expect(PNG.paeth(0, 255, 255) == 0)  // p = 0: pa = 0
    }
}
