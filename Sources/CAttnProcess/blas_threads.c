// OpenBLAS's threaded build, used with one thread per call (see MatrixProduct.swift).
//
// Its library constructor (gotoblas_init) starts a pool of server threads, one per extra CPU, unless
// OPENBLAS_NUM_THREADS says otherwise; each then spins (sched_yield) for about 0.1 s waiting for work that
// attninspect never sends it (its own workers call OpenBLAS one thread each), taking a core from them at
// start-up. This constructor runs before OpenBLAS's when OpenBLAS is linked from its static archive, as
// Package.swift does (priority 101 sorts ahead of the default priority, with GNU ld, gold and lld alike): it
// runs OpenBLAS's initialisation itself (which then does nothing the second time) with `environ` pointing to a
// private copy of the environment in which OPENBLAS_NUM_THREADS=1, then points `environ` back to the process's
// own environment, untouched. setenv is not used: it would move `environ` (the static Swift runtime finds argv
// by walking back from it) or change what child processes inherit.
// With a shared libopenblas, whose constructor runs first, the pool is started and sleeps after its spin.
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;
// OpenBLAS's initialisation, exported by every build; weak, so that programs without OpenBLAS link too.
extern void gotoblas_init(void) __attribute__((weak));

__attribute__((constructor(101))) static void cattn_one_blas_thread(void) {
    static char one_thread[] = "OPENBLAS_NUM_THREADS=1";
    static const char name[] = "OPENBLAS_NUM_THREADS=";
    if (gotoblas_init == NULL) return;
    char **own = environ;
    size_t count = 0;
    while (own != NULL && own[count] != NULL) count++;
    char **copy = malloc((count + 2) * sizeof *copy);
    if (copy == NULL) return;   // OpenBLAS then starts its pool: slower, not wrong
    size_t kept = 0;
    for (size_t i = 0; i < count; i++) {
        if (strncmp(own[i], name, sizeof name - 1) != 0) copy[kept++] = own[i];
    }
    copy[kept++] = one_thread;
    copy[kept] = NULL;
    environ = copy;
    gotoblas_init();
    environ = own;
    free(copy);
}
