/// The attention each query gives the keys at fixed places relative to it: key 0 (the first token: CLS or a
/// sink), key i (the token itself), key i − 1 (the previous token) and key i + 1 (the next), summed over query
/// rows in row order, in `Double`. `stats` and `heads` both take these from here, so that `attn_first`,
/// `attn_self` and `attn_previous` are the same numbers, bit for bit, in both.
public struct PositionalShares: Sendable, Equatable {
    public var first = 0.0, diagonal = 0.0, previous = 0.0, next = 0.0

    public init() {}

    /// The values of query row `i` (`row` holds its keys).
    public init(row: UnsafeBufferPointer<Float>, index i: Int) {
        let k = row.count
        if k > 0 { first = Double(row[0]) }
        if i < k { diagonal = Double(row[i]) }
        if i >= 1 && i - 1 < k { previous = Double(row[i - 1]) }
        if i + 1 < k { next = Double(row[i + 1]) }
    }

    /// Adds the sums of rows after this one's.
    public mutating func merge(_ other: PositionalShares) {
        first += other.first
        diagonal += other.diagonal
        previous += other.previous
        next += other.next
    }

    /// The means over all `queries` rows, as Clark et al. divide them (row 0 has no previous token and the last
    /// no next one, and still counts). Self, previous and next are nil for cross-attention, where query i and key
    /// i are different tokens.
    public func means(queries q: Int, cross: Bool) -> (
        first: Double, diagonal: Double?, previous: Double?, next: Double?
    ) {
        let rows = Double(q)
        guard !cross else { return (first / rows, nil, nil, nil) }
        return (first / rows, diagonal / rows, previous / rows, next / rows)
    }

    /// `stats`' `previous_token`: the mean over the Q − 1 rows that have a previous token, i.e. `attn_previous` ×
    /// Q/(Q − 1); nil for cross-attention or a single query. Not `heads`' `previous_token` (TransformerLens's
    /// score, Σ A·P / Σ A).
    public func previousOverLaterQueries(queries q: Int, cross: Bool) -> Double? {
        !cross && q > 1 ? previous / Double(q - 1) : nil
    }
}
