import ArgumentParser
import AttnCore
import AttnSource

/// `--layers A:B`: layers A to B, B left out, as a Python slice (either end may be left out; negative counts from
/// the end): one shard of a long run, whose `stats --json` `attninspect merge` joins with the others'.
struct LayerRange: ExpressibleByArgument, Equatable {
    var lower: Int?
    var upper: Int?

    init?(argument: String) {
        let parts = argument.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2 else { return nil }
        func bound(_ text: Substring) -> Int?? { text.isEmpty ? .some(nil) : Int(text).map { .some($0) } }
        guard let lower = bound(parts[0]), let upper = bound(parts[1]) else { return nil }
        self.lower = lower
        self.upper = upper
    }

    var text: String { "\(lower.map(String.init) ?? ""):\(upper.map(String.init) ?? "")" }

    /// The layers selected among `count`, ascending; a bound beyond the layers, or an empty range, is an error.
    func layers(count: Int, file: String) throws -> [Int] {
        func resolve(_ bound: Int?, _ otherwise: Int) throws -> Int {
            guard let bound else { return otherwise }
            let index = bound < 0 ? count + bound : bound
            guard index >= 0 && index <= count else {
                throw AttnError(
                    .analysis, file: file,
                    "--layers \(text) is out of range: the dump has \(count) layers (0...\(count - 1))")
            }
            return index
        }
        let a = try resolve(lower, 0), b = try resolve(upper, count)
        guard a < b else {
            throw AttnError(.analysis, file: file, "--layers \(text) selects no layer of the dump's \(count)")
        }
        return Array(a..<b)
    }
}
