import ArgumentParser

/// `--allow-unnormalised`: rollout, flow, grid and show's rollout read rows as distributions, and refuse stored
/// attention that is not (negative values, rows not summing to 1: logits or scores dumped by mistake) unless told.
struct ProbabilityOptions: ParsableArguments {
    @Flag(
        name: .customLong("allow-unnormalised"),
        help:
            """
            Use stored attention whose rows are not distributions (negative values, rows not summing to 1) as it \
            is, instead of refusing it.
            """
    )
    var allowUnnormalised = false
}
