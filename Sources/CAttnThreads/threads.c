#define _GNU_SOURCE
#include "cattn_threads.h"

#if defined(__linux__)
#include <sched.h>

int cattn_current_cpu(void) { return sched_getcpu(); }

int cattn_move_off_cpu(int cpu) {
    cpu_set_t allowed;
    if (cpu < 0 || cpu >= CPU_SETSIZE || sched_getaffinity(0, sizeof allowed, &allowed) != 0) return -1;
    if (!CPU_ISSET(cpu, &allowed) || CPU_COUNT(&allowed) < 2) return -1;
    cpu_set_t others = allowed;
    CPU_CLR(cpu, &others);
    if (sched_setaffinity(0, sizeof others, &others) != 0) return -1;
    int moved = sched_getcpu();   // one of `others`: the kernel moves the thread before the call returns
    sched_setaffinity(0, sizeof allowed, &allowed);
    return moved;
}
#else
int cattn_current_cpu(void) { return -1; }
int cattn_move_off_cpu(int cpu) { (void)cpu; return -1; }
#endif
