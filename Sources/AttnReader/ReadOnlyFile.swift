#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
import AttnCore

/// A file opened read-only, closed when the value goes away. Reads are `pread`, so one
/// handle serves any number of independent readers.
final class ReadOnlyFile: @unchecked Sendable {
    /// The path as the user named it (used in every error).
    let path: String
    let size: Int
    private let descriptor: Int32

    init(path: String) throws {
        self.path = path
        // O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused below.
        let fd = PathBytes.withCString(path) { open($0, O_RDONLY | O_CLOEXEC | O_NONBLOCK) }
        if fd < 0 {
            throw AttnError(file: path, ReadOnlyFile.describe(errno: errno, action: "cannot open"))
        }
        var info = stat()
        if fstat(fd, &info) != 0 {
            let code = errno
            close(fd)
            throw AttnError(file: path, ReadOnlyFile.describe(errno: code, action: "cannot stat"))
        }
        if (info.st_mode & S_IFMT) == S_IFDIR {
            close(fd)
            throw AttnError(file: path, "is a directory, expected a dump file (.npy, .npz or .h5)")
        }
        if (info.st_mode & S_IFMT) != S_IFREG {
            close(fd)
            throw AttnError(
                file: path,
                "is not a regular file (a pipe or device?): expected a dump file that can be read at any offset")
        }
        descriptor = fd
        size = Int(info.st_size)
    }

    deinit {
        whole = nil  // unmapped before the descriptor is closed
        close(descriptor)
    }

    /// Reads exactly `buffer.count` bytes at `offset`, or throws naming what was expected.
    func read(at offset: Int, into buffer: UnsafeMutableRawBufferPointer, dataset: String? = nil) throws {
        guard offset >= 0, offset <= size, buffer.count <= size - offset else {
            throw AttnError(
                file: path, dataset: dataset,
                "file is truncated: expected \(buffer.count) bytes at offset \(offset), the file has \(size) bytes")
        }
        var done = 0
        while done < buffer.count {
            let n = pread(descriptor, buffer.baseAddress! + done, buffer.count - done, off_t(offset + done))
            if n < 0 {
                if errno == EINTR { continue }
                throw AttnError(
                    file: path, dataset: dataset, ReadOnlyFile.describe(errno: errno, action: "read failed"))
            }
            if n == 0 {
                throw AttnError(
                    file: path, dataset: dataset,
                    "file is truncated: expected \(buffer.count) bytes at offset \(offset)")
            }
            done += n
        }
    }

    /// `count` bytes at `offset`, mapped read-only; nil when they are not all in the file or cannot be
    /// mapped (then read them). See `MappedBytes` for what a reader must check.
    func mapped(at offset: Int, count: Int) -> MappedBytes? {
        guard offset >= 0, count > 0, offset <= size, count <= size - offset else { return nil }
        if size <= Self.mappedWhole {
            wholeLock.lock()
            if whole == nil { whole = MappedBytes(descriptor: descriptor, offset: 0, count: size) }
            let mapping = whole
            wholeLock.unlock()
            if let mapping { return MappedBytes(part: mapping, offset: offset, count: count) }
        }
        return MappedBytes(descriptor: descriptor, offset: offset, count: count)
    }

    /// Files up to this size are mapped once, whole, for as long as they are open: mapping and unmapping each
    /// layer of a small dump cost about 0.1 ms a layer (the unmapping stops the other core to flush its TLB),
    /// a tenth of a small rollout's time. Larger files are mapped a layer at a time, so that memory stays
    /// bounded by a layer.
    static let mappedWhole = 64 << 20
    /// The whole file's mapping, once made (files up to `mappedWhole`), under `wholeLock`.
    private var whole: MappedBytes?
    private let wholeLock = Lock()

    /// The file's size now (`size` is the size when it was opened); nil when it cannot be told.
    func currentSize() -> Int? {
        var info = stat()
        return fstat(descriptor, &info) == 0 ? Int(info.st_size) : nil
    }

    /// Reads `count` bytes at `offset` into a new array.
    func bytes(at offset: Int, count: Int, dataset: String? = nil) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        try out.withUnsafeMutableBytes { try read(at: offset, into: $0, dataset: dataset) }
        return out
    }

    static func describe(errno code: Int32, action: String) -> String {
        switch code {
        case ENOENT: return "no such file"
        case EACCES: return "permission denied"
        default: return "\(action): \(String(cString: strerror(code)))"
        }
    }
}
