import AttnCore

/// Per record (layer and head), the mean and the standard deviation (population, ddof = 0) of every real field over
/// several samples with the same records (`stats --batch all`, or several files); counts are summed.
public struct SampleAggregate: Sendable {
    public struct Row: Sendable, Record {
        /// The identifying fields (layer, head).
        public let indices: [(key: String, value: Int)]
        /// Per real field, in the records' order: its key, mean and standard deviation.
        public let reals: [(key: String, mean: Double, std: Double)]
        /// Per count field: its key and sum.
        public let counts: [(key: String, sum: Int)]

        /// Each real field as its mean and `<key>_std`, between the indices and the counts.
        public var fields: [(key: String, value: FieldValue)] {
            indices.map { ($0.key, FieldValue.index($0.value)) }
                + reals.flatMap { [($0.key, FieldValue.real($0.mean)), ($0.key + "_std", .real($0.std))] }
                + counts.map { ($0.key, FieldValue.count($0.sum)) }
        }

        public func mean(_ key: String) -> Double { reals.first { $0.key == key }?.mean ?? .nan }
        public func std(_ key: String) -> Double { reals.first { $0.key == key }?.std ?? .nan }
        public func count(_ key: String) -> Int { counts.first { $0.key == key }?.sum ?? 0 }
    }

    public let sampleCount: Int
    public let rows: [Row]

    /// `perSample[s][r]`: record r of sample s; every sample has the same records in the same order.
    public init(_ perSample: [[some Record]]) {
        sampleCount = perSample.count
        rows = perSample[0].indices.map { r in
            let samples = perSample.map { $0[r].fields }
            var indices: [(String, Int)] = [], reals: [(String, Double, Double)] = [], counts: [(String, Int)] = []
            for (f, field) in samples[0].enumerated() {
                switch field.value {
                case .index(let i): indices.append((field.key, i))
                case .count:
                    counts.append(
                        (
                            field.key,
                            samples.reduce(0) { total, sample in
                                if case .count(let n) = sample[f].value { return total + n } else { return total }
                            }
                        ))
                case .real:
                    let values = samples.map { sample -> Double in
                        if case .real(let v) = sample[f].value { return v ?? .nan } else { return .nan }
                    }
                    let mean = values.reduce(0, +) / Double(values.count)
                    reals.append(
                        (
                            field.key, mean,
                            (values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(values.count)).squareRoot()
                        ))
                case .labels: break
                }
            }
            return Row(indices: indices, reals: reals, counts: counts)
        }
    }
}
