import AttnCore
import AttnReader
import AttnSource

/// `info`'s report: what the file holds (format, tensors, attributes) and how attninspect reads it as attention.
/// Every name and value from the file is escaped, so that none can break its line or reach the terminal raw.
public enum InfoReport {
    /// The file's part: its format, every tensor with its shape, type and storage, and every attribute.
    public static func contents(of dump: DumpFile) -> String {
        var out = "file: \(PrintableText.escaped(dump.path))\nformat: \(dump.format)\n"
        var table = TextTable(header: ["name", "shape", "dtype", "storage"])
        table.showsHeader = false
        table.alignsNumbers = false
        for t in dump.tensors {
            table.append(
                [t.name, formatShape(t.shape), t.element.description, t.storage ?? ""].map {
                    PrintableText.escaped($0)
                })
        }
        out += "tensors:\n" + (table.rows.isEmpty ? "  (none)\n" : table.render(indent: "  "))
        if !dump.attributes.isEmpty {
            out += "attributes:\n"
            // Names and values come from the file: escaped one by one, so that none can break its line.
            for a in dump.attributes {
                let value: String
                if case .strings(let s) = a.value, s.count == 1 {
                    value = "\"\(s[0])\""
                } else {
                    value = a.value.description
                }
                let owner = a.owner == "/" ? "" : PrintableText.escaped(a.owner) + " "
                out += "  \(owner)\(PrintableText.escaped(a.name)) = \(PrintableText.escaped(value))\n"
            }
        }
        return out
    }

    /// The attention as read (`opened`): its source, axes, batch, layers, padding, shape and one layer's memory;
    /// then its token labels, or `labels` (how many were found that do not fit the queries) and `keyLabels` (the
    /// same for the keys of cross-attention).
    public static func attention(_ opened: OpenedDump, labels: Int?, keyLabels: Int?) -> String {
        let s = opened.source
        let summary = opened.layout.summary
        var view = "attention:\n"
        switch s.origin {
        case .stored: view += "  source: stored attention in \(summary.datasets)\n"
        case .recomputed(_, let causal):
            view += "  source: recomputed from \(summary.datasets)\(causal ? ", causal" : "")\n"
        }
        view += "  axes as stored: \(summary.axes)\n"
        if let recomputed = s as? RecomputedAttention {
            view += "  softmax(Q·Kᵀ · \(recomputed.scale)) per layer and head: \(recomputed.rules.summary)\n"
            let kv = recomputed.source.keyHeadCount
            if kv != s.headCount {
                view += "  key heads: \(kv) (grouped-query attention: \(s.headCount / kv) query heads share each)\n"
            }
        } else if case .recomputed(let scale, _) = s.origin {
            view += "  softmax(Q·Kᵀ · \(scale)) per layer and head\n"
        }
        if let b = summary.batch { view += "  batch: axis of \(b.size), using sample \(b.used)\n" }
        if let numbers = summary.layerNumbers {
            view += "  layer numbers in the file: \(numbers.map(String.init).joined(separator: ", "))\n"
        }
        if let padding = opened.padding {
            view +=
                """
                  padding: \(padding.origin) keeps \(padding.kept.count) of \(padding.total) positions \
                (\(describeKept(padding.kept))); the rest is excluded from every analysis (--keep-padding to \
                include it)\n
                """
        }
        view += "  layers: \(s.layerCount), heads: \(s.headCount), queries: \(s.queryCount), keys: \(s.keyCount)\n"
        let need = opened.layout.layerMemory
        view += "  memory for one layer's work: \(MemoryBudget.describe(need.bytes))"
        if let refusal = MemoryBudget.refusal(need.what, bytes: need.bytes) {
            view += " (other commands refuse it: \(refusal))"
        }
        view += "\n"
        if let tokens = s.tokens {
            view += "tokens (\(tokens.count)): " + tokens.map(JSONValue.quote).joined(separator: " ") + "\n"
        } else if let labels {
            view += "tokens: \(labels) labels found, but the attention has \(s.queryCount) queries: not used\n"
        }
        if s.isCrossAttention {
            if let keys = s.keyTokens {
                view += "key tokens (\(keys.count)): " + keys.map(JSONValue.quote).joined(separator: " ") + "\n"
            } else if let keyLabels {
                view += "key tokens: \(keyLabels) labels found, but the attention has \(s.keyCount) keys: not used\n"
            }
        }
        return view
    }

    /// `0...5` or `2...7` for runs, else the positions listed (`0, 2, 5`).
    static func describeKept(_ kept: [Int]) -> String {
        guard let first = kept.first, let last = kept.last else { return "none" }
        if last - first + 1 == kept.count { return "\(first)...\(last)" }
        return kept.count <= 12
            ? kept.map(String.init).joined(separator: ", ") : "\(kept.count) positions from \(first) to \(last)"
    }
}
