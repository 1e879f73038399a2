/// The patch layout of a vision transformer: `rows × columns` patches, row-major after `prefix`
/// tokens (CLS, registers).
public struct PatchGrid: Sendable, Equatable, CustomStringConvertible {
    public let rows: Int
    public let columns: Int

    public init(rows: Int, columns: Int) {
        self.rows = rows
        self.columns = columns
    }

    /// Parses `HxW` (also `H×W`).
    public init?(argument: String) {
        let parts = argument.split(whereSeparator: { $0 == "x" || $0 == "X" || $0 == "×" })
        guard parts.count == 2, let r = Int(parts[0]), let c = Int(parts[1]), r > 0, c > 0, r <= 1 << 20, c <= 1 << 20
        else { return nil }
        self.init(rows: r, columns: c)
    }

    public var description: String { "\(rows)×\(columns)" }

    /// The square grid holding `count` patches, if `count` is a perfect square.
    public static func square(holding count: Int) -> PatchGrid? {
        guard count > 0 else { return nil }
        var side = Int(Double(count).squareRoot().rounded())
        while side * side > count { side -= 1 }
        while (side + 1) * (side + 1) <= count { side += 1 }
        return side * side == count ? PatchGrid(rows: side, columns: side) : nil
    }

    /// Row `token` of `map`, without its first `prefix` columns, reshaped row-major to this grid.
    /// - Returns: `[row, column]`.
    public func extract(from map: Matrix, token: Int, prefix: Int) throws -> Matrix {
        guard token >= 0 && token < map.rows else {
            throw AnalysisError("token \(token) is out of range: expected 0...\(map.rows - 1)")
        }
        guard prefix >= 0 && prefix < map.columns else {
            throw AnalysisError("prefix \(prefix) is out of range: expected 0...\(map.columns - 1)")
        }
        let patches = map.columns - prefix
        let (cells, overflow) = rows.multipliedReportingOverflow(by: columns)
        guard !overflow, cells == patches else {
            throw AnalysisError(
                """
                grid \(self) holds \(overflow ? "more than 2⁶³" : "\(cells)") patches, but \(patches) keys remain \
                after \(prefix) prefix token(s); give --grid HxW with H·W = \(patches), or --prefix
                """
            )
        }
        let row = map.row(token)
        return Matrix(rows: rows, columns: columns, values: Array(row[prefix...]))
    }
}
