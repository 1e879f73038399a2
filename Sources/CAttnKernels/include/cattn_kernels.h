#ifndef CATTN_KERNELS_H
#define CATTN_KERNELS_H
/// attninspect's hot loops: float16/32/64 decoding, per-row statistics (p·ln p), softmax rows and
/// head-fusion accumulation. Each has an AVX2 + FMA + F16C version chosen at run time when the CPU
/// has them (the row statistics and softmax an AVX-512 one too), and a portable version otherwise; results agree to a few float32 ulps.
#include <stddef.h>
#include <stdint.h>

/// The kernels in use: 2 when the CPU has AVX-512F as well as AVX2, FMA and F16C (the row statistics
/// then run 16 lanes wide), 1 with AVX2, FMA and F16C only, 0 for the portable versions. The environment
/// variable ATTNINSPECT_PORTABLE_KERNELS set to a non-zero value forces 0, ATTNINSPECT_NO_AVX512 caps
/// it at 1. Read once.
int cattn_kernels_vectorised(void);
/// What the CPU supports, as `cattn_kernels_vectorised` counts it, whatever the environment says.
int cattn_kernels_supported(void);

/// Decodes `n` IEEE half floats (native order, or byte-swapped when `swap`) to float.
void cattn_decode_f16(const void *src, float *dst, size_t n, int swap);
/// Decodes `n` bfloat16 values (the top half of a float32; byte-swapped when `swap`) to float.
void cattn_decode_bf16(const void *src, float *dst, size_t n, int swap);
/// Decodes `n` float32 values (byte-swapped when `swap`); `src` may be unaligned.
void cattn_decode_f32(const void *src, float *dst, size_t n, int swap);
/// Decodes `n` float64 values to float (byte-swapped when `swap`); `src` may be unaligned.
void cattn_decode_f64(const void *src, float *dst, size_t n, int swap);

/// Statistics of one row of attention probabilities. NaN and ±Inf are counted and left out of
/// every other field; `negative` counts finite values below 0.
typedef struct {
    double sum;        /// Σ p over finite p
    double entropy;    /// −Σ p·ln p over finite p > 0 (0·ln 0 = 0), ln in double from a float mantissa polynomial
    double min;        /// smallest finite p (+inf when none)
    double max;        /// largest finite p (−inf when none)
    int64_t finite;
    int64_t nan;
    int64_t inf;
    int64_t negative;
} cattn_row_stats;

void cattn_row_statistics(const float *row, size_t n, cattn_row_stats *out);
/// The same with the kernels of `level` (0, 1 or 2, as `cattn_kernels_vectorised` counts them), for
/// tests that compare them; returns 0 and leaves `out` alone when the CPU lacks that level.
int cattn_row_statistics_at(int level, const float *row, size_t n, cattn_row_stats *out);

/// cattn_decode_f16 of one row, and the statistics of the row decoded, as cattn_row_statistics gives them but
/// for the entropy, whose terms −p·ln p come from a table of the 65,536 float16 values (libm's log in double),
/// in one pass. The table is built on the first call (thread-safe).
void cattn_decode_f16_statistics(const void *src, float *dst, size_t n, int swap, cattn_row_stats *out);
/// The same with the kernels of `level`, as `cattn_row_statistics_at` (AVX-512 CPUs use the AVX2 version).
int cattn_decode_f16_statistics_at(int level, const void *src, float *dst, size_t n, int swap, cattn_row_stats *out);

/// In place: row[j] = exp(row[j] − max) / Σ for j < visible (max and Σ over those), row[j] = 0 for
/// visible ≤ j < n. Σ is accumulated in double.
void cattn_softmax_row(float *row, size_t visible, size_t n);
/// The same with the kernels of `level`, as `cattn_row_statistics_at`.
int cattn_softmax_row_at(int level, float *row, size_t visible, size_t n);

/// cattn_softmax_row, and the statistics of the row written (as cattn_row_statistics gives them) in the same
/// passes: the entropy from the softmax's terms, ln Σ − Σ e·t / Σ (t = x − max, e = exp t), not a log per value.
void cattn_softmax_row_statistics(float *row, size_t visible, size_t n, cattn_row_stats *out);
/// The same with the kernels of `level`, as `cattn_row_statistics_at` (AVX-512 CPUs use the AVX2 version).
int cattn_softmax_row_statistics_at(int level, float *row, size_t visible, size_t n, cattn_row_stats *out);

/// Keys packed for cattn_score_block: the floats `out` needs for `n` keys of `d` floats (whole panels of 16 keys).
size_t cattn_packed_keys_floats(size_t n, size_t d);
/// Packs the `n` keys of `d` floats at `k` (row-major) into panels of 16 keys, each d × 16 floats (key fastest),
/// the last panel padded with zeros.
void cattn_pack_keys(const float *k, size_t n, size_t d, float *out);
/// out[i·ldc + j] = scale · Σ_p q[i·d + p] · k[j·d + p] for i < rows and first ≤ j < last, from the keys packed by
/// cattn_pack_keys; nothing else of `out` is written. The products are summed in float, one FMA each, in the
/// order of p. AVX2 + FMA only: returns 0 and writes nothing when the kernels in use are the portable ones
/// (the caller then uses BLAS).
int cattn_score_block(const float *q, size_t rows, size_t d, const float *packed, size_t first, size_t last,
                      float scale, float *out, size_t ldc);
/// The same with the kernels of `level`, as `cattn_row_statistics_at`.
int cattn_score_block_at(int level, const float *q, size_t rows, size_t d, const float *packed, size_t first,
                         size_t last, float scale, float *out, size_t ldc);

/// Σ_b row[b]·|from − b| over b < n, in double (the mean attention distance of a row of a sequence).
double cattn_distance_sum(const float *row, size_t n, size_t from);

/// One row of attention rollout's augmented matrix (F + I, rows normalised): *sum = Σ f[j] + 1, and when
/// every f[j] is finite and `out` is not NULL, out[j] = f[j] / *sum with the 1 added at j = `diagonal`.
/// Returns the number of NaN or infinite f[j] (then `out` is left alone).
int64_t cattn_augment_row(const double *f, size_t n, size_t diagonal, float *out, double *sum);
/// The same in place and in double (attention flow's capacities): f[j] becomes f[j] / *sum, 1 added at `diagonal`.
int64_t cattn_augment_row_f64(double *f, size_t n, size_t diagonal, double *sum);
/// The same after dividing f[j] by `divisor` in place (f then holds the mean of summed heads): one pass over
/// a row that is in cache instead of a pass over the whole matrix first.
int64_t cattn_augment_row_dividing(double *f, size_t n, size_t diagonal, double divisor, float *out, double *sum);

/// The sum of a row (in double) and its smallest value: a NaN makes the sum NaN (and is skipped by the minimum).
void cattn_row_sum_min(const float *row, size_t n, double *sum, float *min);

/// One row of head fusion with its check in the same pass: acc[i] = 0 + x[i] when `first` (a −0 stored as +0),
/// else acc[i] += x[i]; and the row's sum and minimum, as `cattn_row_sum_min` gives them.
void cattn_accumulate_row_checked(double *acc, const float *x, size_t n, int first, double *sum, float *min);

/// acc[i] += x[i] (double accumulator).
void cattn_accumulate_f64(double *acc, const float *x, size_t n);
/// acc[i] = max(acc[i], x[i]) / min(acc[i], x[i]) (NaN in x propagates).
void cattn_maximum_f32(float *acc, const float *x, size_t n);
void cattn_minimum_f32(float *acc, const float *x, size_t n);

/// A guard for read-only file mappings: a read of a page of [start, start + length) that raises SIGBUS (the
/// file was truncated after it was mapped, or the page cannot be read) gets a page of zeros instead of
/// killing the process, and the fault is noted. Returns a slot for `cattn_guard_faulted` and
/// `cattn_guard_release`, or -1 when the guard is unavailable (not installed, not Linux, 64 ranges already
/// guarded): the caller must then not map. SIGBUS outside every guarded range goes to the handler installed
/// before `cattn_guard_install`, or kills the process as usual.
int cattn_guard_register(const void *start, size_t length);
/// Installs the SIGBUS handler of the guard, once (the executable's start-up calls it); 0 when it is installed.
/// Until then nothing is guarded and `cattn_guard_register` returns -1.
int cattn_guard_install(void);
/// 1 when a read in the slot's range has faulted since it was registered.
int cattn_guard_faulted(int slot);
/// Frees the slot (call before unmapping); returns `cattn_guard_faulted` as it was.
int cattn_guard_release(int slot);
#endif
