// OpenBLAS's threaded build, used with one thread per call (see MatrixProduct.swift).
//
// Its library constructor (gotoblas_init) starts a pool of server threads, one per extra CPU, unless
// OPENBLAS_NUM_THREADS says otherwise; each then spins (sched_yield) for about 0.1 s waiting for work that
// attninspect never sends it (its own workers call OpenBLAS one thread each), taking a core from them at
// start-up. This constructor runs before OpenBLAS's (priority 101 sorts ahead of the default one, with GNU ld
// and lld alike; OpenBLAS is linked from its static archive, see Package.swift): it sets OPENBLAS_NUM_THREADS=1,
// runs OpenBLAS's initialisation itself (which then does nothing the second time), and puts the environment
// back as it was. Putting it back matters: the static Swift runtime finds argv by walking back from `environ`,
// and setenv of a new variable moves `environ` to a copy on the heap.
// With a shared libopenblas, whose constructor runs first, the pool is started and sleeps after its spin.
#include <stdlib.h>
#include <unistd.h>

extern char **environ;
// OpenBLAS's initialisation, exported by every build; weak, so that programs without OpenBLAS link too.
extern void gotoblas_init(void) __attribute__((weak));

__attribute__((constructor(101))) static void cattn_one_blas_thread(void) {
    if (gotoblas_init == NULL) return;
    char **saved = environ;
    if (setenv("OPENBLAS_NUM_THREADS", "1", 1) != 0) return;
    gotoblas_init();
    environ = saved;
}
