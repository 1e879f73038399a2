import ArgumentParser
import AttnCore
import AttnSource
import AttnAnalysis
import AttnRender

/// `--layer N` (negative counts from the end) or `--layer all`.
enum LayerSelection: ExpressibleByArgument, Equatable {
    case one(Int)
    case all

    init?(argument: String) {
        if argument == "all" { self = .all } else if let n = Int(argument) { self = .one(n) } else { return nil }
    }

    /// As it is written on the command line (help shows it).
    var defaultValueDescription: String {
        switch self {
        case .one(let n): return "\(n)"
        case .all: return "all"
        }
    }
}

/// `--head H|mean|max|min` or `--head all` (one tile per head).
enum HeadSelection: ExpressibleByArgument, Equatable {
    case fused(HeadFusion)
    case all

    init?(argument: String) {
        if argument == "all" {
            self = .all
        } else if let f = HeadFusion(argument: argument) {
            self = .fused(f)
        } else {
            return nil
        }
    }

    /// As it is written on the command line (help shows it).
    var defaultValueDescription: String {
        switch self {
        case .fused(let f): return "\(f)"
        case .all: return "all"
        }
    }
}

/// `--json` or `--csv`: the machine-readable forms of a report (stats, heads, diff); a table without either.
struct ReportFormatOptions: ParsableArguments {
    @Flag(help: "Print one JSON object.")
    var json = false

    @Flag(help: "Print CSV records with a header.")
    var csv = false

    func validate() throws {
        if json && csv { throw ValidationError("--json and --csv are exclusive: choose one") }
    }
}

/// `--layer N` and `--head H|mean|max|min`: one map (show, tokens).
struct OneMapOptions: ParsableArguments {
    @Option(parsing: .unconditional, help: "The layer (negative counts from the end: -1 is the last).")
    var layer: Int = -1

    @Option(parsing: .unconditional, help: "A head index, or mean, max or min over heads.")
    var head: HeadFusion = .mean
}

/// `--layer N|all` and `--head H|mean|max|min|all`: one map, or a montage of tiles (heatmap, grid).
struct MapSelectionOptions: ParsableArguments {
    @Option(
        parsing: .unconditional,
        help: "The layer (negative counts from the end: -1 is the last), or all: one tile per layer.")
    var layer: LayerSelection = .one(-1)

    @Option(parsing: .unconditional, help: "A head index, mean, max or min over heads, or all: one tile per head.")
    var head: HeadSelection = .fused(.mean)
}

/// `--range LO:HI`, or `--range shared`: one scale for every tile of a montage (their common min and max).
extension MapWriter.Scale: ExpressibleByArgument {}

extension OpenedDump {
    /// A head fusion, with a head index checked against the dump.
    func fusion(_ fusion: HeadFusion) throws -> HeadFusion {
        if case .head(let h) = fusion { _ = try head(h) }
        return fusion
    }

    /// The layers a selection names, checked.
    func layers(_ selection: LayerSelection) throws -> [Int] {
        switch selection {
        case .one(let n): return [try layer(n)]
        case .all: return Array(0..<source.layerCount)
        }
    }

    /// Each tile of a selection: its label and the map of one layer, fused over heads or one head.
    /// `shape` is the leading shape of the tiles for `.npy` output ([layers, heads], [layers] or [heads]).
    /// - Parameter check: called with the tiles' count and labels before any layer is read (a montage's memory check).
    func tiles(
        layers selection: LayerSelection, heads: HeadSelection,
        check: (_ count: Int, _ labels: [String]) throws -> Void = { _, _ in },
        map: (LayerAttention, HeadFusion, _ layer: Int) throws -> Matrix
    ) throws -> (tiles: [(label: String, map: Matrix)], shape: [Int]) {
        let chosen = try layers(selection)
        var labels: [String] = []
        for l in chosen {
            switch heads {
            case .all: labels += (0..<source.headCount).map { "L\(l) H\($0)" }
            case .fused(let f):
                if case .head(let h) = try fusion(f) { labels.append("L\(l) H\(h)") } else { labels.append("L\(l)") }
            }
        }
        try check(labels.count, labels)
        var tiles: [(label: String, map: Matrix)] = []
        for l in chosen {
            let attention = try source.layer(l)
            switch heads {
            case .all:
                for h in 0..<source.headCount {
                    tiles.append(("L\(l) H\(h)", try analysing { try map(attention, .head(h), l) }))
                }
            case .fused(let f):
                let fusion = try self.fusion(f)
                let label: String
                if case .head(let h) = fusion { label = "L\(l) H\(h)" } else { label = "L\(l)" }
                tiles.append((label, try analysing { try map(attention, fusion, l) }))
            }
        }
        var shape: [Int] = []
        if case .all = selection { shape.append(chosen.count) }
        if case .all = heads { shape.append(source.headCount) }
        return (tiles, shape)
    }
}

extension SimilarityScope: ExpressibleByArgument {}
