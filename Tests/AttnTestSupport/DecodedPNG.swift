internal import CAttnZlib

/// A PNG decoder written for the tests, independent of the encoder: chunks parsed by hand, CRCs
/// checked with a table computed here, the zlib stream inflated by zlib's `uncompress`, scanlines
/// unfiltered with the five filters of the specification.
public struct DecodedPNG {
    public var width = 0, height = 0, channels = 0
    public var pixels: [UInt8] = []
    public var filters: Set<UInt8> = []
    public var chunkTypes: [String] = []

    static let crcTable: [UInt32] = (0..<256).map { n in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    static func crc(_ bytes: ArraySlice<UInt8>) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes { c = crcTable[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
        return c ^ 0xFFFF_FFFF
    }

    public enum Failure: Error { case signature, crc(String), header, inflate(Int32), filter(UInt8) }

    public init(_ data: [UInt8]) throws {
        guard Array(data.prefix(8)) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] else { throw Failure.signature }
        func be32(_ i: Int) -> UInt32 { data[i..<(i + 4)].reduce(0) { $0 << 8 | UInt32($1) } }
        var i = 8, idat: [UInt8] = []
        while i + 12 <= data.count {
            let n = Int(be32(i))
            let type = String(decoding: data[(i + 4)..<(i + 8)], as: UTF8.self)
            guard Self.crc(data[(i + 4)..<(i + 8 + n)]) == be32(i + 8 + n) else { throw Failure.crc(type) }
            chunkTypes.append(type)
            let body = Array(data[(i + 8)..<(i + 8 + n)])
            if type == "IHDR" {
                width = Int(body[0..<4].reduce(0) { $0 << 8 | UInt32($1) })
                height = Int(body[4..<8].reduce(0) { $0 << 8 | UInt32($1) })
                guard body[8] == 8, body[10] == 0, body[11] == 0, body[12] == 0 else { throw Failure.header }
                switch body[9] {
                case 0: channels = 1;
                case 2: channels = 3;
                default: throw Failure.header
                }
            } else if type == "IDAT" {
                idat += body
            }
            i += 12 + n
        }
        let stride = width * channels
        var raw = [UInt8](repeating: 0, count: (stride + 1) * height)
        var length = UInt(raw.count)
        let status = raw.withUnsafeMutableBufferPointer { o in
            idat.withUnsafeBufferPointer { uncompress(o.baseAddress!, &length, $0.baseAddress!, UInt($0.count)) }
        }
        guard status == Z_OK, Int(length) == raw.count else { throw Failure.inflate(status) }
        pixels = [UInt8](repeating: 0, count: stride * height)
        for y in 0..<height {
            let filter = raw[y * (stride + 1)]
            filters.insert(filter)
            for x in 0..<stride {
                let v = Int(raw[y * (stride + 1) + 1 + x])
                let a = x >= channels ? Int(pixels[y * stride + x - channels]) : 0
                let b = y > 0 ? Int(pixels[(y - 1) * stride + x]) : 0
                let c = x >= channels && y > 0 ? Int(pixels[(y - 1) * stride + x - channels]) : 0
                let predictor: Int
                switch filter {
                case 0: predictor = 0
                case 1: predictor = a
                case 2: predictor = b
                case 3: predictor = (a + b) / 2
                case 4:
                    let p = a + b - c, pa = abs(p - a), pb = abs(p - b), pc = abs(p - c)
                    predictor = pa <= pb && pa <= pc ? a : (pb <= pc ? b : c)
                default: throw Failure.filter(filter)
                }
                pixels[y * stride + x] = UInt8((v + predictor) & 0xFF)
            }
        }
    }
}
