/// Text that came from a file (a dataset or attribute name, an attribute value, a token, a path) made safe to show
/// on a terminal: every scalar that a terminal would act on instead of showing is written out as an escape, so that
/// a name cannot move the cursor, clear the screen, set the clipboard (OSC 52), reorder what follows it, or split a
/// one-line message.
public enum PrintableText {
    /// `text` with C0 controls (newline included), DEL, C1 controls, the bidirectional formatting characters
    /// (U+061C, U+200E–U+200F, U+202A–U+202E, U+2066–U+2069) and the line and paragraph separators shown as
    /// `\u{1b}`; bytes of a path that are not UTF-8 (see `PathBytes`) are shown as `\xE9`. Everything else,
    /// non-ASCII letters included, is kept.
    /// - Parameter kept: controls left as they are (`\n` in text of several lines, such as a table; CR and tab too
    ///   in CSV, where they are data inside quoted fields).
    public static func escaped(_ text: String, keeping kept: Set<Unicode.Scalar> = []) -> String {
        // The usual case, printable ASCII, is returned as it is without decoding scalars.
        if text.utf8.allSatisfy({ ($0 >= 0x20 && $0 < 0x7F) || ($0 < 0x80 && kept.contains(Unicode.Scalar($0))) }) {
            return text
        }
        if !text.unicodeScalars.contains(where: { needsEscape($0) && !kept.contains($0) }) { return text }
        var out = ""
        for scalar in text.unicodeScalars {
            if kept.contains(scalar) {
                out.unicodeScalars.append(scalar)
            } else if let byte = PathBytes.rawByte(scalar) {
                out += "\\x" + hex(UInt32(byte)).uppercased()
            } else if needsEscape(scalar) {
                out += "\\u{" + hex(scalar.value) + "}"
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    /// Whether `escaped` rewrites the scalar.
    public static func needsEscape(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0..<0x20, 0x7F...0x9F: return true
        case 0x061C, 0x200E, 0x200F, 0x2028...0x202E, 0x2066...0x2069: return true
        default: return PathBytes.rawByte(scalar) != nil
        }
    }

    private static func hex(_ value: UInt32) -> String {
        let digits = String(value, radix: 16)
        return digits.count < 2 ? "0" + digits : digits
    }
}

/// Paths are bytes on Linux, and not every file name is UTF-8 (`lat\xe9.h5`). Swift strings cannot hold such bytes,
/// so a path from `argv` is decoded with each byte that is not part of valid UTF-8 kept as a scalar of its own in
/// U+10FF80…U+10FFFF (the last private-use plane's top 128 code points, which no encoding assigns), and turned back
/// into exactly its bytes where it is opened (`withCString`). A path that holds those code points as real UTF-8
/// has their bytes kept the same way, so the mapping is exact for every byte string.
public enum PathBytes {
    private static let base: UInt32 = 0x10FF00

    /// The raw byte a scalar stands for, or nil for an ordinary scalar.
    public static func rawByte(_ scalar: Unicode.Scalar) -> UInt8? {
        scalar.value >= base + 0x80 && scalar.value <= base + 0xFF ? UInt8(scalar.value - base) : nil
    }

    /// A byte string (a C string from `argv`) as a Swift string: valid UTF-8 as itself, every other byte as its
    /// stand-in scalar.
    public static func decode(_ bytes: [UInt8]) -> String {
        if let valid = String(validating: bytes, as: UTF8.self),
            !valid.unicodeScalars.contains(where: { rawByte($0) != nil })
        {
            return valid
        }
        var scalars = String.UnicodeScalarView()
        var i = 0
        while i < bytes.count {
            let lead = bytes[i]
            let length =
                lead < 0x80
                ? 1
                : lead >= 0xC2 && lead <= 0xDF
                    ? 2 : lead >= 0xE0 && lead <= 0xEF ? 3 : lead >= 0xF0 && lead <= 0xF4 ? 4 : 0
            if length > 0, i + length <= bytes.count,
                let s = String(validating: bytes[i..<(i + length)], as: UTF8.self),
                s.unicodeScalars.count == 1, let scalar = s.unicodeScalars.first, rawByte(scalar) == nil
            {
                scalars.append(scalar)
                i += length
            } else {
                scalars.append(Unicode.Scalar(base + UInt32(lead))!)
                i += 1
            }
        }
        return String(scalars)
    }

    /// The bytes `decode` was given: stand-in scalars back to their bytes, everything else as UTF-8.
    public static func encode(_ path: String) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(path.utf8.count)
        for scalar in path.unicodeScalars {
            if let byte = rawByte(scalar) { out.append(byte) } else { out.append(contentsOf: String(scalar).utf8) }
        }
        return out
    }

    /// Calls `body` with the path's bytes as a NUL-terminated C string (for `open`, `stat`, `rename`, `H5Fopen`, ...).
    public static func withCString<T>(_ path: String, _ body: (UnsafePointer<CChar>) throws -> T) rethrows -> T {
        if !path.unicodeScalars.contains(where: { rawByte($0) != nil }) { return try path.withCString(body) }
        var bytes = encode(path).map { CChar(bitPattern: $0) }
        bytes.append(0)
        return try bytes.withUnsafeBufferPointer { try body($0.baseAddress!) }
    }
}
