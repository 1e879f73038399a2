#if canImport(Glibc)
import Glibc
#endif
import AttnCore

/// Writes a file atomically: into a temporary file in the same folder, then `rename`.
/// On any error the temporary file is removed and the target is untouched.
public enum AtomicFile {
    /// - Parameter inputs: files that must never be replaced (the dumps being read).
    public static func write(_ bytes: [UInt8], to requested: String, protecting inputs: [String] = []) throws {
        if let target = identity(of: requested), inputs.contains(where: { identity(of: $0) == target }) {
            throw DumpError(file: requested, "is an input file: refusing to overwrite it; choose another output")
        }
        // An existing output keeps its permissions; a symbolic link is followed, so the file it
        // points to is replaced and the link stays.
        var path = requested
        var mode = defaultMode()
        var existing = stat()
        if lstat(requested, &existing) == 0 {
            if (existing.st_mode & S_IFMT) == S_IFLNK {
                guard let resolved = realpath(requested, nil) else {
                    throw DumpError(file: requested, "cannot write: it is a symbolic link to a missing file or folder")
                }
                path = String(cString: resolved)
                free(resolved)
                if stat(path, &existing) != 0 { existing.st_mode = S_IFREG | mode }
            }
            switch existing.st_mode & S_IFMT {
            case S_IFREG: mode = existing.st_mode & 0o7777
            case S_IFDIR: throw DumpError(file: requested, "cannot write: it is a directory; expected a file name")
            default: throw DumpError(file: requested, "cannot write: it exists and is not a regular file (a device, FIFO or socket)")
            }
        }
        let slash = path.lastIndex(of: "/")
        let folder = slash.map { String(path[..<$0]) } ?? "."
        let name = slash.map { String(path[path.index(after: $0)...]) } ?? path
        guard !name.isEmpty else { throw DumpError(file: requested, "cannot write: expected a file name, found a folder path") }
        var template = Array("\(folder.isEmpty ? "/" : folder)/.\(name).tmp-XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else {
            throw DumpError(file: requested, "cannot write: \(describe(errno))")
        }
        let temporary = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        var failure: Int32 = 0
        bytes.withUnsafeBytes { raw in
            var done = 0
            while done < raw.count {
                let n = Glibc.write(fd, raw.baseAddress! + done, raw.count - done)
                if n < 0 {
                    if errno == EINTR { continue }
                    failure = errno
                    return
                }
                done += n
            }
        }
        if failure == 0 && fchmod(fd, mode) != 0 { failure = errno }
        if close(fd) != 0 && failure == 0 { failure = errno }
        if failure == 0 && rename(temporary, path) != 0 { failure = errno }
        if failure != 0 {
            unlink(temporary)
            throw DumpError(file: requested, "cannot write: \(describe(failure))")
        }
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
        guard stat(path, &info) == 0 else { return nil }
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
