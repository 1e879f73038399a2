// attninspect's hot loops. Every public function dispatches once per call on a cached CPU check:
// AVX2 + FMA + F16C versions (x86-64 only, compiled with per-function target attributes so the
// rest of the binary stays portable) or portable C versions that use the same polynomials. The row
// statistics and softmax, the hottest loops of `stats`, also have AVX-512F versions (16 lanes; the same
// polynomials written again at that width).
//
// ln and exp are Cephes-style polynomials (the float versions used by sse_mathfun/avx_mathfun):
// ln(p) = e·ln 2 + ln(m) with m in [√½, √2); the mantissa part is a float polynomial (about 1 ulp of
// ln m, i.e. ≤ 3e-8 absolute), and e·ln 2 + ln m and p·ln p are formed in double, so −Σ p ln p over a
// row of probabilities is accurate to a few 1e-8. exp is accurate to about 2 float ulps.
#include "cattn_kernels.h"

#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(_M_X64)
#define CATTN_X86 1
#include <immintrin.h>
#else
#define CATTN_X86 0
#endif

// ---------------------------------------------------------------------------------------- dispatch

static int vector_state = -1;

int cattn_kernels_supported(void) {
#if CATTN_X86
    __builtin_cpu_init();
    if (!(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c"))) return 0;
    return __builtin_cpu_supports("avx512f") ? 2 : 1;
#else
    return 0;
#endif
}

int cattn_kernels_vectorised(void) {
    int state = __atomic_load_n(&vector_state, __ATOMIC_RELAXED);
    if (state < 0) {
#if CATTN_X86
        state = cattn_kernels_supported();
        // For tests and comparisons: force the portable versions, or the AVX2 ones on an AVX-512 CPU.
        const char *portable = getenv("ATTNINSPECT_PORTABLE_KERNELS");
        if (portable && *portable && *portable != '0') state = 0;
        const char *noAVX512 = getenv("ATTNINSPECT_NO_AVX512");
        if (noAVX512 && *noAVX512 && *noAVX512 != '0' && state > 1) state = 1;
#else
        state = 0;
#endif
        __atomic_store_n(&vector_state, state, __ATOMIC_RELAXED);
    }
    return state;
}

// ------------------------------------------------------------------------------- scalar building blocks

static const double LN2 = 0.69314718055994530942;

static inline float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exponent = (h >> 10) & 0x1Fu;
    uint32_t mantissa = h & 0x3FFu;
    uint32_t bits;
    if (exponent == 0) {
        float magnitude = (float)mantissa * 5.9604644775390625e-8f;  // mantissa · 2^-24, exact
        memcpy(&bits, &magnitude, 4);
        bits |= sign;
    } else if (exponent == 31) {
        bits = sign | 0x7F800000u | (mantissa << 13);
    } else {
        bits = sign | ((exponent + 112u) << 23) | (mantissa << 13);
    }
    float out;
    memcpy(&out, &bits, 4);
    return out;
}

/// ln(1 + x) for x in [√½ − 1, √2 − 1): Cephes logf's polynomial.
static inline float log1p_reduced(float x) {
    float z = x * x;
    float y = 7.0376836292E-2f;
    y = y * x - 1.1514610310E-1f;
    y = y * x + 1.1676998740E-1f;
    y = y * x - 1.2420140846E-1f;
    y = y * x + 1.4249322787E-1f;
    y = y * x - 1.6668057665E-1f;
    y = y * x + 2.0000714765E-1f;
    y = y * x - 2.4999993993E-1f;
    y = y * x + 3.3333331174E-1f;
    y = y * x * z;
    y += -0.5f * z;
    return x + y;
}

/// ln p in double for a normal, positive, finite float p.
static inline double log_split(float p) {
    uint32_t bits;
    memcpy(&bits, &p, 4);
    int e = (int)(bits >> 23) - 126;             // p = m · 2^e, m in [0.5, 1)
    bits = (bits & 0x007FFFFFu) | 0x3F000000u;
    float m;
    memcpy(&m, &bits, 4);
    float x;
    if (m < 0.707106781186547524f) {
        e -= 1;
        x = m + m - 1.0f;
    } else {
        x = m - 1.0f;
    }
    return (double)e * LN2 + (double)log1p_reduced(x);
}

/// exp(x) for x ≤ 0 (softmax arguments): Cephes expf; 0 below ln(FLT_MIN).
static inline float exp_nonpositive(float x) {
    if (x != x) return x;                        // NaN propagates (so a row with one becomes all NaN)
    if (x < -87.33654475f) return 0.0f;
    float fx = floorf(x * 1.44269504088896341f + 0.5f);
    x = x - fx * 0.693359375f;
    x = x - fx * -2.12194440e-4f;
    float z = x * x;
    float y = 1.9875691500E-4f;
    y = y * x + 1.3981999507E-3f;
    y = y * x + 8.3334519073E-3f;
    y = y * x + 4.1665795894E-2f;
    y = y * x + 1.6666665459E-1f;
    y = y * x + 5.0000001201E-1f;
    y = y * z + x + 1.0f;
    int n = (int)fx + 127;
    uint32_t bits = (uint32_t)n << 23;
    float scale;
    memcpy(&scale, &bits, 4);
    return y * scale;
}

/// The result of a plain row (see row_statistics_plain_avx2) from its smallest and largest bit patterns
/// and its three sums; 0 when the largest pattern shows the row is not plain.
static int plain_row(cattn_row_stats *out, size_t n, uint32_t lowest, uint32_t highest, double sum, double exps, double mants) {
    if (highest >= 0x7F800000u) return 0;
    float lo, hi;
    memcpy(&lo, &lowest, 4);
    memcpy(&hi, &highest, 4);
    out->sum = sum;
    out->entropy = 0.0 - (exps * LN2 + mants);   // 0.0 −: a row of zeros gives +0, as the careful version does
    out->min = lo;
    out->max = hi;
    out->finite = (int64_t)n;
    out->nan = out->inf = out->negative = 0;
    return 1;
}

// ---------------------------------------------------------------------------------- portable versions

/// The float16 bit pattern of element `i` of `s` (byte-swapped when `swap`).
static inline uint16_t half_at(const unsigned char *s, size_t i, int swap) {
    uint16_t h;
    memcpy(&h, s + 2 * i, 2);
    return swap ? (uint16_t)((h >> 8) | (h << 8)) : h;
}

static void decode_f16_portable(const void *src, float *dst, size_t n, int swap) {
    const unsigned char *s = (const unsigned char *)src;
    for (size_t i = 0; i < n; i++) dst[i] = half_to_float(half_at(s, i, swap));
}

static void row_statistics_portable(const float *row, size_t n, cattn_row_stats *out) {
    double sum = 0, entropy = 0, lo = INFINITY, hi = -INFINITY;
    int64_t finite = 0, nan = 0, inf = 0, negative = 0;
    for (size_t i = 0; i < n; i++) {
        float p = row[i];
        if (isnan(p)) { nan++; continue; }
        if (isinf(p)) { inf++; continue; }
        finite++;
        if (p < 0) negative++;
        if (p < lo) lo = p;
        if (p > hi) hi = p;
        sum += p;
        if (p >= FLT_MIN) entropy -= (double)p * log_split(p);
    }
    out->sum = sum;
    out->entropy = entropy;
    out->min = lo;
    out->max = hi;
    out->finite = finite;
    out->nan = nan;
    out->inf = inf;
    out->negative = negative;
}

/// −p·ln p for every float16 bit pattern of a p > 0 (libm's log in double: the exact value to a few double ulps),
/// 0 for the others (±0, negative values, NaN, ±Inf): a float16 row's entropy is a sum of look-ups. f16
/// subnormals are float normals, so they count, as they do in cattn_row_statistics. 512 KiB, built once
/// (f16_entropy_once) by the first call that needs it.
static double f16_entropy_terms[1 << 16];
static pthread_once_t f16_entropy_once = PTHREAD_ONCE_INIT;

static void build_f16_entropy_terms(void) {
    for (uint16_t h = 1; h < 0x7C00u; h++) {
        double p = half_to_float(h);
        f16_entropy_terms[h] = 0.0 - p * log(p);
    }
}

/// −Σ p·ln p over a row of float16 values, from the table: four running sums (so that the look-ups overlap), value
/// i in sum i mod 4, added as (e0 + e1) + (e2 + e3). decode_f16_statistics_avx2 adds in this very order.
static inline double f16_entropy(const unsigned char *s, size_t n, int swap) {
    double e[4] = {0, 0, 0, 0};
    for (size_t i = 0; i < n; i++) e[i & 3] += f16_entropy_terms[half_at(s, i, swap)];
    return (e[0] + e[1]) + (e[2] + e[3]);
}

static void decode_f16_statistics_portable(const void *src, float *dst, size_t n, int swap, cattn_row_stats *out) {
    decode_f16_portable(src, dst, n, swap);
    row_statistics_portable(dst, n, out);
    out->entropy = f16_entropy((const unsigned char *)src, n, swap);
}

static void softmax_row_portable(float *row, size_t visible, size_t n) {
    float peak = -INFINITY;
    for (size_t j = 0; j < visible; j++) peak = row[j] > peak ? row[j] : peak;
    double sum = 0;
    for (size_t j = 0; j < visible; j++) {
        float e = exp_nonpositive(row[j] - peak);
        row[j] = e;
        sum += e;
    }
    double inverse = 1.0 / sum;
    for (size_t j = 0; j < visible; j++) row[j] = (float)((double)row[j] * inverse);
    for (size_t j = visible; j < n; j++) row[j] = 0;
}

static inline void accumulate_body(double *acc, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) acc[i] += (double)x[i];
}

// Eight independent lanes, so that the loop vectorises without reassociating any one sum.
static inline __attribute__((always_inline)) void row_sum_min_body(const float *x, size_t n, double *sum, float *min) {
    double s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    float m[8] = {INFINITY, INFINITY, INFINITY, INFINITY, INFINITY, INFINITY, INFINITY, INFINITY};
    size_t j = 0;
    for (; j + 8 <= n; j += 8) {
        for (int k = 0; k < 8; k++) {
            float v = x[j + k];
            s[k] += (double)v;
            m[k] = v < m[k] ? v : m[k];
        }
    }
    for (; j < n; j++) {
        s[0] += (double)x[j];
        m[0] = x[j] < m[0] ? x[j] : m[0];
    }
    *sum = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
    float low = m[0];
    for (int k = 1; k < 8; k++) low = m[k] < low ? m[k] : low;
    *min = low;
}

// acc[j] = 0 + x[j] (first) or acc[j] += x[j], with the row's sum and minimum as row_sum_min_body gives them.
static inline __attribute__((always_inline)) void accumulate_row_checked_body(double *acc, const float *x, size_t n, int first,
                                                                              double *sum, float *min) {
    double s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    float m[8] = {INFINITY, INFINITY, INFINITY, INFINITY, INFINITY, INFINITY, INFINITY, INFINITY};
    size_t j = 0;
    if (first) {
        for (; j + 8 <= n; j += 8) {
            for (int k = 0; k < 8; k++) {
                float v = x[j + k];
                acc[j + k] = 0.0 + (double)v;
                s[k] += (double)v;
                m[k] = v < m[k] ? v : m[k];
            }
        }
        for (; j < n; j++) { acc[j] = 0.0 + (double)x[j]; s[0] += (double)x[j]; m[0] = x[j] < m[0] ? x[j] : m[0]; }
    } else {
        for (; j + 8 <= n; j += 8) {
            for (int k = 0; k < 8; k++) {
                float v = x[j + k];
                acc[j + k] += (double)v;
                s[k] += (double)v;
                m[k] = v < m[k] ? v : m[k];
            }
        }
        for (; j < n; j++) { acc[j] += (double)x[j]; s[0] += (double)x[j]; m[0] = x[j] < m[0] ? x[j] : m[0]; }
    }
    *sum = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
    float low = m[0];
    for (int k = 1; k < 8; k++) low = m[k] < low ? m[k] : low;
    *min = low;
}

static inline void maximum_body(float *acc, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) acc[i] = (x[i] > acc[i] || x[i] != x[i]) ? x[i] : acc[i];
}

static inline void minimum_body(float *acc, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) acc[i] = (x[i] < acc[i] || x[i] != x[i]) ? x[i] : acc[i];
}

/// One row of the augmented matrix Â = rownorm(F + I) of rollout and flow (see cattn_augment_row): eight independent
/// sums, so that the additions overlap and vectorise instead of waiting on one running sum; the divisions
/// vectorise. Written to `out` (float, rollout) and/or `out64` (double, flow; it may be `f` itself).
static inline int64_t augment_row_body(const double *f, size_t n, size_t diagonal, float *out, double *out64, double *sum) {
    double partial[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t bad = 0;
    size_t j = 0;
    for (; j + 8 <= n; j += 8) {
        for (int k = 0; k < 8; k++) {
            partial[k] += f[j + k];
            bad += !(f[j + k] - f[j + k] == 0);   // NaN or ±Inf
        }
    }
    for (; j < n; j++) {
        partial[j % 8] += f[j];
        bad += !(f[j] - f[j] == 0);
    }
    double s = ((partial[0] + partial[1]) + (partial[2] + partial[3])) + ((partial[4] + partial[5]) + (partial[6] + partial[7])) + 1.0;
    *sum = s;
    if (bad == 0) {
        double d = (f[diagonal] + 1.0) / s;
        if (out) {
            for (j = 0; j < n; j++) out[j] = (float)(f[j] / s);
            out[diagonal] = (float)d;
        }
        if (out64) {
            for (j = 0; j < n; j++) out64[j] = f[j] / s;
            out64[diagonal] = d;
        }
    }
    return bad;
}

static inline void decode_f32_body(const void *src, float *dst, size_t n, int swap) {
    const unsigned char *s = (const unsigned char *)src;
    if (!swap) {
        memcpy(dst, s, n * 4);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t v;
        memcpy(&v, s + 4 * i, 4);
        v = __builtin_bswap32(v);
        memcpy(dst + i, &v, 4);
    }
}

static inline void decode_bf16_body(const void *src, float *dst, size_t n, int swap) {
    const unsigned char *s = (const unsigned char *)src;
    for (size_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, s + 2 * i, 2);
        if (swap) h = (uint16_t)((h >> 8) | (h << 8));
        uint32_t bits = (uint32_t)h << 16;
        memcpy(dst + i, &bits, 4);
    }
}

static inline void decode_f64_body(const void *src, float *dst, size_t n, int swap) {
    const unsigned char *s = (const unsigned char *)src;
    for (size_t i = 0; i < n; i++) {
        uint64_t v;
        memcpy(&v, s + 8 * i, 8);
        if (swap) v = __builtin_bswap64(v);
        double d;
        memcpy(&d, &v, 8);
        dst[i] = (float)d;
    }
}

// -------------------------------------------------------------------------------- AVX2 versions

#if CATTN_X86
#define AVX2 __attribute__((target("avx2,fma,f16c")))

AVX2 static void decode_f16_avx2(const void *src, float *dst, size_t n, int swap) {
    const unsigned char *s = (const unsigned char *)src;
    const __m128i byteswap = _mm_setr_epi8(1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m128i a = _mm_loadu_si128((const __m128i *)(s + 2 * i));
        __m128i b = _mm_loadu_si128((const __m128i *)(s + 2 * i + 16));
        if (swap) {
            a = _mm_shuffle_epi8(a, byteswap);
            b = _mm_shuffle_epi8(b, byteswap);
        }
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(a));
        _mm256_storeu_ps(dst + i + 8, _mm256_cvtph_ps(b));
    }
    for (; i + 8 <= n; i += 8) {
        __m128i a = _mm_loadu_si128((const __m128i *)(s + 2 * i));
        if (swap) a = _mm_shuffle_epi8(a, byteswap);
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(a));
    }
    if (i < n) decode_f16_portable(s + 2 * i, dst + i, n - i, swap);
}

AVX2 static inline __m256d low_pd(__m256 v) { return _mm256_cvtps_pd(_mm256_castps256_ps128(v)); }
AVX2 static inline __m256d high_pd(__m256 v) { return _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)); }

AVX2 static inline double sum_pd(__m256d v) {
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}

/// ln m for 8 lanes of positive finite floats given as bits, p = m·2^e with m in [√½, √2): the Cephes
/// polynomial in Estrin's scheme (depth 4 instead of Horner's 9, so successive vectors overlap).
AVX2 static inline __m256 log_mantissa8(__m256i bits, __m256i *exponent) {
    __m256i e = _mm256_sub_epi32(_mm256_srli_epi32(bits, 23), _mm256_set1_epi32(126));
    __m256 m = _mm256_castsi256_ps(_mm256_or_si256(_mm256_and_si256(bits, _mm256_set1_epi32(0x007FFFFF)),
                                                   _mm256_set1_epi32(0x3F000000)));
    __m256 small = _mm256_cmp_ps(m, _mm256_set1_ps(0.707106781186547524f), _CMP_LT_OQ);
    *exponent = _mm256_add_epi32(e, _mm256_castps_si256(small));   // −1 where small (the mask is all ones)
    __m256 r = _mm256_sub_ps(_mm256_add_ps(m, _mm256_and_ps(m, small)), _mm256_set1_ps(1.0f));
    __m256 z = _mm256_mul_ps(r, r);
    __m256 z2 = _mm256_mul_ps(z, z);
    __m256 a = _mm256_fmadd_ps(_mm256_set1_ps(7.0376836292E-2f), r, _mm256_set1_ps(-1.1514610310E-1f));
    __m256 b = _mm256_fmadd_ps(_mm256_set1_ps(1.1676998740E-1f), r, _mm256_set1_ps(-1.2420140846E-1f));
    __m256 c = _mm256_fmadd_ps(_mm256_set1_ps(1.4249322787E-1f), r, _mm256_set1_ps(-1.6668057665E-1f));
    __m256 d = _mm256_fmadd_ps(_mm256_set1_ps(2.0000714765E-1f), r, _mm256_set1_ps(-2.4999993993E-1f));
    __m256 poly = _mm256_fmadd_ps(_mm256_fmadd_ps(a, z, b), z2, _mm256_fmadd_ps(c, z, d));
    poly = _mm256_fmadd_ps(poly, r, _mm256_set1_ps(3.3333331174E-1f));
    // ln(1 + r) = r + z·(r·poly − ½)
    return _mm256_fmadd_ps(z, _mm256_fmsub_ps(r, poly, _mm256_set1_ps(0.5f)), r);
}

/// −Σ p·ln p over 8 lanes of finite p ≥ 0, added to two double accumulators; lanes below FLT_MIN
/// (zeros, float subnormals) contribute nothing.
AVX2 static inline void entropy_step(__m256 pf, __m256d *entropy) {
    __m256 positive = _mm256_cmp_ps(pf, _mm256_set1_ps(FLT_MIN), _CMP_GE_OQ);
    __m256 weight = _mm256_and_ps(pf, positive);
    __m256 x = _mm256_blendv_ps(_mm256_set1_ps(1.0f), pf, positive);
    __m256i e;
    __m256 lnm = log_mantissa8(_mm256_castps_si256(x), &e);
    const __m256d ln2 = _mm256_set1_pd(LN2);
    __m256d lnLow = _mm256_fmadd_pd(_mm256_cvtepi32_pd(_mm256_castsi256_si128(e)), ln2, low_pd(lnm));
    __m256d lnHigh = _mm256_fmadd_pd(_mm256_cvtepi32_pd(_mm256_extracti128_si256(e, 1)), ln2, high_pd(lnm));
    entropy[0] = _mm256_fnmadd_pd(low_pd(weight), lnLow, entropy[0]);
    entropy[1] = _mm256_fnmadd_pd(high_pd(weight), lnHigh, entropy[1]);
}

/// Running sums of one row over 8 lanes.
typedef struct {
    __m256d sum[2], entropy[2];
    __m256 lo, hi;
    int64_t finite, nan, inf, negative;
} row_lanes;

/// One 8-lane step of the row statistics. `valid` masks the lanes that are part of the row.
AVX2 static inline void row_step(__m256 p, __m256 valid, int validMask, row_lanes *acc) {
    const __m256 infinity = _mm256_set1_ps(INFINITY);
    // The common case: every lane finite and ≥ 0.
    __m256 plain = _mm256_and_ps(_mm256_cmp_ps(p, infinity, _CMP_LT_OQ), _mm256_cmp_ps(p, _mm256_setzero_ps(), _CMP_GE_OQ));
    __m256 pf;
    if ((_mm256_movemask_ps(_mm256_and_ps(plain, valid)) & validMask) == validMask) {
        pf = _mm256_and_ps(p, valid);
        acc->finite += __builtin_popcount(validMask);
        acc->lo = _mm256_min_ps(acc->lo, _mm256_blendv_ps(infinity, p, valid));
        acc->hi = _mm256_max_ps(acc->hi, pf);
    } else {
        const __m256 absolute = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
        __m256 isFinite = _mm256_and_ps(_mm256_cmp_ps(_mm256_and_ps(p, absolute), infinity, _CMP_LT_OQ), valid);
        int finiteMask = _mm256_movemask_ps(isFinite);
        int nanMask = _mm256_movemask_ps(_mm256_and_ps(_mm256_cmp_ps(p, p, _CMP_UNORD_Q), valid));
        acc->nan += __builtin_popcount(nanMask);
        acc->inf += __builtin_popcount(validMask & ~finiteMask & ~nanMask);
        acc->finite += __builtin_popcount(finiteMask);
        pf = _mm256_and_ps(p, isFinite);  // non-finite and padding lanes → 0
        acc->negative += __builtin_popcount(_mm256_movemask_ps(_mm256_cmp_ps(pf, _mm256_setzero_ps(), _CMP_LT_OQ)));
        acc->lo = _mm256_min_ps(acc->lo, _mm256_blendv_ps(infinity, p, isFinite));
        acc->hi = _mm256_max_ps(acc->hi, _mm256_blendv_ps(_mm256_set1_ps(-INFINITY), p, isFinite));
    }
    acc->sum[0] = _mm256_add_pd(acc->sum[0], low_pd(pf));
    acc->sum[1] = _mm256_add_pd(acc->sum[1], high_pd(pf));
    entropy_step(pf, acc->entropy);
}

AVX2 static void row_statistics_careful_avx2(const float *row, size_t n, cattn_row_stats *out) {
    row_lanes acc[2];
    for (int k = 0; k < 2; k++) {
        acc[k].sum[0] = acc[k].sum[1] = acc[k].entropy[0] = acc[k].entropy[1] = _mm256_setzero_pd();
        acc[k].lo = _mm256_set1_ps(INFINITY);
        acc[k].hi = _mm256_set1_ps(-INFINITY);
        acc[k].finite = acc[k].nan = acc[k].inf = acc[k].negative = 0;
    }
    const __m256 all = _mm256_castsi256_ps(_mm256_set1_epi32(-1));
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        row_step(_mm256_loadu_ps(row + i), all, 0xFF, &acc[0]);
        row_step(_mm256_loadu_ps(row + i + 8), all, 0xFF, &acc[1]);
    }
    for (; i + 8 <= n; i += 8) row_step(_mm256_loadu_ps(row + i), all, 0xFF, &acc[0]);
    if (i < n) {
        float tail[8] = {0};
        int32_t lanes[8] = {0};
        for (size_t j = 0; j < n - i; j++) {
            tail[j] = row[i + j];
            lanes[j] = -1;
        }
        __m256 valid = _mm256_castsi256_ps(_mm256_loadu_si256((const __m256i *)lanes));
        row_step(_mm256_loadu_ps(tail), valid, _mm256_movemask_ps(valid), &acc[0]);
    }
    float los[8], his[8];
    _mm256_storeu_ps(los, _mm256_min_ps(acc[0].lo, acc[1].lo));
    _mm256_storeu_ps(his, _mm256_max_ps(acc[0].hi, acc[1].hi));
    double l = INFINITY, h = -INFINITY;
    for (int j = 0; j < 8; j++) {
        if (los[j] < l) l = los[j];
        if (his[j] > h) h = his[j];
    }
    out->sum = sum_pd(_mm256_add_pd(_mm256_add_pd(acc[0].sum[0], acc[0].sum[1]), _mm256_add_pd(acc[1].sum[0], acc[1].sum[1])));
    out->entropy = sum_pd(_mm256_add_pd(_mm256_add_pd(acc[0].entropy[0], acc[0].entropy[1]),
                                        _mm256_add_pd(acc[1].entropy[0], acc[1].entropy[1])));
    out->min = l;
    out->max = h;
    out->finite = acc[0].finite + acc[1].finite;
    out->nan = acc[0].nan + acc[1].nan;
    out->inf = acc[0].inf + acc[1].inf;
    out->negative = acc[0].negative + acc[1].negative;
}

/// The common case of a row, in one pass: every value finite and ≥ +0 (which, read as unsigned
/// integers, is every bit pattern below 0x7F800000, and orders as the floats do, so min and max are
/// integer operations). Returns 0, leaving `out` alone, when the row holds anything else (NaN, ±Inf, a
/// negative value or −0), which the careful version then handles. Zeros and subnormals take the
/// logarithm's path with a finite result and a weight of zero or next to it, so they add nothing that
/// can be seen (a subnormal adds under 1e-36). −Σ p ln p = −(ln 2·Σ p·e + Σ p·ln m), both sums in double.
AVX2 static int row_statistics_plain_avx2(const float *row, size_t n, cattn_row_stats *out) {
    __m256d sum[2] = {_mm256_setzero_pd(), _mm256_setzero_pd()}, exps[2] = {sum[0], sum[0]}, mants[2] = {sum[0], sum[0]};
    __m256i lo = _mm256_set1_epi32(-1), hi = _mm256_setzero_si256();
    size_t i = 0;
    while (i < n) {
        __m256i bits;
        if (i + 8 <= n) {
            bits = _mm256_loadu_si256((const __m256i *)(row + i));
            lo = _mm256_min_epu32(lo, bits);
        } else {
            float tail[8] = {0};
            int32_t pad[8] = {0};
            for (size_t j = 0; j < 8; j++) {
                if (i + j < n) tail[j] = row[i + j]; else pad[j] = -1;
            }
            bits = _mm256_loadu_si256((const __m256i *)tail);
            lo = _mm256_min_epu32(lo, _mm256_or_si256(bits, _mm256_loadu_si256((const __m256i *)pad)));
        }
        i += 8;
        hi = _mm256_max_epu32(hi, bits);
        __m256 p = _mm256_castsi256_ps(bits);
        __m256d pLow = low_pd(p), pHigh = high_pd(p);
        sum[0] = _mm256_add_pd(sum[0], pLow);
        sum[1] = _mm256_add_pd(sum[1], pHigh);
        __m256i e;
        __m256 lnm = log_mantissa8(bits, &e);
        exps[0] = _mm256_fmadd_pd(pLow, _mm256_cvtepi32_pd(_mm256_castsi256_si128(e)), exps[0]);
        exps[1] = _mm256_fmadd_pd(pHigh, _mm256_cvtepi32_pd(_mm256_extracti128_si256(e, 1)), exps[1]);
        mants[0] = _mm256_fmadd_pd(pLow, low_pd(lnm), mants[0]);
        mants[1] = _mm256_fmadd_pd(pHigh, high_pd(lnm), mants[1]);
    }
    uint32_t los[8], his[8];
    _mm256_storeu_si256((__m256i *)los, lo);
    _mm256_storeu_si256((__m256i *)his, hi);
    uint32_t l = los[0], h = his[0];
    for (int j = 1; j < 8; j++) {
        if (los[j] < l) l = los[j];
        if (his[j] > h) h = his[j];
    }
    return plain_row(out, n, l, h, sum_pd(_mm256_add_pd(sum[0], sum[1])), sum_pd(_mm256_add_pd(exps[0], exps[1])),
                     sum_pd(_mm256_add_pd(mants[0], mants[1])));
}

AVX2 static void row_statistics_avx2(const float *row, size_t n, cattn_row_stats *out) {
    if (n == 0 || !row_statistics_plain_avx2(row, n, out)) row_statistics_careful_avx2(row, n, out);
}

/// cattn_decode_f16_statistics in one pass over a row of float16 probabilities: decoded by F16C, summed in double
/// (exactly for probabilities: float16 values are multiples of 2^-24), min and max taken on the bit patterns (which order as the
/// values do for values ≥ +0), the entropy from the table. A row with a pattern ≥ 0x7C00 (NaN, ±Inf, or a sign
/// bit: a negative value or −0) gets the rest of its statistics from row_statistics_avx2 on the decoded values.
AVX2 static void decode_f16_statistics_avx2(const void *src, float *dst, size_t n, int swap, cattn_row_stats *out) {
    const unsigned char *s = (const unsigned char *)src;
    const __m256i byteswap = _mm256_setr_epi8(1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14,
                                              1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14);
    __m256d sum[2] = {_mm256_setzero_pd(), _mm256_setzero_pd()};
    __m256i lo16 = _mm256_set1_epi16(-1), hi16 = _mm256_setzero_si256();
    double e[4] = {0, 0, 0, 0};  // the entropy, as f16_entropy sums it
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i h = _mm256_loadu_si256((const __m256i *)(s + 2 * i));
        if (swap) h = _mm256_shuffle_epi8(h, byteswap);
        lo16 = _mm256_min_epu16(lo16, h);
        hi16 = _mm256_max_epu16(hi16, h);
        __m256 a = _mm256_cvtph_ps(_mm256_castsi256_si128(h)), b = _mm256_cvtph_ps(_mm256_extracti128_si256(h, 1));
        _mm256_storeu_ps(dst + i, a);
        _mm256_storeu_ps(dst + i + 8, b);
        sum[0] = _mm256_add_pd(sum[0], _mm256_add_pd(low_pd(a), high_pd(a)));
        sum[1] = _mm256_add_pd(sum[1], _mm256_add_pd(low_pd(b), high_pd(b)));
        // In this loop, not a pass of its own: the look-ups then overlap the vector work (−25% time).
        for (int k = 0; k < 16; k++) e[k & 3] += f16_entropy_terms[half_at(s, i + k, swap)];
    }
    // The extremes of the eight 16-bit lanes: minpos finds the least (of the complements, for the largest).
    __m128i lo8 = _mm_min_epu16(_mm256_castsi256_si128(lo16), _mm256_extracti128_si256(lo16, 1));
    __m128i hi8 = _mm_max_epu16(_mm256_castsi256_si128(hi16), _mm256_extracti128_si256(hi16, 1));
    uint16_t lo = (uint16_t)_mm_cvtsi128_si32(_mm_minpos_epu16(lo8));
    uint16_t hi = (uint16_t)~_mm_cvtsi128_si32(_mm_minpos_epu16(_mm_xor_si128(hi8, _mm_set1_epi16(-1))));
    double total = sum_pd(_mm256_add_pd(sum[0], sum[1]));
    for (; i < n; i++) {
        uint16_t h = half_at(s, i, swap);
        dst[i] = half_to_float(h);
        total += dst[i];
        e[i & 3] += f16_entropy_terms[h];
        lo = h < lo ? h : lo;
        hi = h > hi ? h : hi;
    }
    if (n > 0 && hi < 0x7C00u) {
        out->sum = total;
        out->min = half_to_float(lo);
        out->max = half_to_float(hi);
        out->finite = (int64_t)n;
        out->nan = out->inf = out->negative = 0;
    } else {
        row_statistics_avx2(dst, n, out);
    }
    out->entropy = (e[0] + e[1]) + (e[2] + e[3]);
}

/// exp(x) for 8 lanes of x ≤ 0; 0 below ln(FLT_MIN). n = round(x / ln 2) by adding 1.5·2^23 (whose low mantissa
/// bits then hold n, and become 2^n's exponent bits), x − n·ln 2 in two parts, and Cephes' polynomial for e^r on
/// |r| ≤ ln 2 / 2 evaluated as Estrin's scheme (three dependent steps instead of five): within about 1 float ulp.
AVX2 static inline __m256 exp8_nonpositive(__m256 x) {
    __m256 underflow = _mm256_cmp_ps(x, _mm256_set1_ps(-87.33654475f), _CMP_LT_OQ);
    x = _mm256_max_ps(_mm256_set1_ps(-87.33654475f), x);   // NaN in x is kept (max returns its second operand)
    const __m256 magic = _mm256_set1_ps(12582912.0f);
    __m256 shifted = _mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), magic);
    __m256 fx = _mm256_sub_ps(shifted, magic);
    x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
    x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), x);
    __m256 z = _mm256_mul_ps(x, x);
    __m256 a = _mm256_fmadd_ps(_mm256_set1_ps(1.9875691500E-4f), x, _mm256_set1_ps(1.3981999507E-3f));
    __m256 b = _mm256_fmadd_ps(_mm256_set1_ps(8.3334519073E-3f), x, _mm256_set1_ps(4.1665795894E-2f));
    __m256 c = _mm256_fmadd_ps(_mm256_set1_ps(1.6666665459E-1f), x, _mm256_set1_ps(5.0000001201E-1f));
    __m256 y = _mm256_fmadd_ps(_mm256_fmadd_ps(a, z, b), z, c);
    y = _mm256_add_ps(_mm256_fmadd_ps(y, z, x), _mm256_set1_ps(1.0f));
    __m256i n = _mm256_add_epi32(_mm256_castps_si256(shifted), _mm256_set1_epi32(127));
    __m256 scale = _mm256_castsi256_ps(_mm256_slli_epi32(n, 23));
    return _mm256_andnot_ps(underflow, _mm256_mul_ps(y, scale));
}

/// Values per float partial sum in softmax_row_body_avx2 (4 per lane) before it is added into a double.
#define SOFTMAX_CHUNK 32

/// The softmax of a row (see cattn_softmax_row) and, when `out` is not NULL, the statistics of the row it writes,
/// as cattn_row_statistics gives them except for the entropy, which comes from the softmax's own terms instead of
/// a logarithm per value: with t = x − max, e = exp t and Σ = Σ e, −Σ p ln p = ln Σ − (Σ e·t) / Σ. Inlined into
/// both callers, so the plain softmax pays nothing for the statistics.
/// Σ e and Σ e·t run in float over 4 values per lane, then in double (conversions to double cost more than the
/// exponential on some CPUs); p = e · (1/Σ rounded to float), within about 1 ulp of e/Σ.
AVX2 static inline __attribute__((always_inline)) void softmax_row_body_avx2(float *row, size_t visible, size_t n,
                                                                             cattn_row_stats *out) {
    __m256 peak8 = _mm256_set1_ps(-INFINITY);
    size_t j = 0;
    for (; j + 8 <= visible; j += 8) peak8 = _mm256_max_ps(peak8, _mm256_loadu_ps(row + j));
    float peaks[8];
    _mm256_storeu_ps(peaks, peak8);
    float peak = -INFINITY;
    for (int k = 0; k < 8; k++) peak = peaks[k] > peak ? peaks[k] : peak;
    for (; j < visible; j++) peak = row[j] > peak ? row[j] : peak;

    const __m256 shift = _mm256_set1_ps(peak), lowest = _mm256_set1_ps(-87.33654475f);
    const size_t whole = visible & ~(size_t)7;
    __m256d sum = _mm256_setzero_pd(), moment = _mm256_setzero_pd();  // Σ e, Σ e·t
    for (j = 0; j < whole;) {
        // Two vectors a step, each with sums of its own, so that two exponentials are in flight.
        __m256 sum8 = _mm256_setzero_ps(), moment8 = _mm256_setzero_ps(), sumB = sum8, momentB = sum8;
        const size_t end = whole - j > SOFTMAX_CHUNK ? j + SOFTMAX_CHUNK : whole;
        for (; j + 16 <= end; j += 16) {
            __m256 t = _mm256_sub_ps(_mm256_loadu_ps(row + j), shift);
            __m256 u = _mm256_sub_ps(_mm256_loadu_ps(row + j + 8), shift);
            __m256 e = exp8_nonpositive(t), f = exp8_nonpositive(u);
            _mm256_storeu_ps(row + j, e);
            _mm256_storeu_ps(row + j + 8, f);
            sum8 = _mm256_add_ps(sum8, e);
            sumB = _mm256_add_ps(sumB, f);
            // t below the underflow point has e = 0; the clamp keeps 0·t from being NaN for t = −inf.
            if (out) {
                moment8 = _mm256_fmadd_ps(e, _mm256_max_ps(t, lowest), moment8);
                momentB = _mm256_fmadd_ps(f, _mm256_max_ps(u, lowest), momentB);
            }
        }
        if (j < end) {  // one vector left
            __m256 t = _mm256_sub_ps(_mm256_loadu_ps(row + j), shift);
            __m256 e = exp8_nonpositive(t);
            _mm256_storeu_ps(row + j, e);
            sum8 = _mm256_add_ps(sum8, e);
            if (out) moment8 = _mm256_fmadd_ps(e, _mm256_max_ps(t, lowest), moment8);
            j += 8;
        }
        sum8 = _mm256_add_ps(sum8, sumB);
        moment8 = _mm256_add_ps(moment8, momentB);
        sum = _mm256_add_pd(sum, _mm256_add_pd(low_pd(sum8), high_pd(sum8)));
        if (out) moment = _mm256_add_pd(moment, _mm256_add_pd(low_pd(moment8), high_pd(moment8)));
    }
    double tailSum = 0, tailMoment = 0;
    if (j < visible) {
        float tail[8], ts[8];
        for (int k = 0; k < 8; k++) tail[k] = (j + (size_t)k < visible) ? row[j + k] - peak : -INFINITY;
        __m256 e = exp8_nonpositive(_mm256_loadu_ps(tail));  // −inf lanes → 0
        _mm256_storeu_ps(ts, e);
        for (size_t k = 0; j + k < visible; k++) {
            row[j + k] = ts[k];
            tailSum += ts[k];
            if (ts[k] != 0) tailMoment += (double)ts[k] * (double)tail[k];
        }
    }
    const double total = sum_pd(sum) + tailSum;
    const float inverse = (float)(1.0 / total);
    const __m256 inverse8 = _mm256_set1_ps(inverse);
    __m256d stored0 = _mm256_setzero_pd(), stored1 = _mm256_setzero_pd();  // Σ of the floats written
    __m256 lo8 = _mm256_set1_ps(INFINITY), hi8 = _mm256_set1_ps(-INFINITY);
    for (j = 0; j < whole; j += 8) {
        __m256 p = _mm256_mul_ps(_mm256_loadu_ps(row + j), inverse8);
        _mm256_storeu_ps(row + j, p);
        if (out) {  // in double: row_sum_max_dev measures this sum's rounding
            stored0 = _mm256_add_pd(stored0, low_pd(p));
            stored1 = _mm256_add_pd(stored1, high_pd(p));
            lo8 = _mm256_min_ps(lo8, p);
            hi8 = _mm256_max_ps(hi8, p);
        }
    }
    __m256d stored = _mm256_add_pd(stored0, stored1);
    double storedTail = 0;
    float lo = INFINITY, hi = -INFINITY;
    for (; j < visible; j++) {
        row[j] = row[j] * inverse;
        storedTail += row[j];
        lo = row[j] < lo ? row[j] : lo;
        hi = row[j] > hi ? row[j] : hi;
    }
    for (j = visible; j < n; j++) row[j] = 0;
    if (!out) return;
    // A row with NaN or ±inf scores (the caller reports it), or no visible key: counted value by value.
    if (!(peak > -INFINITY && peak < INFINITY && total >= 1)) {
        row_statistics_avx2(row, n, out);
        return;
    }
    float los[8], his[8];
    _mm256_storeu_ps(los, lo8);
    _mm256_storeu_ps(his, hi8);
    for (int k = 0; k < 8; k++) {
        lo = los[k] < lo ? los[k] : lo;
        hi = his[k] > hi ? his[k] : hi;
    }
    if (visible < n) lo = 0;  // the masked keys; the others are ≥ 0
    out->sum = sum_pd(stored) + storedTail;
    out->entropy = log(total) - (sum_pd(moment) + tailMoment) / total;
    out->min = lo;
    out->max = hi;
    out->finite = (int64_t)n;
    out->nan = out->inf = out->negative = 0;
}

AVX2 static void softmax_row_avx2(float *row, size_t visible, size_t n) { softmax_row_body_avx2(row, visible, n, NULL); }
AVX2 static void softmax_row_statistics_avx2(float *row, size_t visible, size_t n, cattn_row_stats *out) {
    softmax_row_body_avx2(row, visible, n, out);
}

AVX2 static void accumulate_f64_avx2(double *acc, const float *x, size_t n) { accumulate_body(acc, x, n); }
AVX2 static void maximum_f32_avx2(float *acc, const float *x, size_t n) { maximum_body(acc, x, n); }
AVX2 static void row_sum_min_avx2(const float *x, size_t n, double *sum, float *min) { row_sum_min_body(x, n, sum, min); }
AVX2 static void accumulate_row_checked_avx2(double *acc, const float *x, size_t n, int first, double *sum, float *min) {
    accumulate_row_checked_body(acc, x, n, first, sum, min);
}
AVX2 static void minimum_f32_avx2(float *acc, const float *x, size_t n) { minimum_body(acc, x, n); }
AVX2 static void decode_f32_avx2(const void *src, float *dst, size_t n, int swap) { decode_f32_body(src, dst, n, swap); }
AVX2 static void decode_bf16_avx2(const void *src, float *dst, size_t n, int swap) { decode_bf16_body(src, dst, n, swap); }
AVX2 static void decode_f64_avx2(const void *src, float *dst, size_t n, int swap) { decode_f64_body(src, dst, n, swap); }
AVX2 static int64_t augment_row_avx2(const double *f, size_t n, size_t diagonal, float *out, double *out64, double *sum) {
    return augment_row_body(f, n, diagonal, out, out64, sum);
}
AVX2 static int64_t augment_row_dividing_avx2(double *f, size_t n, size_t diagonal, double divisor, float *out, double *sum) {
    for (size_t j = 0; j < n; j++) f[j] /= divisor;
    return augment_row_body(f, n, diagonal, out, NULL, sum);
}

// ------------------------------------------------------------------------------ AVX-512 versions

#define AVX512 __attribute__((target("avx512f,avx2,fma,f16c")))

/// ln m for 16 lanes: as log_mantissa8.
AVX512 static inline __m512 log_mantissa16(__m512i bits, __m512i *exponent) {
    __m512i e = _mm512_sub_epi32(_mm512_srli_epi32(bits, 23), _mm512_set1_epi32(126));
    __m512 m = _mm512_castsi512_ps(_mm512_or_si512(_mm512_and_si512(bits, _mm512_set1_epi32(0x007FFFFF)),
                                                   _mm512_set1_epi32(0x3F000000)));
    __mmask16 small = _mm512_cmp_ps_mask(m, _mm512_set1_ps(0.707106781186547524f), _CMP_LT_OQ);
    *exponent = _mm512_mask_sub_epi32(e, small, e, _mm512_set1_epi32(1));
    __m512 r = _mm512_sub_ps(_mm512_mask_add_ps(m, small, m, m), _mm512_set1_ps(1.0f));
    __m512 z = _mm512_mul_ps(r, r);
    __m512 z2 = _mm512_mul_ps(z, z);
    __m512 a = _mm512_fmadd_ps(_mm512_set1_ps(7.0376836292E-2f), r, _mm512_set1_ps(-1.1514610310E-1f));
    __m512 b = _mm512_fmadd_ps(_mm512_set1_ps(1.1676998740E-1f), r, _mm512_set1_ps(-1.2420140846E-1f));
    __m512 c = _mm512_fmadd_ps(_mm512_set1_ps(1.4249322787E-1f), r, _mm512_set1_ps(-1.6668057665E-1f));
    __m512 d = _mm512_fmadd_ps(_mm512_set1_ps(2.0000714765E-1f), r, _mm512_set1_ps(-2.4999993993E-1f));
    __m512 poly = _mm512_fmadd_ps(_mm512_fmadd_ps(a, z, b), z2, _mm512_fmadd_ps(c, z, d));
    poly = _mm512_fmadd_ps(poly, r, _mm512_set1_ps(3.3333331174E-1f));
    return _mm512_fmadd_ps(z, _mm512_fmsub_ps(r, poly, _mm512_set1_ps(0.5f)), r);
}

AVX512 static inline __m512d low8_pd(__m512 v) { return _mm512_cvtps_pd(_mm512_castps512_ps256(v)); }
AVX512 static inline __m512d high8_pd(__m512 v) {
    return _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
}

/// row_statistics_plain_avx2 over 16 lanes; the tail is a masked load (padding lanes are +0 and are
/// kept out of the minimum).
AVX512 static int row_statistics_plain_avx512(const float *row, size_t n, cattn_row_stats *out) {
    __m512d sum[2] = {_mm512_setzero_pd(), _mm512_setzero_pd()}, exps[2] = {sum[0], sum[0]}, mants[2] = {sum[0], sum[0]};
    __m512i lo = _mm512_set1_epi32(-1), hi = _mm512_setzero_si512();
    for (size_t i = 0; i < n; i += 16) {
        __m512i bits;
        if (i + 16 <= n) {
            bits = _mm512_loadu_si512((const void *)(row + i));
            lo = _mm512_min_epu32(lo, bits);
        } else {
            __mmask16 valid = (__mmask16)((1u << (n - i)) - 1u);
            bits = _mm512_maskz_loadu_epi32(valid, row + i);
            lo = _mm512_mask_min_epu32(lo, valid, lo, bits);
        }
        hi = _mm512_max_epu32(hi, bits);
        __m512 p = _mm512_castsi512_ps(bits);
        __m512d pLow = low8_pd(p), pHigh = high8_pd(p);
        sum[0] = _mm512_add_pd(sum[0], pLow);
        sum[1] = _mm512_add_pd(sum[1], pHigh);
        __m512i e;
        __m512 lnm = log_mantissa16(bits, &e);
        exps[0] = _mm512_fmadd_pd(pLow, _mm512_cvtepi32_pd(_mm512_castsi512_si256(e)), exps[0]);
        exps[1] = _mm512_fmadd_pd(pHigh, _mm512_cvtepi32_pd(_mm512_extracti64x4_epi64(e, 1)), exps[1]);
        mants[0] = _mm512_fmadd_pd(pLow, low8_pd(lnm), mants[0]);
        mants[1] = _mm512_fmadd_pd(pHigh, high8_pd(lnm), mants[1]);
    }
    uint32_t h = _mm512_reduce_max_epu32(hi), l = _mm512_reduce_min_epu32(lo);
    return plain_row(out, n, l, h, _mm512_reduce_add_pd(_mm512_add_pd(sum[0], sum[1])),
                     _mm512_reduce_add_pd(_mm512_add_pd(exps[0], exps[1])), _mm512_reduce_add_pd(_mm512_add_pd(mants[0], mants[1])));
}

AVX512 static void row_statistics_avx512(const float *row, size_t n, cattn_row_stats *out) {
    if (n == 0 || !row_statistics_plain_avx512(row, n, out)) row_statistics_careful_avx2(row, n, out);
}

/// exp(x) for 16 lanes of x ≤ 0: as exp8_nonpositive.
AVX512 static inline __m512 exp16_nonpositive(__m512 x) {
    __mmask16 underflow = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.33654475f), _CMP_LT_OQ);
    x = _mm512_max_ps(_mm512_set1_ps(-87.33654475f), x);   // NaN in x is kept (max returns its second operand)
    __m512 fx = _mm512_roundscale_ps(_mm512_fmadd_ps(x, _mm512_set1_ps(1.44269504088896341f), _mm512_set1_ps(0.5f)),
                                     _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
    x = _mm512_fnmadd_ps(fx, _mm512_set1_ps(0.693359375f), x);
    x = _mm512_fnmadd_ps(fx, _mm512_set1_ps(-2.12194440e-4f), x);
    __m512 z = _mm512_mul_ps(x, x);
    __m512 y = _mm512_set1_ps(1.9875691500E-4f);
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(1.3981999507E-3f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(8.3334519073E-3f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(4.1665795894E-2f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(1.6666665459E-1f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(5.0000001201E-1f));
    y = _mm512_add_ps(_mm512_fmadd_ps(y, z, x), _mm512_set1_ps(1.0f));
    __m512i n = _mm512_add_epi32(_mm512_cvttps_epi32(fx), _mm512_set1_epi32(127));
    __m512 scale = _mm512_castsi512_ps(_mm512_slli_epi32(n, 23));
    return _mm512_maskz_mov_ps((__mmask16)~underflow, _mm512_mul_ps(y, scale));
}

/// softmax_row_avx2 over 16 lanes; the tail is a masked load and store (padding lanes are −inf → 0).
AVX512 static void softmax_row_avx512(float *row, size_t visible, size_t n) {
    __m512 peak16 = _mm512_set1_ps(-INFINITY);
    size_t j = 0;
    for (; j + 16 <= visible; j += 16) peak16 = _mm512_max_ps(peak16, _mm512_loadu_ps(row + j));
    float peak = _mm512_reduce_max_ps(peak16);
    for (; j < visible; j++) peak = row[j] > peak ? row[j] : peak;
    // NaN anywhere in the row: leave it to the AVX2 version, which propagates it exactly as before.
    if (peak != peak) { softmax_row_avx2(row, visible, n); return; }

    const __m512 shift = _mm512_set1_ps(peak);
    __m512d sum0 = _mm512_setzero_pd(), sum1 = _mm512_setzero_pd();
    for (j = 0; j < visible; j += 16) {
        __mmask16 lanes = j + 16 <= visible ? (__mmask16)0xFFFF : (__mmask16)((1u << (visible - j)) - 1u);
        __m512 x = _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), lanes, row + j);
        __m512 e = exp16_nonpositive(_mm512_sub_ps(x, shift));
        _mm512_mask_storeu_ps(row + j, lanes, e);
        sum0 = _mm512_add_pd(sum0, low8_pd(e));
        sum1 = _mm512_add_pd(sum1, high8_pd(e));
    }
    const __m512d inverse = _mm512_set1_pd(1.0 / _mm512_reduce_add_pd(_mm512_add_pd(sum0, sum1)));
    for (j = 0; j < visible; j += 16) {
        __mmask16 lanes = j + 16 <= visible ? (__mmask16)0xFFFF : (__mmask16)((1u << (visible - j)) - 1u);
        __m512 v = _mm512_maskz_loadu_ps(lanes, row + j);
        __m256 a = _mm512_cvtpd_ps(_mm512_mul_pd(low8_pd(v), inverse));
        __m256 b = _mm512_cvtpd_ps(_mm512_mul_pd(high8_pd(v), inverse));
        __m512 out = _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castps_pd(_mm512_castps256_ps512(a)), _mm256_castps_pd(b), 1));
        _mm512_mask_storeu_ps(row + j, lanes, out);
    }
    for (j = visible; j < n; j++) row[j] = 0;
}
#endif

// ------------------------------------------------------------------------------------ public entry points

#if CATTN_X86
#define DISPATCH(vector_call, portable_call) \
    do { if (cattn_kernels_vectorised() >= 1) { vector_call; } else { portable_call; } } while (0)
#else
#define DISPATCH(vector_call, portable_call) do { portable_call; } while (0)
#endif

void cattn_decode_f16(const void *src, float *dst, size_t n, int swap) {
    DISPATCH(decode_f16_avx2(src, dst, n, swap), decode_f16_portable(src, dst, n, swap));
}

static void decode_f16_statistics_level(int level, const void *src, float *dst, size_t n, int swap, cattn_row_stats *out) {
    pthread_once(&f16_entropy_once, build_f16_entropy_terms);
#if CATTN_X86
    if (level >= 1) { decode_f16_statistics_avx2(src, dst, n, swap, out); return; }
#endif
    (void)level;
    decode_f16_statistics_portable(src, dst, n, swap, out);
}

void cattn_decode_f16_statistics(const void *src, float *dst, size_t n, int swap, cattn_row_stats *out) {
    decode_f16_statistics_level(cattn_kernels_vectorised(), src, dst, n, swap, out);
}

int cattn_decode_f16_statistics_at(int level, const void *src, float *dst, size_t n, int swap, cattn_row_stats *out) {
    if (level < 0 || level > cattn_kernels_supported()) return 0;
    decode_f16_statistics_level(level, src, dst, n, swap, out);
    return 1;
}

void cattn_decode_bf16(const void *src, float *dst, size_t n, int swap) {
    DISPATCH(decode_bf16_avx2(src, dst, n, swap), decode_bf16_body(src, dst, n, swap));
}

void cattn_decode_f32(const void *src, float *dst, size_t n, int swap) {
    DISPATCH(decode_f32_avx2(src, dst, n, swap), decode_f32_body(src, dst, n, swap));
}

void cattn_decode_f64(const void *src, float *dst, size_t n, int swap) {
    DISPATCH(decode_f64_avx2(src, dst, n, swap), decode_f64_body(src, dst, n, swap));
}

// The row statistics and softmax have three levels (cattn_kernels_vectorised): the public calls use the
// process's level, the `_at` calls (for tests) any level this CPU supports.
static void row_statistics_level(int level, const float *row, size_t n, cattn_row_stats *out) {
#if CATTN_X86
    if (level == 2) { row_statistics_avx512(row, n, out); return; }
    if (level == 1) { row_statistics_avx2(row, n, out); return; }
#endif
    (void)level;
    row_statistics_portable(row, n, out);
}

static void softmax_row_level(int level, float *row, size_t visible, size_t n) {
#if CATTN_X86
    if (level == 2) { softmax_row_avx512(row, visible, n); return; }
    if (level == 1) { softmax_row_avx2(row, visible, n); return; }
#endif
    (void)level;
    softmax_row_portable(row, visible, n);
}

void cattn_row_statistics(const float *row, size_t n, cattn_row_stats *out) {
    row_statistics_level(cattn_kernels_vectorised(), row, n, out);
}

int cattn_row_statistics_at(int level, const float *row, size_t n, cattn_row_stats *out) {
    if (level < 0 || level > cattn_kernels_supported()) return 0;
    row_statistics_level(level, row, n, out);
    return 1;
}

static void softmax_row_statistics_level(int level, float *row, size_t visible, size_t n, cattn_row_stats *out) {
#if CATTN_X86
    if (level >= 1) { softmax_row_statistics_avx2(row, visible, n, out); return; }
#endif
    (void)level;
    softmax_row_portable(row, visible, n);
    row_statistics_portable(row, n, out);
}

void cattn_softmax_row_statistics(float *row, size_t visible, size_t n, cattn_row_stats *out) {
    softmax_row_statistics_level(cattn_kernels_vectorised(), row, visible, n, out);
}

int cattn_softmax_row_statistics_at(int level, float *row, size_t visible, size_t n, cattn_row_stats *out) {
    if (level < 0 || level > cattn_kernels_supported()) return 0;
    softmax_row_statistics_level(level, row, visible, n, out);
    return 1;
}

void cattn_softmax_row(float *row, size_t visible, size_t n) {
    softmax_row_level(cattn_kernels_vectorised(), row, visible, n);
}

int cattn_softmax_row_at(int level, float *row, size_t visible, size_t n) {
    if (level < 0 || level > cattn_kernels_supported()) return 0;
    softmax_row_level(level, row, visible, n);
    return 1;
}

void cattn_accumulate_f64(double *acc, const float *x, size_t n) {
    DISPATCH(accumulate_f64_avx2(acc, x, n), accumulate_body(acc, x, n));
}

void cattn_row_sum_min(const float *row, size_t n, double *sum, float *min) {
    DISPATCH(row_sum_min_avx2(row, n, sum, min), row_sum_min_body(row, n, sum, min));
}

void cattn_accumulate_row_checked(double *acc, const float *x, size_t n, int first, double *sum, float *min) {
    DISPATCH(accumulate_row_checked_avx2(acc, x, n, first, sum, min), accumulate_row_checked_body(acc, x, n, first, sum, min));
}

void cattn_maximum_f32(float *acc, const float *x, size_t n) {
    DISPATCH(maximum_f32_avx2(acc, x, n), maximum_body(acc, x, n));
}

void cattn_minimum_f32(float *acc, const float *x, size_t n) {
    DISPATCH(minimum_f32_avx2(acc, x, n), minimum_body(acc, x, n));
}

int64_t cattn_augment_row(const double *f, size_t n, size_t diagonal, float *out, double *sum) {
    int64_t bad;
    DISPATCH(bad = augment_row_avx2(f, n, diagonal, out, NULL, sum), bad = augment_row_body(f, n, diagonal, out, NULL, sum));
    return bad;
}

int64_t cattn_augment_row_f64(double *f, size_t n, size_t diagonal, double *sum) {
    int64_t bad;
    DISPATCH(bad = augment_row_avx2(f, n, diagonal, NULL, f, sum), bad = augment_row_body(f, n, diagonal, NULL, f, sum));
    return bad;
}

static inline int64_t augment_row_dividing_portable(double *f, size_t n, size_t diagonal, double divisor, float *out, double *sum) {
    for (size_t j = 0; j < n; j++) f[j] /= divisor;
    return augment_row_body(f, n, diagonal, out, NULL, sum);
}

int64_t cattn_augment_row_dividing(double *f, size_t n, size_t diagonal, double divisor, float *out, double *sum) {
    int64_t bad;
    DISPATCH(bad = augment_row_dividing_avx2(f, n, diagonal, divisor, out, sum),
             bad = augment_row_dividing_portable(f, n, diagonal, divisor, out, sum));
    return bad;
}

double cattn_distance_sum(const float *row, size_t n, size_t from) {
    // Two runs, so that the distance is a counter, not an absolute value: eight lanes of double each.
    double lanes[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    size_t split = from < n ? from : n;
    for (size_t b = 0; b < split; b++) lanes[b & 7] += (double)row[b] * (double)(from - b);
    for (size_t b = split; b < n; b++) lanes[b & 7] += (double)row[b] * (double)(b - from);
    return ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
}
