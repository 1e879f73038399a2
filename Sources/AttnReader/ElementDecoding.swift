internal import CAttnKernels
import AttnCore

/// Decodes stored elements to `Float`: the only place raw element bytes are interpreted.
/// The corresponding C calls are `cattn_decode_f16`, `cattn_decode_bf16`, `cattn_decode_f32` and `cattn_decode_f64`
/// (vectorised with F16C/AVX2 where the CPU has them).
enum ElementDecoding {
    /// Decodes `count` elements of `type` in `order` from `raw` into `out[outOffset...]`.
    static func decode(
        _ raw: UnsafeRawBufferPointer, type: ElementType, order: ByteOrder,
        count: Int, into out: UnsafeMutableBufferPointer<Float>, at outOffset: Int = 0
    ) {
        precondition(raw.count >= count * type.size && out.count >= outOffset + count)
        guard count > 0 else { return }
        let swap: Int32 = order != ByteOrder.native ? 1 : 0
        let destination = out.baseAddress! + outOffset
        switch type {
        case .float16: cattn_decode_f16(raw.baseAddress!, destination, count, swap)
        case .bfloat16: cattn_decode_bf16(raw.baseAddress!, destination, count, swap)
        case .float32: cattn_decode_f32(raw.baseAddress!, destination, count, swap)
        case .float64: cattn_decode_f64(raw.baseAddress!, destination, count, swap)
        }
    }

    /// Decodes `rows × keys` elements of `type` from `raw` into `out`, as `decode`; for float16 with `statistics` not
    /// nil, also gives each row's statistics, from the same pass, in `statistics[0..<rows]` (made that long if
    /// shorter), and returns true. Otherwise returns false and leaves `statistics` alone. The corresponding C call
    /// is `cattn_decode_f16_statistics` (the entropy's terms −p·ln p from a table of the float16 values).
    static func decodeRows(
        _ raw: UnsafeRawBufferPointer, type: ElementType, order: ByteOrder, rows: Int, keys: Int,
        into out: UnsafeMutableBufferPointer<Float>, statistics: inout [RowStatistics]?
    ) -> Bool {
        guard type == .float16, statistics != nil, rows > 0, keys > 0 else {
            decode(raw, type: type, order: order, count: rows * keys, into: out)
            return false
        }
        precondition(raw.count >= rows * keys * 2 && out.count >= rows * keys)
        if statistics!.count < rows {
            statistics = [RowStatistics](
                repeating: RowStatistics(sum: 0, entropy: 0, min: 0, max: 0, finite: 0, nan: 0, inf: 0, negative: 0),
                count: rows)
        }
        let swap: Int32 = order != ByteOrder.native ? 1 : 0
        var s = cattn_row_stats()
        for r in 0..<rows {
            cattn_decode_f16_statistics(raw.baseAddress! + r * keys * 2, out.baseAddress! + r * keys, keys, swap, &s)
            statistics![r] = RowStatistics(
                sum: s.sum, entropy: s.entropy, min: s.min, max: s.max, finite: Int(s.finite), nan: Int(s.nan),
                inf: Int(s.inf), negative: Int(s.negative))
        }
        return true
    }
}

/// Decodes stored integers (masks, lengths): 1, 2, 4 or 8 bytes, signed or not, either byte order.
enum IntegerDecoding {
    static func decode(_ raw: [UInt8], size: Int, signed: Bool, order: ByteOrder) -> [Int64] {
        let count = raw.count / size
        return (0..<count).map { i in
            var bits: UInt64 = 0
            for b in 0..<size {
                let byte = UInt64(raw[i * size + (order == .big ? b : size - 1 - b)])
                bits = bits << 8 | byte
            }
            if signed && size < 8 && bits & (1 << UInt64(size * 8 - 1)) != 0 {
                bits |= ~((1 << UInt64(size * 8)) - 1)  // sign extension
            }
            return Int64(bitPattern: bits)
        }
    }
}
