import ArgumentParser
import AttnCore
import AttnRender
import AttnAnalysis

extension Colormap: ExpressibleByArgument {}
extension ValueRange: ExpressibleByArgument {}
extension Resample: ExpressibleByArgument {}

/// How a picture looks: its colormap, the range of its scale, a colour bar, the size of its cells (every command that
/// draws one).
struct PictureOptions: ParsableArguments {
    @Option(help: "The colormap of a .png or .ppm.")
    var colormap: Colormap = .viridis

    @Option(
        parsing: .unconditional,
        help:
            """
            Map LO:HI to the ends of the scale (default: each map's own min and max); pLO:pHI: each map's \
            percentiles, e.g. p1:p99 (cells beyond them get the ends: one outlier token no longer leaves the rest \
            one colour); shared: one scale, the common min and max, for every tile of a montage; shared:pLO:pHI: \
            the percentiles of all the tiles' cells.
            """
    )
    var range: MapWriter.Scale?

    @Flag(help: "Add a colour bar with the numbers of the range under the picture.")
    var legend = false

    @Option(
        parsing: .unconditional,
        help: "Enlarge each cell to N×N pixels (default: ⌊256 / cells across⌋, at least 1: at most 256 pixels wide).")
    var zoom: Int?
}

/// Where and how a map is written: the format follows the extension of the output.
struct ImageOptions: ParsableArguments {
    @Option(
        name: [.short, .customLong("output")],
        help:
            """
            The output: .png (colour, or grey with --colormap gray), .pgm (grey), .ppm (colour), .svg (a matrix \
            with token labels) or .npy (raw float32 values).
            """
    )
    var output: String

    @OptionGroup var picture: PictureOptions
    var colormap: Colormap { picture.colormap }
    var range: MapWriter.Scale? { picture.range }
    var legend: Bool { picture.legend }
    var zoom: Int? { picture.zoom }

    /// For the commands that draw a montage with `--layer all` or `--head all` (heatmap, grid): what the command
    /// line alone shows cannot be drawn is a usage error, as other bad combinations are.
    func checkMontage(layer: LayerSelection, head: HeadSelection) throws {
        guard layer == .all || head == .all else { return }
        if let problem = writer().montageProblem { throw ValidationError(problem) }
    }

    func validate() throws {
        // format, zoom
        if let problem = MapWriter(output: output, zoom: zoom).problem { throw ValidationError(problem) }
    }

    /// The writer these options describe, blending over `overlay`'s picture when it gives one; what it writes is
    /// said on stderr.
    func writer(_ overlay: OverlayOptions? = nil) -> MapWriter {
        MapWriter(
            output: output, colormap: colormap, scale: range, legend: legend, zoom: zoom, overlay: overlay?.blend,
            note: { Console.note($0) })
    }
}

/// `--overlay PICTURE` and how the patch grid is blended over it (grid, rollout, flow: the commands that draw a
/// patch grid).
struct OverlayOptions: ParsableArguments {
    @Option(
        help:
            """
            Blend the patch grid over this picture (.png, .ppm, .pgm: the exact input the network saw); the \
            output has its size. For grid, and rollout and flow with --view grid.
            """
    )
    var overlay: String?

    @Option(parsing: .unconditional, help: "With --overlay: the weight of the map, 0 (picture only) to 1 (map only).")
    var alpha: Double = 0.5

    @Option(help: "With --overlay: how the grid is enlarged to the picture (bilinear or nearest).")
    var resample: Resample = .bilinear

    @Option(help: "With --overlay: exact (the grid's aspect ratio must match the picture's) or stretch.")
    var fit: Fit = .exact

    typealias Fit = MapWriter.Blend.Fit

    /// The blend these options ask for, or nil without `--overlay`.
    var blend: MapWriter.Blend? {
        overlay.map { MapWriter.Blend(picture: $0, alpha: alpha, resample: resample, fit: fit) }
    }

    /// For the commands with `--view matrix|grid` (rollout, flow): an overlay needs the grid view.
    func checkOverlay(view: MapView?) throws {
        if overlay != nil && view == .matrix {
            throw ValidationError("--overlay goes with the patch grid: use --view grid (the default with --overlay)")
        }
    }

    /// Validates these options with the output they go with (the picture's format against the output's).
    func check(with image: ImageOptions) throws {
        if let problem = image.writer(self).problem { throw ValidationError(problem) }
    }

    func validate() throws {
        if !(alpha >= 0 && alpha <= 1) { throw ValidationError("--alpha must be between 0 and 1, got \(alpha)") }
    }
}

extension MapWriter.Blend.Fit: ExpressibleByArgument {}
