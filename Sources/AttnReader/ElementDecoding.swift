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
