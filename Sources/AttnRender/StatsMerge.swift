import AttnCore

/// `attninspect merge`: the `stats --json` documents of the shards of one run (`stats FILE --layers A:B --json`, one
/// process per range of layers) joined into the document one run over all their layers prints, byte for byte. A
/// head's statistics come whole from one shard (layers are never split), so joining is exact: each record and each
/// `keys_received` entry is the shard's, in layer and head order.
public enum StatsMerge {
    /// The keys of a single-file `stats --json` document, in order (`keys_received` may be missing).
    static let documentKeys = ["schema", "file", "layers", "heads", "queries", "keys", "source", "records"]

    /// The joined document and the layers no part holds (a note for the caller), from `parts` (name, document).
    public static func merge(_ parts: [(name: String, document: JSONValue)]) throws -> (
        document: JSONValue, missingLayers: [Int]
    ) {
        precondition(!parts.isEmpty)
        var header: [(String, JSONValue)] = []
        var received: Bool?
        var records: [(layer: Int, head: Int, record: JSONValue, keys: JSONValue?)] = []
        var owner: [Int: Int] = [:]  // layer → the part that holds it
        var layers = 0, heads = 0
        for (index, (name, document)) in parts.enumerated() {
            let fields = try documentFields(document, name: name)
            let partHeader = Array(fields.prefix(7))
            if header.isEmpty {
                header = partHeader
                guard case .integer(let l) = fields[2].1, case .integer(let h) = fields[3].1, l >= 0, h >= 0 else {
                    throw AttnError(file: name, "expected whole numbers for layers and heads")
                }
                (layers, heads) = (l, h)
            } else {
                for ((key, mine), (_, theirs)) in zip(partHeader, header) where mine != theirs {
                    throw AttnError(
                        file: name,
                        """
                        its \(key) is \(mine.serialized()), \(parts[0].name)'s \(theirs.serialized()): the parts \
                        of a merge are shards of one run (stats FILE --layers A:B --json)
                        """)
                }
            }
            let hasReceived = fields.count == 9
            if let received, received != hasReceived {
                throw AttnError(
                    file: name,
                    "\(hasReceived ? "has" : "has no") keys_received, unlike \(parts[0].name): made by another version?"
                )
            }
            received = hasReceived
            guard case .array(let partRecords) = fields[7].1 else {
                throw AttnError(file: name, "expected records to be an array")
            }
            var partKeys: [JSONValue] = []
            if hasReceived {
                guard case .array(let entries) = fields[8].1, entries.count == partRecords.count else {
                    throw AttnError(file: name, "expected keys_received to hold one entry per record")
                }
                partKeys = entries
            }
            for (n, record) in partRecords.enumerated() {
                let (l, h) = try position(record, name: name, layers: layers, heads: heads)
                if hasReceived, try position(partKeys[n], name: name, layers: layers, heads: heads) != (l, h) {
                    throw AttnError(file: name, "keys_received entry \(n) is not for record \(n)'s layer and head")
                }
                if let other = owner[l], other != index {
                    throw AttnError(
                        file: name,
                        """
                        layer \(l) is in \(parts[other].name) too: the parts must hold different layers\
                        \(parts[other].name == name ? " (the same part given twice?)" : "")
                        """)
                }
                if records.contains(where: { $0.layer == l && $0.head == h }) {
                    throw AttnError(file: name, "layer \(l), head \(h) is there twice")
                }
                owner[l] = index
                records.append((l, h, record, hasReceived ? partKeys[n] : nil))
            }
        }
        records.sort { ($0.layer, $0.head) < ($1.layer, $1.head) }
        for l in Set(records.map(\.layer)) where records.filter({ $0.layer == l }).count != heads {
            throw AttnError(
                file: parts[owner[l]!].name, "layer \(l) has not all of its \(heads) heads: not a stats --json part?")
        }
        var document = header + [("records", .array(records.map(\.record)))]
        if received == true { document.append(("keys_received", .array(records.map { $0.keys! }))) }
        let held = Set(records.map(\.layer))
        return (.object(document), (0..<layers).filter { !held.contains($0) })
    }

    /// The fields of a single-file `stats --json` document, checked: the keys `documentKeys` in order, then
    /// `keys_received` or nothing.
    static func documentFields(_ document: JSONValue, name: String) throws -> [(String, JSONValue)] {
        guard case .object(let fields) = document, fields.first?.0 == "schema" else {
            throw AttnError(file: name, "not an attninspect --json document (expected an object starting with schema)")
        }
        guard case .string(JSONValue.schema) = fields[0].1 else {
            throw AttnError(
                file: name, "schema \(fields[0].1.serialized()): this attninspect reads \(JSONValue.schema) documents")
        }
        let keys = fields.map(\.0)
        for (key, why) in [
            ("parameters", "a heads document"), ("files", "a stats document of several files"),
            ("samples", "made with --batch all"),
            ("outlier_tokens", "made with --outliers, whose outlier tokens span the layers")
        ] where keys.contains(key) {
            throw AttnError(file: name, "\(why): merge joins the stats --json of shards of one file (--layers A:B)")
        }
        guard Array(keys.prefix(8)) == documentKeys, keys.count == 8 || (keys.count == 9 && keys[8] == "keys_received")
        else {
            throw AttnError(
                file: name,
                """
                expected the keys of stats --json (\(documentKeys.joined(separator: ", ")), keys_received), found \
                \(keys.joined(separator: ", "))
                """)
        }
        return fields
    }

    /// A record's (or a keys_received entry's) layer and head, checked against the document's counts.
    static func position(_ value: JSONValue, name: String, layers: Int, heads: Int) throws -> (Int, Int) {
        guard case .object(let fields) = value, fields.count >= 2, fields[0].0 == "layer", fields[1].0 == "head",
            case .integer(let l) = fields[0].1, case .integer(let h) = fields[1].1, (0..<layers).contains(l),
            (0..<heads).contains(h)
        else {
            throw AttnError(
                file: name, "expected records that start with a layer below \(layers) and a head below \(heads)")
        }
        return (l, h)
    }
}
