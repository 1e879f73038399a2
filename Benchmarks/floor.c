// This machine's floor for recomputed attention (issue 21): OpenBLAS's SGEMM rate and the vector exp rate, both
// on all cores, printed as one JSON object. Benchmarks/long_context.py compiles and runs it:
//     cc -O2 -Wall -o floor floor.c -lopenblas -lmvec -lm -lpthread     (-DNO_LIBMVEC: scalar expf instead)
// SGEMM: every thread calls single-threaded sgemm (openblas_set_num_threads(1)) on its own matrices, as
// attninspect's workers do. exp: glibc's libmvec _ZGVdN8v_expf (AVX2, 8 floats a call) over an L1-resident
// buffer of arguments in [-20, 0], as a softmax has after subtracting the row maximum.
#if __has_include(<openblas-pthread/cblas.h>)
#include <openblas-pthread/cblas.h>
#elif __has_include(<cblas.h>)
#include <cblas.h>
#else
#error "no cblas.h: install libopenblas-dev (Debian: apt-get install libopenblas-dev)"
#endif
#include <immintrin.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define SECONDS 0.4  // each measurement; the best of REPEATS is kept
#define REPEATS 3
#define EXP_N 1024  // 4 KiB of arguments and 4 KiB of results

typedef struct { int m, n, k, vector; double rate; } Job;  // rate: the thread's flops or exps per second
static pthread_barrier_t barrier;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static void *sgemm_thread(void *arg) {
    Job *j = arg;  // C = A · Bᵀ with A m×k and B n×k (attninspect's Q · Kᵀ); plain C = A · B for a square
    int square = j->m == j->n && j->n == j->k;
    float *a = malloc(sizeof(float) * j->m * j->k), *b = malloc(sizeof(float) * j->n * j->k);
    float *c = malloc(sizeof(float) * j->m * j->n);
    for (long i = 0; i < (long)j->m * j->k; i++) a[i] = (float)(i % 7) * 0.1f - 0.3f;
    for (long i = 0; i < (long)j->n * j->k; i++) b[i] = (float)(i % 5) * 0.1f - 0.2f;
    pthread_barrier_wait(&barrier);
    double t0 = now(), t = t0;
    long calls = 0;
    for (; t - t0 < SECONDS; calls++, t = now())
        cblas_sgemm(CblasRowMajor, CblasNoTrans, square ? CblasNoTrans : CblasTrans, j->m, j->n, j->k, 1.0f, a,
                    j->k, b, square ? j->n : j->k, 0.0f, c, j->n);
    j->rate = 2.0 * j->m * j->n * j->k * calls / (t - t0);
    free(a), free(b), free(c);
    return NULL;
}

#ifndef NO_LIBMVEC
__attribute__((target("avx2"))) __m256 _ZGVdN8v_expf(__m256);
__attribute__((target("avx2"))) static void exp_vector(const float *x, float *y) {
    for (int i = 0; i < EXP_N; i += 8) _mm256_storeu_ps(y + i, _ZGVdN8v_expf(_mm256_loadu_ps(x + i)));
}
#endif

static void *exp_thread(void *arg) {
    Job *j = arg;
    float x[EXP_N], y[EXP_N];
    for (int i = 0; i < EXP_N; i++) x[i] = -20.0f * i / EXP_N;
    pthread_barrier_wait(&barrier);
    double t0 = now(), t = t0;
    long calls = 0;
    for (; t - t0 < SECONDS; t = now())
        for (int r = 0; r < 64; r++, calls++) {
#ifndef NO_LIBMVEC
            if (j->vector) { exp_vector(x, y); continue; }
#endif
            for (int i = 0; i < EXP_N; i++) y[i] = expf(x[i]);
            __asm__ volatile("" : : "r"(y) : "memory");  // the results are used
        }
    j->rate = (double)EXP_N * calls / (t - t0);
    return NULL;
}

// Runs fn on every core at once, REPEATS times; returns the best sum of the threads' rates.
static double rate(int threads, void *(*fn)(void *), Job job) {
    double best = 0;
    for (int r = 0; r < REPEATS; r++) {
        Job jobs[threads];
        pthread_t ids[threads];
        double sum = 0;
        pthread_barrier_init(&barrier, NULL, threads);
        for (int i = 0; i < threads; i++) jobs[i] = job, pthread_create(&ids[i], NULL, fn, &jobs[i]);
        for (int i = 0; i < threads; i++) pthread_join(ids[i], NULL), sum += jobs[i].rate;
        pthread_barrier_destroy(&barrier);
        best = fmax(best, sum);
    }
    return best;
}

int main(void) {
    int threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
    openblas_set_num_threads(1);
    // m n k: two large squares, and attninspect's blocks at 4096 and 8192 tokens (2^20 scores: S/4096·256 rows)
    int shapes[][3] = {{1024, 1024, 1024}, {2048, 2048, 2048}, {256, 4096, 128}, {128, 8192, 128}};
    printf("{\"threads\": %d, \"openblas\": \"%s\", \"openblas_parallel\": %d, \"sgemm\": [", threads,
           openblas_get_config(), openblas_get_parallel());
    double best = 0;
    for (int s = 0; s < (int)(sizeof shapes / sizeof shapes[0]); s++) {
        Job j = {shapes[s][0], shapes[s][1], shapes[s][2], 0, 0};
        double r = rate(threads, sgemm_thread, j);
        best = fmax(best, r);
        printf("%s{\"m\": %d, \"n\": %d, \"k\": %d, \"b_transposed\": %s, \"flops_per_s\": %.4g}", s ? ", " : "",
               j.m, j.n, j.k, j.m == j.n && j.n == j.k ? "false" : "true", r);
    }
#ifdef NO_LIBMVEC
    int vector = 0;
#else
    int vector = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
    Job e = {0, 0, 0, vector, 0};
    printf("], \"sgemm_flops_per_s\": %.4g, \"exp_function\": \"%s\", \"exp_per_s\": %.4g}\n", best,
           vector ? "_ZGVdN8v_expf" : "expf (scalar)", rate(threads, exp_thread, e));
    return 0;
}
