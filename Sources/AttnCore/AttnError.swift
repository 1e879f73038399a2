/// An error about a file: names the file, the dataset (when there is one), and what was expected against what
/// was found, with a kind that callers and tests can match.
///
/// Printed as `dump.h5: dataset '/layer_03/attn': expected 3 axes [head, query, key], found [197, 197]`.
public struct AttnError: Error, CustomStringConvertible, Equatable, Sendable {
    /// What went wrong, for callers that act on it (`verify` exits 2 when a file cannot be checked at all).
    public enum Kind: Sendable, Equatable {
        /// The input is malformed, truncated, or not what was expected of it.
        case input
        /// The input is well formed but uses something attninspect does not read (a filter, external storage, a
        /// data type): the message says what.
        case unsupported
        /// The work would take more memory or time than allowed (`--max-memory`, `--max-seconds`, image limits).
        case resource
        /// An output file could not be written.
        case output
        /// An analysis cannot run on this attention as asked (a layer or grid that does not fit, rows that are not
        /// distributions, values that overflow).
        case analysis
    }

    public var kind: Kind
    /// The file as the user named it.
    public var file: String
    /// The HDF5 path, NPZ member or other tensor name, when the error concerns one.
    public var dataset: String?
    /// What went wrong, phrased as "expected ..., found ..." where that applies.
    public var message: String

    public init(_ kind: Kind = .input, file: String, dataset: String? = nil, _ message: String) {
        self.kind = kind
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

extension AnalysisError {
    /// This error reported against `file`: the one place an analysis's error becomes a file's.
    public func about(file: String) -> AttnError { AttnError(.analysis, file: file, message) }

    /// Runs `body`, reporting an `AnalysisError` it throws against `file` (other errors pass unchanged).
    public static func reported<T>(against file: String, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as AnalysisError {
            throw error.about(file: file)
        }
    }
}
