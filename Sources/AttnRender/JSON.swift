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
        if s.utf8.allSatisfy({ $0 >= 0x20 && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") }) {
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
                if scalar.value < 0x20 {
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

/// CSV (RFC 4180): fields with commas, quotes or line breaks are quoted.
public enum CSV {
    public static func line(_ fields: [String]) -> String {
        fields.map { f in
            f.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" })
                ? "\"" + f.split(separator: "\"", omittingEmptySubsequences: false).joined(separator: "\"\"") + "\""
                : f
        }.joined(separator: ",") + "\n"
    }
}
