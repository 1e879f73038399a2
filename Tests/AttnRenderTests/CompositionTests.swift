import Testing
import AttnCore
@testable import AttnRender

@Suite("Labels, montages and legends")
struct CompositionTests {
    @Test("a glyph is drawn bit for bit: '1' at scale 1 and 2")
    func glyph() {
        var image = Image(width: 5, height: 7, channels: 1, pixels: [UInt8](repeating: 255, count: 35))
        BitmapFont.draw("1", at: 0, 0, scale: 1, colour: [0], into: &image)
        let one: [UInt8] = [0b00100, 0b01100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110]
        for y in 0..<7 {
            for x in 0..<5 {
                #expect((image.pixels[y * 5 + x] == 0) == (one[y] & (1 << (4 - x)) != 0), "(\(x), \(y))")
            }
        }
        var big = Image(width: 10, height: 14, channels: 3, pixels: [UInt8](repeating: 255, count: 420))
        BitmapFont.draw("1", at: 0, 0, scale: 2, colour: [1, 2, 3], into: &big)
        #expect(big.pixels.count { $0 == 1 } == 4 * 10)  // 10 lit cells of the glyph, 2×2 pixels each
        #expect(BitmapFont.width("L11 H3", scale: 1) == 6 * 6 - 1)
    }

    @Test(
        "legend numbers: short, at most three significant digits",
        arguments: [
            (Float(0.0123), "0.0123"), (0.07550049, "0.0755"), (4.5e-05, "4.5e-05"), (5.8710575e-05, "5.87e-05"),
            (1234, "1234"), (-0.5, "-0.5"), (0, "0"), (1, "1"), (2.355329e-25, "2.36e-25"), (123456, "1.23e+05"),
            (0.00099996, "1e-03")
        ])
    func numbers(value: Float, text: String) {
        #expect(BitmapFont.number(value) == text)
    }

    @Test("a montage places each tile under its label on white, in rows of `columns`")
    func montage() {
        let tiles = (0..<3).map { i in
            (
                label: "L\(i)",
                image: Image(
                    width: 2, height: 2, channels: 1, pixels: [UInt8](repeating: UInt8(10 * (i + 1)), count: 4))
            )
        }
        let m = Composition.montage(tiles, columns: 2, gap: 4, labelScale: 1)
        let labelHeight = 7 + 2, column = 11  // columns as wide as the labels ("L0": 2·6 − 1 = 11 pixels)
        #expect(m.width == 2 * column + 3 * 4 && m.height == 2 * (2 + labelHeight) + 3 * 4)
        func px(_ x: Int, _ y: Int) -> UInt8 { m.pixels[y * m.width + x] }
        #expect(px(4, 4 + labelHeight) == 10 && px(5, 5 + labelHeight) == 10)  // tile 0 at (4, 4 + label)
        #expect(px(4 + column + 4, 4 + labelHeight) == 20)  // tile 1 in the next column
        #expect(px(4, 4 + labelHeight + 2 + 4 + labelHeight) == 30)  // tile 2, second row
        #expect(px(0, 0) == 255 && px(m.width - 1, m.height - 1) == 255)  // background
        #expect(m.pixels.contains(0))  // labels drawn in black
        #expect(
            Composition.columns(for: 6) == 3 && Composition.columns(for: 9) == 3 && Composition.columns(for: 10) == 4)
    }

    @Test("a legend is a colour bar from the colormap's low end to its high end, with numbers under it")
    func legend() {
        let image = Image(width: 100, height: 20, channels: 3, pixels: [UInt8](repeating: 128, count: 6000))
        let out = Composition.legend(below: image, range: ValueRange(low: 0, high: 2), colormap: .viridis)
        #expect(out.width == 100 && out.height > 20)
        #expect(Array(out.pixels[0..<3]) == [128, 128, 128])
        let barTop = 20 + 8, left = 8, right = 8 + 84 - 1  // bar 100 − 16 = 84 wide, 8 from the edge
        func rgb(_ x: Int, _ y: Int) -> [UInt8] {
            Array(out.pixels[(3 * (y * out.width + x))..<(3 * (y * out.width + x) + 3)])
        }
        #expect(rgb(left, barTop) == [68, 1, 84])  // viridis(0)
        #expect(rgb(right, barTop + 5) == [253, 231, 37])  // viridis(1)
        let textRows = out.pixels[(3 * (barTop + 10) * out.width)...]
        #expect(textRows.contains(0))  // the numbers, in black
    }
}

@Suite("Terminal and SVG")
struct TerminalSVGTests {
    @Test("half blocks: two cells per character, foreground the top cell, background the bottom one")
    func halfBlocks() {
        let map = Matrix(rows: 2, columns: 1, values: [0, 1])
        let text = Terminal.picture(map, range: ValueRange(low: 0, high: 1), colormap: .viridis, width: 1)
        #expect(text == "\u{1B}[38;2;68;1;84m\u{1B}[48;2;253;231;37m\u{2580}\u{1B}[0m\n")
    }

    @Test("fitting: a wide map is box-averaged to the width; a small one repeated up to twice")
    func fitting() {
        let wide = Terminal.fit(Matrix(rows: 2, columns: 4, values: [0, 2, 4, 6, 8, 10, 12, 14]), width: 2)
        // means of the 2×2 boxes: (0+2+8+10)/4, (4+6+12+14)/4
        #expect(wide.rows == 1 && wide.columns == 2 && wide.values == [5, 9])
        let small = Terminal.fit(Matrix(rows: 1, columns: 2, values: [1, 2]), width: 80)
        #expect(small.rows == 2 && small.columns == 4 && small.values == [1, 1, 2, 2, 1, 1, 2, 2])
    }

    @Test("plain pictures use the ramp: 0 is a space, the top is @")
    func plain() {
        let text = Terminal.plainPicture(
            Matrix(rows: 1, columns: 2, values: [0, 1]), range: ValueRange(low: 0, high: 1), width: 4)
        #expect(text == "  @@\n")
    }

    @Test("coloured tokens: background of the value, readable text colour; escape sequences in labels are defused")
    func tokens() {
        let text = Terminal.tokens(
            ["a", "b\u{1B}[31m"], values: [0, 1], range: ValueRange(low: 0, high: 1), colormap: .viridis)
        #expect(
            text
                == """
                \u{1B}[48;2;68;1;84m\u{1B}[38;2;255;255;255ma\u{1B}[0m \
                \u{1B}[48;2;253;231;37m\u{1B}[38;2;0;0;0mb\\u{1b}[31m\u{1B}[0m\n
                """
        )
    }

    @Test("SVG: one rect per cell in the colormap's colour, labels escaped")
    func svg() {
        let map = Matrix(rows: 2, columns: 2, values: [0, 1, 0.5, 0])
        let text = SVG.matrix(
            map, range: ValueRange(low: 0, high: 1), colormap: .viridis, rowLabels: ["<s>", "a&b"],
            columnLabels: ["x", "y"], title: "t")
        #expect(text.components(separatedBy: "<rect x=").count - 1 == 4)
        #expect(text.contains("fill=\"rgb(253,231,37)\"") && text.contains("fill=\"rgb(68,1,84)\""))
        #expect(text.contains("&lt;s&gt;") && text.contains("a&amp;b") && !text.contains("<s>"))
    }
}
