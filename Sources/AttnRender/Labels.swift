#if canImport(Glibc)
    import Glibc
#endif
import AttnCore

/// A built-in 5×7 bitmap font (no font files at run time) for tile labels (`L11 H3`) and legend
/// numbers (`0.0123`, `-4.5e-05`). Each glyph is 7 rows of 5 bits, the high bit on the left.
public enum BitmapFont {
    public static let glyphWidth = 5, glyphHeight = 7

    static let glyphs: [Character: [UInt8]] = [
        "0": [0b01110, 0b10001, 0b10011, 0b10101, 0b11001, 0b10001, 0b01110],
        "1": [0b00100, 0b01100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110],
        "2": [0b01110, 0b10001, 0b00001, 0b00010, 0b00100, 0b01000, 0b11111],
        "3": [0b11111, 0b00010, 0b00100, 0b00010, 0b00001, 0b10001, 0b01110],
        "4": [0b00010, 0b00110, 0b01010, 0b10010, 0b11111, 0b00010, 0b00010],
        "5": [0b11111, 0b10000, 0b11110, 0b00001, 0b00001, 0b10001, 0b01110],
        "6": [0b00110, 0b01000, 0b10000, 0b11110, 0b10001, 0b10001, 0b01110],
        "7": [0b11111, 0b00001, 0b00010, 0b00100, 0b01000, 0b01000, 0b01000],
        "8": [0b01110, 0b10001, 0b10001, 0b01110, 0b10001, 0b10001, 0b01110],
        "9": [0b01110, 0b10001, 0b10001, 0b01111, 0b00001, 0b00010, 0b01100],
        ".": [0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b01100, 0b01100],
        "-": [0b00000, 0b00000, 0b00000, 0b11111, 0b00000, 0b00000, 0b00000],
        "+": [0b00000, 0b00100, 0b00100, 0b11111, 0b00100, 0b00100, 0b00000],
        "e": [0b00000, 0b00000, 0b01110, 0b10001, 0b11111, 0b10000, 0b01110],
        "L": [0b10000, 0b10000, 0b10000, 0b10000, 0b10000, 0b10000, 0b11111],
        "H": [0b10001, 0b10001, 0b10001, 0b11111, 0b10001, 0b10001, 0b10001],
        "x": [0b00000, 0b00000, 0b10001, 0b01010, 0b00100, 0b01010, 0b10001],
        " ": [0, 0, 0, 0, 0, 0, 0]
    ]

    /// Pixel width of `text` at `scale` (one blank column between glyphs).
    public static func width(_ text: String, scale: Int) -> Int {
        text.isEmpty ? 0 : (text.count * (glyphWidth + 1) - 1) * scale
    }

    /// Draws `text` with its top-left corner at (x, y) in `colour`; characters the font lacks are drawn
    /// as blanks, pixels outside the image are skipped.
    public static func draw(_ text: String, at x: Int, _ y: Int, scale: Int, colour: [UInt8], into image: inout Image) {
        precondition(colour.count == image.channels)
        for (n, character) in text.enumerated() {
            guard let rows = glyphs[character] else { continue }
            let left = x + n * (glyphWidth + 1) * scale
            for (r, bits) in rows.enumerated() {
                for c in 0..<glyphWidth where bits & (1 << (glyphWidth - 1 - c)) != 0 {
                    for dy in 0..<scale {
                        for dx in 0..<scale {
                            let px = left + c * scale + dx, py = y + r * scale + dy
                            guard px >= 0, py >= 0, px < image.width, py < image.height else { continue }
                            for ch in 0..<image.channels {
                                image.pixels[(py * image.width + px) * image.channels + ch] = colour[ch]
                            }
                        }
                    }
                }
            }
        }
    }

    /// A number in at most `digits` significant digits, short: `0.0123`, `-4.5e-05`, `1200`.
    public static func number(_ value: Float, digits: Int = 3) -> String {
        guard value.isFinite else { return value.isNaN ? "" : (value > 0 ? "+" : "-") }
        if value == 0 { return "0" }
        let magnitude = abs(Double(value))
        if magnitude >= 1e-3 && magnitude < 1e5 {
            let decimals = Swift.max(0, digits - 1 - Int(Glibc.log10(magnitude).rounded(.down)))
            var text = formatFixed(Double(value), decimals: decimals)
            if text.contains(".") {
                while text.hasSuffix("0") { text.removeLast() }
                if text.hasSuffix(".") { text.removeLast() }
            }
            return text
        }
        var exponent = Int(Glibc.log10(magnitude).rounded(.down))
        var mantissa = formatFixed(Double(value) / Glibc.pow(10, Double(exponent)), decimals: digits - 1)
        if let m = Double(mantissa), abs(m) >= 10 {  // 9.9996e-4 rounds to 10.00: write 1.00e-03
            exponent += 1
            mantissa = formatFixed(Double(value) / Glibc.pow(10, Double(exponent)), decimals: digits - 1)
        }
        if mantissa.contains(".") {
            while mantissa.hasSuffix("0") { mantissa.removeLast() }
            if mantissa.hasSuffix(".") { mantissa.removeLast() }
        }
        let e = abs(exponent)
        return mantissa + "e" + (exponent < 0 ? "-" : "+") + (e < 10 ? "0" : "") + "\(e)"
    }
}

/// Pictures put together: tiles in a grid with labels, and a colour bar with the numbers of its range.
public enum Composition {
    /// Tiles (all the same size and channels) in `columns` columns, each with its label above it,
    /// on a white background.
    public static func montage(
        _ tiles: [(label: String, image: Image)], columns: Int, gap: Int = 4, labelScale: Int = 1
    ) -> Image {
        precondition(!tiles.isEmpty)
        let first = tiles[0].image
        return montage(
            labels: tiles.map(\.label), tileWidth: first.width, tileHeight: first.height, channels: first.channels,
            columns: columns, gap: gap, labelScale: labelScale
        ) { tiles[$0].image }
    }

    /// The width and height of a montage of tiles of `tileWidth` × `tileHeight` labelled `labels`.
    public static func montageSize(
        labels: [String], tileWidth: Int, tileHeight: Int, columns: Int, gap: Int = 4, labelScale: Int = 1
    ) -> (width: Int, height: Int) {
        let labelHeight = BitmapFont.glyphHeight * labelScale + 2 * labelScale
        // Each column is as wide as its widest label, so labels never run into the next tile's.
        let w = max(tileWidth, labels.map { BitmapFont.width($0, scale: labelScale) }.max() ?? 0)
        let rows = (labels.count + columns - 1) / columns
        return (columns * w + (columns + 1) * gap, rows * (tileHeight + labelHeight) + (rows + 1) * gap)
    }

    /// The montage of `labels.count` tiles, each made by `tile(i)` when it is drawn, so that only the montage
    /// itself is held, never every tile's picture at once.
    public static func montage(
        labels: [String], tileWidth: Int, tileHeight h: Int, channels: Int, columns: Int, gap: Int = 4,
        labelScale: Int = 1,
        tile: (Int) throws -> Image
    ) rethrows -> Image {
        precondition(!labels.isEmpty && columns > 0)
        let labelHeight = BitmapFont.glyphHeight * labelScale + 2 * labelScale
        let w = max(tileWidth, labels.map { BitmapFont.width($0, scale: labelScale) }.max() ?? 0)
        let (width, height) = montageSize(
            labels: labels, tileWidth: tileWidth, tileHeight: h, columns: columns, gap: gap, labelScale: labelScale)
        var out = Image(
            width: width, height: height, channels: channels,
            pixels: [UInt8](repeating: 255, count: width * height * channels))
        for (i, label) in labels.enumerated() {
            let image = try tile(i)
            precondition(image.width == tileWidth && image.height == h && image.channels == channels)
            let left = gap + (i % columns) * (w + gap), top = gap + (i / columns) * (h + labelHeight + gap)
            BitmapFont.draw(
                label, at: left, top + labelScale, scale: labelScale, colour: [UInt8](repeating: 0, count: channels),
                into: &out)
            for y in 0..<h {
                let from = y * tileWidth * channels, to = ((top + labelHeight + y) * width + left) * channels
                out.pixels.replaceSubrange(
                    to..<(to + tileWidth * channels), with: image.pixels[from..<(from + tileWidth * channels)])
            }
        }
        return out
    }

    /// The near-square column count for `count` tiles: ⌈√count⌉.
    public static func columns(for count: Int) -> Int {
        var c = 1
        while c * c < count { c += 1 }
        return c
    }

    /// `image` with a colour bar below it: the colormap from `range.low` (left) to `range.high`
    /// (right), with both numbers and the middle one printed under it.
    public static func legend(below image: Image, range: ValueRange, colormap: Colormap?, scale: Int = 1) -> Image {
        let channels = image.channels
        let barWidth = Swift.max(image.width - 16, 64), barHeight = 10 * scale, margin = 8
        let textHeight = 2 * (BitmapFont.glyphHeight + 3) * scale
        let width = Swift.max(image.width, barWidth + 2 * margin)
        let height = image.height + margin + barHeight + textHeight + margin
        var out = Image(
            width: width, height: height, channels: channels,
            pixels: [UInt8](repeating: 255, count: width * height * channels))
        for y in 0..<image.height {
            let from = y * image.width * channels, to = y * width * channels
            out.pixels.replaceSubrange(
                to..<(to + image.width * channels), with: image.pixels[from..<(from + image.width * channels)])
        }
        let top = image.height + margin
        for x in 0..<barWidth {
            let t = Float(x) / Float(Swift.max(barWidth - 1, 1))
            let colour: [UInt8]
            if let colormap {
                let (r, g, b) = colormap.color(t); colour = channels == 3 ? [r, g, b] : [r]
            } else {
                let v = Colormap.byte(t)
                colour = [UInt8](repeating: v, count: channels)
            }
            for y in top..<(top + barHeight) {
                for ch in 0..<channels { out.pixels[(y * width + margin + x) * channels + ch] = colour[ch] }
            }
        }
        let black = [UInt8](repeating: 0, count: channels), textTop = top + barHeight + 2 * scale
        let low = BitmapFont.number(range.low), high = BitmapFont.number(range.high)
        let middle = BitmapFont.number((range.low + range.high) / 2)
        BitmapFont.draw(low, at: margin, textTop, scale: scale, colour: black, into: &out)
        let highX = margin + barWidth - BitmapFont.width(high, scale: scale)
        if highX > margin + BitmapFont.width(low, scale: scale) + 4 * scale {
            BitmapFont.draw(high, at: highX, textTop, scale: scale, colour: black, into: &out)
        } else {  // too narrow for both on one line: the high end goes on a second line
            BitmapFont.draw(
                high, at: max(margin, highX), textTop + (BitmapFont.glyphHeight + 2) * scale, scale: scale,
                colour: black, into: &out)
        }
        let middleX = margin + barWidth / 2 - BitmapFont.width(middle, scale: scale) / 2
        if middleX > margin + BitmapFont.width(low, scale: scale) + 4
            && middleX + BitmapFont.width(middle, scale: scale) + 4 < margin + barWidth
                - BitmapFont.width(high, scale: scale)
        {
            BitmapFont.draw(middle, at: middleX, textTop, scale: scale, colour: black, into: &out)
        }
        return out
    }
}
