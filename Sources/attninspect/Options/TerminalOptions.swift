import ArgumentParser
import AttnCore
import AttnRender
#if canImport(Glibc)
    import Glibc
#endif

/// A picture in the terminal: colour on or off (auto: when stdout is a terminal and NO_COLOR is not set), the width
/// to fit, the colormap and the range of its scale (show, tokens).
struct TerminalOptions: ParsableArguments {
    enum ColorChoice: String, ExpressibleByArgument, CaseIterable { case auto, always, never }

    @Option(
        name: .customLong("color"),
        help: "24-bit colour: auto (when stdout is a terminal and NO_COLOR is unset), always or never.")
    var color: ColorChoice = .auto

    @Option(help: "Fit the output to this many columns (default: the terminal's width, else $COLUMNS, else 80).")
    var width: Int?

    @Option(help: "The colormap.")
    var colormap: Colormap = .viridis

    @Option(parsing: .unconditional, help: "Map LO:HI to the ends of the scale (default: the values' own min and max).")
    var range: ValueRange?

    func validate() throws {
        if let width, width < 8 || width > 2000 {
            throw ValidationError("--width must be between 8 and 2000, got \(width)")
        }
    }

    var colourOn: Bool {
        switch color {
        case .always: return true
        case .never: return false
        case .auto:
            let noColor = getenv("NO_COLOR").map { String(cString: $0) } ?? ""
            return isatty(1) == 1 && noColor.isEmpty
        }
    }

    /// The width to fit: `--width`, the terminal's (the corresponding C call is `ioctl(TIOCGWINSZ)`), $COLUMNS, 80.
    var columns: Int {
        if let width { return width }
        var size = winsize()
        if isatty(1) == 1, ioctl(1, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 { return Int(size.ws_col) }
        if let text = getenv("COLUMNS").map({ String(cString: $0) }), let n = Int(text), n >= 8 { return n }
        return 80
    }
}
