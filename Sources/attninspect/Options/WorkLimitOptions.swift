import ArgumentParser
import AttnCore
import AttnRender
import AttnSource

/// `--max-seconds`: costly work (attention flow, a full rollout matrix of a long sequence) is estimated
/// before it starts and refused above this limit, with the estimate and what would be cheaper.
struct WorkLimitOptions: ParsableArguments {
    @Option(
        name: .customLong("max-seconds"), parsing: .unconditional,
        help: "Refuse work estimated to take longer than this many seconds.")
    var maxSeconds: Double = 60

    func validate() throws {
        if !(maxSeconds > 0) { throw ValidationError("--max-seconds must be positive, got \(maxSeconds)") }
    }

    /// Throws when `seconds` is over the limit: `work` says what was asked, `cheaper` what to do instead
    /// (ending before ", or raise --max-seconds").
    func check(
        _ seconds: Double, file: String, work: @autoclosure () -> String, cheaper: @autoclosure () throws -> String
    ) throws {
        guard seconds > maxSeconds else { return }
        throw AttnError(
            .resource, file: file,
            """
            \(work()), estimated at \(Self.describe(seconds)) s on \(Workers.count) threads, over --max-seconds \
            \(Self.describe(maxSeconds)): \(try cheaper()), or raise --max-seconds
            """
        )
    }

    /// Throws when attention recomputed from q and k over `layers` (a layer number per layer visited) is estimated
    /// over the limit: a long sequence costs S² per head, however little memory its row blocks take.
    func checkRecomputation(
        _ source: AttentionSource, layers: [Int], file: String,
        cheaper: String = "stats does one layer at a time (--layer N)"
    ) throws {
        guard let recomputed = source as? RecomputedAttention else { return }
        try check(
            recomputed.estimatedSeconds(layers: layers, workers: Workers.count), file: file,
            work: """
                attention recomputed from q and k for \(layers.count) layers × \(recomputed.headCount) heads × \
                \(recomputed.queryCount) positions
                """,
            cheaper: cheaper)
    }

    /// Whole seconds; one decimal below 10 s; scientific below 0.1 s.
    static func describe(_ seconds: Double) -> String {
        seconds < 0.1 ? formatScientific(seconds) : formatFixed(seconds, decimals: seconds < 10 ? 1 : 0)
    }
}
