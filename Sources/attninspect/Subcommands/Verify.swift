import ArgumentParser
import AttnCore
import AttnSource
import AttnReader
import AttnAnalysis
import AttnRender

extension AttnInspect {
    /// `attninspect verify FILE`: checks that a dump holds attention probabilities, for pipelines to gate on.
    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "verify",
            abstract:
                """
                Check that the file holds attention: rows over keys sum to 1, no negative, NaN or infinite \
                values, causal when claimed, and stored attention equal to the one recomputed from q and k when \
                both are there.
                """,
            discussion:
                """
                Prints one line per check (PASS, FAIL or INFO). Exit status, as cmp and diff have it: 0 when \
                every check passes, 1 when one fails, 2 when the file could not be checked (it cannot be read as \
                attention, or reading it failed); 64 for a usage error.
                """
        )

        @OptionGroup var input: InputOptions
        @OptionGroup var limit: WorkLimitOptions

        @Option(
            help:
                """
                The largest |Σ − 1| of a row, and the largest value above the diagonal with --causal, still \
                counted as passing.
                """
        )
        var tolerance: Double = 1e-2

        @Option(
            name: .customLong("qk-tolerance"),
            help: ArgumentHelp(
                """
                The largest |stored − recomputed| still counted as passing, when the file has attention and q and \
                k (default: 1e-4 when attention, q and k are float32 or float64, so that q and k taken before the \
                rotary embedding fail; 2e-2 when any is float16 or bfloat16).
                """,
                valueName: "tolerance")
        )
        var qkTolerance: Double?

        func validate() throws {
            guard tolerance > 0 && tolerance < 1, qkTolerance.map({ $0 > 0 }) ?? true else {
                throw ValidationError("--tolerance must be in (0, 1) and --qk-tolerance positive")
            }
        }

        func run() throws {
            do {
                try check()
            } catch let error as AttnError {
                // Not checked, rather than failed: the file could not be read as attention.
                Console.error("attninspect: \(error)")
                throw ExitCode(2)
            }
        }

        private func check() throws {
            // --causal (or the file's causal attribute) is a claim to check on stored attention, and a mask for
            // attention recomputed from q and k.
            var plain = input
            plain.causal = nil
            var opened = try plain.open()
            if input.causal != nil, case .queryKey = opened.layout { opened = try input.open() }
            let claimsCausal = input.causal ?? opened.file.attribute("causal")?.booleanValue ?? false
            let source = opened.source
            let summary = opened.layout.summary
            var findings: [VerifyFinding] = [
                .readAs(
                    axes: summary.axes, datasets: summary.datasets, layers: source.layerCount,
                    heads: source.headCount, queries: source.queryCount, keys: source.keyCount)
            ]
            if summary.axes == "[head, query, key]" && summary.layerNumbers == nil { findings.append(.oneLayerOfHeads) }
            try limit.checkRecomputation(source, layers: Array(0..<source.layerCount), file: input.file)
            findings += try AttentionChecks.of(source).findings(tolerance: tolerance, claimsCausal: claimsCausal)
            if !input.fromQK {
                // A malformed scale attribute is reported as a failed check, not as an error (--scale is refused here).
                var beside: (source: AttentionSource, recomputation: Recomputation, precision: ElementType)?
                do { beside = try opened.recomputedBeside(causal: claimsCausal, note: Console.noteOnce) } catch {
                    findings.append(.recomputedUnavailable(reason: "\(error)"))
                }
                if let (other, recomputation, precision) = beside {
                    let tolerance = qkTolerance ?? VerifyFinding.recomputedTolerance(precision: precision)
                    findings.append(
                        try .comparing(
                            source, with: other, tolerance: tolerance, scale: recomputation.scale,
                            causal: recomputation.causal, extras: recomputation.extras))
                }
            }
            Console.print(VerifyReport.text(findings))
            if findings.contains(where: { $0.passed == false }) { throw ExitCode(1) }
        }
    }
}
