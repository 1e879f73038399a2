internal import CAttnKernels

/// Process-wide memory settings for reading dumps layer by layer.
public enum ProcessMemory {
    /// Keeps freed layer buffers in malloc's heap, so the buffers allocated and freed once per layer are
    /// reused instead of being mapped, zero-filled and faulted in again each time. Call once at start-up.
    public static func keepFreedBuffers() { cattn_keep_freed_memory() }
}
