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
            Map LO:HI to the ends of the scale (default: each map's own min and max), or shared: one scale, the \
            common min and max, for every tile of a montage.
            """
    )
    var range: MapWriter.Scale?

    @Flag(help: "Add a colour bar with the numbers of the range under the picture.")
    var legend = false

    @Option(
        parsing: .unconditional,
        help: "Enlarge each cell to N×N pixels (default: enough to make the image at least 256 pixels across).")
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

    @Option(
        help:
            """
            Blend the patch grid over this picture (.png, .ppm, .pgm: the exact input the network saw); the \
            output has its size. For grid and rollout --view grid.
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

    /// For the commands with `--view matrix|grid` (rollout, flow): an overlay needs the grid view.
    func checkOverlay(view: MapView?) throws {
        if overlay != nil && view == .matrix {
            throw ValidationError("--overlay goes with the patch grid: use --view grid (the default with --overlay)")
        }
    }

    func validate() throws {
        // format, zoom
        if let problem = MapWriter(output: output, zoom: zoom).problem { throw ValidationError(problem) }
        if !(alpha >= 0 && alpha <= 1) { throw ValidationError("--alpha must be between 0 and 1, got \(alpha)") }
        if let problem = writer.problem { throw ValidationError(problem) }  // with --overlay
    }

    /// The writer these options describe; what it writes is said on stderr.
    var writer: MapWriter {
        MapWriter(
            output: output, colormap: colormap, scale: range, legend: legend, zoom: zoom,
            overlay: overlay.map { MapWriter.Blend(picture: $0, alpha: alpha, resample: resample, fit: fit) },
            note: { Console.note($0) })
    }
}

extension MapWriter.Blend.Fit: ExpressibleByArgument {}
