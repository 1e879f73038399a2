internal import CAttnKernels

/// Process-wide memory settings for reading dumps layer by layer.
public enum ProcessMemory {
    /// Keeps freed layer buffers in malloc's heap, so the buffers allocated and freed once per layer are
    /// reused instead of being mapped, zero-filled and faulted in again each time, and backs the heap's
    /// first 32 MiB with huge pages where the kernel allows (one fault per 2 MiB). Call once at start-up.
    public static func keepFreedBuffers() { cattn_keep_freed_memory() }
}
