import AttnCore

/// Per record (layer and head), the mean and the standard deviation (population, ddof = 0) of every real field over
/// several samples with the same records (`stats --batch all`, or several files); counts are summed.
public struct SampleAggregate: Sendable {
    public struct Row: Sendable, Record {
        /// One field of the records: an identifying index (layer, head), a real field's mean and standard
        /// deviation, or a count field's sum.
        public enum Entry: Sendable {
            case index(Int)
            case real(mean: Double, std: Double)
            case count(Int)
        }

        /// Every field, in the records' order.
        public let entries: [(key: String, entry: Entry)]

        /// The fields in the records' order, each real field as its mean followed by `<key>_std`: a field added to
        /// the records is added here in the same place (the end, as the JSON schema adds fields).
        public var fields: [(key: String, value: FieldValue)] {
            entries.flatMap { key, entry -> [(key: String, value: FieldValue)] in
                switch entry {
                case .index(let i): return [(key, .index(i))]
                case .real(let mean, let std): return [(key, .real(mean)), (key + "_std", .real(std))]
                case .count(let n): return [(key, .count(n))]
                }
            }
        }

        public func mean(_ key: String) -> Double {
            if case .real(let mean, _)? = entry(key) { return mean } else { return .nan }
        }
        public func std(_ key: String) -> Double {
            if case .real(_, let std)? = entry(key) { return std } else { return .nan }
        }
        public func count(_ key: String) -> Int {
            if case .count(let n)? = entry(key) { return n } else { return 0 }
        }
        private func entry(_ key: String) -> Entry? { entries.first { $0.key == key }?.entry }
    }

    public let sampleCount: Int
    public let rows: [Row]

    /// `perSample[s][r]`: record r of sample s; every sample has the same records in the same order.
    public init(_ perSample: [[some Record]]) {
        sampleCount = perSample.count
        rows = perSample[0].indices.map { r in
            let samples = perSample.map { $0[r].fields }
            var entries: [(key: String, entry: Row.Entry)] = []
            for (f, field) in samples[0].enumerated() {
                switch field.value {
                case .index(let i): entries.append((field.key, .index(i)))
                case .count:
                    let sum = samples.reduce(0) { total, sample in
                        if case .count(let n) = sample[f].value { return total + n } else { return total }
                    }
                    entries.append((field.key, .count(sum)))
                case .real:
                    let values = samples.map { sample -> Double in
                        if case .real(let v) = sample[f].value { return v ?? .nan } else { return .nan }
                    }
                    let mean = values.reduce(0, +) / Double(values.count)
                    let variance = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(values.count)
                    entries.append((field.key, .real(mean: mean, std: variance.squareRoot())))
                case .labels: break
                }
            }
            return Row(entries: entries)
        }
    }
}
