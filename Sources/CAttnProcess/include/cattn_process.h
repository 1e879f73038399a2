// Process-wide policy that the executable sets at start-up (Sources/attninspect/AttnInspect.swift lists it), in C:
// - signals.c: the temporary output file being written is removed when the process is interrupted (SIGINT,
//   SIGTERM, SIGHUP; async-signal-safe), and the signal then ends the process as it would have (130, 143, 129);
// - memory.c: malloc keeps freed layer buffers, one arena, the heap's first 32 MiB advised for huge pages.
#ifndef CATTN_PROCESS_H
#define CATTN_PROCESS_H

/// Installs the handlers for SIGINT, SIGTERM and SIGHUP (once, from `main`) and unblocks them. A signal that was
/// ignored when the process started (`nohup`) stays ignored. The corresponding C calls are `sigaction` and
/// `pthread_sigmask`.
void cattn_remove_temporary_on_signals(void);

/// Names the temporary file about to be created (`open` with `O_EXCL`), before it exists, so that no signal can
/// come between its creation and its naming; the handler removes it until `cattn_temporary_clear`. Returns 0 when
/// the name is too long to keep (4095 bytes at most), 1 otherwise.
int cattn_temporary_set(const char *path);

/// The temporary file is renamed, removed, or was never made: the handler forgets it.
void cattn_temporary_clear(void);

/// Keeps freed memory in malloc's heap (no mmap or trimming below 1 GiB, one arena): buffers allocated and freed
/// once per layer are then reused without being zero-filled and faulted in again. Also asks for the heap's first
/// 32 MiB to be backed by transparent huge pages (`MADV_HUGEPAGE`). Called once from `main`; does nothing where
/// glibc's mallopt is missing. The corresponding C calls are `mallopt` and `madvise`. Returns 1 when the tuning was
/// applied (glibc), 0 otherwise.
int cattn_keep_freed_memory(void);

#endif
