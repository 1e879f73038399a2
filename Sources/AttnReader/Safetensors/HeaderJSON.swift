import AttnCore

/// A JSON value, as a safetensors header holds: objects, arrays, strings, numbers, true/false/null.
enum HeaderJSON: Equatable {
    case object([(String, HeaderJSON)])
    case array([HeaderJSON])
    case string(String)
    case number(Double)
    case bool(Bool)
    case null

    static func == (a: HeaderJSON, b: HeaderJSON) -> Bool {
        switch (a, b) {
        case (.object(let x), .object(let y)):
            return x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        case (.array(let x), .array(let y)): return x == y
        case (.string(let x), .string(let y)): return x == y
        case (.number(let x), .number(let y)): return x == y
        case (.bool(let x), .bool(let y)): return x == y
        case (.null, .null): return true
        default: return false
        }
    }

    subscript(key: String) -> HeaderJSON? {
        if case .object(let members) = self { return members.first { $0.0 == key }?.1 }
        return nil
    }

    /// A whole number that fits an `Int` exactly, else nil.
    var integer: Int? {
        guard case .number(let d) = self, d == d.rounded(), abs(d) < 9.007_199_254_740_992e15 else { return nil }
        return Int(d)
    }

    /// Parses `bytes` (UTF-8) as one JSON value with nothing after it but whitespace.
    /// - Parameter fail: builds the error for a message ("expected ... at byte N").
    static func parse(_ bytes: [UInt8], fail: @escaping (String) -> AttnError) throws -> HeaderJSON {
        var parser = Parser(bytes: bytes, fail: fail)
        let value = try parser.value(depth: 0)
        parser.skipSpace()
        guard parser.at == bytes.count else { throw fail("unexpected data after the JSON header at byte \(parser.at)") }
        return value
    }

    private struct Parser {
        let bytes: [UInt8]
        let fail: (String) -> AttnError
        var at = 0

        init(bytes: [UInt8], fail: @escaping (String) -> AttnError) {
            self.bytes = bytes
            self.fail = fail
        }

        mutating func skipSpace() {
            while at < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[at]) { at += 1 }
        }

        mutating func expect(_ c: UInt8) throws {
            skipSpace()
            guard at < bytes.count, bytes[at] == c else {
                throw fail("corrupt JSON header: expected '\(Character(Unicode.Scalar(c)))' at byte \(at)")
            }
            at += 1
        }

        mutating func value(depth: Int) throws -> HeaderJSON {
            guard depth < 64 else { throw fail("corrupt JSON header: nested more than 64 levels") }
            skipSpace()
            guard at < bytes.count else { throw fail("JSON header ends early at byte \(at)") }
            switch bytes[at] {
            case UInt8(ascii: "{"):
                at += 1
                var members: [(String, HeaderJSON)] = []
                skipSpace()
                if at < bytes.count && bytes[at] == UInt8(ascii: "}") { at += 1; return .object(members) }
                while true {
                    skipSpace()
                    guard at < bytes.count, bytes[at] == UInt8(ascii: "\"") else {
                        throw fail("corrupt JSON header: expected a key at byte \(at)")
                    }
                    let key = try string()
                    try expect(UInt8(ascii: ":"))
                    members.append((key, try value(depth: depth + 1)))
                    skipSpace()
                    guard at < bytes.count else { throw fail("JSON header ends early at byte \(at)") }
                    if bytes[at] == UInt8(ascii: ",") { at += 1; continue }
                    try expect(UInt8(ascii: "}"))
                    return .object(members)
                }
            case UInt8(ascii: "["):
                at += 1
                var items: [HeaderJSON] = []
                skipSpace()
                if at < bytes.count && bytes[at] == UInt8(ascii: "]") { at += 1; return .array(items) }
                while true {
                    items.append(try value(depth: depth + 1))
                    skipSpace()
                    guard at < bytes.count else { throw fail("JSON header ends early at byte \(at)") }
                    if bytes[at] == UInt8(ascii: ",") { at += 1; continue }
                    try expect(UInt8(ascii: "]"))
                    return .array(items)
                }
            case UInt8(ascii: "\""):
                return .string(try string())
            case UInt8(ascii: "t"): try literal("true"); return .bool(true)
            case UInt8(ascii: "f"): try literal("false"); return .bool(false)
            case UInt8(ascii: "n"): try literal("null"); return .null
            default:
                return .number(try number())
            }
        }

        mutating func literal(_ word: String) throws {
            let w = Array(word.utf8)
            guard at + w.count <= bytes.count, Array(bytes[at..<(at + w.count)]) == w else {
                throw fail("corrupt JSON header: unexpected value at byte \(at)")
            }
            at += w.count
        }

        mutating func number() throws -> Double {
            let start = at
            while at < bytes.count, "+-0123456789.eE".utf8.contains(bytes[at]) { at += 1 }
            guard at > start, let d = Double(String(decoding: bytes[start..<at], as: UTF8.self)) else {
                throw fail("corrupt JSON header: expected a value at byte \(start)")
            }
            return d
        }

        mutating func string() throws -> String {
            at += 1  // opening quote
            var scalars = String.UnicodeScalarView()
            var run: [UInt8] = []
            func flush() {
                scalars.append(contentsOf: String(decoding: run, as: UTF8.self).unicodeScalars); run.removeAll()
            }
            while at < bytes.count {
                let c = bytes[at]
                at += 1
                if c == UInt8(ascii: "\"") { flush(); return String(scalars) }
                if c != UInt8(ascii: "\\") { run.append(c); continue }
                flush()
                guard at < bytes.count else { break }
                let e = bytes[at]
                at += 1
                switch e {
                case UInt8(ascii: "n"): scalars.append("\n")
                case UInt8(ascii: "t"): scalars.append("\t")
                case UInt8(ascii: "r"): scalars.append("\r")
                case UInt8(ascii: "b"): scalars.append("\u{08}")
                case UInt8(ascii: "f"): scalars.append("\u{0C}")
                case UInt8(ascii: "u"):
                    // A UTF-16 surrogate must come as a high one (D800–DBFF) followed by an escaped low one
                    // (DC00–DFFF); anything else cannot be text, and is refused (as serde_json, which writes
                    // safetensors headers, refuses it).
                    let start = at - 2
                    var code = try hex4()
                    if (0xD800..<0xDC00).contains(code) {
                        guard at + 2 <= bytes.count, bytes[at] == UInt8(ascii: "\\"), bytes[at + 1] == UInt8(ascii: "u")
                        else {
                            throw fail(
                                """
                                corrupt JSON header: a high surrogate \\u\(hex(code)) without its low surrogate \
                                at byte \(start)
                                """
                            )
                        }
                        at += 2
                        let low = try hex4()
                        guard (0xDC00..<0xE000).contains(low) else {
                            throw fail(
                                """
                                corrupt JSON header: a high surrogate \\u\(hex(code)) followed by \\u\(hex(low)), \
                                not a low surrogate, at byte \(start)
                                """
                            )
                        }
                        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                    } else if (0xDC00..<0xE000).contains(code) {
                        throw fail(
                            """
                            corrupt JSON header: a low surrogate \\u\(hex(code)) without a high one before it at \
                            byte \(start)
                            """
                        )
                    }
                    guard let scalar = Unicode.Scalar(code) else {
                        throw fail("corrupt JSON header: bad \\u escape at byte \(start)")
                    }
                    scalars.append(scalar)
                default: scalars.append(Unicode.Scalar(e))
                }
            }
            throw fail("corrupt JSON header: unterminated string")
        }

        /// Four hex digits, as in a \u escape.
        func hex(_ code: UInt32) -> String {
            let digits = String(code, radix: 16)
            return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
        }

        mutating func hex4() throws -> UInt32 {
            guard at + 4 <= bytes.count, bytes[at..<(at + 4)].allSatisfy({ Character(Unicode.Scalar($0)).isHexDigit }),
                let v = UInt32(String(decoding: bytes[at..<(at + 4)], as: UTF8.self), radix: 16)
            else {
                throw fail("corrupt JSON header: bad \\u escape at byte \(at)")
            }
            at += 4
            return v
        }
    }
}
