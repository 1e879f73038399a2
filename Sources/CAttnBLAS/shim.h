#ifndef CATTN_BLAS_SHIM_H
#define CATTN_BLAS_SHIM_H
// Debian keeps OpenBLAS's cblas.h in <multiarch>/openblas-serial/ or openblas-pthread/; the serial
// build is preferred, as in Package.swift.
#if __has_include(<openblas-serial/cblas.h>)
#include <openblas-serial/cblas.h>
#elif __has_include(<openblas-pthread/cblas.h>)
#include <openblas-pthread/cblas.h>
#else
#include <cblas.h>
#endif
#endif
