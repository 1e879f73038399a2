#include "cattn_process.h"
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

// One temporary output at a time (outputs are written one after another, on the main thread). The path is
// written before the flag is set (release) and read after the flag is seen (acquire), so a handler running on
// any thread sees the whole path.
static char temporary[4096];
static int has_temporary = 0;

static void on_signal(int sig) {
    if (__atomic_load_n(&has_temporary, __ATOMIC_ACQUIRE)) unlink(temporary);
    // End the process as the signal would have: default action, then the same signal again.
    signal(sig, SIG_DFL);
    sigset_t unblock;
    sigemptyset(&unblock);
    sigaddset(&unblock, sig);
    pthread_sigmask(SIG_UNBLOCK, &unblock, NULL);
    raise(sig);
    _exit(128 + sig);
}

void cattn_remove_temporary_on_signals(void) {
    int signals[] = { SIGINT, SIGTERM, SIGHUP };
    sigset_t unblock;
    sigemptyset(&unblock);
    for (size_t i = 0; i < sizeof signals / sizeof signals[0]; i++) {
        struct sigaction old;
        if (sigaction(signals[i], NULL, &old) == 0 && old.sa_handler == SIG_IGN) continue;
        // A parent may have left them blocked (Foundation's Process on Linux does): then a signal would wait
        // until the run is over instead of ending it.
        sigaddset(&unblock, signals[i]);
        struct sigaction action;
        memset(&action, 0, sizeof action);
        action.sa_handler = on_signal;
        sigemptyset(&action.sa_mask);
        for (size_t j = 0; j < sizeof signals / sizeof signals[0]; j++) sigaddset(&action.sa_mask, signals[j]);
        sigaction(signals[i], &action, NULL);
    }
    pthread_sigmask(SIG_UNBLOCK, &unblock, NULL);
}

int cattn_temporary_set(const char *path) {
    size_t n = strlen(path);
    if (n >= sizeof temporary) return 0;
    __atomic_store_n(&has_temporary, 0, __ATOMIC_RELEASE);
    memcpy(temporary, path, n + 1);
    __atomic_store_n(&has_temporary, 1, __ATOMIC_RELEASE);
    return 1;
}

void cattn_temporary_clear(void) { __atomic_store_n(&has_temporary, 0, __ATOMIC_RELEASE); }
