/* ply.h's inline spin lock and the library's (Rust) spin lock are one
 * protocol on one lock word: a parent taking the lock inline and a fork()ed
 * child taking it through the library exclude each other, in every mix of
 * inline and library lock and unlock, with every increment of a plain counter
 * kept and no two holders inside at once. */
#include <sched.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "check.h"

#ifndef ply_spin_lock
#error "ply.h should make ply_spin_lock inline with this compiler"
#endif

enum { ROUNDS = 3000000 };

struct shared {
    ply_spin_t lock;
    uint64_t counter; /* plain memory: only the lock protects it */
    volatile int inside; /* who holds the lock: 0 nobody, 1 parent, 2 child */
    volatile int ready[2]; /* each side has started */
};

/* One critical section: a read-modify-write of the counter spread over a few
 * instructions, and a check that nobody else got in meanwhile. */
static void critical(struct shared *sh, int me) {
    CHECK(sh->inside == 0);
    sh->inside = me;
    uint64_t v = sh->counter;
    for (volatile int spin = 0; spin < 8; spin++) {
    }
    sh->counter = v + 1;
    CHECK(sh->inside == me);
    sh->inside = 0;
}

/* `mode` picks the forms: bit 0 set = lock inline, bit 1 set = unlock inline. */
static void rounds(struct shared *sh, int me, int mode) {
    for (int i = 0; i < ROUNDS; i++) {
        if (mode & 1)
            CHECK_STATUS(ply_spin_lock(&sh->lock), PLY_OK);
        else
            CHECK_STATUS((ply_spin_lock)(&sh->lock), PLY_OK);
        critical(sh, me);
        if (mode & 2)
            CHECK_STATUS(ply_spin_unlock(&sh->lock), PLY_OK);
        else
            CHECK_STATUS((ply_spin_unlock)(&sh->lock), PLY_OK);
    }
}

/* The parent runs `parent_mode`, the child `child_mode`, at the same time. */
static void contend(struct shared *sh, int parent_mode, int child_mode) {
    sh->counter = 0;
    sh->ready[0] = sh->ready[1] = 0;
    pid_t child = fork();
    CHECK(child >= 0);
    if (child == 0) {
        watchdog(60);
        sh->ready[1] = 1;
        while (!sh->ready[0]) sched_yield();
        rounds(sh, 2, child_mode);
        _exit(0);
    }
    sh->ready[0] = 1;
    while (!sh->ready[1]) sched_yield();
    rounds(sh, 1, parent_mode);
    int status;
    CHECK(waitpid(child, &status, 0) == child);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK(sh->counter == 2u * ROUNDS);
}

/* The lock word as ply.h documents it, read and written from both sides. */
static void the_word(struct shared *sh) {
    const unsigned char *word = (const unsigned char *)&sh->lock;
    CHECK(sizeof(ply_spin_t) == 1 && *word == PLY_SPIN_UNLOCKED);
    CHECK_STATUS((ply_spin_lock)(&sh->lock), PLY_OK); /* library */
    CHECK(*word == PLY_SPIN_LOCKED);
    CHECK_STATUS(ply_spin_unlock(&sh->lock), PLY_OK); /* inline */
    CHECK(*word == PLY_SPIN_UNLOCKED);
    CHECK_STATUS(ply_spin_lock(&sh->lock), PLY_OK); /* inline */
    CHECK(*word == PLY_SPIN_LOCKED);
    CHECK_STATUS((ply_spin_trylock)(&sh->lock), PLY_BUSY); /* the library sees it held */
    long spins = 100;
    CHECK_STATUS(ply_spin_lock_until(&sh->lock, give_up_after, &spins), PLY_TIMEOUT);
    CHECK_STATUS((ply_spin_unlock)(&sh->lock), PLY_OK); /* library */
    CHECK(*word == PLY_SPIN_UNLOCKED);
    CHECK_STATUS(ply_spin_trylock(&sh->lock), PLY_OK);
    CHECK_STATUS(ply_spin_unlock(&sh->lock), PLY_OK);
    /* NULL goes to the library, which says so. */
    CHECK_STATUS(ply_spin_lock(NULL), PLY_ERR_NULL);
    CHECK_STATUS(ply_spin_unlock(NULL), PLY_ERR_NULL);
}

/* A lock held through the library keeps an inline locker out until it is
 * released, and the other way round: the second holder sees what the first
 * wrote inside. */
static void handoff(struct shared *sh, int child_inline) {
    sh->counter = 0;
    sh->ready[0] = sh->ready[1] = 0;
    pid_t child = fork();
    CHECK(child >= 0);
    if (child == 0) {
        watchdog(60);
        if (child_inline)
            CHECK_STATUS(ply_spin_lock(&sh->lock), PLY_OK);
        else
            CHECK_STATUS((ply_spin_lock)(&sh->lock), PLY_OK);
        sh->ready[1] = 1;
        for (volatile int spin = 0; spin < 100000; spin++) {
        }
        sh->counter = 42;
        if (child_inline)
            CHECK_STATUS(ply_spin_unlock(&sh->lock), PLY_OK);
        else
            CHECK_STATUS((ply_spin_unlock)(&sh->lock), PLY_OK);
        _exit(0);
    }
    while (!sh->ready[1]) sched_yield();
    if (child_inline)
        CHECK_STATUS((ply_spin_lock)(&sh->lock), PLY_OK);
    else
        CHECK_STATUS(ply_spin_lock(&sh->lock), PLY_OK);
    CHECK(sh->counter == 42);
    CHECK_STATUS(ply_spin_unlock(&sh->lock), PLY_OK);
    int status;
    CHECK(waitpid(child, &status, 0) == child);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

int main(void) {
    watchdog(120);
    struct shared *sh =
        mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(sh != MAP_FAILED);
    CHECK_STATUS(ply_spin_init(&sh->lock), PLY_OK);
    the_word(sh);
    handoff(sh, 0); /* the child holds it through the library, the parent waits inline */
    handoff(sh, 1); /* and the other way round */
    contend(sh, 3, 0); /* inline against library */
    contend(sh, 1, 2); /* inline lock + library unlock against the reverse */
    contend(sh, 3, 3); /* inline against inline */
    CHECK(munmap(sh, sizeof *sh) == 0);
    puts("spin_inline: ok");
    return 0;
}
