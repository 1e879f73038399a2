#if canImport(Glibc)
    import Glibc
#endif
import AttnCore

/// A small input read whole (an overlay's picture, `merge`'s parts): opened read-only, a regular file, at most
/// `limit` bytes. The corresponding C calls are `open`, `fstat` and `pread`.
public enum WholeFile {
    /// The bytes of `path`; `expected` and `tooLarge` say what the file should be, in the errors.
    public static func read(_ path: String, limit: Int, expected: String, tooLarge: String) throws -> [UInt8] {
        let fd = PathBytes.withCString(path) { open($0, O_RDONLY | O_CLOEXEC | O_NONBLOCK) }
        guard fd >= 0 else {
            throw AttnError(
                file: path, errno == ENOENT ? "no such file" : "cannot open: \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
            throw AttnError(file: path, "is not a regular file: expected \(expected)")
        }
        guard info.st_size <= limit else {
            throw AttnError(file: path, "is over \(MemoryBudget.describe(limit)): expected \(tooLarge)")
        }
        var bytes = [UInt8](repeating: 0, count: Int(info.st_size))
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + done, $0.count - done, off_t(done)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw AttnError(file: path, "read failed: file is truncated or unreadable") }
            done += n
        }
        return bytes
    }
}
