import AttnCore

/// The order of a stored attention tensor's axes, as `--axes` or the file's root attribute `axes` declares it:
/// letters (`B,H,Q,K`) or names (`"layer,batch,head,query,key"`). Layer and batch axes come first, in either order,
/// then the heads (optional), then queries and keys.
public struct DeclaredAxes: Sendable, Equatable {
    public enum Axis: String, Sendable, CaseIterable { case layer, batch, head, query, key }

    public let axes: [Axis]
    /// Where the declaration comes from, for messages: `--axes B,H,Q,K` or `the file's axes attribute`.
    public let origin: String

    /// Parses `text`; nil when it names an unknown axis. The order is checked by `check(rank:...)`.
    public init?(_ text: String, origin: String) {
        let letters: [String: Axis] = ["L": .layer, "B": .batch, "H": .head, "Q": .query, "K": .key]
        var axes: [Axis] = []
        for part in text.split(whereSeparator: { $0 == "," || $0 == " " }) {
            let word = String(part)
            guard let axis = letters[word.uppercased()] ?? Axis(rawValue: word.lowercased()) else { return nil }
            axes.append(axis)
        }
        guard !axes.isEmpty else { return nil }
        self.axes = axes
        self.origin = origin
    }

    /// Why these axes cannot describe a tensor of `shape` (per layer: one layer's tensor), or nil when they can.
    public func problem(shape: [Int], perLayer: Bool) -> String? {
        if Set(axes).count != axes.count { return "\(origin) names an axis twice" }
        guard axes.count == shape.count else {
            return "\(origin) names \(axes.count) axes, but the tensor has \(shape.count): \(formatShape(shape))"
        }
        guard axes.suffix(2) == [.query, .key] else {
            return """
                \(origin): the last two axes must be the queries and the keys (Q,K); transpose the array so that \
                they are, e.g. a.transpose(...) in numpy
                """
        }
        let leading = axes.dropLast(2).filter { $0 != .head }
        if let head = axes.firstIndex(of: .head), head != axes.count - 3 {
            return "\(origin): the heads must come just before the queries (…,H,Q,K); transpose the array so they do"
        }
        if perLayer && leading.contains(.layer) {
            return "\(origin) names a layer axis, but each layer is its own dataset here"
        }
        return nil
    }

    public var label: String { "[" + axes.map(\.rawValue).joined(separator: ", ") + "]" }
}
