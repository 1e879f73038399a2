#if canImport(Glibc)
    import Glibc
#endif
import AttnCore
import CAttnProcess

/// Writes a file atomically: into a temporary file in the same folder, then `rename`.
/// On any error the temporary file is removed and the target is untouched.
public enum AtomicFile {
    /// `--force`: replace an existing file even when it holds another kind of data than the one written.
    nonisolated(unsafe) public static var replacesOtherKinds = false

    /// - Parameter inputs: files that must never be replaced (the dumps being read).
    public static func write(_ bytes: [UInt8], to requested: String, protecting inputs: [String] = []) throws {
        if let target = identity(of: requested), inputs.contains(where: { identity(of: $0) == target }) {
            throw AttnError(
                .output, file: requested, "is an input file: refusing to overwrite it; choose another output")
        }
        if !replacesOtherKinds, let (old, head) = existingKind(of: requested) {
            let new = FileKind(of: bytes[..<min(bytes.count, 512)])
            if old != new {
                throw AttnError(
                    .output, file: requested,
                    """
                    exists and holds \(old.rawValue), not \(new.rawValue) like the output: refusing to replace \
                    it; choose another output, or add --force
                    """
                )
            }
            // An array attninspect would read as a dump is replaced only by an array of its own shape, type and order
            // (the same command run again), not by a map of another shape; one whose header cannot be read from its
            // first bytes (a long header) is not replaced either.
            if old == .npy,
                NPYSignature(head) == nil || NPYSignature(bytes[..<min(bytes.count, 512)]) != NPYSignature(head)
            {
                let shown = { (s: NPYSignature?) in
                    s.map { "shape \($0.shape) (\($0.descr)\($0.fortranOrder ? ", Fortran order" : ""))" }
                        ?? "a header longer than 512 bytes"
                }
                throw AttnError(
                    .output, file: requested,
                    """
                    exists and holds a NumPy array of \(shown(NPYSignature(head))), which could be a dump, not \
                    the output's \(shown(NPYSignature(bytes[..<min(bytes.count, 512)]))): refusing to replace it; \
                    choose another output, or add --force
                    """
                )
            }
        }
        // An existing output keeps its permissions; a symbolic link is followed, so the file it
        // points to is replaced and the link stays.
        var path = requested
        var mode = defaultMode()
        var existing = stat()
        if PathBytes.withCString(requested, { lstat($0, &existing) }) == 0 {
            if (existing.st_mode & S_IFMT) == S_IFLNK {
                guard let resolved = PathBytes.withCString(requested, { realpath($0, nil) }) else {
                    let code = errno
                    var target = stat()
                    if PathBytes.withCString(requested, { stat($0, &target) }) == 0
                        && (target.st_mode & S_IFMT) != S_IFREG
                    {
                        throw AttnError(
                            .output, file: requested,
                            """
                            cannot write: it is a symbolic link to \
                            \(linkTarget(requested).map { "'\($0)', " } ?? "")which is not a regular file (a \
                            device, FIFO or socket); write to a file
                            """
                        )
                    }
                    if code == ENOENT {
                        throw AttnError(
                            .output, file: requested,
                            """
                            cannot write: it is a symbolic link to a missing file or \
                            folder\(linkTarget(requested).map { " ('\($0)')" } ?? "")
                            """
                        )
                    }
                    throw AttnError(
                        .output, file: requested, "cannot write: cannot follow the symbolic link: \(describe(code))")
                }
                path = PathBytes.decode(
                    Array(
                        UnsafeBufferPointer(
                            start: UnsafeRawPointer(resolved).assumingMemoryBound(to: UInt8.self),
                            count: strlen(resolved))))
                free(resolved)
                if PathBytes.withCString(path, { stat($0, &existing) }) != 0 { existing.st_mode = S_IFREG | mode }
            }
            switch existing.st_mode & S_IFMT {
            case S_IFREG: mode = existing.st_mode & 0o7777
            case S_IFDIR:
                throw AttnError(.output, file: requested, "cannot write: it is a directory; expected a file name")
            default:
                throw AttnError(
                    .output, file: requested,
                    "cannot write: it exists and is not a regular file (a device, FIFO or socket)")
            }
        }
        let slash = path.lastIndex(of: "/")
        let folder = slash.map { String(path[..<$0]) } ?? "."
        let name = slash.map { String(path[path.index(after: $0)...]) } ?? path
        guard !name.isEmpty else {
            throw AttnError(.output, file: requested, "cannot write: expected a file name, found a folder path")
        }
        // `.name.tmp-XXXXXX` beside the output; a name too long for that (NAME_MAX is 255 bytes) gets a short one. The
        // temporary file is removed if the process is interrupted while it exists (CAttnProcess): its name is given
        // to the signal handler before it is created (O_EXCL, a fresh random suffix on a clash).
        let hidden = PathBytes.encode(name).count + 12 <= 255 ? ".\(name).tmp-" : ".attninspect.tmp-"
        let letters = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
        var temporary = ""
        var fd: Int32 = -1
        defer { cattn_temporary_clear() }
        for _ in 0..<100 {
            temporary =
                "\(folder.isEmpty ? "/" : folder)/\(hidden)" + String((0..<6).map { _ in letters.randomElement()! })
            _ = PathBytes.withCString(temporary) { cattn_temporary_set($0) }
            fd = PathBytes.withCString(temporary) { open($0, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600) }
            if fd >= 0 || errno != EEXIST { break }
        }
        guard fd >= 0 else {
            throw AttnError(.output, file: requested, "cannot write: \(describe(errno))")
        }
        // Blocks allocated up front: ext4 then has no delayed allocation to force when the rename below replaces
        // an existing file (auto_da_alloc), which took 0.45 ms of a 155 KiB output against 0.3 ms with this.
        // Where it fails (a file system without it) the write allocates as usual.
        if !bytes.isEmpty { _ = posix_fallocate(fd, 0, off_t(bytes.count)) }
        var failure = bytes.withUnsafeBytes { Descriptor.writeAll(fd, $0) }
        if failure == 0 && fchmod(fd, mode) != 0 { failure = errno }
        if close(fd) != 0 && failure == 0 { failure = errno }
        if failure == 0
            && PathBytes.withCString(temporary, { from in PathBytes.withCString(path) { rename(from, $0) } }) != 0
        {
            failure = errno
        }
        if failure != 0 {
            PathBytes.withCString(temporary) { _ = unlink($0) }
            throw AttnError(.output, file: requested, "cannot write: \(describe(failure))")
        }
    }

    /// Where a symbolic link points, as it says it.
    private static func linkTarget(_ path: String) -> String? {
        var buffer = [CChar](repeating: 0, count: 4097)
        let n = PathBytes.withCString(path) { readlink($0, &buffer, 4096) }
        guard n > 0 else { return nil }
        return PathBytes.decode(buffer[0..<n].map { UInt8(bitPattern: $0) })
    }

    /// `0666` less the process's umask: the mode `open(2)` would give a new file.
    private static func defaultMode() -> mode_t {
        let mask = umask(0o022)
        umask(mask)
        return 0o666 & ~mask
    }

    /// Device and inode of an existing file.
    private static func identity(of path: String) -> [UInt64]? {
        var info = stat()
        guard PathBytes.withCString(path, { stat($0, &info) }) == 0 else { return nil }
        return [UInt64(info.st_dev), UInt64(info.st_ino)]
    }

    private static func describe(_ code: Int32) -> String {
        switch code {
        case ENOENT: return "no such folder"
        case EACCES, EPERM: return "permission denied"
        case EISDIR: return "is a directory"
        case ENOSPC: return "no space left on the device"
        default: return String(cString: strerror(code))
        }
    }
}

/// What a file holds, from its first bytes: an output may replace a file of its own kind only.
enum FileKind: String {
    case png = "a PNG image", npy = "a NumPy array", netpbm = "a PGM/PPM image", svg = "an SVG picture", text = "text"
    case hdf5 = "HDF5 data", zip = "a zip archive (NPZ?)", other = "binary data"

    init<C: Collection>(of head: C) where C.Element == UInt8 {
        let b = Array(head)
        func starts(_ prefix: [UInt8]) -> Bool { b.count >= prefix.count && Array(b[0..<prefix.count]) == prefix }
        if starts([0x89, 0x50, 0x4E, 0x47]) { self = .png; return }
        if starts([0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]) { self = .npy; return }
        if starts([0x89, 0x48, 0x44, 0x46]) { self = .hdf5; return }
        if starts([0x50, 0x4B, 0x03, 0x04]) { self = .zip; return }
        if b.count >= 2, b[0] == UInt8(ascii: "P"), (UInt8(ascii: "1")...UInt8(ascii: "6")).contains(b[1]) {
            self = .netpbm; return
        }
        let text = String(decoding: b, as: UTF8.self)
        let isText = !b.contains(0) && !text.contains("\u{FFFD}")
        if isText && (text.hasPrefix("<?xml") || text.hasPrefix("<svg")) { self = .svg; return }
        self = isText ? .text : .other
    }
}

extension AtomicFile {
    /// The kind of an existing, non-empty regular file (links followed) and its first bytes, or nil.
    static func existingKind(of path: String) -> (FileKind, ArraySlice<UInt8>)? {
        let fd = PathBytes.withCString(path) { open($0, O_RDONLY | O_CLOEXEC | O_NONBLOCK) }
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, info.st_size > 0 else { return nil }
        var head = [UInt8](repeating: 0, count: 512)
        let n = head.withUnsafeMutableBytes { read(fd, $0.baseAddress, 512) }
        guard n > 0 else { return nil }
        return (FileKind(of: head[0..<n]), head[0..<n])
    }
}

/// The shape and element type an `.npy` header declares (`(12, 12, 197, 197)`, `<f4`), from the file's first bytes;
/// nil when they hold no complete header.
struct NPYSignature: Equatable {
    let shape: String
    let descr: String
    let fortranOrder: Bool

    init?<C: Collection>(_ head: C) where C.Element == UInt8 {
        let bytes = Array(head)
        guard bytes.count >= 10, FileKind(of: bytes) == .npy else { return nil }
        let major = bytes[6]
        let start = major == 1 ? 10 : 12
        guard bytes.count >= start else { return nil }
        let length =
            major == 1
            ? Int(bytes[8]) | Int(bytes[9]) << 8
            : Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
        guard length > 0, start + length <= bytes.count else { return nil }
        let text = Array(
            String(decoding: bytes[start..<(start + length)], as: UTF8.self).filter { $0 != " " && $0 != "\n" })
        // The characters after `key` up to and including `end`.
        func value(after key: String, until end: Character) -> [Character]? {
            let k = Array(key)
            guard k.count <= text.count,
                let at = (0...(text.count - k.count)).first(where: { Array(text[$0..<($0 + k.count)]) == k })
            else { return nil }
            let rest = text[(at + k.count)...]
            guard let stop = rest.firstIndex(of: end) else { return nil }
            return Array(rest[...stop])
        }
        guard var shape = value(after: "'shape':", until: ")"), let descr = value(after: "'descr':", until: ","),
            let order = value(after: "'fortran_order':", until: ",")
        else { return nil }
        fortranOrder = String(order.dropLast()) == "True"
        // (5,) and (5) alike
        if shape.count >= 2 && shape[shape.count - 2] == "," { shape.remove(at: shape.count - 2) }
        self.shape = String(shape)
        self.descr = String(descr.dropLast().filter { $0 != "'" && $0 != "\"" })
    }
}
