import AttnCore

/// How the user asked for attention to be found in a file.
public struct ReadOptions: Sendable {
    /// An HDF5 path, NPZ member or HDF5 group holding per-layer datasets.
    public var dataset: String?
    /// The sample along a batch axis; nil means 0.
    public var batch: Int?
    /// The number of heads, for Q/K stored as (L, S, H·d).
    public var heads: Int?
    /// Use Q and K even when the file also holds attention.
    public var fromQK: Bool
    /// The order of the stored attention's axes (`--axes`); nil: the file's `axes` attribute, else by rank.
    public var axes: DeclaredAxes?
    /// Refuse attention whose one layer of work exceeds `MemoryBudget.layerLimitBytes` (`layerMemory`).
    /// False for `info`, which reads no layer and says what one needs instead.
    public var checksLayerMemory: Bool

    public init(
        dataset: String? = nil, batch: Int? = nil, heads: Int? = nil, fromQK: Bool = false, axes: DeclaredAxes? = nil,
        checksLayerMemory: Bool = true
    ) {
        self.axes = axes
        self.dataset = dataset
        self.batch = batch
        self.heads = heads
        self.fromQK = fromQK
        self.checksLayerMemory = checksLayerMemory
    }
}

/// What was found in a file and how it is read as attention.
public enum AttentionLayout {
    case attention(StoredAttention)
    case queryKey(StoredQueryKey)

    /// The datasets used, how their axes are read, and the batch sample chosen.
    public var summary: LayoutSummary {
        switch self {
        case .attention(let a): return a.summary
        case .queryKey(let q): return q.summary
        }
    }

    /// What one layer's work holds in memory, and how many bytes (nil: more than any machine has).
    public var layerMemory: (what: String, bytes: Int?) {
        switch self {
        case .attention(let a): return a.layerMemory
        case .queryKey(let q): return q.layerMemory
        }
    }

    /// Names that mean "attention probabilities", in order of preference.
    static let attentionNames = [
        "attentions", "attention", "attn", "attention_probs", "attn_weights", "attn_probs", "attention_weights",
        "self_attn", "self_attention", "hook_pattern"
    ]
    /// TransformerLens's hook names (`blocks.N.attn.hook_rot_q` after the rotary embedding, preferred): their
    /// per-layer tensors are `[batch, position, head, dim]`, as the hooks hold them.
    static let queryNames = ["q", "query", "hook_rot_q", "hook_q"]
    static let keyNames = ["k", "key", "hook_rot_k", "hook_k"]
    /// Names that say what a tensor is: a family whose last word is one of another kind is never taken for this one
    /// (`model.layers.N.self_attn.q` is q, not attention).
    static let kindNames = Set(
        attentionNames + queryNames + keyNames + gradientNames + ["v", "value", "hook_v", "hook_attn_scores", "hook_z"])

    /// Decides which tensors of `file` are the attention (or Q and K) and how their axes map
    /// to `[layer, head, query, key]`.
    public static func resolve(_ file: DumpFile, options: ReadOptions) throws -> AttentionLayout {
        let floating = floatingTensors(of: file)
        let tokens = try file.tokenLabels(sample: options.batch)

        if let wanted = options.dataset {
            return .attention(
                try StoredAttention(
                    file: file, layers: try named(wanted, in: file, preferring: attentionNames), options: options,
                    tokens: tokens))
        }

        let attention = try findTensors(floating, names: attentionNames, file: file)
        let queries = try findTensors(floating, names: queryNames, file: file)
        let keys = try findTensors(floating, names: keyNames, file: file)
        // Axes declared for q and k (`--axes L,B,S,HD`) ask for q and k as --from-qk does.
        let wantsQK = options.fromQK || options.axes?.isQueryKey == true
        if wantsQK || attention == nil, let queries, let keys {
            // TransformerLens: q and k must both be after the rotary embedding, or both before it.
            let rotated = [queries, keys].map { lastComponent($0.first.name).contains("hook_rot_") }
            if rotated[0] != rotated[1] {
                throw AttnError(
                    file: file.path,
                    """
                    q is \(queries.label) but k is \(keys.label): one is after the rotary embedding (hook_rot_*), \
                    the other before it; save hook_rot_q and hook_rot_k together
                    """
                )
            }
            return .queryKey(
                try StoredQueryKey(file: file, queries: queries, keys: keys, options: options, tokens: tokens))
        }
        if wantsQK {
            throw AttnError(
                file: file.path,
                """
                \(options.fromQK ? "--from-qk" : "--axes names q and k's axes"): expected datasets named q and k \
                (or query and key); found: \(listing(file.container.tensors))
                """
            )
        }
        if let attention {
            return .attention(try StoredAttention(file: file, layers: attention, options: options, tokens: tokens))
        }
        if let named = file.container.tensors.first(where: { attentionNames.contains(lastComponent($0.name)) }) {
            throw AttnError(.unsupported, file: file.path, dataset: named.label, unsupportedDtype(named.info.element))
        }
        // No conventional name: a family of datasets that differ only in one number and can be per-layer
        // attention (`arr_0`, `arr_1`, ... as np.savez(*out.attentions) writes them) is the layers.
        let families = attentionFamilies(floating)
        if families.count == 1 {
            return .attention(
                try StoredAttention(file: file, layers: .perLayer(families[0]), options: options, tokens: tokens))
        }
        if families.count > 1 {
            let listed = families.map { family in
                "\(layerNumber(in: family[0].name)?.pattern ?? family[0].name) (\(family.count) datasets)"
            }
            throw AttnError(
                file: file.path,
                """
                several families of per-layer datasets could be the attention: \(listed.joined(separator: ", ")); \
                choose one with --dataset and its name before the number (e.g. --dataset \
                \(familyPrefix(families[0])))
                """
            )
        }
        // No conventional name: the only floating tensor whose last two axes can be queries × keys.
        // (A file holding a single tensor may be rectangular: cross-attention or one computed map.)
        let ranked = floating.filter { $0.shape.count >= 2 && $0.shape.count <= 5 }
        let candidates =
            file.container.tensors.count == 1
            ? ranked
            : ranked.filter { $0.shape[$0.shape.count - 1] == $0.shape[$0.shape.count - 2] }
        if candidates.count == 1 {
            return .attention(
                try StoredAttention(file: file, layers: .single(candidates[0]), options: options, tokens: tokens))
        }
        if candidates.count > 1 {
            throw AttnError(
                file: file.path,
                "several tensors could be the attention: \(listing(candidates)); choose one with --dataset NAME")
        }
        if file.container.tensors.count == 1, let only = file.container.tensors.first {
            if case .floating = only.info.element {
                throw AttnError(
                    file: file.path, dataset: only.label,
                    """
                    expected 2 to 5 axes [layer, (batch,) head, query, key] with queries × keys last, found shape \
                    \(formatShape(only.shape))
                    """
                )
            }
            throw AttnError(.unsupported, file: file.path, dataset: only.label, unsupportedDtype(only.info.element))
        }
        throw AttnError(
            file: file.path,
            """
            no attention found: expected a dataset named \(attentionNames.joined(separator: ", ")), per-layer \
            datasets such as /layer_00/attn, or q and k; found: \(listing(file.container.tensors))
            """
        )
    }

    /// The tensor named `wanted`, or the numbered per-layer group inside the group `wanted`.
    private static func named(_ wanted: String, in file: DumpFile, preferring names: [String]) throws -> LayerTensors {
        if let tensor = file.tensor(named: wanted) {
            guard case .floating = tensor.info.element else {
                throw AttnError(
                    .unsupported, file: file.path, dataset: tensor.label, unsupportedDtype(tensor.info.element))
            }
            return .single(tensor)
        }
        var prefix = wanted.hasPrefix("/") ? wanted : "/" + wanted
        if !prefix.hasSuffix("/") { prefix += "/" }
        let inside = floatingTensors(of: file).filter { ("/" + $0.name.trimmingPrefix("/")).hasPrefix(prefix) }
        if let group = try perLayerGroup(inside, names: names, file: file, anyName: true) {
            return .perLayer(group)
        }
        // A family named by the part of its names before the number: `--dataset arr_`, `--dataset model.layers.`.
        let bare = wanted.trimmingPrefix("/")
        let named = floatingTensors(of: file).filter { $0.name.trimmingPrefix("/").hasPrefix(bare) }
        if let group = try perLayerGroup(named, names: names, file: file, anyName: true) {
            return .perLayer(group)
        }
        throw AttnError(
            file: file.path, "no dataset or member named '\(wanted)'; found: \(listing(file.container.tensors))")
    }

    /// Families of two or more floating tensors whose names differ only in one number, of one shape that can be a
    /// layer of attention (2 to 4 axes, the last two square), each ordered by its number.
    static func attentionFamilies(_ tensors: [StoredTensor]) -> [[StoredTensor]] {
        let (order, groups) = numberedGroups(tensors) { _, t in
            (2...4).contains(t.shape.count) && t.shape[t.shape.count - 1] == t.shape[t.shape.count - 2]
        }
        return order.compactMap { pattern in
            let members = groups[pattern]!.sorted { $0.0 < $1.0 }
            guard members.count >= 2, Set(members.map(\.1.shape)).count == 1,
                Set(members.map(\.0)).count == members.count
            else { return nil }
            return members.map(\.1)
        }
    }

    /// The tensors that carry a layer number and that `accepts`, grouped by their name with the number replaced by
    /// `#` (`layer_#/attn`), the groups in order of first appearance, each with its members' numbers.
    private static func numberedGroups(
        _ tensors: [StoredTensor], accepts: (String, StoredTensor) -> Bool
    ) -> (order: [String], groups: [String: [(Int, StoredTensor)]]) {
        var groups: [String: [(Int, StoredTensor)]] = [:]
        var order: [String] = []
        for t in tensors {
            guard let (pattern, number) = layerNumber(in: t.name), accepts(pattern, t) else { continue }
            if groups[pattern] == nil { order.append(pattern) }
            groups[pattern, default: []].append((number, t))
        }
        return (order, groups)
    }

    /// What `--dataset` takes to name a family: its name before the number (`arr_`, `model.layers.`).
    static func familyPrefix(_ family: [StoredTensor]) -> String {
        let pattern = layerNumber(in: family[0].name)?.pattern ?? family[0].name
        return String(pattern.prefix { $0 != "#" })
    }

    private static func floatingTensors(of file: DumpFile) -> [StoredTensor] {
        file.container.tensors.filter { if case .floating = $0.info.element { return true } else { return false } }
    }

    /// Names that mean "gradients of the loss with respect to the attention probabilities".
    public static let gradientNames = [
        "attn_grad", "attn_grads", "attention_grad", "attention_grads", "attention_gradients", "grads", "grad"
    ]

    /// The attention gradients stored beside `attention` (tensors named `attn_grad`, `grads`, ... or
    /// `wanted`), read with the same options; they must have its layers, heads, queries and keys.
    /// - Returns: nil when the file holds none and none was named.
    public static func gradients(
        _ file: DumpFile, named wanted: String?, options: ReadOptions, matching attention: AttentionSource
    ) throws -> StoredAttention? {
        let tensors: LayerTensors
        if let wanted {
            tensors = try named(wanted, in: file, preferring: gradientNames)
        } else if let found = try findTensors(floatingTensors(of: file), names: gradientNames, file: file) {
            tensors = found
        } else {
            return nil
        }
        var readOptions = options
        readOptions.dataset = nil
        readOptions.fromQK = false
        let gradients = try StoredAttention(file: file, layers: tensors, options: readOptions, tokens: nil)
        let want = [attention.layerCount, attention.headCount, attention.queryCount, attention.keyCount]
        let found = [gradients.layerCount, gradients.headCount, gradients.queryCount, gradients.keyCount]
        guard want == found else {
            throw AttnError(
                file: file.path, dataset: tensors.label,
                """
                the attention gradients must have the attention's [layer, head, query, key] shape \
                \(formatShape(want)), found \(formatShape(found))
                """
            )
        }
        return gradients
    }

    /// A single tensor with one of `names`, or a numbered per-layer group of them.
    /// A tensor whose own name is one of `names` is single unless it belongs to a per-layer group
    /// (two or more datasets that differ only in one number): `/vit_b16/attentions` is single,
    /// `/layer_00/attn` … `/layer_11/attn` are per layer.
    private static func findTensors(_ tensors: [StoredTensor], names: [String], file: DumpFile) throws -> LayerTensors?
    {
        let group = try perLayerGroup(tensors, names: names, file: file, anyName: false)
        let grouped = Set((group ?? []).map(\.name))
        for name in names {
            if let t = tensors.first(where: { lastComponent($0.name) == name && !grouped.contains($0.name) }) {
                return .single(t)
            }
        }
        return group.map { .perLayer($0) }
    }

    /// Tensors whose paths carry a layer number (`/layer_00/attn`, `/layers/3/attention`, `/attn_5`,
    /// `/blocks.3.attn`), two or more that differ only in that number, ordered by it numerically.
    private static func perLayerGroup(_ tensors: [StoredTensor], names: [String], file: DumpFile, anyName: Bool) throws
        -> [StoredTensor]?
    {
        let (order, groups) = numberedGroups(tensors) { pattern, _ in anyName || rank(of: pattern, in: names) != nil }
        let candidates = order.filter { groups[$0]!.count >= 2 }
        guard !candidates.isEmpty else { return nil }
        // Prefer the group whose name comes first in `names`, then the largest.
        let ranked = candidates.sorted { a, b in
            let ra = rank(of: a, in: names) ?? names.count, rb = rank(of: b, in: names) ?? names.count
            return ra != rb ? ra < rb : groups[a]!.count > groups[b]!.count
        }
        let members = groups[ranked[0]]!.sorted { $0.0 < $1.0 }
        for (a, b) in zip(members, members.dropFirst()) where a.0 == b.0 {
            throw AttnError(file: file.path, "datasets \(a.1.name) and \(b.1.name) both claim layer number \(a.0)")
        }
        return members.map(\.1)
    }

    /// Where the name around a layer number comes in `names`: the last path component of the
    /// pattern without the number (`attn_#` → attn), or the part after it (`blocks.#.attn` → attn),
    /// or before it (`attn.#` → attn).
    static func rank(of pattern: String, in names: [String]) -> Int? {
        // `attentions/#` (a group or a pickled tuple of layers): the number is the whole component, the name before.
        let parts = pattern.split(separator: "/")
        let component = parts.count >= 2 && parts.last == "#" ? String(parts[parts.count - 2]) : lastComponent(pattern)
        let separators: Set<Character> = ["_", "-", "."]
        func trimmed(_ s: Substring) -> String {
            var t = s
            while let c = t.first, separators.contains(c) { t = t.dropFirst() }
            while let c = t.last, separators.contains(c) { t = t.dropLast() }
            return String(t)
        }
        var forms = [component]
        if let hash = component.firstIndex(of: "#") {
            let after = trimmed(component[component.index(after: hash)...])
            // The last word after the number says what the tensor is when it is a known name (`...self_attn.q`).
            // It ranks before any name found another way (`blocks.#.attn.hook_pattern` before `...hook_attn_scores`).
            // TransformerLens's other hooks (hook_result, hook_z, ...) are never a kind they are not named as.
            if let last = after.split(separator: ".").last.map(String.init),
                kindNames.contains(last) || last.hasPrefix("hook_")
            {
                return names.firstIndex(of: last).map { $0 - names.count }
            }
            forms.append(trimmed(component[..<hash]) + after)
            forms.append(after)
            forms.append(trimmed(component[..<hash]))
            // `encoder.layer.#.attention.self`, `model.layers.#.self_attn.weights`: the first word after the number.
            if let word = after.split(separator: ".").first { forms.append(String(word)) }
        }
        return forms.compactMap { names.firstIndex(of: $0) }.min()
    }

    /// The last run of digits in a path: its value and the path with it replaced by `#`.
    static func layerNumber(in path: String) -> (pattern: String, number: Int)? {
        let chars = Array(path)
        guard let end = chars.lastIndex(where: \.isASCIIDigit) else { return nil }
        var start = end
        while start > 0 && chars[start - 1].isASCIIDigit { start -= 1 }
        guard let number = Int(String(chars[start...end])) else { return nil }
        let pattern = String(chars[..<start]) + "#" + String(chars[(end + 1)...])
        return (pattern, number)
    }

    static func listing(_ tensors: [StoredTensor]) -> String {
        if tensors.isEmpty { return "nothing" }
        let shown = tensors.prefix(12).map { "\($0.name) \(formatShape($0.shape)) \($0.info.element)" }
        return shown.joined(separator: ", ") + (tensors.count > 12 ? ", ... (\(tensors.count) in all)" : "")
    }
}

/// The tensors that hold attention (or Q, or K): one for all layers, or one per layer.
enum LayerTensors {
    case single(StoredTensor)
    case perLayer([StoredTensor])

    var first: StoredTensor {
        switch self {
        case .single(let t): return t
        case .perLayer(let ts): return ts[0]
        }
    }

    /// Reads layer `index`: `[layer?, batch?, ...]` (or `[batch, layer, ...]` with `batchFirst`) fixed on a single
    /// tensor, `[batch?, ...]` on a per-layer one.
    func readLayer(_ index: Int, hasLayerAxis: Bool, batch: Int?, batchFirst: Bool = false) throws -> [Float] {
        switch self {
        case .single(let t):
            return try t.readBlock(leading: Self.leading(index, hasLayerAxis: hasLayerAxis, batch: batch, batchFirst))
        case .perLayer(let all):
            return try all[index].readBlock(leading: batch.map { [$0] } ?? [])
        }
    }

    /// The leading indices of layer `index` (and the batch sample) on a single tensor, in the tensor's order.
    static func leading(_ index: Int, hasLayerAxis: Bool, batch: Int?, _ batchFirst: Bool) -> [Int] {
        let layer = hasLayerAxis ? [index] : [], sample = batch.map { [$0] } ?? []
        return batchFirst ? sample + layer : layer + sample
    }

    /// Throws, for the first tensor whose data is never read (`StoredTensor.unreadable`), why.
    func checkReadable(file: String) throws {
        let all: [StoredTensor]
        switch self {
        case .single(let t): all = [t]
        case .perLayer(let ts): all = ts
        }
        if let t = all.first(where: { $0.unreadable != nil }), let why = t.unreadable {
            throw AttnError(why.kind, file: file, dataset: t.label, why.reason)
        }
    }

    /// Checks that every per-layer tensor has the first one's shape and a floating element type.
    func checkUniform(file: String) throws {
        guard case .perLayer(let all) = self else { return }
        let first = all[0]
        for t in all {
            guard t.shape == first.shape else {
                throw AttnError(
                    file: file, dataset: t.label,
                    """
                    expected the same shape as \(first.name) \(formatShape(first.shape)), found \
                    \(formatShape(t.shape))
                    """
                )
            }
            guard case .floating = t.info.element else {
                throw AttnError(.unsupported, file: file, dataset: t.label, unsupportedDtype(t.info.element))
            }
        }
    }

    /// The layer number each per-layer tensor carries, in order.
    var layerNumbers: [Int]? {
        guard case .perLayer(let all) = self else { return nil }
        return all.compactMap { AttentionLayout.layerNumber(in: $0.name)?.number }
    }

    var label: String {
        switch self {
        case .single(let t): return t.name
        case .perLayer(let ts):
            let pattern = AttentionLayout.layerNumber(in: ts[0].name)?.pattern ?? ts[0].name
            return "\(pattern) (\(ts.count) datasets, one per layer)"
        }
    }
}

/// How a layout was read: for `info` and for messages.
public struct LayoutSummary: Sendable {
    /// The dataset(s): `/attentions` or `/layer_#/attn (6 datasets, one per layer)`.
    public let datasets: String
    /// The axes as read, e.g. `[layer, batch, head, query, key]`.
    public let axes: String
    /// Whether the axes were taken from the rank where it leaves a doubt (a single 4-axis tensor, undeclared), so
    /// that a note says so; false when declared (`--axes`, the `axes`/`qk_axes` attributes) or unambiguous.
    public var guessedFromRank = false
    /// The batch axis length and the sample used, when there is one.
    public let batch: (size: Int, used: Int)?
    /// For per-layer datasets: the layer number each dataset carries, in order.
    public let layerNumbers: [Int]?
}

extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}

extension String {
    func trimmingPrefix(_ s: String) -> String { hasPrefix(s) ? String(dropFirst(s.count)) : self }
}
