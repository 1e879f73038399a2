/// One value of a result record as the output formats write it (JSON, CSV and tables).
public enum FieldValue: Sendable, Equatable {
    /// What the record is about (a layer, a head): copied, never aggregated.
    case index(Int)
    /// A count (NaN values, negative values): summed over samples.
    case count(Int)
    /// A real number; nil where it is undefined (JSON null, an empty CSV field, `-` in a table).
    case real(Double?)
    /// Labels (a head's roles); nil where undefined.
    case labels([String]?)
}

/// A result record whose fields, in order, are its JSON keys and its CSV columns: the one description of them, so
/// that a new field is added in one place (`AttnRender.RecordWriter` writes every format from it).
public protocol Record {
    var fields: [(key: String, value: FieldValue)] { get }
}

extension Record {
    /// The value of field `key`; nil when the record has no such field.
    public func value(_ key: String) -> FieldValue? { fields.first { $0.key == key }?.value }
}
