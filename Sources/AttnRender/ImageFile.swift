internal import CAttnZlib
#if canImport(Glibc)
    import Glibc
#endif
import AttnCore

/// Reads the picture an overlay goes on: binary PGM (P5) or PPM (P6) with up to 16 bits, or PNG
/// (greyscale, RGB, palette, with or without alpha, 1 to 16 bits, not interlaced). The result is
/// 8-bit RGB; alpha is dropped (composited over black would hide the picture, so it is ignored).
/// The corresponding zlib call for PNG is `uncompress`.
public enum ImageFile {
    public static func read(_ path: String) throws -> Image {
        let data = try WholeFile.read(
            path, limit: 1 << 30, expected: "an image (.png, .ppm, .pgm)",
            tooLarge: "an image of the network's input size")
        if data.count >= 8 && Array(data[0..<8]) == PNG.signature { return try decodePNG(data, path: path) }
        if data.count >= 2 && data[0] == UInt8(ascii: "P")
            && (data[1] == UInt8(ascii: "5") || data[1] == UInt8(ascii: "6"))
        {
            return try decodeNetpbm(data, path: path)
        }
        throw AttnError(file: path, "not a PNG, binary PGM (P5) or binary PPM (P6) image")
    }

    // MARK: Netpbm

    private static func decodeNetpbm(_ data: [UInt8], path: String) throws -> Image {
        var i = 2
        func token() throws -> Int {
            while i < data.count {
                if data[i] == UInt8(ascii: "#") {
                    while i < data.count && data[i] != 0x0A { i += 1 }
                } else if [0x20, 0x09, 0x0A, 0x0D].contains(data[i]) {
                    i += 1
                } else {
                    break
                }
            }
            var value = 0, digits = 0
            while i < data.count, data[i] >= 0x30, data[i] <= 0x39, digits < 10 {
                value = value * 10 + Int(data[i] - 0x30)
                i += 1
                digits += 1
            }
            guard digits > 0 else {
                throw AttnError(file: path, "corrupt Netpbm header: expected width, height and maximum value")
            }
            return value
        }
        let channels = data[1] == UInt8(ascii: "6") ? 3 : 1
        let width = try token(), height = try token(), maxValue = try token()
        i += 1  // the single whitespace before the pixels
        guard width > 0, height > 0, maxValue > 0, maxValue < 65536 else {
            throw AttnError(file: path, "corrupt Netpbm header: \(width)×\(height), maximum value \(maxValue)")
        }
        let sampleBytes = maxValue > 255 ? 2 : 1
        guard let count = MemoryBudget.bytes([width, height, channels], elementSize: 1), count <= 1 << 30,
            data.count - i >= count * sampleBytes
        else {
            throw AttnError(
                file: path,
                """
                file is truncated or too large: a \(width)×\(height) image needs \
                \(MemoryBudget.describe(MemoryBudget.bytes([width, height, channels], elementSize: sampleBytes))) \
                of pixels (at most 1 GiB)
                """
            )
        }
        var gray = [UInt8](repeating: 0, count: count)
        for k in 0..<count {
            let v = sampleBytes == 2 ? Int(data[i + 2 * k]) << 8 | Int(data[i + 2 * k + 1]) : Int(data[i + k])
            gray[k] = UInt8(Swift.min(255, (v * 255 + maxValue / 2) / maxValue))
        }
        return rgb(Image(width: width, height: height, channels: channels, pixels: gray))
    }

    /// The same picture with three channels.
    public static func rgb(_ image: Image) -> Image {
        guard image.channels == 1 else { return image }
        return Image(
            width: image.width, height: image.height, channels: 3, pixels: image.pixels.flatMap { [$0, $0, $0] })
    }

    // MARK: PNG

    private static func decodePNG(_ data: [UInt8], path: String) throws -> Image {
        func fail(_ message: String) -> AttnError { AttnError(file: path, "PNG: \(message)") }
        func be32(_ at: Int) -> Int {
            Int(data[at]) << 24 | Int(data[at + 1]) << 16 | Int(data[at + 2]) << 8 | Int(data[at + 3])
        }
        var at = 8, width = 0, height = 0, depth = 0, colourType = -1
        var palette: [UInt8] = [], compressed: [UInt8] = [], ended = false
        while at + 12 <= data.count {
            let length = be32(at)
            guard length <= data.count - at - 12 else { throw fail("file is truncated in a chunk of \(length) bytes") }
            let type = String(decoding: data[(at + 4)..<(at + 8)], as: UTF8.self)
            let body = data[(at + 8)..<(at + 8 + length)]
            let crc =
                data[(at + 4)..<(at + 8 + length)].withContiguousStorageIfAvailable {
                    crc32(0, $0.baseAddress, UInt32($0.count))
                } ?? 0
            guard UInt32(crc) == UInt32(be32(at + 8 + length)) else {
                throw fail("chunk \(type) has a bad CRC: the file is corrupt")
            }
            switch type {
            case "IHDR":
                guard length == 13 else { throw fail("IHDR of \(length) bytes, expected 13") }
                let b = Array(body)
                width = Int(b[0]) << 24 | Int(b[1]) << 16 | Int(b[2]) << 8 | Int(b[3])
                height = Int(b[4]) << 24 | Int(b[5]) << 16 | Int(b[6]) << 8 | Int(b[7])
                depth = Int(b[8])
                colourType = Int(b[9])
                guard b[12] == 0 else { throw fail("interlaced images are not supported; save it without interlacing") }
            case "PLTE": palette = Array(body)
            case "IDAT": compressed += body
            case "IEND": ended = true
            default: break
            }
            if ended { break }
            at += 12 + length
        }
        guard ended, width > 0, height > 0 else {
            throw fail("missing IHDR, IDAT or IEND: the file is truncated or not a PNG")
        }
        let samples: Int
        switch colourType {
        case 0: samples = 1
        case 2: samples = 3
        case 3: samples = 1
        case 4: samples = 2
        case 6: samples = 4
        default: throw fail("unknown colour type \(colourType)")
        }
        guard [1, 2, 4, 8, 16].contains(depth), colourType == 0 || colourType == 3 || depth >= 8,
            colourType != 3 || depth <= 8
        else {
            throw fail("bit depth \(depth) is not valid for colour type \(colourType)")
        }
        guard let pixelCount = MemoryBudget.bytes([width, height], elementSize: 1), pixelCount <= 1 << 26 else {
            throw fail("\(width)×\(height) is too large for an overlay")
        }
        let bitsPerPixel = samples * depth
        let stride = (width * bitsPerPixel + 7) / 8
        let bpp = max(1, bitsPerPixel / 8)
        var raw = [UInt8](repeating: 0, count: (stride + 1) * height)
        var length = UInt(raw.count)
        let status = raw.withUnsafeMutableBufferPointer { o in
            compressed.withUnsafeBufferPointer { uncompress(o.baseAddress!, &length, $0.baseAddress, UInt($0.count)) }
        }
        guard status == Z_OK, Int(length) == raw.count else {
            throw fail("the image data does not inflate to \(raw.count) bytes (zlib \(status))")
        }
        // Undo the filters in place, row by row.
        var line = [UInt8](repeating: 0, count: stride), previous = [UInt8](repeating: 0, count: stride)
        var out = [UInt8](repeating: 0, count: width * height * 3)
        for y in 0..<height {
            let filter = raw[y * (stride + 1)]
            for x in 0..<stride {
                let v = Int(raw[y * (stride + 1) + 1 + x])
                let a = x >= bpp ? Int(line[x - bpp]) : 0, b = Int(previous[x]),
                    c = x >= bpp ? Int(previous[x - bpp]) : 0
                let predictor: Int
                switch filter {
                case 0: predictor = 0
                case 1: predictor = a
                case 2: predictor = b
                case 3: predictor = (a + b) / 2
                case 4: predictor = PNG.paeth(a, b, c)
                default: throw fail("unknown filter \(filter) on row \(y)")
                }
                line[x] = UInt8((v + predictor) & 0xFF)
            }
            for x in 0..<width {
                func sample(_ s: Int) -> Int {  // sample s of pixel x as 0...255
                    let bit = (x * samples + s) * depth
                    switch depth {
                    case 16:  // rounded as for 16-bit PGM/PPM
                        return ((Int(line[bit / 8]) << 8 | Int(line[bit / 8 + 1])) * 255 + 32767) / 65535
                    case 8: return Int(line[bit / 8])
                    default:
                        let v = Int(line[bit / 8] >> (8 - depth - bit % 8)) & ((1 << depth) - 1)
                        return colourType == 3 ? v : v * 255 / ((1 << depth) - 1)
                    }
                }
                let o = (y * width + x) * 3
                switch colourType {
                case 0, 4:
                    let g = UInt8(sample(0))
                    (out[o], out[o + 1], out[o + 2]) = (g, g, g)
                case 3:
                    let index = sample(0)
                    guard 3 * index + 2 < palette.count else {
                        throw fail("palette index \(index) is outside the \(palette.count / 3)-entry palette")
                    }
                    (out[o], out[o + 1], out[o + 2]) = (
                        palette[3 * index], palette[3 * index + 1], palette[3 * index + 2]
                    )
                default:
                    (out[o], out[o + 1], out[o + 2]) = (UInt8(sample(0)), UInt8(sample(1)), UInt8(sample(2)))
                }
            }
            swap(&line, &previous)
        }
        return Image(width: width, height: height, channels: 3, pixels: out)
    }
}
