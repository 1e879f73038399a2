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
static inline hid_t cattn_native_uint64(void) { return H5T_NATIVE_UINT64; }
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

/// The dataspace of a virtual dataset as its creation properties hold it (its first mapping's virtual space), without
/// opening its source files as `H5Dget_space` does for an unlimited mapping; a scalar space when it has no mapping.
/// The corresponding C calls are `H5Pget_virtual_count` and `H5Pget_virtual_vspace`.
static inline hid_t cattn_virtual_space(hid_t dcpl) {
    size_t count = 0;
    if (H5Pget_virtual_count(dcpl, &count) < 0) return -1;
    return count > 0 ? H5Pget_virtual_vspace(dcpl, 0) : H5Screate(H5S_SCALAR);
}

/// `HADDR_UNDEF`: the address of storage that was never allocated.
static inline haddr_t cattn_haddr_undef(void) { return HADDR_UNDEF; }

/// Reads the variable-length strings of `n` objects in one child process, so that a corrupted global heap, which
/// libhdf5 1.10 follows without checking (`H5HG_read` crashes on some, and `H5HG__cache_heap_deserialize` loops
/// forever on a zero-sized object), ends the child and not the caller. Object i (`objects[i]`, a dataset read
/// whole when `is_dataset` is non-zero, else an attribute) holds `counts[i]` strings, read with the memory type
/// `memtypes[i]` (variable-length C strings).
/// The child writes, object after object, a status byte (0: read, 1: libhdf5 reported an error) and, when read, the
/// strings, each ended by NUL (a null string as an empty one). On return `*out` is a malloc'ed buffer of those
/// records (the caller frees it, also on failure), `*length` its size, and `*done` the number of objects whose
/// record is complete. Returns 0 when the child finished, -2 when it crashed or spun for 2 s of CPU time (object
/// `*done` is the one that crashed it; the rest were not read), -4 when it sent more than `limit` bytes (it is
/// stopped), -1 when the child could not be waited for, was killed from outside or could not write, -3 when no child
/// could be started (the caller may read directly).
static inline int cattn_read_vlen_isolated(const hid_t *objects, const hid_t *memtypes, const size_t *counts, size_t n, int is_dataset,
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

/// The links of a group in name order, by `H5Literate2` (one pass, where `H5Lget_name_by_idx` walks an old-style
/// group's B-tree from the start at every call): `on_link(context, name, is_hard)` for each; it returns non-zero to
/// stop. Returns a negative value on error.
typedef int (*cattn_link_callback)(void *context, const char *name, int is_hard);
struct cattn_link_iteration { cattn_link_callback callback; void *context; };
static inline herr_t cattn_link_step(hid_t group, const char *name, const H5L_info_t *info, void *data) {
    (void)group;
    struct cattn_link_iteration *iteration = data;
    return iteration->callback(iteration->context, name, info->type == H5L_TYPE_HARD) ? 1 : 0;
}
static inline herr_t cattn_link_names(hid_t group, cattn_link_callback callback, void *context) {
    struct cattn_link_iteration iteration = { callback, context };
    hsize_t index = 0;
    return H5Literate(group, H5_INDEX_NAME, H5_ITER_INC, &index, cattn_link_step, &iteration);
}

/// The number of attributes of an object (from its header, without reading them), or a negative value on error.
/// The corresponding C call is `H5Oget_info2` with `H5O_INFO_NUM_ATTRS`.
static inline long long cattn_attribute_count(hid_t object) {
    H5O_info_t info;
    if (H5Oget_info2(object, &info, H5O_INFO_NUM_ATTRS) < 0) return -1;
    return (long long)info.num_attrs;
}

/// The names of an object's attributes in the order libhdf5 stores them, by `H5Aiterate2` (one pass, where
/// `H5Aopen_by_idx` rebuilds the sorted list at every call): `on_name(context, name)` for each; it returns
/// non-zero to stop. Returns a negative value on error.
typedef int (*cattn_name_callback)(void *context, const char *name);
struct cattn_name_iteration { cattn_name_callback callback; void *context; };
static inline herr_t cattn_attribute_name_step(hid_t location, const char *name, const H5A_info_t *info, void *data) {
    (void)location; (void)info;
    struct cattn_name_iteration *iteration = data;
    return iteration->callback(iteration->context, name) ? 1 : 0;
}
static inline herr_t cattn_attribute_names(hid_t object, cattn_name_callback callback, void *context) {
    struct cattn_name_iteration iteration = { callback, context };
    hsize_t index = 0;
    return H5Aiterate2(object, H5_INDEX_NAME, H5_ITER_NATIVE, &index, cattn_attribute_name_step, &iteration);
}


#endif
