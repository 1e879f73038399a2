#ifndef CATTN_HDF5_SHIM_H
#define CATTN_HDF5_SHIM_H
// Debian keeps the serial build's headers in hdf5/serial/ (pkg-config hdf5-serial).
#if __has_include(<hdf5/serial/hdf5.h>)
#include <hdf5/serial/hdf5.h>
#else
#include <hdf5.h>
#endif
#include <stdlib.h>

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

#endif
