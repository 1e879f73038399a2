import AttnCore

/// The parsed header of a `.npy` array (numpy format versions 1.0, 2.0 and 3.0).
///
/// Layout: magic `\x93NUMPY`, major, minor, header length (u16 LE for 1.0, u32 LE for 2.0 and 3.0),
/// then a Python dict literal with exactly the keys `descr`, `fortran_order` and `shape`.
struct NPYHeader: Equatable {
    enum Element: Equatable {
        case floating(ElementType, ByteOrder)
        /// Fixed-width UTF-32 text of `characters` code units (`<U8`).
        case unicode(characters: Int, ByteOrder)
        /// Fixed-width bytes (`|S8`).
        case bytes(Int)
        /// Integers or booleans (`<i8`, `|u1`, `|b1`), described as `int64`, `uint8`, `bool`.
        case integer(size: Int, signed: Bool, ByteOrder, name: String)
        case unsupported(String)
    }

    let major: UInt8
    let minor: UInt8
    let descr: String
    let element: Element
    let itemSize: Int
    let fortranOrder: Bool
    let shape: [Int]
    /// Offset of the first data byte from the start of the `.npy` bytes.
    let dataOffset: Int
    /// `product(shape) * itemSize`, computed with overflow checks.
    let dataLength: Int

    static let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]  // \x93NUMPY

    /// The same header with the elements read as `element` (same item size).
    func with(element: Element) -> NPYHeader {
        NPYHeader(
            major: major, minor: minor, descr: descr, element: element, itemSize: itemSize, fortranOrder: fortranOrder,
            shape: shape, dataOffset: dataOffset, dataLength: dataLength)
    }
    /// Larger headers are refused: numpy itself writes a few hundred bytes.
    static let maximumHeaderLength = 1 << 20

    /// Parses the header from the first bytes of a `.npy` stream.
    /// - Parameters:
    ///   - read: reads `count` bytes at an offset of the `.npy` stream (throws when truncated).
    static func parse(
        file: String, dataset: String?, length: Int,
        read: (_ offset: Int, _ count: Int) throws -> [UInt8]
    ) throws -> NPYHeader {
        func fail(_ message: String) -> AttnError { AttnError(file: file, dataset: dataset, message) }
        guard length >= 10 else {
            throw fail("not a .npy array: expected at least 10 header bytes, found \(length)")
        }
        let preamble = try read(0, min(12, length))
        guard Array(preamble[0..<6]) == magic else {
            throw fail("not a .npy array: expected the magic bytes \\x93NUMPY at the start")
        }
        let major = preamble[6], minor = preamble[7]
        let headerLength: Int
        let headerStart: Int
        switch major {
        case 1:
            headerLength = Int(preamble[8]) | Int(preamble[9]) << 8
            headerStart = 10
        case 2, 3:
            guard preamble.count >= 12 else {
                throw fail("truncated .npy header: expected 12 preamble bytes for version \(major).\(minor)")
            }
            headerLength = Int(preamble[8]) | Int(preamble[9]) << 8 | Int(preamble[10]) << 16 | Int(preamble[11]) << 24
            headerStart = 12
        default:
            throw fail("unsupported .npy format version \(major).\(minor): expected 1.0, 2.0 or 3.0")
        }
        guard minor == 0 else {
            throw fail("unsupported .npy format version \(major).\(minor): expected 1.0, 2.0 or 3.0")
        }
        guard headerLength <= maximumHeaderLength else {
            throw fail(
                "corrupt .npy header: header length \(headerLength) exceeds the \(maximumHeaderLength)-byte limit")
        }
        guard headerStart + headerLength <= length else {
            throw fail(
                "truncated .npy header: expected \(headerLength) header bytes, the data holds \(length - headerStart)")
        }
        let headerBytes = try read(headerStart, headerLength)
        // Versions 1.0 and 2.0 are latin-1, 3.0 is UTF-8; the keys and values we accept are ASCII.
        let text: String
        if major == 3 {
            guard let s = String(validating: headerBytes, as: UTF8.self) else {
                throw fail("corrupt .npy header: expected UTF-8 text (format 3.0)")
            }
            text = s
        } else {
            text = String(decoding: headerBytes.map { $0 < 0x80 ? $0 : UInt8(ascii: "?") }, as: UTF8.self)
        }
        var parser = PythonLiteralParser(text: text)
        let dict: [String: PythonLiteralParser.Value]
        do {
            dict = try parser.parseHeaderDict()
        } catch let error as PythonLiteralParser.Failure {
            throw fail("corrupt .npy header: \(error.message) in \(abbreviate(text))")
        }
        let keys = Set(dict.keys)
        guard keys == ["descr", "fortran_order", "shape"] else {
            throw fail(
                """
                corrupt .npy header: expected exactly the keys descr, fortran_order, shape; found \
                \(dict.keys.sorted().joined(separator: ", "))
                """
            )
        }
        guard case .string(let descr)? = dict["descr"] else {
            if case .list? = dict["descr"] {
                throw fail("unsupported dtype: a structured dtype; expected float16, bfloat16, float32 or float64")
            }
            throw fail("corrupt .npy header: 'descr' is not a string")
        }
        guard case .bool(let fortran)? = dict["fortran_order"] else {
            throw fail("corrupt .npy header: 'fortran_order' is not True or False")
        }
        guard case .tuple(let dims)? = dict["shape"] else {
            throw fail("corrupt .npy header: 'shape' is not a tuple of integers")
        }
        guard dims.allSatisfy({ $0 >= 0 }) else {
            throw fail("corrupt .npy header: negative dimension in shape \(dims)")
        }
        let (element, itemSize) = try parseDescr(descr, fail: fail)
        var count = 1
        for d in dims {
            let (p, overflow) = count.multipliedReportingOverflow(by: d)
            guard !overflow else { throw fail("corrupt .npy header: shape \(dims) overflows") }
            count = p
        }
        let (bytes, overflow) = count.multipliedReportingOverflow(by: itemSize)
        guard !overflow else { throw fail("corrupt .npy header: shape \(dims) overflows") }
        let dataOffset = headerStart + headerLength
        guard bytes <= length - dataOffset else {
            throw fail(
                """
                file is truncated: shape \(formatShape(dims)) of \(descr) needs \(bytes) data bytes, found \
                \(length - dataOffset)
                """
            )
        }
        return NPYHeader(
            major: major, minor: minor, descr: descr, element: element, itemSize: itemSize,
            fortranOrder: fortran, shape: dims, dataOffset: dataOffset, dataLength: bytes)
    }

    /// Parses a numpy type string such as `<f4`, `>f8`, `|V2`, `<U7`.
    static func parseDescr(_ descr: String, fail: (String) -> AttnError) throws -> (Element, Int) {
        let chars = Array(descr)
        guard chars.count >= 2 else { throw fail("corrupt .npy header: dtype '\(descr)'") }
        var index = 0
        var order = ByteOrder.native
        switch chars[0] {
        case "<": order = .little; index = 1
        case ">": order = .big; index = 1
        case "|", "=": index = 1
        default: break
        }
        guard index < chars.count else { throw fail("corrupt .npy header: dtype '\(descr)'") }
        let kind = chars[index]
        let sizeText = String(chars[(index + 1)...])
        guard let size = Int(sizeText), size > 0 || kind == "U" || kind == "S" else {
            if kind == "O" { return (.unsupported("object"), 8) }
            throw fail("unsupported dtype '\(descr)': expected float16, bfloat16, float32 or float64 (<f2, <f4, <f8)")
        }
        switch (kind, size) {
        case ("f", 2): return (.floating(.float16, order), 2)
        case ("f", 4): return (.floating(.float32, order), 4)
        case ("f", 8): return (.floating(.float64, order), 8)
        case ("U", _): return (.unicode(characters: size, order), size * 4)
        case ("S", _): return (.bytes(size), size)
        case ("i", 1), ("i", 2), ("i", 4), ("i", 8):
            return (.integer(size: size, signed: true, order, name: "int\(size * 8)"), size)
        case ("u", 1), ("u", 2), ("u", 4), ("u", 8):
            return (.integer(size: size, signed: false, order, name: "uint\(size * 8)"), size)
        case ("b", 1): return (.integer(size: 1, signed: false, order, name: "bool"), size)
        case ("i", _): return (.unsupported("int\(size * 8)"), size)
        case ("u", _): return (.unsupported("uint\(size * 8)"), size)
        case ("b", _): return (.unsupported("bool"), size)
        case ("c", _): return (.unsupported("complex\(size * 8)"), size)
        case ("f", _): return (.unsupported("float\(size * 8)"), size)
        case ("V", _): return (.unsupported("void\(size * 8) (raw bytes)"), size)
        default: return (.unsupported("'\(descr)'"), size)
        }
    }

    private static func abbreviate(_ text: String) -> String {
        let trimmed = text.trimmingTrailingSpaces()
        return trimmed.count > 80 ? String(trimmed.prefix(80)) + "..." : trimmed
    }
}

/// A shape as numpy prints it: `(3, 2, 10)`, `(10,)`, `()`.
public func formatShape(_ shape: [Int]) -> String {
    shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
}

extension String {
    func trimmingTrailingSpaces() -> String {
        var s = Substring(self)
        while let last = s.last, last == " " || last == "\n" || last == "\0" { s = s.dropLast() }
        return String(s)
    }
}

/// Parses the small subset of Python literals that `.npy` headers use:
/// a dict with string keys whose values are strings, booleans, tuples of integers, or lists.
struct PythonLiteralParser {
    enum Value: Equatable {
        case string(String)
        case bool(Bool)
        case tuple([Int])
        case list
    }

    struct Failure: Error { let message: String }

    private let chars: [Character]
    private var index = 0

    init(text: String) { chars = Array(text) }

    mutating func parseHeaderDict() throws -> [String: Value] {
        skipSpace()
        try expect("{")
        var result: [String: Value] = [:]
        skipSpace()
        while peek() != "}" {
            let key = try parseString()
            skipSpace()
            try expect(":")
            skipSpace()
            guard result[key] == nil else { throw Failure(message: "duplicate key '\(key)'") }
            result[key] = try parseValue()
            skipSpace()
            if peek() == "," { index += 1; skipSpace() } else { break }
        }
        try expect("}")
        skipSpace()
        guard index == chars.count else { throw Failure(message: "unexpected text after the dict") }
        return result
    }

    private mutating func parseValue() throws -> Value {
        switch peek() {
        case "'", "\"": return .string(try parseString())
        case "(": return .tuple(try parseTuple())
        case "[":
            // A structured dtype: skip to the matching bracket.
            var depth = 0
            repeat {
                guard let c = peek() else { throw Failure(message: "unterminated list") }
                if c == "[" { depth += 1 } else if c == "]" { depth -= 1 }
                index += 1
            } while depth > 0
            return .list
        default:
            if matchWord("True") { return .bool(true) }
            if matchWord("False") { return .bool(false) }
            throw Failure(message: "unexpected value at character \(index)")
        }
    }

    private mutating func parseTuple() throws -> [Int] {
        try expect("(")
        var values: [Int] = []
        skipSpace()
        while peek() != ")" {
            var digits = ""
            while let c = peek(), c.isASCII, c.isNumber { digits.append(c); index += 1 }
            if peek() == "L" { index += 1 }  // Python 2 longs
            guard let v = Int(digits) else { throw Failure(message: "expected an integer in the shape tuple") }
            values.append(v)
            skipSpace()
            if peek() == "," { index += 1; skipSpace() } else { break }
        }
        try expect(")")
        return values
    }

    private mutating func parseString() throws -> String {
        guard let quote = peek(), quote == "'" || quote == "\"" else {
            throw Failure(message: "expected a quoted string at character \(index)")
        }
        index += 1
        var s = ""
        while let c = peek(), c != quote {
            if c == "\\" { index += 1; guard let e = peek() else { break }; s.append(e) } else { s.append(c) }
            index += 1
        }
        try expect(quote)
        return s
    }

    private func peek() -> Character? { index < chars.count ? chars[index] : nil }

    private mutating func expect(_ c: Character) throws {
        guard peek() == c else { throw Failure(message: "expected '\(c)' at character \(index)") }
        index += 1
    }

    private mutating func matchWord(_ word: String) -> Bool {
        let w = Array(word)
        guard index + w.count <= chars.count, Array(chars[index..<(index + w.count)]) == w else { return false }
        index += w.count
        return true
    }

    private mutating func skipSpace() {
        while let c = peek(), c == " " || c == "\n" || c == "\t" || c == "\r" { index += 1 }
    }
}
