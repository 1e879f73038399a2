import AttnCore

/// DINO's attention mask (facebookresearch/dino, visualize_attention.py): the smallest set of the
/// highest values of a patch map that holds at least `mass` of its total. The values are sorted
/// ascending (stable: on ties the lower index first), divided by their sum, and an entry is kept
/// when the running sum up to and including it exceeds `1 − mass` — DINO's `cumval > 1 − threshold`.
public enum AttentionMask {
    /// - Returns: the map's shape, 1 where kept and 0 elsewhere.
    public static func keeping(_ map: Matrix, mass: Double) throws -> Matrix {
        guard mass > 0 && mass <= 1 else {
            throw AnalysisError("threshold \(mass) is out of range: expected a share of the attention mass in (0, 1]")
        }
        let values = map.values
        guard values.allSatisfy({ $0.isFinite && $0 >= 0 }) else {
            throw AnalysisError(
                "the map holds negative, NaN or infinite values: a mass threshold needs non-negative attention")
        }
        let total = values.reduce(0.0) { $0 + Double($1) }
        guard total > 0 else { throw AnalysisError("the map sums to 0: no attention mass to threshold") }
        let order = values.indices.sorted { values[$0] != values[$1] ? values[$0] < values[$1] : $0 < $1 }
        var mask = Matrix(rows: map.rows, columns: map.columns)
        var running = 0.0
        for index in order {
            running += Double(values[index]) / total
            if running > 1 - mass { mask.values[index] = 1 }
        }
        return mask
    }
}
