import AttnCore

/// How a patch grid is enlarged to the picture's size.
public enum Resample: String, CaseIterable, Sendable {
    /// Half-pixel centres, edges clamped (as `torch.nn.functional.interpolate(mode="bilinear",
    /// align_corners=False)`).
    case bilinear
    /// Each pixel takes the cell it falls in (DINO's `interpolate(scale_factor=patch, mode="nearest")`).
    case nearest
}

/// A patch-grid map coloured and alpha-blended over the picture the network saw.
public enum Overlay {
    /// The pixels of `mask` (enlarged to `width × height`, nearest) that are in the mask and have a
    /// 4-neighbour outside it or lie on the picture's edge: the outline, `thickness` pixels wide.
    public static func outline(_ mask: Matrix, width: Int, height: Int, thickness: Int = 2) -> [Bool] {
        var inside = [Bool](repeating: false, count: width * height)
        for y in 0..<height {
            for x in 0..<width {
                inside[y * width + x] =
                    mask[
                        Swift.min(mask.rows - 1, y * mask.rows / height),
                        Swift.min(mask.columns - 1, x * mask.columns / width)] > 0
            }
        }
        var edge = [Bool](repeating: false, count: width * height)
        for y in 0..<height {
            for x in 0..<width where inside[y * width + x] {
                var near = false
                for d in 1...Swift.max(1, thickness) where !near {
                    for (dx, dy) in [(d, 0), (-d, 0), (0, d), (0, -d)] {
                        let nx = x + dx, ny = y + dy
                        if nx < 0 || ny < 0 || nx >= width || ny >= height || !inside[ny * width + nx] {
                            near = true; break
                        }
                    }
                }
                edge[y * width + x] = near
            }
        }
        return edge
    }

    /// `map` enlarged to `width × height`.
    public static func upsample(_ map: Matrix, width: Int, height: Int, mode: Resample) -> Matrix {
        var out = Matrix(rows: height, columns: width)
        let rows = map.rows, columns = map.columns
        func source(_ x: Int, _ size: Int, _ cells: Int) -> (Int, Int, Float) {
            let u = (Double(x) + 0.5) * Double(cells) / Double(size) - 0.5
            let clamped = Swift.min(Swift.max(u, 0), Double(cells - 1))
            let lower = Int(clamped.rounded(.down))
            return (lower, Swift.min(lower + 1, cells - 1), Float(clamped - Double(lower)))
        }
        for y in 0..<height {
            for x in 0..<width {
                let value: Float
                switch mode {
                case .nearest:
                    value = map[Swift.min(rows - 1, y * rows / height), Swift.min(columns - 1, x * columns / width)]
                case .bilinear:
                    let (r0, r1, fy) = source(y, height, rows), (c0, c1, fx) = source(x, width, columns)
                    let top = map[r0, c0] * (1 - fx) + map[r0, c1] * fx
                    let bottom = map[r1, c0] * (1 - fx) + map[r1, c1] * fx
                    value = top * (1 - fy) + bottom * fy
                }
                out.values[y * width + x] = value
            }
        }
        return out
    }

    /// `round((1 − alpha) · picture + alpha · colour(map))` per channel, at the picture's size.
    public static func blend(
        _ map: Matrix, over picture: Image, range: ValueRange, colormap: Colormap, alpha: Double,
        resample: Resample
    ) -> Image {
        let base = ImageFile.rgb(picture)
        let large = upsample(map, width: base.width, height: base.height, mode: resample)
        var pixels = base.pixels
        for (i, v) in large.values.enumerated() {
            let (r, g, b) = colormap.color(range.normalise(v))
            for (c, colour) in [r, g, b].enumerated() {
                let mixed = (1 - alpha) * Double(base.pixels[3 * i + c]) + alpha * Double(colour)
                pixels[3 * i + c] = UInt8(Swift.min(255, Swift.max(0, mixed.rounded())))
            }
        }
        return Image(width: base.width, height: base.height, channels: 3, pixels: pixels)
    }

    /// nil when a `rows × columns` grid fits a `width × height` picture (aspect ratios within 2%),
    /// else what is wrong and how to fix it.
    public static func misfit(rows: Int, columns: Int, width: Int, height: Int) -> String? {
        let grid = Double(columns) / Double(rows), picture = Double(width) / Double(height)
        guard abs(grid / picture - 1) > 0.02 else { return nil }
        func ratio(_ r: Double) -> String { formatFixed(r, decimals: 2) }
        return
            """
            the \(rows)×\(columns) patch grid (aspect \(ratio(grid))) does not fit the \(width)×\(height) picture \
            (aspect \(ratio(picture))): give the exact input the network saw (after resizing, cropping and \
            padding), or --fit stretch to stretch the grid over it
            """
    }
}
