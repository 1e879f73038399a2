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
