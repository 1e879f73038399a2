import AttnCore

/// Writes maps as the output's extension says: a picture (.png, .ppm colour, .pgm grey), a matrix with token labels
/// (.svg) or the values (.npy); one map, a montage of labelled tiles, a 0/1 mask, or a patch grid blended over the
/// input picture. Every file is written atomically (`AtomicFile`); what was written is said through `note`.
public struct MapWriter {
    /// One scale for a picture: a fixed `LO:HI`, or `shared`: the common min and max of a montage's tiles.
    public enum Scale: Equatable, Sendable {
        case fixed(ValueRange)
        case shared
        /// The `low` and `high` percentiles (0...100) of each map's cells, or with `shared` of every tile's together:
        /// the cells beyond them get the ends of the scale.
        case percentiles(low: Double, high: Double, shared: Bool)

        /// One scale for every tile of a montage.
        var isShared: Bool {
            switch self {
            case .fixed, .shared: true
            case .percentiles(_, _, let shared): shared
            }
        }

        /// Parses `LO:HI`, `shared`, `pLO:pHI` (percentiles, 0 ≤ LO < HI ≤ 100) or `shared:pLO:pHI`.
        public init?(argument: String) {
            if argument == "shared" {
                self = .shared
                return
            }
            if let r = ValueRange(argument: argument) {
                self = .fixed(r)
                return
            }
            var text = Substring(argument), shared = false
            if text.hasPrefix("shared:") {
                shared = true
                text = text.dropFirst("shared:".count)
            }
            let parts = text.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count == 2, parts.allSatisfy({ $0.hasPrefix("p") }),
                let lo = Double(parts[0].dropFirst()), let hi = Double(parts[1].dropFirst()), lo >= 0, lo < hi,
                hi <= 100
            else { return nil }
            self = .percentiles(low: lo, high: hi, shared: shared)
        }
    }

    /// A patch grid blended over the picture the network saw.
    public struct Blend: Sendable {
        public enum Fit: String, CaseIterable, Sendable { case exact, stretch }
        public var picture: String
        /// The weight of the map, 0 (picture only) to 1 (map only).
        public var alpha: Double
        public var resample: Resample
        public var fit: Fit

        public init(picture: String, alpha: Double = 0.5, resample: Resample = .bilinear, fit: Fit = .exact) {
            self.picture = picture
            self.alpha = alpha
            self.resample = resample
            self.fit = fit
        }
    }

    public var output: String
    public var colormap: Colormap
    /// nil: each map's own min and max.
    public var scale: Scale?
    /// A colour bar with the numbers of the range under the picture.
    public var legend: Bool
    /// Each cell enlarged to N×N pixels; nil: ⌊256 / cells across⌋, at least 1 (at most 256 pixels up to 256 cells).
    public var zoom: Int?
    public var overlay: Blend?
    /// Says what was written (a note on stderr in the tool).
    public var note: (String) -> Void

    public init(
        output: String, colormap: Colormap = .viridis, scale: Scale? = nil, legend: Bool = false, zoom: Int? = nil,
        overlay: Blend? = nil, note: @escaping (String) -> Void = { _ in }
    ) {
        self.output = output
        self.colormap = colormap
        self.scale = scale
        self.legend = legend
        self.zoom = zoom
        self.overlay = overlay
        self.note = note
    }

    /// The largest image written: 1 GiB of pixels (e.g. 18,900 × 18,900 in colour).
    public static let maximumImageBytes = 1 << 30
    /// The most cells an `.svg` holds (a `rect` each).
    public static let maximumSVGCells = 1 << 20
    /// The output formats, by extension.
    public static let formats = [".png", ".pgm", ".ppm", ".svg", ".npy"]

    /// What is wrong with these settings, found before anything is read (a usage error), or nil.
    public var problem: String? {
        guard Self.formats.contains(where: { output.lowercased().hasSuffix($0) }) else {
            return
                """
                cannot tell the format of '\(output)': give an output ending in .png, .pgm (grey), .ppm (colour), \
                .svg (with token labels) or .npy (raw values)
                """
        }
        if let zoom, zoom < 1 || zoom > 64 { return "--zoom must be between 1 and 64, got \(zoom)" }
        if let overlay {
            if !(overlay.alpha >= 0 && overlay.alpha <= 1) {
                return "--alpha must be between 0 and 1, got \(overlay.alpha)"
            }
            guard output.lowercased().hasSuffix(".png") || output.lowercased().hasSuffix(".ppm") else {
                return "--overlay makes a colour picture: give an output ending in .png or .ppm"
            }
            if zoom != nil { return "--zoom does not apply with --overlay: the output has the picture's size" }
        }
        return nil
    }

    /// Writes `map` atomically in the format of the output's extension and says what was written;
    /// a patch grid goes over the `--overlay` picture when one is given. `labels` name the rows (queries)
    /// and `columnLabels` the columns (keys; by default `labels` when their count fits); `labelled` says what they
    /// are, in the note.
    public func write(
        _ map: Matrix, what: String, input: String, otherInputs: [String] = [], patchGrid: Bool = false,
        prefix: Int = 0, outline: Matrix? = nil,
        labels: [String]? = nil, columnLabels keyLabels: [String]? = nil, labelled: String = "the tokens"
    ) throws {
        let inputs = [input] + otherInputs
        if let overlay = overlay?.picture {
            precondition(patchGrid, "--overlay is refused by validate() for maps that are not patch grids")
            return try writeOverlay(
                map, over: overlay, what: what, inputs: inputs, outline: outline, patchPrefix: prefix)
        }
        let lower = output.lowercased()
        if lower.hasSuffix(".npy") {
            try AtomicFile.write(NPYWriter.encode(map), to: output, protecting: inputs)
            note("wrote \(output): \(what), \(map.rows)×\(map.columns) float32 values")
            return
        }
        guard let range = scale(for: [map]) else {
            throw AttnError(.analysis, file: output, "cannot draw \(what): the map holds no finite values")
        }
        noteOutlier(in: map, what: what, patchPrefix: patchGrid ? prefix : nil)
        let bad = map.nonFiniteCount
        if bad > 0 { note("\(what): \(bad) NaN or infinite values drawn at the low end of the scale") }
        if lower.hasSuffix(".svg") {
            guard map.rows * map.columns <= Self.maximumSVGCells else {
                throw AttnError(
                    .resource, file: output,
                    "a \(map.rows)×\(map.columns) map is too large for SVG (over a million cells): write .png")
            }
            let rowLabels = labels.flatMap { $0.count == map.rows ? $0 : nil }
            let columnLabels = (keyLabels ?? (map.rows == map.columns ? labels : nil)).flatMap {
                $0.count == map.columns ? $0 : nil
            }
            try AtomicFile.write(
                Array(
                    SVG.matrix(
                        map, range: range, colormap: colormap, rowLabels: rowLabels, columnLabels: columnLabels,
                        title: what
                    ).utf8),
                to: output, protecting: inputs)
            note(
                """
                wrote \(output): \(what), \(map.rows)×\(map.columns) \
                cells\(rowLabels == nil ? "" : " labelled with \(labelled)"), range \(range.low)...\(range.high)
                """
            )
            return
        }
        let factor = zoom ?? max(1, 256 / max(map.rows, map.columns, 1))
        let colour = pictureColormap
        try checkPixels(
            [map.rows, factor, map.columns, factor], channels: colour == nil ? 1 : 3,
            what: "a \(map.rows)×\(map.columns) map at zoom \(factor)")
        try save(
            withLegend(
                Image(map: map, range: range, colormap: colour).zoomed(by: factor), range: range, colormap: colour),
            protecting: inputs)
        note(
            """
            wrote \(output): \(what), \(map.rows)×\(map.columns) cells at zoom \(factor), range \
            \(range.low)...\(range.high)
            """
        )
    }

    /// The scale of a picture made of `maps`: `--range LO:HI`, their percentiles (`--range pLO:pHI`; their min and
    /// max when every cell between the two is the same value), or their common min and max (one map, or
    /// `--range shared`); nil when they hold no finite value.
    public func scale(for maps: [Matrix]) -> ValueRange? {
        switch scale {
        case .fixed(let r): return r
        case .percentiles(let low, let high, _):
            guard let r = MapRange.percentiles(of: maps, low: low, high: high) else { return nil }
            if r.high > r.low { return r }
        case .shared, nil: break
        }
        let ranges = maps.compactMap(ValueRange.of)
        guard let first = ranges.first else { return nil }
        return ranges.dropFirst().reduce(first) {
            ValueRange(low: Swift.min($0.low, $1.low), high: Swift.max($0.high, $1.high))
        }
    }

    /// What makes a montage impossible with these settings, known before any tile is made (the command line
    /// checks it too): SVG output, or a legend without one scale for every tile.
    public var montageProblem: String? {
        let format = output.lowercased()
        if format.hasSuffix(".svg") {
            return "a montage is a picture: write .png, .ppm or .pgm (SVG is for one matrix with token labels)"
        }
        if legend && scale?.isShared != true && !format.hasSuffix(".npy") { return Self.montageLegendProblem }
        return nil
    }

    static let montageLegendProblem =
        "--legend on a montage needs one scale for every tile: add --range shared, shared:p1:p99 or LO:HI"

    /// Several maps of one shape as one picture, a labelled tile each (`columns` per row), or as one
    /// `.npy` of shape `shape + [rows, columns]`. Each tile has its own scale unless `--range` gives one.
    public func writeMontage(
        _ tiles: [(label: String, map: Matrix)], shape: [Int], columns: Int, what: String, input: String
    ) throws {
        let rows = tiles[0].map.rows, cols = tiles[0].map.columns
        if let problem = montageProblem { throw AttnError(.output, file: output, problem) }
        if output.lowercased().hasSuffix(".npy") {
            try AtomicFile.write(
                NPYWriter.encode(values: tiles.flatMap(\.map.values), shape: shape + [rows, cols]), to: output,
                protecting: [input])
            note(
                """
                wrote \(output): \(what), \(tiles.count) maps of \(rows)×\(cols), float32 array \
                \(shape + [rows, cols])
                """
            )
            return
        }
        let shared = scale?.isShared == true ? self.scale(for: tiles.map(\.map)) : nil
        if legend && shared == nil { throw AttnError(.output, file: output, Self.montageLegendProblem) }
        let colour = pictureColormap
        let factor = montageZoom(rows: rows, columns: cols, labels: tiles.map(\.label), tileColumns: columns)
        try checkPixels(
            [tiles.count, rows, factor, cols, factor], channels: colour == nil ? 1 : 3,
            what: "\(tiles.count) tiles of \(rows)×\(cols) at zoom \(factor)")
        // Each tile's picture is made as it is drawn into the montage: only the montage is held.
        let image = try Composition.montage(
            labels: tiles.map(\.label), tileWidth: cols * factor, tileHeight: rows * factor,
            channels: colour == nil ? 1 : 3,
            columns: columns, labelScale: rows * factor >= 128 ? 2 : 1
        ) { i in
            guard let r = shared ?? self.scale(for: [tiles[i].map]) else {
                throw AttnError(
                    .analysis, file: output, "cannot draw \(tiles[i].label): the map holds no finite values")
            }
            return Image(map: tiles[i].map, range: r, colormap: colour).zoomed(by: factor)
        }
        try save(shared.map { withLegend(image, range: $0, colormap: colour) } ?? image, protecting: [input])
        noteOutliers(in: tiles, what: what)
        let scaleNote =
            shared.map { "one range \($0.low)...\($0.high)" }
            ?? (scale == nil
                ? "each tile its own min–max range (--range shared for one)" : "each tile its own percentile range")
        note("wrote \(output): \(what), \(tiles.count) tiles of \(rows)×\(cols) at zoom \(factor), \(scaleNote)")
    }

    /// The zoom of a montage's tiles of `rows` × `columns` cells, labelled `labels`, `tileColumns` to a row: `--zoom`,
    /// else enough for tiles about 64 pixels across, less when the montage would be over `montagePixels` (thousands of
    /// small maps: 40,000 tiles of 2 × 2 at zoom 32 made a 645 MB picture that took half a minute to encode). Zoom 1
    /// is never reduced: a montage of large maps is bounded by the pixel limit and --max-memory only.
    private func montageZoom(rows: Int, columns: Int, labels: [String], tileColumns: Int) -> Int {
        if let zoom { return zoom }
        var factor = max(1, 64 / max(rows, columns, 1))
        while factor > 1 {
            let size = Composition.montageSize(
                labels: labels, tileWidth: columns * factor, tileHeight: rows * factor, columns: tileColumns)
            if size.width.multipliedReportingOverflow(by: size.height).partialValue <= Self.montagePixels { break }
            factor = max(1, factor * 3 / 4)
        }
        return factor
    }

    /// The most pixels a montage of small maps gets without `--zoom` (32 M: 96 MiB in colour, a few seconds to encode).
    public static let montagePixels = 1 << 25

    /// Refuses, before any tile is made, a montage of `count` maps of `rows` × `columns` whose memory (the maps as
    /// float32, and the picture with its labels and its encoding, or the .npy array and its encoding) is over the
    /// memory budget (`--max-memory`), or whose picture is over the pixel limit. `labels` are the tiles' labels.
    public func checkMontage(count: Int, rows: Int, columns: Int, tileColumns: Int, labels: [String]) throws {
        let maps = MemoryBudget.bytes([count, rows, columns], elementSize: 4)
        var bytes: Int?
        if output.lowercased().hasSuffix(".npy") {
            // maps, the array, its encoding
            bytes = maps.flatMap { $0.multipliedReportingOverflow(by: 3).overflow ? nil : $0 * 3 }
        } else {
            let factor = montageZoom(rows: rows, columns: columns, labels: labels, tileColumns: tileColumns),
                channels = pictureColormap == nil ? 1 : 3
            let tileWidth = MemoryBudget.bytes([columns, factor], elementSize: 1),
                tileHeight = MemoryBudget.bytes([rows, factor], elementSize: 1)
            guard let maps, let tileWidth, let tileHeight, tileWidth <= 1 << 30, tileHeight <= 1 << 30 else {
                throw AttnError(
                    .resource, file: output,
                    """
                    \(count) tiles of \(rows)×\(columns) would be more pixels than any picture can hold; write \
                    .npy or choose fewer layers or heads
                    """
                )
            }
            let size = Composition.montageSize(
                labels: labels, tileWidth: tileWidth, tileHeight: tileHeight, columns: tileColumns)
            let pixels = MemoryBudget.bytes([size.width, size.height], elementSize: channels)
            if let pixels, pixels > Self.maximumImageBytes {
                throw AttnError(
                    .resource, file: output,
                    """
                    \(count) tiles of \(rows)×\(columns) at zoom \(factor) would be \
                    \(MemoryBudget.describe(pixels)) of pixels, over the \
                    \(MemoryBudget.describe(Self.maximumImageBytes)) limit; lower --zoom, choose fewer layers or \
                    heads, or write .npy
                    """
                )
            }
            // the maps, the picture, and PNG's filtered rows, deflate buffer and file
            bytes = pixels.map { maps + 4 * $0 }
        }
        if let refusal = MemoryBudget.refusal("a montage of \(count) maps of \(rows)×\(columns)", bytes: bytes) {
            throw AttnError(.resource, file: output, refusal + "; choose fewer layers or heads")
        }
    }

    /// A 0/1 mask: black and white (.png, .pgm, .ppm) or its values (.npy).
    public func writeMask(_ mask: Matrix, what: String, input: String) throws {
        let kept = mask.values.reduce(0) { $0 + ($1 > 0 ? 1 : 0) }
        if output.lowercased().hasSuffix(".npy") {
            try AtomicFile.write(NPYWriter.encode(mask), to: output, protecting: [input])
        } else {
            let factor = zoom ?? max(1, 256 / max(mask.rows, mask.columns, 1))
            try checkPixels(
                [mask.rows, factor, mask.columns, factor], channels: 3,
                what: "a \(mask.rows)×\(mask.columns) mask at zoom \(factor)")
            let image = Image(map: mask, range: ValueRange(low: 0, high: 1), colormap: nil).zoomed(by: factor)
            try save(output.lowercased().hasSuffix(".ppm") ? ImageFile.rgb(image) : image, protecting: [input])
        }
        note("wrote \(output): \(what), \(kept) of \(mask.values.count) patches kept")
    }

    private func writeOverlay(
        _ map: Matrix, over picturePath: String, what: String, inputs: [String], outline: Matrix?, patchPrefix: Int
    ) throws {
        let picture = try ImageFile.read(picturePath)
        if self.overlay?.fit != .stretch,
            let problem = Overlay.misfit(
                rows: map.rows, columns: map.columns, width: picture.width, height: picture.height)
        {
            throw AttnError(.analysis, file: picturePath, problem)
        }
        guard let range = scale(for: [map]) else {
            throw AttnError(.analysis, file: output, "cannot draw \(what): the map holds no finite values")
        }
        noteOutlier(in: map, what: what, patchPrefix: patchPrefix)
        var image = Overlay.blend(
            map, over: picture, range: range, colormap: colormap, alpha: self.overlay?.alpha ?? 0.5,
            resample: self.overlay?.resample ?? .bilinear)
        if let outline {
            for (i, edge) in Overlay.outline(outline, width: image.width, height: image.height).enumerated() where edge
            {
                image.pixels[3 * i] = 255
                image.pixels[3 * i + 1] = 255
                image.pixels[3 * i + 2] = 255
            }
        }
        try save(withLegend(image, range: range, colormap: colormap), protecting: inputs + [picturePath])
        note(
            """
            wrote \(output): \(what) over \(picturePath) (\(picture.width)×\(picture.height), \
            \((self.overlay?.resample ?? .bilinear).rawValue), alpha \(self.overlay?.alpha ?? 0.5)), range \
            \(range.low)...\(range.high)
            """
        )
    }

    /// Says on stderr when a min–max scale (no `--range`, or `shared`) is spoilt by one cell far above the rest
    /// (`MapRange.outlier`), naming it: as a token of the patch grid when `patchPrefix` is given (the tokens before
    /// the grid's cells).
    private func noteOutlier(in map: Matrix, what: String, patchPrefix: Int?) {
        guard scale == nil || scale == .shared, let o = MapRange.outlier(in: map) else { return }
        let cell =
            if let patchPrefix {
                "token \(patchPrefix + o.row * map.columns + o.column) (patch row \(o.row), column \(o.column))"
            } else if map.rows == 1 {
                "key \(o.column)"
            } else {
                "query \(o.row), key \(o.column)"
            }
        let percent = Int((o.share * 100).rounded(.up))
        note(
            """
            \(what): the brightest cell, \(cell) at \(o.value), stands far above the rest (99th percentile \
            \(o.percentile99)): min–max scaling draws 99% of the map in the lowest \(percent)% of the colours; \
            --range p1:p99 scales to percentiles
            """
        )
    }

    /// `noteOutlier` for a montage: the tiles whose own min–max scale is spoilt, or, with `--range shared`, whether
    /// the brightest cell of them all spoils the shared one.
    private func noteOutliers(in tiles: [(label: String, map: Matrix)], what: String) {
        let spoilt: [String]
        switch scale {
        case nil: spoilt = tiles.filter { MapRange.outlier(in: $0.map) != nil }.map(\.label)
        case .shared: spoilt = MapRange.outlier(in: tiles.map(\.map)) == nil ? [] : ["every tile (one scale)"]
        default: return
        }
        guard !spoilt.isEmpty else { return }
        let named = spoilt.prefix(3).joined(separator: "; ") + (spoilt.count > 3 ? "; …" : "")
        note(
            """
            \(what): \(scale == nil ? "\(spoilt.count) of \(tiles.count) tiles" : "the montage") (\(named)) have a \
            cell far above the rest, which draws 99% of their cells in the lowest third of the colours or less; \
            --range p1:p99 scales each tile to its percentiles, shared:p1:p99 all of them to theirs
            """
        )
    }

    /// The colormap of a picture: nil (grey) for .pgm and for .png with the gray colormap, else `--colormap`.
    private var pictureColormap: Colormap? {
        let lower = output.lowercased()
        return lower.hasSuffix(".ppm") || (lower.hasSuffix(".png") && colormap != .gray) ? colormap : nil
    }

    /// Refuses a picture of `Π dimensions × channels` bytes over `maximumImageBytes`, or whose making (the picture,
    /// and PNG's filtered rows, deflate buffer and file: four times its pixels) is over --max-memory.
    private func checkPixels(_ dimensions: [Int], channels: Int, what: String) throws {
        let bytes = MemoryBudget.bytes(dimensions, elementSize: channels)
        if bytes == nil || bytes! > Self.maximumImageBytes {
            throw AttnError(
                .resource, file: output,
                """
                \(what) would be \(MemoryBudget.describe(bytes)) of pixels, over the \
                \(MemoryBudget.describe(Self.maximumImageBytes)) limit; lower --zoom or write .npy
                """
            )
        }
        if let refusal = MemoryBudget.refusal("drawing \(what)", bytes: bytes.map { 4 * $0 }) {
            throw AttnError(.resource, file: output, refusal + "; lower --zoom or write .npy")
        }
    }

    /// `image` with the colour bar of `range` under it when `--legend` is given.
    private func withLegend(_ image: Image, range: ValueRange, colormap: Colormap?) -> Image {
        legend
            ? Composition.legend(below: image, range: range, colormap: colormap, scale: image.width >= 400 ? 2 : 1)
            : image
    }

    /// Writes `image` atomically as PNG or Netpbm, by the output's extension.
    private func save(_ image: Image, protecting inputs: [String]) throws {
        try AtomicFile.write(
            output.lowercased().hasSuffix(".png") ? try PNG.encode(image) : image.netpbm(), to: output,
            protecting: inputs)
    }
}
