// Process-wide signal policy that must be async-signal-safe, so it is written in C: the temporary output file
// being written is removed when the process is interrupted (SIGINT, SIGTERM, SIGHUP), and the signal then ends the
// process as it would have (the shell sees 130, 143 or 129).
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

#endif
