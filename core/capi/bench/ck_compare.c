/* ply's SPSC ring and spin lock through the C ABI, beside Concurrency Kit's
 * ck_ring (SPSC) and ck_spinlock, and pthread_mutex, in one run.
 *
 *   bash core/capi/bench/run.sh        (builds libply_capi.a, compiles this, runs it)
 *
 * Ring: 8-byte items, capacity 1024, producer and consumer threads pinned to
 * CPUs 0 and 1; throughput in million items per second (Mitems/s), each side
 * spinning on full/empty. ck_ring is header-only (inlined into the loop); ply
 * goes through an out-of-line call per item, as a C user of libply_capi.a would.
 * Lock: one thread on CPU 0, uncontended lock + unlock pairs, ns per pair;
 * ply twice: ply_spin_lock/ply_spin_unlock as ply.h makes them (an inline
 * swap and store, calling the library only when the lock is held) and
 * (ply_spin_lock)/(ply_spin_unlock), a library call each.
 * Each figure is the median of 7 repetitions, ply and ck alternating which
 * runs first; the binary prints one table. */
#define _GNU_SOURCE
#include <ck_ring.h>
#include <ck_spinlock.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ply.h"

enum { CAP = 1024, REPS = 7 };
static const uint64_t ITEMS = 20000000;
static const uint64_t LOCKS = 50000000;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void pin(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (pthread_setaffinity_np(pthread_self(), sizeof set, &set) != 0) {
        fprintf(stderr, "cannot pin to CPU %d\n", cpu);
        exit(2);
    }
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v) {
    qsort(v, REPS, sizeof *v, cmp);
    return v[REPS / 2];
}

/* ---- the rings ---- */

static ply_spsc_t ply_ring;
static uint64_t ply_slots[CAP];
static ck_ring_t ck_ring;
static ck_ring_buffer_t ck_slots[CAP];
static pthread_barrier_t start;

static void *ply_producer(void *arg) {
    (void)arg;
    pin(0);
    ply_spsc_producer_t tx;
    ply_spsc_producer(&ply_ring, &tx);
    pthread_barrier_wait(&start);
    for (uint64_t i = 1; i <= ITEMS; i++)
        while (ply_spsc_push(&tx, &i) != PLY_OK) {
        }
    return NULL;
}

static void *ck_producer(void *arg) {
    (void)arg;
    pin(0);
    pthread_barrier_wait(&start);
    for (uintptr_t i = 1; i <= ITEMS; i++)
        while (!ck_ring_enqueue_spsc(&ck_ring, ck_slots, (void *)i)) {
        }
    return NULL;
}

/* Consumes ITEMS items on CPU 1; returns items per second. */
static double ring_run(int use_ply) {
    pthread_t producer;
    if (use_ply)
        ply_spsc_init(&ply_ring, ply_slots, CAP, sizeof(uint64_t));
    else
        ck_ring_init(&ck_ring, CAP);
    pthread_barrier_init(&start, NULL, 2);
    pthread_create(&producer, NULL, use_ply ? ply_producer : ck_producer, NULL);
    pin(1);
    uint64_t sum = 0;
    ply_spsc_consumer_t rx;
    if (use_ply && ply_spsc_consumer(&ply_ring, &rx) != PLY_OK) {
        fprintf(stderr, "ply_spsc_consumer failed\n");
        exit(1);
    }
    pthread_barrier_wait(&start);
    double t0 = now();
    if (use_ply) {
        for (uint64_t n = 0; n < ITEMS; n++) {
            uint64_t v;
            while (ply_spsc_pop(&rx, &v) != PLY_OK) {
            }
            sum += v;
        }
    } else {
        for (uint64_t n = 0; n < ITEMS; n++) {
            void *v;
            while (!ck_ring_dequeue_spsc(&ck_ring, ck_slots, &v)) {
            }
            sum += (uintptr_t)v;
        }
    }
    double t = now() - t0;
    pthread_join(producer, NULL);
    pthread_barrier_destroy(&start);
    if (sum != ITEMS * (ITEMS + 1) / 2) {
        fprintf(stderr, "ring lost or corrupted items\n");
        exit(1);
    }
    return (double)ITEMS / t;
}

/* ---- the locks, uncontended ---- */

static ply_spin_t ply_lock;
static ck_spinlock_t ck_lock = CK_SPINLOCK_INITIALIZER;
static pthread_mutex_t mutex = PTHREAD_MUTEX_INITIALIZER;
static volatile uint64_t guarded;

/* ns per lock + unlock pair. */
static double lock_run(int which) {
    pin(0);
    double t0 = now();
    for (uint64_t i = 0; i < LOCKS; i++) {
        switch (which) {
        case 0:
            ply_spin_lock(&ply_lock);
            guarded++;
            ply_spin_unlock(&ply_lock);
            break;
        case 3:
            (ply_spin_lock)(&ply_lock);
            guarded++;
            (ply_spin_unlock)(&ply_lock);
            break;
        case 1:
            ck_spinlock_lock(&ck_lock);
            guarded++;
            ck_spinlock_unlock(&ck_lock);
            break;
        default:
            pthread_mutex_lock(&mutex);
            guarded++;
            pthread_mutex_unlock(&mutex);
        }
    }
    return (now() - t0) * 1e9 / (double)LOCKS;
}

int main(void) {
    ply_spin_init(&ply_lock);
    double ply_r[REPS], ck_r[REPS], ply_l[REPS], call_l[REPS], ck_l[REPS], mx_l[REPS];
    for (int r = 0; r < REPS; r++) {
        /* Alternate which goes first, so neither always runs on a warmer box. */
        if (r % 2 == 0) {
            ply_r[r] = ring_run(1);
            ck_r[r] = ring_run(0);
        } else {
            ck_r[r] = ring_run(0);
            ply_r[r] = ring_run(1);
        }
        if (r % 2 == 0) {
            ply_l[r] = lock_run(0);
            ck_l[r] = lock_run(1);
        } else {
            ck_l[r] = lock_run(1);
            ply_l[r] = lock_run(0);
        }
        call_l[r] = lock_run(3);
        mx_l[r] = lock_run(2);
    }
    double pr = median(ply_r), cr = median(ck_r);
    double pl = median(ply_l), cl = median(ck_l), ml = median(mx_l), pc = median(call_l);
    printf("| benchmark | ply | ck | ply / ck | ply, library call | pthread_mutex |\n");
    printf("|---|---|---|---|---|---|\n");
    printf("| SPSC ring, 8-byte items, Mitems/s (higher is better) | %.1f | %.1f | %.2fx | | |\n",
           pr / 1e6, cr / 1e6, pr / cr);
    printf("| uncontended lock+unlock, ns (lower is better) | %.2f | %.2f | %.2fx | %.2f | %.2f |\n",
           pl, cl, pl / cl, pc, ml);
    return 0;
}
