// A SIGBUS guard for read-only file mappings (see cattn_kernels.h).
//
// Reading a mapped page that lies past the end of its file (the file was truncated after it was mapped) or
// that the kernel cannot read (an I/O error) raises SIGBUS, which would kill the process. For an address
// inside a registered range the handler maps a page of zeros over the faulting page and notes the fault in
// the range's slot; the access is then retried and reads zeros, and the reader, which checks the slot before
// it uses what it read, reports the file instead. Any other SIGBUS goes to the handler that was installed
// before (or kills the process as usual).
#define _GNU_SOURCE
#include "cattn_kernels.h"

#if defined(__linux__)
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define SLOTS 64

typedef struct {
    atomic_int used;           // 0 free, 1 taken (claimed with compare-and-swap)
    _Atomic uintptr_t start;   // 0 while the slot is being filled or emptied
    _Atomic size_t length;
    atomic_int faulted;
} guard_slot;

static guard_slot slots[SLOTS];
static struct sigaction previous;
static uintptr_t page_size;
static int installed;
static pthread_once_t install_once = PTHREAD_ONCE_INIT;

static void on_sigbus(int signal, siginfo_t *info, void *context) {
    uintptr_t address = (uintptr_t)info->si_addr;
    for (int i = 0; i < SLOTS; i++) {
        uintptr_t start = atomic_load(&slots[i].start);
        if (start == 0 || address < start || address - start >= atomic_load(&slots[i].length)) continue;
        void *page = (void *)(address & ~(page_size - 1));
        if (mmap(page, page_size, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != MAP_FAILED) {
            atomic_store(&slots[i].faulted, 1);
            return;
        }
        break;
    }
    // Not ours (or the page could not be replaced): what would have happened without this handler.
    if (previous.sa_flags & SA_SIGINFO) {
        previous.sa_sigaction(signal, info, context);
    } else if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN) {
        previous.sa_handler(signal);
    } else {
        // The access is retried on return and faults again, now with the default action.
        struct sigaction fallback;
        memset(&fallback, 0, sizeof fallback);
        fallback.sa_handler = SIG_DFL;
        sigaction(SIGBUS, &fallback, NULL);
    }
}

static void install(void) {
    long size = sysconf(_SC_PAGESIZE);
    if (size <= 0) return;
    page_size = (uintptr_t)size;
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = on_sigbus;
    action.sa_flags = SA_SIGINFO;
    sigemptyset(&action.sa_mask);
    if (sigaction(SIGBUS, &action, &previous) == 0) installed = 1;
}

int cattn_guard_register(const void *start, size_t length) {
    if (start == NULL || length == 0) return -1;
    pthread_once(&install_once, install);
    if (!installed) return -1;
    for (int i = 0; i < SLOTS; i++) {
        int expected = 0;
        if (!atomic_compare_exchange_strong(&slots[i].used, &expected, 1)) continue;
        atomic_store(&slots[i].faulted, 0);
        atomic_store(&slots[i].length, length);
        atomic_store(&slots[i].start, (uintptr_t)start);
        return i;
    }
    return -1;
}

int cattn_guard_faulted(int slot) {
    if (slot < 0 || slot >= SLOTS) return 0;
    return atomic_load(&slots[slot].faulted);
}

int cattn_guard_release(int slot) {
    if (slot < 0 || slot >= SLOTS) return 0;
    atomic_store(&slots[slot].start, 0);
    int faulted = atomic_load(&slots[slot].faulted);
    atomic_store(&slots[slot].used, 0);
    return faulted;
}
#else
int cattn_guard_register(const void *start, size_t length) { (void)start; (void)length; return -1; }
int cattn_guard_faulted(int slot) { (void)slot; return 0; }
int cattn_guard_release(int slot) { (void)slot; return 0; }
#endif
