internal import CAttnZlib
import AttnCore

/// PNG encoding (ISO/IEC 15948): 8-bit greyscale (colour type 0) or RGB (colour type 2), no
/// interlacing. Each scanline gets the filter (None, Sub, Up, Average or Paeth) with the smallest sum
/// of absolute values, libpng's heuristic; the filtered bytes are one zlib stream in one IDAT chunk.
/// The corresponding zlib calls are `compressBound`, `compress2` and `crc32`.
public enum PNG {
    public static let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    /// The PNG file of `image` (1 channel: greyscale, 3: RGB).
    public static func encode(_ image: Image) throws -> [UInt8] {
        precondition(image.channels == 1 || image.channels == 3, "PNG: 1 or 3 channels")
        guard image.width > 0, image.height > 0, image.width <= Int(Int32.max), image.height <= Int(Int32.max) else {
            throw AnalysisError(
                "PNG: an image must be 1 to 2³¹−1 pixels on each side, got \(image.width)×\(image.height)")
        }
        var header: [UInt8] = []
        append32(UInt32(image.width), to: &header)
        append32(UInt32(image.height), to: &header)
        header += [8, image.channels == 1 ? 0 : 2, 0, 0, 0]  // depth, colour type, compression, filter, interlace
        var out = signature
        chunk("IHDR", header, into: &out)
        chunk("IDAT", try deflate(filtered(image)), into: &out)
        chunk("IEND", [], into: &out)
        return out
    }

    /// Scanlines, each prefixed by its filter type: for each row, the filter whose bytes, read as signed, have the
    /// smallest sum of magnitudes (all five tried, in one flat buffer).
    static func filtered(_ image: Image) -> [UInt8] {
        let bpp = image.channels, stride = image.width * bpp
        var out = [UInt8](repeating: 0, count: (stride + 1) * image.height)
        var candidates = [UInt8](repeating: 0, count: 5 * stride)
        image.pixels.withUnsafeBufferPointer { px in
            candidates.withUnsafeMutableBufferPointer { candidate in
                out.withUnsafeMutableBufferPointer { o in
                    for y in 0..<image.height {
                        let row = y * stride, previous = row - stride
                        for x in 0..<stride {
                            let a = x >= bpp ? Int(px[row + x - bpp]) : 0
                            let b = y > 0 ? Int(px[previous + x]) : 0
                            let c = (x >= bpp && y > 0) ? Int(px[previous + x - bpp]) : 0
                            let v = Int(px[row + x])
                            candidate[x] = UInt8(v)
                            candidate[stride + x] = UInt8(truncatingIfNeeded: v - a)
                            candidate[2 * stride + x] = UInt8(truncatingIfNeeded: v - b)
                            candidate[3 * stride + x] = UInt8(truncatingIfNeeded: v - (a + b) / 2)
                            candidate[4 * stride + x] = UInt8(truncatingIfNeeded: v - paeth(a, b, c))
                        }
                        var best = 0, bestCost = Int.max
                        for f in 0..<5 {
                            var cost = 0
                            for x in 0..<stride { cost += abs(Int(Int8(bitPattern: candidate[f * stride + x]))) }
                            if cost < bestCost { best = f; bestCost = cost }
                        }
                        let at = y * (stride + 1)
                        o[at] = UInt8(best)
                        for x in 0..<stride { o[at + 1 + x] = candidate[best * stride + x] }
                    }
                }
            }
        }
        return out
    }

    static func paeth(_ a: Int, _ b: Int, _ c: Int) -> Int {
        let p = a + b - c
        let pa = abs(p - a), pb = abs(p - b), pc = abs(p - c)
        if pa <= pb && pa <= pc { return a }
        return pb <= pc ? b : c
    }

    private static func deflate(_ bytes: [UInt8]) throws -> [UInt8] {
        var capacity = compressBound(UInt(bytes.count))
        var out = [UInt8](repeating: 0, count: Int(capacity))
        let status = out.withUnsafeMutableBufferPointer { o in
            bytes.withUnsafeBufferPointer { i in compress2(o.baseAddress!, &capacity, i.baseAddress!, UInt(i.count), 6)
            }
        }
        guard status == Z_OK else { throw AnalysisError("PNG: zlib could not compress the image (error \(status))") }
        return Array(out.prefix(Int(capacity)))
    }

    private static func chunk(_ type: String, _ data: [UInt8], into out: inout [UInt8]) {
        append32(UInt32(data.count), to: &out)
        let typeAndData = Array(type.utf8) + data
        out += typeAndData
        let crc = typeAndData.withUnsafeBufferPointer { crc32(0, $0.baseAddress!, UInt32($0.count)) }
        append32(UInt32(crc), to: &out)
    }

    private static func append32(_ v: UInt32, to out: inout [UInt8]) {
        out += [UInt8(v >> 24), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)]
    }
}
