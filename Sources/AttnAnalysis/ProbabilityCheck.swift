internal import CAttnKernels
import AttnCore
import Synchronization

/// Whether stored attention is made of probabilities: every value ≥ 0 and every row summing to 1, as `verify`
/// checks. Rollout, flow and grid multiply or read rows as distributions; on logits or scores dumped by mistake they
/// would print numbers that mean nothing, so they refuse such attention (unless told the values are meant as they
/// are) and name the first row that is not a distribution. Rows holding NaN or infinite values are left to the
/// analyses' own NaN reporting.
public enum ProbabilityCheck {
    /// How far a row's sum may be from 1, and how far below 0 a value may be: `verify`'s default tolerance (float16
    /// rows sum to 1 within about 3e-4).
    public static let tolerance = 1e-2

    /// A row that is not a distribution.
    public struct Violation: Sendable, Equatable {
        public let head: Int
        public let row: Int
        public let sum: Double
        public let minimum: Float

        /// Orders violations by head, then row: the first one is named.
        func precedes(_ other: Violation) -> Bool { (head, row) < (other.head, other.row) }

        /// The message for this row of layer `layer`, for `command` (rollout, flow, grid). Flow cannot take negative
        /// capacities whatever it is told, so its message for a negative value offers no flag.
        public func message(layer: Int, command: String) -> String {
            let negative = Double(minimum) < -ProbabilityCheck.tolerance
            let what =
                negative
                ? "holds a negative value (\(minimum))"
                : "sums to \(formatSum(sum)), not 1 (within \(ProbabilityCheck.tolerance))"
            let way =
                negative && command == "flow"
                ? "attention flow's capacities cannot be negative"
                : "add --allow-unnormalised to use them as they are"
            return
                """
                layer \(layer), head \(head), query \(row): the row \(what): \(command) needs attention \
                probabilities, and these look like scores or logits (`attninspect verify` checks every row); \(way)
                """
        }

        /// Four decimals, short: 1.5, 0.9871, 213.4.
        private func formatSum(_ value: Double) -> String {
            abs(value) < 1e15 ? String((value * 1e4).rounded() / 1e4) : String(value)
        }
    }

    /// The first row (by head, then row) among `rows` of head `head` whose values are not a distribution, or nil.
    /// - Parameter values: `rows.count × keys`, row-major.
    public static func firstViolation(_ values: UnsafeBufferPointer<Float>, rows: Range<Int>, keys: Int, head: Int)
        -> Violation?
    {
        guard keys > 0 else { return nil }
        for (i, r) in rows.enumerated() {
            var sum = 0.0
            var minimum: Float = 0
            cattn_row_sum_min(values.baseAddress! + i * keys, keys, &sum, &minimum)
            if let v = violation(sum: sum, minimum: minimum, head: head, row: r) { return v }
        }
        return nil
    }

    /// The violation a row of `sum` and smallest value `minimum` makes, or nil. Rows holding NaN or infinite values
    /// (a sum that is not finite) are left to the analysis's own NaN reporting.
    static func violation(sum: Double, minimum: Float, head: Int, row: Int) -> Violation? {
        guard sum.isFinite else { return nil }
        return abs(sum - 1) > tolerance || Double(minimum) < -tolerance
            ? Violation(head: head, row: row, sum: sum, minimum: minimum) : nil
    }

    /// Throws for the first row of `layer` (layer number `index`) that is not a distribution.
    public static func check(_ layer: LayerAttention, index: Int, command: String) throws {
        let size = layer.queries * layer.keys
        try layer.values.withUnsafeBufferPointer { all in
            for h in 0..<layer.heads {
                if let v = firstViolation(
                    UnsafeBufferPointer(rebasing: all[(h * size)..<((h + 1) * size)]), rows: 0..<layer.queries,
                    keys: layer.keys, head: h)
                {
                    throw AnalysisError(v.message(layer: index, command: command))
                }
            }
        }
    }

    /// The first violation found by several workers at once.
    final class Finding: Sendable {
        private let first = Mutex<Violation?>(nil)

        func note(_ violation: Violation) {
            first.withLock { if $0 == nil || violation.precedes($0!) { $0 = violation } }
        }

        /// The first violation noted, and forgets it.
        func take() -> Violation? {
            first.withLock {
                let v = $0; $0 = nil; return v
            }
        }
    }
}
