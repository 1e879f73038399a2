import AttnCore

/// A heatmap as SVG: one `rect` per cell, filled with the colormap's colour, token labels along both
/// axes (column labels turned 90°), and the range in a caption. Scales to any size in a browser.
public enum SVG {
    public static let cell = 16

    public static func matrix(
        _ map: Matrix, range: ValueRange, colormap: Colormap, rowLabels: [String]?, columnLabels: [String]?,
        title: String
    ) -> String {
        let rows = rowLabels ?? (0..<map.rows).map(String.init)
        let columns = columnLabels ?? (0..<map.columns).map(String.init)
        let charWidth = 7
        let left = (rows.map(\.count).max() ?? 1) * charWidth + 8
        let top = (columns.map(\.count).max() ?? 1) * charWidth + 8
        let width = left + map.columns * cell + 8, height = top + map.rows * cell + 28
        var out = """
            <?xml version="1.0" encoding="UTF-8"?>
            <svg xmlns="http://www.w3.org/2000/svg" width="\(width)" height="\(height)" \
            viewBox="0 0 \(width) \(height)" font-family="monospace" font-size="11">
            <title>\(escape(title))</title>
            <rect width="\(width)" height="\(height)" fill="white"/>

            """
        for i in 0..<map.rows {
            for j in 0..<map.columns {
                let (r, g, b) = colormap.color(range.normalise(map[i, j]))
                out +=
                    """
                    <rect x=\"\(left + j * cell)\" y=\"\(top + i * cell)\" width=\"\(cell)\" height=\"\(cell)\" \
                    fill=\"rgb(\(r),\(g),\(b))\"><title>\(escape(rows[i])) → \(escape(columns[j])): \
                    \(map[i, j])</title></rect>\n
                    """
            }
        }
        for (i, label) in rows.enumerated() {
            out +=
                """
                <text x=\"\(left - 4)\" y=\"\(top + i * cell + cell - 4)\" \
                text-anchor=\"end\">\(escape(label))</text>\n
                """
        }
        for (j, label) in columns.enumerated() {
            let x = left + j * cell + cell - 4, y = top - 4
            out += "<text x=\"\(x)\" y=\"\(y)\" transform=\"rotate(-90 \(x) \(y))\">\(escape(label))</text>\n"
        }
        out +=
            """
            <text x=\"\(left)\" \
            y=\"\(height - 8)\">\(escape("\(title); range \(range.low)...\(range.high)"))</text>\n</svg>\n
            """
        return out
    }

    /// Text safe inside XML elements and attributes; control characters dropped.
    public static func escape(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            default:
                // Characters XML 1.0 does not allow are dropped.
                if (scalar.value < 0x20 && scalar != "\t") || scalar.value == 0xFFFE || scalar.value == 0xFFFF {
                    continue
                }
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}
