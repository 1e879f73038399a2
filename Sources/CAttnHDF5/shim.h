#ifndef CATTN_HDF5_SHIM_H
#define CATTN_HDF5_SHIM_H
// Debian keeps the serial build's headers in hdf5/serial/ (pkg-config hdf5-serial).
#if __has_include(<hdf5/serial/hdf5.h>)
#include <hdf5/serial/hdf5.h>
#else
#include <hdf5.h>
#endif
#include <stdlib.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <string.h>
#include <errno.h>
#include <signal.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/wait.h>

// HDF5's type ids and flags are macros (many around H5OPEN); Swift cannot import them.
// These accessors return them with the right C type.
static inline hid_t cattn_h5p_default(void) { return H5P_DEFAULT; }
static inline hid_t cattn_h5s_all(void) { return H5S_ALL; }
static inline hid_t cattn_h5e_default(void) { return H5E_DEFAULT; }
static inline unsigned cattn_h5f_acc_rdonly(void) { return H5F_ACC_RDONLY; }
static inline hid_t cattn_native_float(void) { return H5T_NATIVE_FLOAT; }
static inline hid_t cattn_native_double(void) { return H5T_NATIVE_DOUBLE; }
static inline hid_t cattn_native_int64(void) { return H5T_NATIVE_INT64; }
static inline hid_t cattn_c_s1(void) { return H5T_C_S1; }
static inline size_t cattn_variable_size(void) { return H5T_VARIABLE; }

/// Turns off HDF5's automatic error printing on the calling thread.
static inline void cattn_silence_errors(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

/// The address of an object in its file (to recognise a group reached twice through hard links).
/// Returns a negative value on error. The corresponding C call is `H5Oget_info2` (HDF5 1.10).
static inline herr_t cattn_object_address(hid_t object, unsigned long *fileno, haddr_t *address) {
    H5O_info_t info;
    herr_t status = H5Oget_info2(object, &info, H5O_INFO_BASIC);
    if (status >= 0) { *fileno = info.fileno; *address = info.addr; }
    return status;
}

/// Whether the link `name` in `group` is a hard link (1), another kind (0), or unreadable (< 0).
static inline int cattn_is_hard_link(hid_t group, const char *name) {
    H5L_info_t info;
    if (H5Lget_info(group, name, &info, H5P_DEFAULT) < 0) return -1;
    return info.type == H5L_TYPE_HARD ? 1 : 0;
}

/// `HADDR_UNDEF`: the address of storage that was never allocated.
static inline haddr_t cattn_haddr_undef(void) { return HADDR_UNDEF; }

/// Reads the `count` variable-length strings of `object`, a dataset (whole) when `is_dataset` is non-zero, else
/// an attribute (memory type `memtype`, variable-length C strings), in a child process, so that a corrupted
/// global heap, which libhdf5 1.10 follows without checking (`H5HG_read` crashes on some, and
/// `H5HG__cache_heap_deserialize` loops forever on a zero-sized object), ends the child and not the caller. On success returns 0 and sets `*out` to a malloc'ed
/// buffer of the strings, each ended by NUL (a null string as an empty one), and `*length` to its size; the
/// caller frees it. Returns -1 when libhdf5 reported an error (or the child could not be waited for, or was
/// killed from outside), -2 when the child crashed or spun for 2 s of CPU time (a corrupt heap), -3 when no child could
/// be started (the caller may read directly).
static inline int cattn_read_vlen_isolated(hid_t object, int is_dataset, hid_t memtype, size_t count, char **out, size_t *length) {
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
        char **strings = calloc(count ? count : 1, sizeof(char *));
        herr_t status = strings == NULL ? -1
            : is_dataset ? H5Dread(object, memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, strings)
            : H5Aread(object, memtype, strings);
        if (status < 0) _exit(3);
        for (size_t i = 0; i < count; i++) {
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
        _exit(0);
    }
    close(fds[1]);
    size_t capacity = 256, used = 0;
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
    }
    close(fds[0]);
    int status = 0;
    while (waitpid(child, &status, 0) < 0) { if (errno != EINTR) { free(buffer); return -1; } }
    if (WIFSIGNALED(status)) {
        int s = WTERMSIG(status);
        free(buffer);
        return (s == SIGSEGV || s == SIGBUS || s == SIGILL || s == SIGFPE || s == SIGABRT || s == SIGTRAP || s == SIGXCPU || s == SIGALRM) ? -2 : -1;
    }
    if (!WIFEXITED(status)) { free(buffer); return -1; }
    if (WEXITSTATUS(status) != 0 || buffer == NULL) { free(buffer); return -1; }
    *out = buffer;
    *length = used;
    return 0;
}

#endif
