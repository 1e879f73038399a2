import AttnCore
import AttnAnalysis

/// `heads` as a table, JSON and CSV, and its similarity matrices as files (docs/heads.md; the records' keys are
/// `HeadMeasures.fields`).
public enum HeadsReport {
    /// `topKeys`: how many keys `keys_received` names per head.
    public static func json(
        _ result: HeadsResult, analysis: HeadAnalysis, tokenMatch: String?, source: AttentionSource, topKeys: Int
    ) -> JSONValue {
        let records = result.records, perLayer = result.perLayer, all = result.all, outliers = result.outliers,
            similarity = result.scope
        let distance: JSONValue
        switch analysis.distance {
        case .grid(let rows, let columns, let p, let size):
            distance = .object([
                ("mode", .string("grid")), ("grid", .array([.integer(rows), .integer(columns)])),
                ("prefix", .integer(p)),
                ("patch_size", size.map { .number($0) } ?? .null), ("unit", .string(size == nil ? "patches" : "pixels"))
            ])
        case .sequence(let p):
            distance = .object([
                ("mode", .string("sequence")), ("grid", .null), ("prefix", .integer(p)), ("patch_size", .null),
                ("unit", .string("tokens"))
            ])
        }
        let match: JSONValue = tokenMatch.map { .string($0) } ?? .null
        let special: JSONValue =
            analysis.specialTokens.map { s in
                .object([
                    ("cls", .array(s.cls.map { .integer($0) })), ("sep", .array(s.sep.map { .integer($0) })),
                    ("punct", .array(s.punct.map { .integer($0) }))
                ])
            } ?? .null
        var pairs: JSONValue = .null
        if !source.isCrossAttention {
            let p = analysis.patternPairCount(positions: source.queryCount)
            pairs = .object([
                ("previous_token", .integer(max(source.queryCount - 1, 0))),
                ("duplicate_token", p.map { .integer($0) } ?? .null),
                ("induction", p.map { .integer($0) } ?? .null)
            ])
        }
        let similarityValue: JSONValue
        func matrix(_ m: [[Double?]]) -> JSONValue {
            .array(m.map { .array($0.map { $0.map { JSONValue.finite($0) } ?? .null }) })
        }
        if let all {
            let heads: [JSONValue] = result.layers.flatMap { l in
                (0..<source.headCount).map { h in JSONValue.array([.integer(l), .integer(h)]) }
            }
            similarityValue = .object([
                ("scope", .string("all")), ("heads", .array(heads)), ("js_divergence", matrix(all))
            ])
        } else if similarity == .none {
            similarityValue = .object([("scope", .string("none"))])
        } else {
            similarityValue = .object([
                ("scope", .string("layer")),
                (
                    "matrices",
                    .array(
                        zip(result.layers, perLayer).map { l, m in
                            .object([("layer", .integer(l)), ("js_divergence", matrix(m))])
                        })
                )
            ])
        }
        return .document(
            RecordWriter.header(source) + [
                ("source", .string(source.origin.label)),
                (
                    "parameters",
                    .object([
                        ("sink_tokens", .integer(analysis.sinkTokens)), ("exclude_bos", .bool(analysis.excludeBOS)),
                        ("exclude_current_token", .bool(analysis.excludeCurrentToken)), ("token_match", match),
                        ("distance", distance),
                        ("similarity", .string(similarity.rawValue)), ("outlier_z", .number(analysis.outlierZ)),
                        ("outlier_ratio", .number(analysis.outlierRatio))
                    ])
                ),
                ("special_tokens", special), ("tl_pairs", pairs),
                ("records", .array(records.map(RecordWriter.json))),
                ("similarity", similarityValue), ("outlier_tokens", OutlierReport.json(outliers)),
                ("keys_received", ReceivedReport.json(result.received, top: topKeys, keyLabels: source.keyTokens))
            ])
    }

    public static func table(_ result: HeadsResult, analysis: HeadAnalysis, source: AttentionSource) -> String {
        let records = result.records, outliers = result.outliers
        let unit: String
        switch analysis.distance {
        case .grid(_, _, _, let size): unit = size == nil ? "patches" : "px"
        case .sequence: unit = "tokens"
        }
        let columns: [RecordWriter.Column] = [
            .init("head", "head"), .init("entropy", "entropy", .fixed(3)), .init("prev", "attn_previous", .fixed(3)),
            .init("next", "attn_next", .fixed(3)), .init("self", "attn_self", .fixed(3)),
            .init("first", "attn_first", .fixed(3)),
            .init("cls", "attn_cls", .fixed(3)), .init("sep", "attn_sep", .fixed(3)),
            .init("sink", "sink_share", .fixed(3)),
            .init("TL prev", "previous_token", .fixed(3)), .init("TL dup", "duplicate_token", .fixed(3)),
            .init("TL ind", "induction", .fixed(3)),
            .init("dist (\(unit))", "mean_attention_distance", .fixed(3)), .init("roles", "roles", .labels)
        ]
        var text = ""
        for l in result.layers {
            text +=
                "layer \(l): \(source.headCount) heads, \(source.queryCount) queries × \(source.keyCount) keys\n"
                + RecordWriter.table(records.filter { $0.layer == l }, columns) + "\n"
        }
        text += OutlierReport.table(outliers, z: analysis.outlierZ, ratio: analysis.outlierRatio)
        return text
    }

    /// The similarity as long CSV rows, or as a matrix (.npy or a picture): the (L·H)² matrix with
    /// `--similarity all`, else each layer's H × H matrix stacked (L·H rows × H columns).
    public static func writeSimilarity(
        _ path: String, _ result: HeadsResult, heads: Int, input: String, note: @escaping (String) -> Void
    ) throws {
        let perLayer = result.perLayer, all = result.all
        let rows: [[Double?]] = all ?? perLayer.flatMap { $0 }
        let columns = rows.first?.count ?? 0
        if path.lowercased().hasSuffix(".csv") {
            var out = CSV.line(["layer_a", "head_a", "layer_b", "head_b", "js_divergence"])
            for (i, row) in rows.enumerated() {
                for (j, v) in row.enumerated() {
                    let la = result.layers[i / heads], ha = i % heads
                    let (lb, hb) = all == nil ? (la, j) : (result.layers[j / heads], j % heads)
                    out += CSV.line(["\(la)", "\(ha)", "\(lb)", "\(hb)", v.map { "\($0)" } ?? ""])
                }
            }
            try AtomicFile.write(Array(out.utf8), to: path, protecting: [input])
            note("wrote \(path): Jensen–Shannon divergence between heads, \(rows.count * columns) pairs")
            return
        }
        let map = Matrix(rows: rows.count, columns: columns, values: rows.flatMap { $0.map { Float($0 ?? .nan) } })
        try MapWriter(output: path, note: { note($0) })
            .write(
                map,
                what:
                    """
                    Jensen–Shannon divergence between heads \
                    (\(all == nil ? "each layer's \(heads)×\(heads), stacked" : "every pair of heads"))
                    """,
                input: input)
    }
}
