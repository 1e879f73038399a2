import AttnCore

/// Maps a value in 0...1 to an 8-bit RGB colour through a 256-entry table. `coolwarm` is diverging
/// (blue, grey at the middle, red): for signed maps such as differences, with a range symmetric about 0.
public enum Colormap: String, CaseIterable, Sendable {
    case viridis, inferno, magma, plasma, turbo, jet, gray, coolwarm

    /// The colour of `t` (clamped to 0...1): table entry `round(t · 255)`, channels `round(c · 255)`.
    public func color(_ t: Float) -> (UInt8, UInt8, UInt8) {
        let clamped = t.isNaN ? 0 : Swift.min(Swift.max(t, 0), 1)
        let index = Int((clamped * 255).rounded())
        return Colormap.bytes[self]![index]
    }

    /// The 256 entries as bytes, computed once.
    private static let bytes: [Colormap: [(UInt8, UInt8, UInt8)]] = {
        func quantise(_ table: [(Float, Float, Float)]) -> [(UInt8, UInt8, UInt8)] {
            table.map { (byte($0.0), byte($0.1), byte($0.2)) }
        }
        var result: [Colormap: [(UInt8, UInt8, UInt8)]] = [:]
        result[.viridis] = quantise(ColormapTables.viridis)
        result[.inferno] = quantise(ColormapTables.inferno)
        result[.magma] = quantise(ColormapTables.magma)
        result[.plasma] = quantise(ColormapTables.plasma)
        result[.turbo] = quantise(ColormapTables.turbo)
        result[.jet] = quantise(ColormapTables.jet)
        result[.coolwarm] = quantise(ColormapTables.coolwarm)
        result[.gray] = (0...255).map { (UInt8($0), UInt8($0), UInt8($0)) }
        return result
    }()

    /// `round(c · 255)`, half away from zero, clamped.
    static func byte(_ c: Float) -> UInt8 {
        UInt8(Swift.min(Swift.max((c * 255).rounded(), 0), 255))
    }
}
