#ifndef CATTN_DEFLATE_SHIM_H
#define CATTN_DEFLATE_SHIM_H
// libdeflate: whole-buffer zlib/deflate decompression, 2-3x faster than zlib's inflate.
// Used for HDF5 gzip chunks, which are decompressed whole on worker threads.
#include <libdeflate.h>
#endif
