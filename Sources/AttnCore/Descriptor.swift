#if canImport(Glibc)
    import Glibc
#endif

/// Writing to a file descriptor (the corresponding C call is `write`).
public enum Descriptor {
    /// Writes all of `bytes` to `descriptor`, again after an interrupted or short write; 0 when everything was
    /// written, else the `errno` of the failure.
    public static func writeAll(_ descriptor: Int32, _ bytes: UnsafeRawBufferPointer) -> Int32 {
        var done = 0
        while done < bytes.count {
            let n = write(descriptor, bytes.baseAddress! + done, bytes.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                return errno
            }
            done += n
        }
        return 0
    }
}
