#ifndef CATTN_BLAS_SHIM_H
#define CATTN_BLAS_SHIM_H
#include <cblas.h>
#endif
