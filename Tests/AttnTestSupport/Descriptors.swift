#if canImport(Glibc)
    import Glibc
#endif

/// Reading pipes and /proc files to their end with poll(2) and read(2), retried when a signal interrupts
/// them. Foundation's `FileHandle.readDataToEndOfFile` ends the whole test process (a fatal error) when a
/// read fails with EINTR, which a child process ending meanwhile can cause; and reading two pipes one after
/// the other can wait forever when the child fills the second one first.
public enum Descriptors {
    /// Everything readable from each descriptor until it reports end of file, read concurrently.
    /// nil when a read fails with anything but EINTR or EAGAIN.
    /// - Parameter seconds: give up (nil) when the descriptors are still open after this long.
    public static func readAll(_ descriptors: [Int32], seconds: Double? = nil) -> [[UInt8]]? {
        var outputs = [[UInt8]](repeating: [], count: descriptors.count)
        var open = Set(descriptors.indices)
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        let deadline = seconds.map { now() + $0 }
        while !open.isEmpty {
            let order = open.sorted()
            var polled = order.map { pollfd(fd: descriptors[$0], events: Int16(POLLIN), revents: 0) }
            var wait: Int32 = -1
            if let deadline {
                let left = deadline - now()
                if left <= 0 { return nil }
                wait = Int32(min(left * 1000, 60_000).rounded(.up))
            }
            let ready = poll(&polled, nfds_t(polled.count), wait)
            if ready < 0 {
                if errno == EINTR { continue }
                return nil
            }
            for (slot, index) in order.enumerated() where polled[slot].revents != 0 {
                let n = chunk.withUnsafeMutableBytes { read(descriptors[index], $0.baseAddress, $0.count) }
                if n < 0 {
                    if errno == EINTR || errno == EAGAIN { continue }
                    return nil
                }
                if n == 0 { open.remove(index) } else { outputs[index] += chunk[0..<n] }
            }
        }
        return outputs
    }

    private static func now() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
    }

    /// The whole file at `path` (for /proc files, whose size reads as 0); nil when it cannot be read.
    public static func readFile(_ path: String) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        return readAll([fd])?.first
    }
}
