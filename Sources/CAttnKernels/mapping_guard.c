// A SIGBUS guard for read-only file mappings (see cattn_kernels.h).
//
// Reading a mapped page that lies past the end of its file (the file was truncated after it was mapped) or
// that the kernel cannot read (an I/O error) raises SIGBUS, which would kill the process. For an address
// inside a registered range the handler maps a page of zeros over the faulting page and notes the fault in
// the range's slot; the access is then retried and reads zeros, and the reader, which checks the slot before
// it uses what it read, reports the file instead. Any other SIGBUS (another kind of fault, an address outside
// every guarded range, a signal sent by a process) gets what it would have got without this handler: the
// handler installed before, or the default action (or nothing, for a sent signal that was ignored).
#define _GNU_SOURCE
#include "cattn_kernels.h"

#if defined(__linux__)
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
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
static atomic_int installed;
static pthread_once_t install_once = PTHREAD_ONCE_INIT;

// What would have happened without this handler, for a SIGBUS that is not a guarded fault.
static void pass_on(int signal, siginfo_t *info, void *context) {
    int sent = info == NULL || info->si_code <= 0;   // by kill(), raise() or sigqueue(), not by a fault
    // sa_handler and sa_sigaction share storage: SIG_DFL and SIG_IGN are checked first, whatever the flags.
    if (previous.sa_handler == SIG_IGN && sent) return;
    if (previous.sa_handler == SIG_DFL || previous.sa_handler == SIG_IGN) {
        // A fault cannot be ignored (the kernel kills the process then too): take the default action. A sent
        // signal is raised again (delivered on return); a fault happens again when the access is retried.
        struct sigaction fallback;
        memset(&fallback, 0, sizeof fallback);
        fallback.sa_handler = SIG_DFL;
        sigaction(SIGBUS, &fallback, NULL);
        if (sent) raise(SIGBUS);
        return;
    }
    if (previous.sa_flags & SA_SIGINFO) {
        previous.sa_sigaction(signal, info, context);
    } else {
        previous.sa_handler(signal);
    }
}

static void on_sigbus(int signal, siginfo_t *info, void *context) {
    int saved = errno;
    // Only the kernel's fault on a mapped page it cannot provide (past the end of the file, or unreadable).
    if (info != NULL && info->si_code == BUS_ADRERR) {
        uintptr_t address = (uintptr_t)info->si_addr;
        for (int i = 0; i < SLOTS; i++) {
            uintptr_t start = atomic_load(&slots[i].start);
            if (start == 0) continue;
            size_t length = atomic_load(&slots[i].length);
            // Released (and perhaps taken again) between the two loads: the length may not be this start's.
            if (atomic_load(&slots[i].start) != start) continue;
            if (address < start || address - start >= length) continue;
            // Noted before the page is replaced, so that whoever reads the zeros can already see the fault.
            atomic_store(&slots[i].faulted, 1);
            // syscall, not mmap(): a sanitizer's mmap wrapper would record the page as written by this thread
            // and report the other workers' later reads of it as races.
            long page = syscall(SYS_mmap, (void *)(address & ~(page_size - 1)), (size_t)page_size, PROT_READ,
                                MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
            if (page != -1) {
                errno = saved;
                return;
            }
            break;
        }
    }
    errno = saved;
    pass_on(signal, info, context);
}

static void install(void) {
    long size = sysconf(_SC_PAGESIZE);
    if (size <= 0) return;
    page_size = (uintptr_t)size;
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = on_sigbus;
    action.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&action.sa_mask);
    if (sigaction(SIGBUS, &action, &previous) == 0) installed = 1;
}

int cattn_guard_install(void) {
    pthread_once(&install_once, install);
    return installed ? 0 : -1;
}

int cattn_guard_register(const void *start, size_t length) {
    if (start == NULL || length == 0 || !installed) return -1;
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
int cattn_guard_install(void) { return -1; }
int cattn_guard_register(const void *start, size_t length) { (void)start; (void)length; return -1; }
int cattn_guard_faulted(int slot) { (void)slot; return 0; }
int cattn_guard_release(int slot) { (void)slot; return 0; }
#endif
