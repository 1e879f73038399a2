// Variable-length strings read in a child process (see cattn_hdf5_strings.h): a corrupted global heap that makes
// libhdf5 crash or loop ends the child, not attninspect.
#define _GNU_SOURCE
#include "cattn_hdf5_strings.h"
// Debian keeps the serial build's headers in hdf5/serial/ (pkg-config hdf5-serial).
#if __has_include(<hdf5/serial/hdf5.h>)
#include <hdf5/serial/hdf5.h>
#else
#include <hdf5.h>
#endif
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/wait.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

_Static_assert(sizeof(hid_t) == sizeof(int64_t), "hid_t is a 64-bit integer (HDF5 1.10 and later)");

int cattn_read_vlen_isolated(const int64_t *objects, const int64_t *memtypes, const size_t *counts, size_t n, int is_dataset,
                              size_t limit, char **out, size_t *length, size_t *done) {
    *out = NULL; *length = 0; *done = 0;
    int fds[2];
    if (pipe(fds) != 0) return -3;
    pid_t child = fork();
    if (child < 0) { close(fds[0]); close(fds[1]); return -3; }
    if (child == 0) {
        // The child: default signal handling and no core file, so a crash ends it quietly.
        int signals[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP };
        for (size_t i = 0; i < sizeof signals / sizeof signals[0]; i++) signal(signals[i], SIG_DFL);
        struct rlimit none = { 0, 0 };
        setrlimit(RLIMIT_CORE, &none);
        signal(SIGALRM, SIG_DFL);
        signal(SIGXCPU, SIG_DFL);
        // The parent's handlers for SIGINT/SIGTERM/SIGHUP remove its temporary files: not the child's business.
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGHUP, SIG_DFL);
        signal(SIGPIPE, SIG_DFL);
        sigset_t unblock;
        sigemptyset(&unblock);
        for (size_t i = 0; i < sizeof signals / sizeof signals[0]; i++) sigaddset(&unblock, signals[i]);
        sigaddset(&unblock, SIGALRM);
        sigaddset(&unblock, SIGXCPU);
        sigprocmask(SIG_UNBLOCK, &unblock, NULL);   // the forking thread may have them blocked
        // A heap that makes libhdf5 loop (it can) ends the child too: 2 s of CPU time (SIGXCPU), where a read
        // takes microseconds. CPU time, not wall time, so that slow storage cannot make a valid file look
        // corrupt; a generous wall-clock backstop covers a child that blocks without spinning.
        struct rlimit cpu = { 2, 3 };
        setrlimit(RLIMIT_CPU, &cpu);
        alarm(120);
        close(fds[0]);
#if defined(__GLIBC__)
        // Free memory at the top of the heap back to the system (the parent keeps up to 32 MiB there, see
        // cattn_keep_freed_memory): a read past the end of a corrupt heap object then faults, as it would in
        // a process that had not, instead of reading zeros.
        malloc_trim(0);
#endif
        for (size_t k = 0; k < n; k++) {
            char **strings = calloc(counts[k] ? counts[k] : 1, sizeof(char *));
            herr_t status = strings == NULL ? -1
                : is_dataset ? H5Dread(objects[k], memtypes[k], H5S_ALL, H5S_ALL, H5P_DEFAULT, strings)
                : H5Aread(objects[k], memtypes[k], strings);
            char flag = status < 0 ? 1 : 0;
            if (write(fds[1], &flag, 1) != 1) _exit(4);
            if (status < 0) { free(strings); continue; }
            for (size_t i = 0; i < counts[k]; i++) {
                const char *text = strings[i] ? strings[i] : "";
                size_t remaining = strlen(text) + 1;
                while (remaining > 0) {
                    ssize_t written = write(fds[1], text, remaining);
                    if (written < 0 && errno == EINTR) continue;
                    if (written <= 0) _exit(4);
                    text += written;
                    remaining -= (size_t)written;
                }
            }
            // The strings are the child's to leak: it exits right after.
            free(strings);
        }
        _exit(0);
    }
    close(fds[1]);
    size_t capacity = 256, used = 0;
    int over = 0;
    char *buffer = malloc(capacity);
    for (;;) {
        if (buffer != NULL && used == capacity) {
            char *grown = realloc(buffer, capacity * 2);
            if (grown == NULL) { free(buffer); buffer = NULL; } else { buffer = grown; capacity *= 2; }
        }
        if (buffer == NULL) { char sink[4096]; if (read(fds[0], sink, sizeof sink) > 0) continue; break; }
        ssize_t got = read(fds[0], buffer + used, capacity - used);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) break;
        used += (size_t)got;
        if (used > limit) { kill(child, SIGKILL); over = 1; break; }
    }
    close(fds[0]);
    int status = 0;
    while (waitpid(child, &status, 0) < 0) { if (errno != EINTR) { free(buffer); return -1; } }
    if (buffer == NULL) return -1;
    // Complete records: a status byte, then (when 0) counts[k] NUL-ended strings.
    size_t at = 0, complete = 0;
    while (complete < n && at < used) {
        char flag = buffer[at];
        size_t end = at + 1, strings = 0;
        if (flag == 0) {
            while (strings < counts[complete] && end < used) {
                char *nul = memchr(buffer + end, 0, used - end);
                if (nul == NULL) break;
                end = (size_t)(nul - buffer) + 1;
                strings++;
            }
            if (strings < counts[complete]) break;
        }
        at = end;
        complete++;
    }
    *out = buffer;
    *length = at;
    *done = complete;
    if (over) return -4;
    if (WIFSIGNALED(status)) {
        int s = WTERMSIG(status);
        return (s == SIGSEGV || s == SIGBUS || s == SIGILL || s == SIGFPE || s == SIGABRT || s == SIGTRAP || s == SIGXCPU || s == SIGALRM) ? -2 : -1;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || complete != n) return -1;
    return 0;
}

