import AttnCore

/// A value range for mapping a map to grey levels or colours.
public struct ValueRange: Sendable, Equatable, CustomStringConvertible {
    public let low: Float
    public let high: Float

    public init(low: Float, high: Float) {
        self.low = low
        self.high = high
    }

    /// Parses `LO:HI` with LO < HI.
    public init?(argument: String) {
        let parts = argument.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let lo = Float(parts[0]), let hi = Float(parts[1]), lo.isFinite, hi.isFinite, lo < hi
        else { return nil }
        self.init(low: lo, high: hi)
    }

    /// The smallest and largest finite values of `map`; nil if it has none.
    public static func of(_ map: Matrix) -> ValueRange? {
        var lo = Float.infinity, hi = -Float.infinity
        for v in map.values where v.isFinite {
            lo = Swift.min(lo, v)
            hi = Swift.max(hi, v)
        }
        return lo <= hi ? ValueRange(low: lo, high: hi) : nil
    }

    /// `(v − low) / (high − low)` clamped to 0...1; a constant map gives 0; NaN gives 0.
    public func normalise(_ v: Float) -> Float {
        guard !v.isNaN, high > low else { return 0 }
        return Swift.min(Swift.max((v - low) / (high - low), 0), 1)
    }

    public var description: String { "\(low)...\(high)" }
}

/// An 8-bit image: grey (1 channel) or RGB (3 channels), rows from top to bottom.
public struct Image: Sendable, Equatable {
    public let width: Int
    public let height: Int
    public let channels: Int
    public var pixels: [UInt8]

    public init(width: Int, height: Int, channels: Int, pixels: [UInt8]) {
        precondition(pixels.count == width * height * channels)
        self.width = width
        self.height = height
        self.channels = channels
        self.pixels = pixels
    }

    /// One cell of `map` per pixel: grey level `round(255 · t)` or the colormap's colour of `t`,
    /// where `t` is the value normalised by `range`.
    public init(map: Matrix, range: ValueRange, colormap: Colormap?) {
        let n = map.values.count
        if let colormap {
            var px = [UInt8](repeating: 0, count: n * 3)
            for (i, v) in map.values.enumerated() {
                let (r, g, b) = colormap.color(range.normalise(v))
                px[3 * i] = r
                px[3 * i + 1] = g
                px[3 * i + 2] = b
            }
            self.init(width: map.columns, height: map.rows, channels: 3, pixels: px)
        } else {
            let px = map.values.map { Colormap.byte(range.normalise($0)) }
            self.init(width: map.columns, height: map.rows, channels: 1, pixels: px)
        }
    }

    /// Each pixel repeated `factor × factor` times (nearest neighbour).
    public func zoomed(by factor: Int) -> Image {
        guard factor > 1 else { return self }
        let w = width * factor, h = height * factor
        var px = [UInt8](repeating: 0, count: w * h * channels)
        for y in 0..<h {
            let sy = y / factor
            for x in 0..<w {
                let src = (sy * width + x / factor) * channels
                let dst = (y * w + x) * channels
                for c in 0..<channels { px[dst + c] = pixels[src + c] }
            }
        }
        return Image(width: w, height: h, channels: channels, pixels: px)
    }

    /// Binary Netpbm: `P5` (grey) or `P6` (RGB), maxval 255.
    public func netpbm() -> [UInt8] {
        let header = "\(channels == 1 ? "P5" : "P6")\n\(width) \(height)\n255\n"
        return Array(header.utf8) + pixels
    }
}
