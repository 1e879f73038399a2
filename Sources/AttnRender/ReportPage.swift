import AttnCore
import AttnAnalysis

/// `attninspect report`: one self-contained HTML page of a dump, its numbers embedded as JSON in a
/// `<script type="application/json" id="attninspect-data">` element (schema `attninspect/1`, README "The report's
/// data") and shown by the page's own script (`ReportScript`). The page makes no network request of any kind: a
/// Content-Security-Policy forbids them, and nothing it uses is outside the file.
public enum ReportPage {
    /// What a report embeds, gathered by the command.
    public struct Contents {
        public var source: AttentionSource
        /// The layers embedded (their numbers in the dump) and the attention of each head embedded, `[query, key]`,
        /// pooled as `pooling` says.
        public var layers: [(number: Int, maps: [Matrix])]
        public var heads: [Int]
        /// The `stats` records of every layer of the dump (not only those embedded), as `stats` prints them.
        public var statistics: [HeadStatistics]
        /// The patch grid and the tokens before it, for a vision dump.
        public var patchGrid: (grid: PatchGrid, prefix: Int)?
        /// The rollout through layers 0...l of the dump, for every l (`attninspect rollout`'s numbers), or nil.
        public var rollout: [Matrix]?
        /// The picture the network saw (`--image`), or nil.
        public var image: Image?
        /// How the matrices are pooled (size 1: not at all): attention and rollout as means of cells of N × N tokens.
        public var pooling: Pooling

        public init(
            source: AttentionSource, layers: [(number: Int, maps: [Matrix])], heads: [Int],
            statistics: [HeadStatistics], patchGrid: (grid: PatchGrid, prefix: Int)?, rollout: [Matrix]? = nil,
            image: Image? = nil, pooling: Pooling = Pooling(size: 1)
        ) {
            self.source = source
            self.layers = layers
            self.heads = heads
            self.statistics = statistics
            self.patchGrid = patchGrid
            self.rollout = rollout
            self.image = image
            self.pooling = pooling
        }
    }

    /// The bytes the embedded attention takes (float16, before base64) for `layers` × `heads` maps of
    /// `queries` × `keys`; nil when it would overflow.
    public static func attentionBytes(layers: Int, heads: Int, queries: Int, keys: Int) -> Int? {
        MemoryBudget.bytes([layers, heads, queries, keys], elementSize: 2)
    }

    /// The bytes the embedded rollout takes (float32, before base64): one matrix per depth.
    public static func rolloutBytes(layers: Int, queries: Int, keys: Int) -> Int? {
        MemoryBudget.bytes([layers, queries, keys], elementSize: 4)
    }

    /// The page's data: `{"schema": "attninspect/1", ...}`.
    public static func data(_ c: Contents) throws -> JSONValue {
        let s = c.source, pooling = c.pooling
        let (q, k) = (pooling.cells(s.queryCount), pooling.cells(s.keyCount))
        func pooled(_ map: Matrix) -> [Float] { pooling.size == 1 ? map.values : PooledMap.pool(map, pooling).values }
        var attention: [Float] = []
        attention.reserveCapacity(c.layers.count * c.heads.count * q * k)
        for (_, maps) in c.layers {
            for map in maps {
                precondition(map.rows == q && map.columns == k, "report: a map of \(map.rows)×\(map.columns)")
                attention += map.values
            }
        }
        let columns = StatsReport.columns
        let rows: [JSONValue] = c.statistics.map { record in
            let fields = record.fields
            return .object([
                ("layer", .integer(record.layer)), ("head", .integer(record.head)),
                (
                    "text",
                    .array(
                        [.string("\(record.layer)")]
                            + columns.map { column in .string(column.text(record.value(column.key))) })
                ),
                (
                    "values",
                    .array(
                        [.integer(record.layer)]
                            + columns.map { column in
                                fields.first { $0.key == column.key }.map { RecordWriter.jsonValue($0.value) } ?? .null
                            })
                )
            ])
        }
        let colormaps: [(String, JSONValue)] = Colormap.allCases.map { map in
            (
                map.rawValue,
                .array(
                    (0..<256).flatMap { i -> [JSONValue] in
                        let (r, g, b) = map.color(Float(i) / 255)
                        return [.integer(Int(r)), .integer(Int(g)), .integer(Int(b))]
                    })
            )
        }
        var arrays: [(String, JSONValue)] = [
            (
                "attention",
                .object([
                    ("dtype", .string("float16")), ("order", .string("layer, head, query, key")),
                    ("pool", .integer(pooling.size)),
                    ("shape", .array([c.layers.count, c.heads.count, q, k].map(JSONValue.integer))),
                    ("base64", .string(Base64.encode(float16: attention)))
                ])
            )
        ]
        if let depths = c.rollout {
            let definition =
                "depth l: Â_l ⋯ Â_0, Â = (mean of the heads + I), rows normalised (attninspect rollout --end-layer l)"
            arrays.append(
                (
                    "rollout",
                    .object([
                        ("dtype", .string("float32")), ("order", .string("depth, query, key")),
                        ("definition", .string(definition)), ("pool", .integer(pooling.size)),
                        ("shape", .array([depths.count, q, k].map(JSONValue.integer))),
                        ("base64", .string(Base64.encode(float32: depths.flatMap(pooled))))
                    ])
                ))
        }
        // As the terminal shows them (PrintableText): controls and bidirectional overrides as visible escapes, so
        // the page shows what `tokens` prints and no label reorders the text around it.
        func labels(_ tokens: [String]?) -> JSONValue {
            tokens.map { .array($0.map { .string(PrintableText.escaped($0)) }) } ?? .null
        }
        let grid: JSONValue =
            c.patchGrid.map {
                .object([
                    ("rows", .integer($0.grid.rows)), ("columns", .integer($0.grid.columns)),
                    ("prefix", .integer($0.prefix))
                ])
            } ?? .null
        let stats: JSONValue = .object([
            ("headers", .array([.string("layer")] + columns.map { .string($0.header) })),
            ("keys", .array([.string("layer")] + columns.map { .string($0.key) })), ("rows", .array(rows))
        ])
        let image = try c.image.map(imageData) ?? .null
        return .document([
            ("file", .string(PrintableText.escaped(s.file))),
            ("origin", .string(s.origin == .stored ? "stored" : "recomputed")),
            ("layer_count", .integer(s.layerCount)), ("head_count", .integer(s.headCount)),
            ("queries", .integer(s.queryCount)), ("keys", .integer(s.keyCount)),
            ("layers", .array(c.layers.map { .integer($0.number) })), ("heads", .array(c.heads.map(JSONValue.integer))),
            ("tokens", labels(s.tokens)), ("key_tokens", labels(s.keyTokens)), ("patch_grid", grid),
            ("stats", stats), ("arrays", .object(arrays)), ("image", image), ("colormaps", .object(colormaps))
        ])
    }

    /// The picture as a PNG `data:` URL's parts.
    private static func imageData(_ image: Image) throws -> JSONValue {
        .object([
            ("mime", .string("image/png")), ("width", .integer(image.width)), ("height", .integer(image.height)),
            ("base64", .string(Base64.encode(try PNG.encode(image))))
        ])
    }

    /// The HTML page of `data`: the data element, the style and the script, under a Content-Security-Policy that
    /// allows inline script and style, pictures from `data:` URLs, and nothing else (no request of any kind).
    /// `title` (from the file) is escaped; in the JSON, `<`, `>` and `&` are written as `\u003c`, `\u003e` and
    /// `\u0026`, so no string from the file can end the element.
    public static func html(data: JSONValue, title: String) -> String {
        let json = data.serialized()
            .replacing("<", with: "\\u003c").replacing(">", with: "\\u003e").replacing("&", with: "\\u0026")
        return """
            <!DOCTYPE html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta http-equiv="Content-Security-Policy" content="\(contentSecurityPolicy)">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <meta name="referrer" content="no-referrer">
            <title>attninspect: \(SVG.escape(PrintableText.escaped(title)))</title>
            <style>\(ReportScript.style)</style>
            </head>
            <body>
            <script type="application/json" id="attninspect-data">\(json)</script>
            <script>\(ReportScript.script)</script>
            </body>
            </html>

            """
    }

    /// No request of any kind: scripts and styles only inline, pictures only from `data:` URLs.
    public static let contentSecurityPolicy =
        "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; "
        + "connect-src 'none'; font-src 'none'; media-src 'none'; object-src 'none'; frame-src 'none'; "
        + "worker-src 'none'; base-uri 'none'; form-action 'none'"
}

/// Base64 (RFC 4648, with padding) of float16 values.
enum Base64 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    /// `values` rounded to float16 (IEEE binary16, round to nearest even), little-endian, in base64.
    static func encode(float16 values: [Float]) -> String {
        var bytes = [UInt8]()
        bytes.reserveCapacity(values.count * 2)
        for v in values {
            let bits = Float16(v).bitPattern
            bytes.append(UInt8(bits & 0xFF))
            bytes.append(UInt8(bits >> 8))
        }
        return encode(bytes)
    }

    /// `values`, little-endian float32, in base64.
    static func encode(float32 values: [Float]) -> String {
        var bytes = [UInt8]()
        bytes.reserveCapacity(values.count * 4)
        for v in values {
            let bits = v.bitPattern.littleEndian
            bytes += [UInt8(bits & 0xFF), UInt8(bits >> 8 & 0xFF), UInt8(bits >> 16 & 0xFF), UInt8(bits >> 24)]
        }
        return encode(bytes)
    }

    static func encode(_ bytes: [UInt8]) -> String {
        var out = [UInt8]()
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var i = 0
        while i + 3 <= bytes.count {
            let n = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2])
            out += [
                alphabet[Int(n >> 18 & 63)], alphabet[Int(n >> 12 & 63)], alphabet[Int(n >> 6 & 63)],
                alphabet[Int(n & 63)]
            ]
            i += 3
        }
        let rest = bytes.count - i
        if rest > 0 {
            let n = UInt32(bytes[i]) << 16 | (rest == 2 ? UInt32(bytes[i + 1]) << 8 : 0)
            out += [alphabet[Int(n >> 18 & 63)], alphabet[Int(n >> 12 & 63)]]
            out += rest == 2 ? [alphabet[Int(n >> 6 & 63)], UInt8(ascii: "=")] : [UInt8(ascii: "="), UInt8(ascii: "=")]
        }
        return String(decoding: out, as: UTF8.self)
    }
}
