/// The floating-point element types an attention tensor may be stored in.
/// Values are decoded to `Float` at the reader boundary; nothing computes in `Float16`.
public enum ElementType: String, Sendable, CustomStringConvertible {
    case float16
    /// bfloat16: the top 16 bits of a float32 (safetensors `BF16`).
    case bfloat16
    case float32
    case float64

    /// Bytes per element.
    public var size: Int {
        switch self {
        case .float16, .bfloat16: return 2
        case .float32: return 4
        case .float64: return 8
        }
    }

    public var description: String { rawValue }
}

/// Byte order of stored values.
public enum ByteOrder: Sendable {
    case little
    case big

    /// The byte order of this machine.
    public static var native: ByteOrder {
        1.littleEndian == 1 ? .little : .big
    }
}
