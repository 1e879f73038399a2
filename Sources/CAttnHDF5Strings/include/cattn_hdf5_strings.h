// attninspect's one defence against libhdf5 1.10's unchecked global heaps: variable-length strings are read in a
// child process (vlen_isolated.c). hid_t is int64_t in HDF5 1.10 and later; this header does not include hdf5.h.
#ifndef CATTN_HDF5_STRINGS_H
#define CATTN_HDF5_STRINGS_H
#include <stddef.h>
#include <stdint.h>

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
int cattn_read_vlen_isolated(const int64_t *objects, const int64_t *memtypes, const size_t *counts, size_t n, int is_dataset,
                              size_t limit, char **out, size_t *length, size_t *done);
/// Lists the attribute names of `n` objects (`H5Aiterate2`) in one child process, so that a damaged attribute table,
/// on which libhdf5 1.10 crashes while releasing the half-built table (`H5A__attr_release_table`), ends the child and
/// not the caller. The child writes, object after object, the names each ended by NUL, then an empty name and a
/// status byte (0: listed, 1: libhdf5 reported an error). `*out`, `*length` and `*done` and the return values are
/// as for `cattn_read_vlen_isolated` (-2: object `*done` crashed the child).
int cattn_attribute_names_isolated(const int64_t *objects, size_t n, size_t limit, char **out, size_t *length,
                                   size_t *done);

#endif
