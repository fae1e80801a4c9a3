/* Shared by the C tests: CHECK fails the program with a message, and a
 * watchdog alarm makes a hang fail instead of waiting forever. */
#ifndef PLY_CHECK_H
#define PLY_CHECK_H

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ply.h"

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__,   \
                    #cond);                                                    \
            fflush(stderr);                                                    \
            _exit(1);                                                          \
        }                                                                      \
    } while (0)

/* CHECK that a ply call returned `want`, naming both codes on failure. */
#define CHECK_STATUS(call, want)                                               \
    do {                                                                       \
        ply_status got_ = (call);                                              \
        if (got_ != (want)) {                                                  \
            fprintf(stderr, "%s:%d: %s returned %d, expected %d\n", __FILE__,  \
                    __LINE__, #call, (int)got_, (int)(want));                  \
            fflush(stderr);                                                    \
            _exit(1);                                                          \
        }                                                                      \
    } while (0)

/* Every test program calls this first: a hang becomes a failure. */
static inline void watchdog(unsigned seconds) { alarm(seconds); }

/* A give_up callback: counts down the `long` at ctx; gives up at zero. */
static inline int give_up_after(void *ctx) {
    long *left = (long *)ctx;
    return (*left)-- <= 0;
}

#endif
