#ifndef CATTN_HDF5_SHIM_H
#define CATTN_HDF5_SHIM_H
#include <hdf5.h>
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
static inline hsize_t cattn_hsize_unlimited(void) { return H5S_UNLIMITED; }

/// Turns off HDF5's automatic error printing on the calling thread.
static inline void cattn_silence_errors(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

/// Checks the file signature without opening it: > 0 HDF5, 0 not HDF5, < 0 error.
static inline htri_t cattn_is_hdf5(const char *path) { return H5Fis_hdf5(path); }

#endif
