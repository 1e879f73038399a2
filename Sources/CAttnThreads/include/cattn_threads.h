// Where a thread runs: the two Linux calls the worker pool needs that Swift's Glibc module does not expose
// (they are GNU extensions, declared only with _GNU_SOURCE).
#ifndef CATTN_THREADS_H
#define CATTN_THREADS_H

/// The CPU the calling thread is running on, or -1. The corresponding C call is `sched_getcpu`.
int cattn_current_cpu(void);

/// Moves the calling thread off CPU `cpu` onto another CPU it may run on, and leaves it free to run on any
/// of them again: its affinity is narrowed to the others (the kernel moves it at once) and then restored.
/// Returns the CPU it was moved to (where it ran while its affinity excluded `cpu`; the scheduler may move it
/// again afterwards); -1 (nothing changed) when it may run on no other CPU or the calls fail.
/// The corresponding C calls are `sched_getaffinity` and `sched_setaffinity`.
int cattn_move_off_cpu(int cpu);

#endif
