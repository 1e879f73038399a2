#ifndef CATTN_BLAS_SHIM_H
#define CATTN_BLAS_SHIM_H
// Debian keeps OpenBLAS's cblas.h in <multiarch>/openblas-pthread/ or openblas-serial/; the threaded
// build is preferred, as in Package.swift (its calls may run on several threads at once).
#if __has_include(<openblas-pthread/cblas.h>)
#include <openblas-pthread/cblas.h>
#elif __has_include(<openblas-serial/cblas.h>)
#include <openblas-serial/cblas.h>
#else
#include <cblas.h>
#endif
#endif
