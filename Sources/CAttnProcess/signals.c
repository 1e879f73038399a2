#include "cattn_process.h"
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

// One temporary output at a time (outputs are written one after another, on the main thread).
static char temporary[4096];
static volatile sig_atomic_t has_temporary = 0;
static sigset_t saved_mask;

static void on_signal(int sig) {
    if (has_temporary) unlink(temporary);
    // End the process as the signal would have: default action, then the same signal again.
    signal(sig, SIG_DFL);
    sigset_t unblock;
    sigemptyset(&unblock);
    sigaddset(&unblock, sig);
    sigprocmask(SIG_UNBLOCK, &unblock, NULL);
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

static void block(void) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, &saved_mask);
}

void cattn_temporary_begin(void) { block(); }

void cattn_temporary_created(const char *path) {
    size_t n = strlen(path);
    if (n < sizeof temporary) {
        memcpy(temporary, path, n + 1);
        has_temporary = 1;
    }
    pthread_sigmask(SIG_SETMASK, &saved_mask, NULL);
}

void cattn_temporary_failed(void) { pthread_sigmask(SIG_SETMASK, &saved_mask, NULL); }

void cattn_temporary_done(void) { has_temporary = 0; }
