import AttnCore

/// A JSON value for machine output, written with keys in the order given.
public indirect enum JSONValue: Sendable, Equatable {
    case object([(String, JSONValue)])
    case array([JSONValue])
    case string(String)
    case number(Double)
    case integer(Int)
    case bool(Bool)
    case null

    public static func == (a: JSONValue, b: JSONValue) -> Bool { a.serialized() == b.serialized() }

    /// The version of attninspect's machine output, the first key of every JSON document it prints.
    public static let schema = "attninspect/1"

    /// A top-level JSON document: `{"schema": "attninspect/1", ...fields}`.
    public static func document(_ fields: [(String, JSONValue)]) -> JSONValue {
        .object([("schema", .string(schema))] + fields)
    }

    /// A number, or `null` when it is NaN or infinite (JSON has no such numbers).
    public static func finite(_ v: Double) -> JSONValue { v.isFinite ? .number(v) : .null }

    /// Compact JSON text. Doubles use Swift's shortest round-trip form.
    public func serialized() -> String {
        var out = ""
        write(into: &out)
        return out
    }

    private func write(into out: inout String) {
        switch self {
        case .object(let pairs):
            out += "{"
            for (i, (k, v)) in pairs.enumerated() {
                if i > 0 { out += ", " }
                JSONValue.appendQuoted(k, to: &out)
                out += ": "
                v.write(into: &out)
            }
            out += "}"
        case .array(let items):
            out += "["
            for (i, v) in items.enumerated() {
                if i > 0 { out += ", " }
                v.write(into: &out)
            }
            out += "]"
        case .string(let s): JSONValue.appendQuoted(s, to: &out)
        case .number(let d): out += d.isFinite ? d.description : "null"
        case .integer(let i): out += i.description
        case .bool(let b): out += b ? "true" : "false"
        case .null: out += "null"
        }
    }

    /// `s` as a JSON string literal: in double quotes, with quotes, backslashes and control characters escaped.
    public static func quote(_ s: String) -> String {
        var out = ""
        appendQuoted(s, to: &out)
        return out
    }

    /// Appends `quote(s)`; a string with nothing to escape (the usual key or label) is appended whole.
    private static func appendQuoted(_ s: String, to out: inout String) {
        out += "\""
        if s.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") }) {
            out += s
            out += "\""
            return
        }
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                // Controls (C0, DEL, C1) and the bidirectional and line-separator characters as \u escapes: the same
                // string, and nothing a terminal would act on when the JSON is shown.
                if let byte = PathBytes.rawByte(scalar) {
                    // A byte of a path that is not UTF-8, which JSON cannot hold: written as the text \xE9.
                    out += "\\\\x" + String(byte, radix: 16, uppercase: true)
                } else if scalar.value < 0x20 || PrintableText.needsEscape(scalar) {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        out += "\""
    }
}

/// CSV (RFC 4180): a field holding a comma, a double quote, CR or LF (as Unicode scalars: a quote followed by a
/// combining mark is still a quote) is quoted, its quotes doubled. Fields are otherwise written as they are: a
/// token starting with `=`, `+`, `-` or `@` stays as it is (numbers start with `-`), so a spreadsheet may read it as
/// a formula (README, Security).
public enum CSV {
    public static func line(_ fields: [String]) -> String {
        fields.map(field).joined(separator: ",") + "\n"
    }

    static func field(_ f: String) -> String {
        guard f.unicodeScalars.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else {
            return f
        }
        var out = String.UnicodeScalarView()
        out.append("\"")
        for scalar in f.unicodeScalars {
            out.append(scalar)
            if scalar == "\"" { out.append("\"") }
        }
        out.append("\"")
        return String(out)
    }
}
