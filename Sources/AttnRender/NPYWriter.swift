import AttnCore

/// Writes a map as a `.npy` array: format 1.0, `<f4`, C order, the values exactly as computed.
public enum NPYWriter {
    public static func encode(_ map: Matrix) -> [UInt8] {
        encode(values: map.values, shape: [map.rows, map.columns])
    }

    public static func encode(values: [Float], shape: [Int]) -> [UInt8] {
        precondition(shape.reduce(1, *) == values.count)
        let shapeText = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': \(shapeText), }"
        // Magic (6) + version (2) + length (2) + header + '\n' is padded to a multiple of 64.
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var out: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0]
        let length = header.utf8.count
        out.append(UInt8(length & 0xFF))
        out.append(UInt8(length >> 8))
        out += Array(header.utf8)
        out.reserveCapacity(out.count + values.count * 4)
        for v in values {
            let bits = v.bitPattern.littleEndian
            out.append(UInt8(bits & 0xFF))
            out.append(UInt8((bits >> 8) & 0xFF))
            out.append(UInt8((bits >> 16) & 0xFF))
            out.append(UInt8(bits >> 24))
        }
        return out
    }
}
