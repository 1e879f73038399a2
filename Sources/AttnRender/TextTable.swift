/// An aligned text table for people: a header row, then rows; text columns left-aligned,
/// numeric columns right-aligned.
public struct TextTable {
    public var header: [String]
    public var rows: [[String]] = []
    /// false: the header names the columns but is not printed (a listing).
    public var showsHeader = true
    /// false: every column left-aligned (names that may look like numbers).
    public var alignsNumbers = true

    public init(header: [String]) { self.header = header }

    public mutating func append(_ row: [String]) {
        precondition(row.count == header.count)
        rows.append(row)
    }

    /// The table, each line after `indent`, trailing spaces trimmed.
    public func render(indent: String = "") -> String {
        let shown = showsHeader ? [header] + rows : rows
        var widths = header.map { showsHeader ? $0.count : 0 }
        for row in rows { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
        let numeric = header.indices.map { i in
            alignsNumbers && !rows.isEmpty && rows.allSatisfy { Double($0[i]) != nil || $0[i] == "-" || $0[i] == "nan" }
        }
        func line(_ cells: [String]) -> String {
            indent
                + cells.enumerated().map { i, cell in
                    let pad = String(repeating: " ", count: widths[i] - cell.count)
                    return numeric[i] ? pad + cell : cell + pad
                }.joined(separator: "  ").trimmingTrailing()
        }
        return shown.map(line).joined(separator: "\n") + "\n"
    }
}

extension String {
    /// The string without trailing spaces.
    public func trimmingTrailing() -> String {
        var s = Substring(self)
        while s.last == " " { s = s.dropLast() }
        return String(s)
    }
}

/// Formats a number for a table: fixed decimals, `nan` for undefined values.
public func formatFixed(_ value: Double, decimals: Int = 4) -> String {
    guard value.isFinite else { return value.isNaN ? "nan" : (value > 0 ? "inf" : "-inf") }
    // Beyond what Int holds after scaling (a corrupt dump's 1e38): Swift's own shortest form.
    guard abs(value) < 1e15 else { return "\(value)" }
    var scale = 1.0
    for _ in 0..<decimals { scale *= 10 }
    let rounded = (abs(value) * scale).rounded() / scale
    let integer = Int(rounded)
    var fraction = Int(((rounded - Double(integer)) * scale).rounded())
    var whole = integer
    if fraction >= Int(scale) { whole += 1; fraction -= Int(scale) }
    let digits = String(fraction)
    let sign = value < 0 && (whole != 0 || fraction != 0) ? "-" : ""
    return decimals == 0
        ? "\(sign)\(whole)" : "\(sign)\(whole)." + String(repeating: "0", count: decimals - digits.count) + digits
}

/// `1.2e-04`-style text for small deviations.
public func formatScientific(_ value: Double) -> String {
    guard value.isFinite else { return value.isNaN ? "nan" : "inf" }
    if value == 0 { return "0" }
    var exponent = 0
    var mantissa = abs(value)
    while mantissa >= 10 { mantissa /= 10; exponent += 1 }
    while mantissa < 1 { mantissa *= 10; exponent -= 1 }
    var m = formatFixed(mantissa, decimals: 1)
    if m == "10.0" { m = "1.0"; exponent += 1 }
    let e = abs(exponent) < 10 ? "0\(abs(exponent))" : "\(abs(exponent))"
    return (value < 0 ? "-" : "") + m + "e" + (exponent < 0 ? "-" : "+") + e
}
