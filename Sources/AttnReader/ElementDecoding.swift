import AttnCore

/// Decodes stored elements to `Float`: the only place raw element bytes are interpreted.
enum ElementDecoding {
    /// Decodes `count` elements of `type` in `order` from `raw` into `out[outOffset...]`.
    static func decode(_ raw: UnsafeRawBufferPointer, type: ElementType, order: ByteOrder,
                       count: Int, into out: UnsafeMutableBufferPointer<Float>, at outOffset: Int = 0) {
        precondition(raw.count >= count * type.size && out.count >= outOffset + count)
        let swap = order != ByteOrder.native
        switch type {
        case .float16:
            for i in 0..<count {
                var bits = raw.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self)
                if swap { bits = bits.byteSwapped }
                out[outOffset + i] = Float(Float16(bitPattern: bits))
            }
        case .float32:
            if !swap {
                for i in 0..<count { out[outOffset + i] = raw.loadUnaligned(fromByteOffset: i * 4, as: Float.self) }
            } else {
                for i in 0..<count {
                    out[outOffset + i] = Float(bitPattern: raw.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self).byteSwapped)
                }
            }
        case .float64:
            for i in 0..<count {
                var bits = raw.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self)
                if swap { bits = bits.byteSwapped }
                out[outOffset + i] = Float(Double(bitPattern: bits))
            }
        }
    }
}
