/// An error in an input or output file: names the file, the dataset (when there is one),
/// and what was expected against what was found.
///
/// Printed as `dump.h5: dataset '/layer_03/attn': expected 3 axes [head, query, key], found [197, 197]`.
public struct DumpError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The file as the user named it.
    public var file: String
    /// The HDF5 path, NPZ member or other tensor name, when the error concerns one.
    public var dataset: String?
    /// What went wrong, phrased as "expected ..., found ..." where that applies.
    public var message: String

    public init(file: String, dataset: String? = nil, _ message: String) {
        self.file = file
        self.dataset = dataset
        self.message = message
    }

    public var description: String {
        if let dataset {
            return "\(file): dataset '\(dataset)': \(message)"
        }
        return "\(file): \(message)"
    }
}

/// An error in what was asked of an analysis (a layer out of range, a grid that does not fit),
/// reported against the file it was asked of.
public struct AnalysisError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
