internal import CAttnKernels

/// The SIGBUS guard that lets contiguous layers be read through a mapping (`MappedBytes`): a page of a file
/// truncated while it is read gives zeros and a noted fault instead of killing the process.
///
/// A signal handler is process-wide policy: the executable installs it at start-up. Until it is installed the
/// reader maps nothing and reads every layer with `pread` (slower, the same values).
public enum MappingGuard {
    /// Installs the guard's SIGBUS handler (once; later calls do nothing). false where it cannot be installed.
    /// The corresponding C call is `sigaction(SIGBUS)`, in `cattn_guard_install`.
    @discardableResult
    public static func install() -> Bool { cattn_guard_install() == 0 }
}
