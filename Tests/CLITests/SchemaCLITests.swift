import Testing
import Foundation
import AttnCore
import AttnTestSupport

/// The machine output is a contract: these tests pin its keys, in order, for schema "attninspect/1".
/// Changing one of these lists means a new schema version and a README entry.
@Suite("Command line: JSON schema attninspect/1")
struct SchemaCLITests {
    /// The object keys of a JSON text in order of first appearance.
    func keys(_ text: String) -> [String] {
        var seen: [String] = [], set = Set<String>()
        let pattern = try! NSRegularExpression(pattern: "\"([a-z_]+)\": ")
        for match in pattern.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
            let key = String(text[Range(match.range(at: 1), in: text)!])
            if set.insert(key).inserted { seen.append(key) }
        }
        return seen
    }

    func json(_ arguments: [String]) throws -> String {
        let r = try Run(arguments + ["--json"])
        #expect(r.status == 0, "\(arguments): \(r.stderr)")
        #expect(r.stdout.hasPrefix("{\"schema\": \"attninspect/1\", "), "\(arguments)")
        return r.stdout
    }

    @Test("stats, stats --batch all, stats on several files")
    func stats() throws {
        let base = Fixtures.path("synthetic/base_f32.npy")
        #expect(
            keys(try json(["stats", base])) == [
                "schema", "file", "layers", "heads", "queries", "keys", "source", "records", "layer", "head",
                "entropy", "normalized_entropy", "min", "max", "mean", "row_sum_max_dev", "first_token", "self",
                "previous_token",
                "nan_count", "inf_count", "negative_count", "attn_first", "attn_self", "attn_previous",
                "keys_received", "top_keys", "key", "token", "share"
            ])
        #expect(
            keys(try json(["stats", Fixtures.path("synthetic/batch_LBHQK.npy"), "--batch", "all"])).prefix(11) == [
                "schema", "file", "samples", "layers", "heads", "queries", "keys", "queries_per_sample",
                "keys_per_sample", "source", "records"
            ])
        #expect(keys(try json(["stats", base, base])).prefix(4) == ["schema", "files", "file", "layers"])
        #expect(try json(["stats", base, base]).contains("\"failed\": [], \"aggregate\": {\"files\": "))
    }

    @Test("heads and diff")
    func headsAndDiff() throws {
        let text = Fixtures.path("synthetic/heads/text.npz")
        #expect(
            keys(try json(["heads", text])) == [
                "schema", "file", "layers", "heads", "queries", "keys", "source", "parameters", "sink_tokens",
                "exclude_bos", "exclude_current_token", "token_match", "distance", "mode", "grid", "prefix",
                "patch_size", "unit", "similarity",
                "outlier_z", "outlier_ratio", "special_tokens", "cls", "sep", "punct", "tl_pairs", "previous_token",
                "duplicate_token",
                "induction", "records", "layer", "head", "entropy", "first_query_entropy", "mean_row_max", "attn_first",
                "attn_cls", "attn_sep",
                "attn_punct", "attn_self", "attn_previous", "attn_next", "mean_attention_distance", "sink_share",
                "roles", "scope", "matrices",
                "js_divergence", "outlier_tokens", "position", "token", "layer_count", "max_share", "mean_share",
                "max_ratio", "shares", "keys_received", "top_keys", "key", "share", "mean"
            ])
        // (Keys already seen earlier, such as an outlier token's "prefix" and "layers", are not repeated in this list.)
        let a = Fixtures.path("synthetic/base_f32.npy"), b = Fixtures.path("synthetic/base_f16.npy")
        #expect(
            keys(try json(["diff", a, b])) == [
                "schema", "first", "second", "records", "layer", "head", "max_abs_diff", "js_divergence"
            ])
    }
}
