import AttnCore

/// The order of a stored tensor's axes, as `--axes` or the file's root attributes declare it: letters (`B,H,Q,K`)
/// or names (`"layer,batch,head,query,key"`).
///
/// Attention: layer and batch axes first, in either order, then the heads (optional), then queries and keys
/// (attribute `axes`). q and k (attribute `qk_axes`, or `axes` when it names positions): layer and batch first, in
/// either order, then `H,S,D` (heads, positions, dim), `S,H,D` (as TransformerLens's hooks hold them) or `S,HD`
/// (a projection's output, heads × dim merged, split by `--heads`).
public struct DeclaredAxes: Sendable, Equatable {
    public enum Axis: String, Sendable, CaseIterable {
        case layer, batch, head, query, key, position, dim
        case headDim = "head·dim"
    }

    public let axes: [Axis]
    /// Where the declaration comes from, for messages: `--axes B,H,Q,K` or `the file's axes attribute`.
    public let origin: String

    /// Parses `text`; nil when it names an unknown axis. The order is checked by `problem(...)`.
    public init?(_ text: String, origin: String) {
        let words: [String: Axis] = [
            "L": .layer, "B": .batch, "H": .head, "Q": .query, "K": .key, "S": .position, "D": .dim, "HD": .headDim,
            "HEAD_DIM": .headDim, "HEAD·DIM": .headDim, "POS": .position
        ]
        var axes: [Axis] = []
        for part in text.split(whereSeparator: { $0 == "," || $0 == " " }) {
            let word = String(part)
            guard let axis = words[word.uppercased()] ?? Axis(rawValue: word.lowercased()) else { return nil }
            axes.append(axis)
        }
        guard !axes.isEmpty else { return nil }
        self.axes = axes
        self.origin = origin
    }

    /// Whether these are the axes of q and k (they name positions), not of attention.
    public var isQueryKey: Bool { axes.contains(.position) }

    /// Why these axes cannot describe q or k of `shape` (per layer: one layer's tensor), or nil when they can.
    public func queryKeyProblem(shape: [Int], perLayer: Bool) -> String? {
        if let problem = countProblem(shape: shape, tensor: "q") { return problem }
        let tails: [[Axis]] = [[.head, .position, .dim], [.position, .head, .dim], [.position, .headDim]]
        guard let tail = tails.first(where: { axes.count >= $0.count && Array(axes.suffix($0.count)) == $0 }),
            axes.dropLast(tail.count).allSatisfy({ $0 == .layer || $0 == .batch })
        else {
            return """
                \(origin): q and k's axes must be layer and batch (in either order), then H,S,D, S,H,D or S,HD; \
                transpose the arrays so that they are
                """
        }
        return perLayerProblem(perLayer)
    }

    /// An axis named twice, or not one per axis of `shape`.
    private func countProblem(shape: [Int], tensor: String) -> String? {
        if Set(axes).count != axes.count { return "\(origin) names an axis twice" }
        guard axes.count == shape.count else {
            return "\(origin) names \(axes.count) axes, but \(tensor) has \(shape.count): \(formatShape(shape))"
        }
        return nil
    }

    /// A layer axis named for a tensor that is one layer.
    private func perLayerProblem(_ perLayer: Bool) -> String? {
        perLayer && axes.contains(.layer) ? "\(origin) names a layer axis, but each layer is its own dataset here" : nil
    }

    /// Why these axes cannot describe a tensor of `shape` (per layer: one layer's tensor), or nil when they can.
    public func problem(shape: [Int], perLayer: Bool) -> String? {
        if isQueryKey || axes.contains(.dim) || axes.contains(.headDim) {
            return "\(origin) names the axes of q and k (S, D, HD), but this is stored attention (Q,K last)"
        }
        if let problem = countProblem(shape: shape, tensor: "the tensor") { return problem }
        guard axes.suffix(2) == [.query, .key] else {
            return """
                \(origin): the last two axes must be the queries and the keys (Q,K); transpose the array so that \
                they are, e.g. a.transpose(...) in numpy
                """
        }
        if let head = axes.firstIndex(of: .head), head != axes.count - 3 {
            return "\(origin): the heads must come just before the queries (…,H,Q,K); transpose the array so they do"
        }
        return perLayerProblem(perLayer)
    }

    public var label: String { "[" + axes.map(\.rawValue).joined(separator: ", ") + "]" }

    /// The root attribute `name` (`axes`, `qk_axes`) of `dump`, parsed; nil when it has none, an error when it
    /// cannot be read.
    static func attribute(_ name: String, of dump: DumpFile) throws -> DeclaredAxes? {
        guard let attribute = dump.attribute(name) else { return nil }
        guard case .strings(let texts) = attribute, texts.count == 1,
            let axes = DeclaredAxes(texts[0], origin: "the file's \(name) attribute (\(texts[0]))")
        else {
            throw AttnError(
                file: dump.path,
                """
                attribute \(name) should name the axes in order, e.g. "layer,batch,head,query,key" or "L,B,H,Q,K" \
                (q and k: "L,B,S,HD", "L,H,S,D"), found \(attribute); override it with --axes
                """
            )
        }
        return axes
    }
}
