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
            help: "The largest |stored − recomputed| still counted as passing, when the file has attention and q and k."
        )
        var qkTolerance: Double = 2e-2

        func validate() throws {
            guard tolerance > 0 && tolerance < 1, qkTolerance > 0 else {
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
            var checks = AttentionChecks()
            for l in 0..<source.layerCount { checks.add(try source.layer(l)) }
            var lines: [String] = []
            var failed = false
            func report(_ pass: Bool?, _ text: String) {
                lines.append((pass == nil ? "INFO " : pass! ? "PASS " : "FAIL ") + text)
                if pass == false { failed = true }
            }
            let shape =
                """
                \(source.layerCount) layers × \(source.headCount) heads × \(source.queryCount) queries × \
                \(source.keyCount) keys
                """
            report(nil, "read as \(opened.layout.summary.axes) from \(opened.layout.summary.datasets): \(shape)")
            if opened.layout.summary.axes == "[head, query, key]" && opened.layout.summary.layerNumbers == nil {
                report(
                    nil,
                    """
                    a 3-D tensor is read as one layer of heads; a head-averaged dump [layer, query, key] has to \
                    be reshaped to [layer, 1, query, key]
                    """
                )
            }
            report(
                checks.nans + checks.infinities == 0,
                "no NaN or infinite values (\(checks.nans) NaN, \(checks.infinities) infinite)")
            report(checks.negatives == 0, "no negative values (\(checks.negatives) found)")
            let rows = "max |Σ − 1| = \(formatScientific(checks.worstRowSum))"
            if checks.worstRowSum <= tolerance {
                report(true, "rows sum to 1 over the keys (\(rows))")
            } else if checks.square && checks.worstColumnSum <= tolerance {
                report(
                    false,
                    """
                    rows sum to 1 along the query axis, not the key axis (over keys \(rows), over queries max |Σ \
                    − 1| = \(formatScientific(checks.worstColumnSum))): the dump looks transposed; transpose the \
                    last two axes
                    """
                )
            } else {
                report(
                    false,
                    """
                    rows do not sum to 1 over the keys (\(rows), tolerance \(tolerance)): not attention \
                    probabilities (logits, or already processed?)
                    """
                )
            }
            if checks.square && checks.upperCells > 0 {
                let upper = "largest value above the diagonal \(formatScientific(checks.upperMax))"
                if claimsCausal {
                    report(checks.upperMax <= tolerance, "causal: keys after the query get no attention (\(upper))")
                } else {
                    report(nil, checks.upperMax <= tolerance ? "looks causal: \(upper)" : "not causal: \(upper)")
                }
            }
            // A malformed scale attribute is reported as a failed check, not as an error (--scale is refused here).
            var beside: (source: AttentionSource, recomputation: Recomputation)?
            if !input.fromQK {
                do { beside = try opened.recomputedBeside(causal: claimsCausal, note: Console.noteOnce) } catch {
                    report(false, "q and k cannot be compared with the stored attention: \(error)")
                }
            }
            if let (other, recomputation) = beside {
                if (other.layerCount, other.headCount, other.queryCount) == (
                    source.layerCount, source.headCount, source.queryCount
                ) {
                    var worst = 0.0
                    for l in 0..<source.layerCount {
                        worst = max(worst, HeadDifference.maxAbsDifference(try source.layer(l), try other.layer(l)))
                    }
                    let scale = recomputation.scale.map { "·\($0)" } ?? "/√d"
                    let causal = recomputation.causal ? ", causal" : ""
                    report(
                        worst <= qkTolerance,
                        "stored attention equals softmax(q·kᵀ\(scale)\(causal)) recomputed from q and k "
                            + "(max |Δ| = \(formatScientific(worst)), tolerance \(qkTolerance))"
                    )
                } else {
                    report(false, "q and k do not match the stored attention's shape: they cannot be its source")
                }
            }
            Console.print(lines.joined(separator: "\n") + "\n")
            if failed { throw ExitCode(1) }
        }
    }
}
