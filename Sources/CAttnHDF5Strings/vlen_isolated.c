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

// The child's settings: default signal handling and no core file, so a crash ends it quietly; limits on CPU and
// wall-clock time, so a loop ends it too.
static void child_defaults(void) {
    {
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
#if defined(__GLIBC__)
        // Free memory at the top of the heap back to the system (the parent keeps up to 32 MiB there, see
        // cattn_keep_freed_memory): a read past the end of a corrupt heap object then faults, as it would in
        // a process that had not, instead of reading zeros.
        malloc_trim(0);
#endif
    }
}

// Writes all of `data` to `fd`, or ends the child.
static void write_all(int fd, const void *data, size_t size) {
    const char *at = data;
    while (size > 0) {
        ssize_t written = write(fd, at, size);
        if (written < 0 && errno == EINTR) continue;
        if (written <= 0) _exit(4);
        at += written;
        size -= (size_t)written;
    }
}

// Reads what the child sends until it closes the pipe (or more than `limit` bytes, then it is killed), and waits
// for it. Returns the buffer (NULL when memory ran out), its size in *used, the wait status in *status, and
// whether the limit stopped it in *over; -1 when the child could not be waited for.
static int collect(int fd, pid_t child, size_t limit, char **out, size_t *used, int *status, int *over) {
    size_t capacity = 256;
    *used = 0; *over = 0;
    char *buffer = malloc(capacity);
    for (;;) {
        if (buffer != NULL && *used == capacity) {
            char *grown = realloc(buffer, capacity * 2);
            if (grown == NULL) { free(buffer); buffer = NULL; } else { buffer = grown; capacity *= 2; }
        }
        if (buffer == NULL) { char sink[4096]; if (read(fd, sink, sizeof sink) > 0) continue; break; }
        ssize_t got = read(fd, buffer + *used, capacity - *used);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) break;
        *used += (size_t)got;
        if (*used > limit) { kill(child, SIGKILL); *over = 1; break; }
    }
    close(fd);
    *status = 0;
    while (waitpid(child, status, 0) < 0) { if (errno != EINTR) { free(buffer); *out = NULL; return -1; } }
    *out = buffer;
    return 0;
}

static int crashed(int status) {
    if (!WIFSIGNALED(status)) return 0;
    int s = WTERMSIG(status);
    return s == SIGSEGV || s == SIGBUS || s == SIGILL || s == SIGFPE || s == SIGABRT || s == SIGTRAP || s == SIGXCPU
        || s == SIGALRM;
}

// Starts a child that writes to `fds[1]`: in the child returns 0 (its defaults set, the read end closed), in the
// parent the child's pid (the write end closed), or -1 when no child could be made.
static pid_t start_child(int fds[2]) {
    if (pipe(fds) != 0) return -1;
    pid_t child = fork();
    if (child < 0) { close(fds[0]); close(fds[1]); return -1; }
    if (child == 0) { child_defaults(); close(fds[0]); return 0; }
    close(fds[1]);
    return child;
}

// Hands the complete records to the caller and says how the child ended (see the header's return values).
static int finish(char *buffer, size_t at, size_t complete, size_t n, int over, int status, char **out,
                  size_t *length, size_t *done) {
    *out = buffer;
    *length = at;
    *done = complete;
    if (over) return -4;
    if (crashed(status)) return -2;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || complete != n) return -1;
    return 0;
}

static herr_t send_name(hid_t location, const char *name, const H5A_info_t *info, void *data) {
    (void)location; (void)info;
    int fd = *(int *)data;
    write_all(fd, name, strlen(name) + 1);
    return 0;
}

int cattn_attribute_names_isolated(const int64_t *objects, size_t n, size_t limit, char **out, size_t *length,
                                   size_t *done) {
    *out = NULL; *length = 0; *done = 0;
    int fds[2];
    pid_t child = start_child(fds);
    if (child < 0) return -3;
    if (child == 0) {
        for (size_t k = 0; k < n; k++) {
            // A record: the names, each ended by NUL, then a status byte after an empty name (1: libhdf5 refused).
            hsize_t index = 0;
            herr_t status = H5Aiterate2(objects[k], H5_INDEX_NAME, H5_ITER_NATIVE, &index, send_name, &fds[1]);
            char end[2] = { 0, status < 0 ? 1 : 0 };
            write_all(fds[1], end, 2);
        }
        _exit(0);
    }
    char *buffer; size_t used; int status, over;
    if (collect(fds[0], child, limit, &buffer, &used, &status, &over) != 0 || buffer == NULL) return -1;
    // Complete records: names up to an empty one, then the status byte.
    size_t at = 0, complete = 0;
    while (complete < n && at < used) {
        size_t end = at;
        int closed = 0;
        while (end < used) {
            char *nul = memchr(buffer + end, 0, used - end);
            if (nul == NULL) break;
            size_t name = (size_t)(nul - buffer) - end;
            end = (size_t)(nul - buffer) + 1;
            if (name == 0) { closed = end < used; end += closed ? 1 : 0; break; }
        }
        if (!closed) break;
        at = end;
        complete++;
    }
    return finish(buffer, at, complete, n, over, status, out, length, done);
}

int cattn_read_vlen_isolated(const int64_t *objects, const int64_t *memtypes, const size_t *counts, size_t n, int is_dataset,
                              size_t limit, char **out, size_t *length, size_t *done) {
    *out = NULL; *length = 0; *done = 0;
    int fds[2];
    pid_t child = start_child(fds);
    if (child < 0) return -3;
    if (child == 0) {
        for (size_t k = 0; k < n; k++) {
            char **strings = calloc(counts[k] ? counts[k] : 1, sizeof(char *));
            herr_t status = strings == NULL ? -1
                : is_dataset ? H5Dread(objects[k], memtypes[k], H5S_ALL, H5S_ALL, H5P_DEFAULT, strings)
                : H5Aread(objects[k], memtypes[k], strings);
            char flag = status < 0 ? 1 : 0;
            write_all(fds[1], &flag, 1);
            if (status < 0) { free(strings); continue; }
            for (size_t i = 0; i < counts[k]; i++) {
                const char *text = strings[i] ? strings[i] : "";
                write_all(fds[1], text, strlen(text) + 1);
            }
            // The strings are the child's to leak: it exits right after.
            free(strings);
        }
        _exit(0);
    }
    char *buffer; size_t used; int status, over;
    if (collect(fds[0], child, limit, &buffer, &used, &status, &over) != 0 || buffer == NULL) return -1;
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
    return finish(buffer, at, complete, n, over, status, out, length, done);
}

