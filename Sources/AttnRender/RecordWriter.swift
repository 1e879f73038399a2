import AttnCore

/// Writes result records (`Record`: their fields, in order, are the JSON keys and the CSV columns) as CSV, as JSON
/// and as tables for people: every format from the records' one description.
public enum RecordWriter {
    /// CSV: a header of the first record's keys, then one line per record.
    public static func csv(_ records: [some Record], before: [String] = []) -> String {
        guard let first = records.first else { return "" }
        return CSV.line(before + first.fields.map(\.key)) + records.map { CSV.line(csvFields($0)) }.joined()
    }

    /// The CSV text of each field of `record`.
    public static func csvFields(_ record: some Record) -> [String] { record.fields.map { csvText($0.value) } }

    /// A field as CSV text: integers and reals as Swift writes them (`nan`, `inf`), undefined values empty, labels
    /// joined by `;`.
    public static func csvText(_ value: FieldValue) -> String {
        switch value {
        case .index(let i), .count(let i): return "\(i)"
        case .real(let d): return d.map { "\($0)" } ?? ""
        case .labels(let l): return l?.joined(separator: ";") ?? ""
        }
    }

    /// A record as a JSON object; a value that is not finite, or undefined, is null.
    public static func json(_ record: some Record) -> JSONValue {
        .object(record.fields.map { ($0.key, jsonValue($0.value)) })
    }

    public static func jsonValue(_ value: FieldValue) -> JSONValue {
        switch value {
        case .index(let i), .count(let i): return .integer(i)
        case .real(let d): return d.map { JSONValue.finite($0) } ?? .null
        case .labels(let l): return l.map { .array($0.map { .string($0) }) } ?? .null
        }
    }

    /// The fields every report of a dump starts with: file, layers, heads, queries and keys.
    public static func header(_ source: AttentionSource) -> [(String, JSONValue)] {
        [
            ("file", .string(source.file)), ("layers", .integer(source.layerCount)),
            ("heads", .integer(source.headCount)),
            ("queries", .integer(source.queryCount)), ("keys", .integer(source.keyCount))
        ]
    }

    /// A column of a table for people: its header, the field it shows, and how.
    public struct Column: Sendable {
        public enum Style: Sendable {
            /// Fixed decimals (`nan`, `inf` for those values).
            case fixed(Int)
            /// `1.2e-04`.
            case scientific
            /// Labels joined by commas.
            case labels
        }

        public let header: String
        public let key: String
        public let style: Style

        public init(_ header: String, _ key: String, _ style: Style = .fixed(4)) {
            self.header = header
            self.key = key
            self.style = style
        }

        /// The field as this column shows it: `-` where it is undefined or missing.
        public func text(_ value: FieldValue?) -> String {
            switch value {
            case .index(let i)?, .count(let i)?: return "\(i)"
            case .real(let d?)?:
                if case .scientific = style { return formatScientific(d) }
                if case .fixed(let decimals) = style { return formatFixed(d, decimals: decimals) }
                return formatFixed(d)
            case .labels(let l?)?: return l.joined(separator: ",")
            default: return "-"
            }
        }
    }

    /// The records as an aligned table of `columns`.
    public static func table(_ records: [some Record], _ columns: [Column]) -> String {
        var table = TextTable(header: columns.map(\.header))
        for record in records {
            let fields = record.fields
            table.append(columns.map { column in column.text(fields.first { $0.key == column.key }?.value) })
        }
        return table.render()
    }
}
