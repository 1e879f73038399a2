/// The real tokens of a padded sequence: positions kept, in order, out of `total`.
public struct TokenSelection: Sendable, Equatable {
    /// Kept positions, ascending.
    public let kept: [Int]
    /// The padded length.
    public let total: Int
    /// Where the selection came from, for messages (`attention_mask`, `lengths`, `--length 12`).
    public let origin: String

    public init(kept: [Int], total: Int, origin: String) {
        precondition(kept.allSatisfy { $0 >= 0 && $0 < total } && zip(kept, kept.dropFirst()).allSatisfy { $0 < $1 })
        self.kept = kept
        self.total = total
        self.origin = origin
    }

    /// Whether every position is kept (nothing to exclude).
    public var keepsAll: Bool { kept.count == total }

    /// The kept labels of `labels`, when it has one per position.
    public func labels(_ labels: [String]?) -> [String]? {
        guard let labels, labels.count == total else { return labels }
        return kept.map { labels[$0] }
    }
}
