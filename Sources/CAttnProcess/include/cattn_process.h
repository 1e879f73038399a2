// Process-wide signal policy that must be async-signal-safe, so it is written in C: the temporary output file
// being written is removed when the process is interrupted (SIGINT, SIGTERM, SIGHUP), and the signal then ends the
// process as it would have (the shell sees 130, 143 or 129).
#ifndef CATTN_PROCESS_H
#define CATTN_PROCESS_H

/// Installs the handlers for SIGINT, SIGTERM and SIGHUP (once, from `main`, before any other thread starts) and
/// unblocks them. A signal that was ignored when the process started (`nohup`) stays ignored. The corresponding C
/// calls are `sigaction` and `pthread_sigmask`.
void cattn_remove_temporary_on_signals(void);

/// Blocks SIGINT, SIGTERM and SIGHUP on the calling thread until `cattn_temporary_created` or
/// `cattn_temporary_failed`: the temporary file is created and named to the handler with no signal in between.
void cattn_temporary_begin(void);

/// Names the temporary file just created (at most 4095 bytes; a longer name is not removed on a signal) and
/// unblocks the signals. The handler removes it until `cattn_temporary_done`.
void cattn_temporary_created(const char *path);

/// Unblocks the signals when no temporary file could be created.
void cattn_temporary_failed(void);

/// The temporary file is renamed or removed: the handler forgets it.
void cattn_temporary_done(void);

#endif
