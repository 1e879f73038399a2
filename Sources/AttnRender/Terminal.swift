import AttnCore

/// Pictures and coloured text for a terminal: 24-bit colour escape sequences (`ESC[38;2;R;G;Bm`),
/// or plain text when colour is off (stdout not a terminal, or NO_COLOR set).
public enum Terminal {
    /// A map fitted to `width` character columns: each character is two vertically stacked cells
    /// drawn with the upper half block (foreground = top cell, background = bottom cell). A map wider
    /// than `width` is shrunk by averaging; a narrower one is widened by repeating cells, up to two
    /// characters per cell (a character is about twice as tall as wide, half a character square).
    public static func picture(_ map: Matrix, range: ValueRange, colormap: Colormap, width: Int) -> String {
        let fitted = fit(map, width: Swift.max(width, 1))
        var out = ""
        var y = 0
        while y < fitted.rows {
            for x in 0..<fitted.columns {
                let (tr, tg, tb) = colormap.color(range.normalise(fitted[y, x]))
                out += "\u{1B}[38;2;\(tr);\(tg);\(tb)m"
                if y + 1 < fitted.rows {
                    let (br, bg, bb) = colormap.color(range.normalise(fitted[y + 1, x]))
                    out += "\u{1B}[48;2;\(br);\(bg);\(bb)m"
                }
                out += "\u{2580}"
            }
            out += "\u{1B}[0m\n"
            y += 2
        }
        return out
    }

    /// The same map as characters of a 10-step ramp (` .:-=+*#%@`), two characters per cell across
    /// and one line per cell, for terminals without colour.
    public static func plainPicture(_ map: Matrix, range: ValueRange, width: Int) -> String {
        let ramp = Array(" .:-=+*#%@")
        let fitted = fit(map, width: Swift.max(width / 2, 1), repeatUpTo: 1)
        var out = ""
        for y in 0..<fitted.rows {
            for x in 0..<fitted.columns {
                let c = ramp[Swift.min(ramp.count - 1, Int(range.normalise(fitted[y, x]) * Float(ramp.count)))]
                out += String([c, c])
            }
            out += "\n"
        }
        return out
    }

    /// `map` resized to at most `width` columns: box-averaged when larger (rows scaled alike), cells
    /// repeated (up to `repeatUpTo` times across, and as many rows as needed for square cells) when smaller.
    static func fit(_ map: Matrix, width: Int, repeatUpTo: Int = 2) -> Matrix {
        if map.columns > width {
            let factor = Double(map.columns) / Double(width)
            let rows = Swift.max(1, Int((Double(map.rows) / factor).rounded()))
            var out = Matrix(rows: rows, columns: width)
            for y in 0..<rows {
                let y0 = Int(Double(y) * factor),
                    y1 = Swift.max(y0 + 1, Swift.min(map.rows, Int(Double(y + 1) * factor)))
                for x in 0..<width {
                    let x0 = Int(Double(x) * factor),
                        x1 = Swift.max(x0 + 1, Swift.min(map.columns, Int(Double(x + 1) * factor)))
                    var sum = 0.0, n = 0
                    for yy in y0..<Swift.min(y1, map.rows) {
                        for xx in x0..<Swift.min(x1, map.columns) { sum += Double(map[yy, xx]); n += 1 }
                    }
                    out.values[y * width + x] = Float(sum / Double(Swift.max(n, 1)))
                }
            }
            return out
        }
        let repeatX = Swift.max(1, Swift.min(repeatUpTo, width / Swift.max(map.columns, 1)))
        let repeatY = repeatX  // half-block cells are square: as many rows as columns per cell
        var out = Matrix(rows: map.rows * repeatY, columns: map.columns * repeatX)
        for y in 0..<out.rows {
            for x in 0..<out.columns { out.values[y * out.columns + x] = map[y / repeatY, x / repeatX] }
        }
        return out
    }

    /// Tokens separated by spaces, each on the background colour of its value (and black or white
    /// text, whichever reads better on it).
    public static func tokens(_ labels: [String], values: [Float], range: ValueRange, colormap: Colormap) -> String {
        var out = ""
        for (i, label) in labels.enumerated() {
            let (r, g, b) = colormap.color(range.normalise(values[i]))
            let light = 0.299 * Double(r) + 0.587 * Double(g) + 0.114 * Double(b) > 140
            out +=
                "\u{1B}[48;2;\(r);\(g);\(b)m\u{1B}[38;2;\(light ? "0;0;0" : "255;255;255")m\(printable(label))\u{1B}[0m"
            if i + 1 < labels.count { out += " " }
        }
        return out + "\n"
    }

    /// A label with control characters (escape sequences included) shown as `\u{..}`.
    public static func printable(_ label: String) -> String {
        PrintableText.escaped(label)
    }
}
