import AttnCore

/// A bounds-checked reader over bytes with explicit little-endian integers.
/// Every read past the end throws an error naming the file and what was being read.
struct ByteCursor {
    let bytes: [UInt8]
    private(set) var position: Int
    let file: String
    let context: String

    init(_ bytes: [UInt8], file: String, context: String, position: Int = 0) {
        self.bytes = bytes
        self.file = file
        self.context = context
        self.position = position
    }

    var remaining: Int { bytes.count - position }

    private func need(_ n: Int, _ what: String) throws {
        guard n >= 0, n <= remaining else {
            throw AttnError(
                file: file,
                "\(context) is truncated: expected \(n) bytes of \(what) at offset \(position), \(remaining) left")
        }
    }

    mutating func skip(_ n: Int, _ what: String = "data") throws {
        try need(n, what)
        position += n
    }

    mutating func uint8(_ what: String) throws -> UInt8 {
        try need(1, what)
        defer { position += 1 }
        return bytes[position]
    }

    mutating func uint16(_ what: String) throws -> UInt16 {
        try need(2, what)
        defer { position += 2 }
        return UInt16(bytes[position]) | UInt16(bytes[position + 1]) << 8
    }

    mutating func uint32(_ what: String) throws -> UInt32 {
        try need(4, what)
        var v: UInt32 = 0
        for i in 0..<4 { v |= UInt32(bytes[position + i]) << (8 * UInt32(i)) }
        position += 4
        return v
    }

    mutating func uint64(_ what: String) throws -> UInt64 {
        try need(8, what)
        var v: UInt64 = 0
        for i in 0..<8 { v |= UInt64(bytes[position + i]) << (8 * UInt64(i)) }
        position += 8
        return v
    }

    mutating func take(_ n: Int, _ what: String) throws -> ArraySlice<UInt8> {
        try need(n, what)
        defer { position += n }
        return bytes[position..<(position + n)]
    }
}
