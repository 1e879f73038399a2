import AttnAnalysis

/// `verify`'s report: one line per finding, `PASS`, `FAIL` or `INFO` and what was checked, with its numbers.
public enum VerifyReport {
    public static func text(_ findings: [VerifyFinding]) -> String {
        findings.map { finding in
            (finding.passed == nil ? "INFO " : finding.passed! ? "PASS " : "FAIL ") + line(finding) + "\n"
        }.joined()
    }

    static func line(_ finding: VerifyFinding) -> String {
        switch finding {
        case .readAs(let axes, let datasets, let layers, let heads, let queries, let keys):
            let shape = "\(layers) layers × \(heads) heads × \(queries) queries × \(keys) keys"
            return "read as \(axes) from \(datasets): \(shape)"
        case .oneLayerOfHeads:
            return """
                a 3-D tensor is read as one layer of heads; a head-averaged dump [layer, query, key] has to be \
                reshaped to [layer, 1, query, key]
                """
        case .finite(let nans, let infinities):
            return "no NaN or infinite values (\(nans) NaN, \(infinities) infinite)"
        case .nonNegative(let negatives):
            return "no negative values (\(negatives) found)"
        case .rowSums(let worst):
            return "rows sum to 1 over the keys (max |Σ − 1| = \(formatScientific(worst)))"
        case .transposed(let row, let column):
            return """
                rows sum to 1 along the query axis, not the key axis (over keys max |Σ − 1| = \
                \(formatScientific(row)), over queries max |Σ − 1| = \(formatScientific(column))): the dump looks \
                transposed; transpose the last two axes
                """
        case .notProbabilities(let row, let tolerance):
            return """
                rows do not sum to 1 over the keys (max |Σ − 1| = \(formatScientific(row)), tolerance \(tolerance)): \
                not attention probabilities (logits, or already processed?)
                """
        case .causal(let claimed, let upperMax, let tolerance):
            let upper = "largest value above the diagonal \(formatScientific(upperMax))"
            if claimed { return "causal: keys after the query get no attention (\(upper))" }
            return upperMax <= tolerance ? "looks causal: \(upper)" : "not causal: \(upper)"
        case .recomputedUnavailable(let reason):
            return "q and k cannot be compared with the stored attention: \(reason)"
        case .recomputedShapeDiffers:
            return "q and k do not match the stored attention's shape: they cannot be its source"
        case .recomputed(let difference, let tolerance, let scale, let causal, let extras):
            let factor = scale.map { "·\($0)" } ?? "/√d"
            let rules = (causal ? ", causal" : "") + (extras.isEmpty ? "" : ", " + extras)
            return """
                stored attention equals softmax(q·kᵀ\(factor)\(rules)) recomputed from q and k \
                (max |Δ| = \(formatScientific(difference)), tolerance \(tolerance))
                """
        }
    }
}
