#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// How much memory one step may claim, so that an oversized layer or image is refused with an
/// estimate instead of the process being killed.
public enum MemoryBudget {
    /// This machine's physical memory in bytes.
    public static let physicalBytes: Int = {
        let pages = sysconf(Int32(_SC_PHYS_PAGES)), size = sysconf(Int32(_SC_PAGESIZE))
        guard pages > 0, size > 0 else { return 8 << 30 }
        return pages.multipliedReportingOverflow(by: size).overflow ? Int.max : pages * size
    }()

    /// `--max-memory`: the per-layer limit asked for, instead of half of physical memory.
    nonisolated(unsafe) public static var limitOverride: Int?

    /// The most one layer's working set may take: `--max-memory`, else half of physical memory.
    public static var layerLimitBytes: Int { limitOverride ?? physicalBytes / 2 }

    /// Parses `512M`, `4G`, `1.5GiB`, `2T` or a number of bytes (binary units).
    public static func parseSize(_ text: String) -> Int? {
        let trimmed = String(text.filter { $0 != " " }).uppercased()
        let units: [(String, Double)] = [
            ("TIB", 0x1p40), ("GIB", 0x1p30), ("MIB", 0x1p20), ("KIB", 0x1p10), ("TB", 0x1p40), ("GB", 0x1p30),
            ("MB", 0x1p20), ("KB", 0x1p10), ("T", 0x1p40), ("G", 0x1p30), ("M", 0x1p20), ("K", 0x1p10), ("B", 1)
        ]
        var number = Substring(trimmed), factor = 1.0
        for (suffix, f) in units where trimmed.hasSuffix(suffix) {
            number = trimmed.dropLast(suffix.count)
            factor = f
            break
        }
        guard let value = Double(number), value.isFinite, value > 0, value * factor < 0x1p62 else { return nil }
        return Int(value * factor)
    }

    /// `Π factors × elementSize`, or nil when it overflows.
    public static func bytes(_ factors: [Int], elementSize: Int) -> Int? {
        var total = elementSize
        for f in factors {
            let (p, overflow) = total.multipliedReportingOverflow(by: f)
            if overflow { return nil }
            total = p
        }
        return total
    }

    /// `1.5 GiB`, `320 MiB`, `12 KiB`.
    public static func describe(_ bytes: Int?) -> String {
        guard let bytes else { return "more than 8 EiB" }
        let units = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB"]
        var value = Double(bytes), unit = 0
        while value >= 1024 && unit < units.count - 1 { value /= 1024; unit += 1 }
        let rounded = (value * 10).rounded() / 10
        return unit == 0 ? "\(bytes) bytes" : "\(rounded) \(units[unit])"
    }

    /// nil when `bytes` fits the limit; otherwise a message that states the estimate. `what` names the work
    /// (one layer, or a step such as a rollout that holds several token × token matrices).
    public static func refusal(_ what: String, bytes: Int?) -> String? {
        if let bytes, bytes <= layerLimitBytes { return nil }
        let origin =
            limitOverride == nil ? "half of this machine's memory; --max-memory SIZE raises it" : "set by --max-memory"
        return
            "\(what) needs \(describe(bytes)) of memory, more than the \(describe(layerLimitBytes)) allowed (\(origin))"
    }
}
