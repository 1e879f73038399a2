import AttnCore

/// `entropy`'s report: the layers × heads grid as a table (3 decimals) and as a map for pictures and .npy.
public enum EntropyReport {
    public static func table(_ grid: [[Double]], heads: Int, normalized: Bool) -> String {
        var table = TextTable(header: ["layer"] + (0..<heads).map { "h\($0)" })
        for (l, row) in grid.enumerated() { table.append(["\(l)"] + row.map { formatFixed($0, decimals: 3) }) }
        return "\(normalized ? "normalised entropy (1 = uniform)" : "entropy (nats)"), layers × heads:\n"
            + table.render()
    }

    /// Rows are layers, columns heads.
    public static func map(_ grid: [[Double]], heads: Int) -> Matrix {
        Matrix(rows: grid.count, columns: heads, values: grid.flatMap { $0.map(Float.init) })
    }
}
