// Scores of recomputed attention: scale · Q·Kᵀ for a block of query rows against a range of keys, from keys
// packed once per head into panels of 16 (cattn_pack_keys), so that a block of a few dozen rows costs no packing.
// AVX2 + FMA only: a 6 × 16 tile of scores held in 12 registers while the d products are summed in float (one
// FMA per product, in the order of d, as a BLAS kernel sums them). Without AVX2 the callers use BLAS.
#include "cattn_kernels.h"

#include <string.h>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>

#define PANEL 16
#define TILE_ROWS 6
#define AVX2 __attribute__((target("avx2,fma")))

// One accumulator pair per row of the tile: the row's 16 scores.
#define ROW_STEP(r)                                                                                             \
    if (mr > r) {                                                                                               \
        __m256 a = _mm256_broadcast_ss(q + r * d + p);                                                          \
        c##r##0 = _mm256_fmadd_ps(a, b0, c##r##0);                                                             \
        c##r##1 = _mm256_fmadd_ps(a, b1, c##r##1);                                                             \
    }
#define ROW_STORE(r)                                                                                            \
    if (mr > r) {                                                                                               \
        _mm256_storeu_ps(out + r * ldc, _mm256_mul_ps(c##r##0, scale));                                        \
        _mm256_storeu_ps(out + r * ldc + 8, _mm256_mul_ps(c##r##1, scale));                                    \
    }

/// The scores of `mr` ≤ 6 query rows (`d` floats apart from `q`) against the 16 keys of one panel, times `scale`,
/// into `mr` rows of 16 floats `ldc` apart from `out`. Inlined with a constant `mr`, so unused rows cost nothing.
AVX2 static inline __attribute__((always_inline)) void tile(const int mr, const float *q, size_t d,
                                                            const float *panel, float *out, size_t ldc, __m256 scale) {
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    for (size_t p = 0; p < d; p++) {
        __m256 b0 = _mm256_loadu_ps(panel + p * PANEL), b1 = _mm256_loadu_ps(panel + p * PANEL + 8);
        ROW_STEP(0) ROW_STEP(1) ROW_STEP(2) ROW_STEP(3) ROW_STEP(4) ROW_STEP(5)
    }
    ROW_STORE(0) ROW_STORE(1) ROW_STORE(2) ROW_STORE(3) ROW_STORE(4) ROW_STORE(5)
}

AVX2 static void tile6(const float *q, size_t d, const float *panel, float *out, size_t ldc, __m256 scale) {
    tile(6, q, d, panel, out, ldc, scale);
}

AVX2 static void tile_rest(int mr, const float *q, size_t d, const float *panel, float *out, size_t ldc,
                           __m256 scale) {
    switch (mr) {
    case 5: tile(5, q, d, panel, out, ldc, scale); break;
    case 4: tile(4, q, d, panel, out, ldc, scale); break;
    case 3: tile(3, q, d, panel, out, ldc, scale); break;
    case 2: tile(2, q, d, panel, out, ldc, scale); break;
    default: tile(1, q, d, panel, out, ldc, scale); break;
    }
}

AVX2 static void score_block_avx2(const float *q, size_t rows, size_t d, const float *packed, size_t first,
                                  size_t last, float factor, float *out, size_t ldc) {
    const __m256 scale = _mm256_set1_ps(factor);
    // Panel by panel, every tile of rows against it while its d × 16 floats are in L1.
    for (size_t j0 = first / PANEL * PANEL; j0 < last; j0 += PANEL) {
        const float *panel = packed + j0 * d;
        const size_t lo = j0 < first ? first : j0, hi = j0 + PANEL < last ? j0 + PANEL : last;
        const int whole = lo == j0 && hi == j0 + PANEL;
        for (size_t i = 0; i < rows; i += TILE_ROWS) {
            const int mr = rows - i < TILE_ROWS ? (int)(rows - i) : TILE_ROWS;
            const float *qi = q + i * d;
            if (whole && mr == TILE_ROWS) {
                tile6(qi, d, panel, out + i * ldc + j0, ldc, scale);
                continue;
            }
            // A panel cut by the range, or the last rows: through a tile of our own, then only the range.
            float t[TILE_ROWS * PANEL];
            if (mr == TILE_ROWS) tile6(qi, d, panel, t, PANEL, scale);
            else tile_rest(mr, qi, d, panel, t, PANEL, scale);
            for (int r = 0; r < mr; r++) memcpy(out + (i + r) * ldc + lo, t + r * PANEL + (lo - j0), (hi - lo) * 4);
        }
    }
}
#endif

size_t cattn_packed_keys_floats(size_t n, size_t d) { return (n + 15) / 16 * 16 * d; }

void cattn_pack_keys(const float *k, size_t n, size_t d, float *out) {
    for (size_t j0 = 0; j0 < n; j0 += 16) {
        float *panel = out + j0 * d;
        for (size_t c = 0; c < 16; c++) {
            if (j0 + c < n) {
                const float *key = k + (j0 + c) * d;
                for (size_t p = 0; p < d; p++) panel[p * 16 + c] = key[p];
            } else {
                for (size_t p = 0; p < d; p++) panel[p * 16 + c] = 0;
            }
        }
    }
}

int cattn_score_block_at(int level, const float *q, size_t rows, size_t d, const float *packed, size_t first,
                         size_t last, float scale, float *out, size_t ldc) {
#if defined(__x86_64__) || defined(_M_X64)
    if (level >= 1 && level <= cattn_kernels_supported()) {
        if (rows > 0 && first < last) score_block_avx2(q, rows, d, packed, first, last, scale, out, ldc);
        return 1;
    }
#endif
    (void)level, (void)q, (void)rows, (void)d, (void)packed, (void)first, (void)last, (void)scale, (void)out;
    (void)ldc;
    return 0;
}

int cattn_score_block(const float *q, size_t rows, size_t d, const float *packed, size_t first, size_t last,
                      float scale, float *out, size_t ldc) {
    return cattn_score_block_at(cattn_kernels_vectorised(), q, rows, d, packed, first, last, scale, out, ldc);
}
