/* The locks and signals through the C ABI: try/bounded forms, mutual exclusion
 * counted exactly between threads and between fork()ed processes, the
 * semaphore's bound, event, barrier rounds and once. */
#include <pthread.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "check.h"

enum { THREADS = 4, INCREMENTS = 20000 };

struct locks {
    ply_spin_t spin;
    ply_ticket_t ticket;
    ply_rwlock_t rw;
    ply_semaphore_t sem;
    ply_event_t event;
    ply_barrier_t barrier;
    ply_once_t once;
    /* Guarded data: plain (non-atomic) words, so a broken lock loses updates. */
    volatile long spin_count, ticket_count, rw_a, rw_b;
    int inside, max_inside, once_runs, leaders[200], payload;
};

static struct locks *map_locks(void) {
    struct locks *l =
        mmap(NULL, sizeof *l, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(l != MAP_FAILED);
    CHECK_STATUS(ply_spin_init(&l->spin), PLY_OK);
    CHECK_STATUS(ply_ticket_init(&l->ticket), PLY_OK);
    CHECK_STATUS(ply_rwlock_init(&l->rw), PLY_OK);
    CHECK_STATUS(ply_semaphore_init(&l->sem, 2), PLY_OK);
    CHECK_STATUS(ply_event_init(&l->event), PLY_OK);
    CHECK_STATUS(ply_barrier_init(&l->barrier, THREADS), PLY_OK);
    CHECK_STATUS(ply_once_init(&l->once), PLY_OK);
    return l;
}

static struct locks *L;

static void try_and_bounded_forms(void) {
    long spins = 100;
    CHECK_STATUS(ply_spin_trylock(&L->spin), PLY_OK);
    CHECK_STATUS(ply_spin_trylock(&L->spin), PLY_BUSY);
    CHECK_STATUS(ply_spin_lock_until(&L->spin, give_up_after, &spins), PLY_TIMEOUT);
    CHECK_STATUS(ply_spin_unlock(&L->spin), PLY_OK);
    spins = 100;
    CHECK_STATUS(ply_spin_lock_until(&L->spin, give_up_after, &spins), PLY_OK);
    CHECK_STATUS(ply_spin_unlock(&L->spin), PLY_OK);

    CHECK_STATUS(ply_ticket_trylock(&L->ticket), PLY_OK);
    CHECK_STATUS(ply_ticket_trylock(&L->ticket), PLY_BUSY);
    spins = 100;
    CHECK_STATUS(ply_ticket_lock_until(&L->ticket, give_up_after, &spins), PLY_TIMEOUT);
    CHECK_STATUS(ply_ticket_unlock(&L->ticket), PLY_OK);
    /* The waiter that gave up left no ticket behind: the lock is free. */
    CHECK_STATUS(ply_ticket_trylock(&L->ticket), PLY_OK);
    CHECK_STATUS(ply_ticket_unlock(&L->ticket), PLY_OK);
    /* Unlocking a free lock is refused and changes nothing. */
    CHECK_STATUS(ply_ticket_unlock(&L->ticket), PLY_ERR_NOT_HELD);
    CHECK_STATUS(ply_ticket_trylock(&L->ticket), PLY_OK);
    CHECK_STATUS(ply_ticket_unlock(&L->ticket), PLY_OK);

    CHECK_STATUS(ply_rwlock_tryread(&L->rw), PLY_OK);
    CHECK_STATUS(ply_rwlock_tryread(&L->rw), PLY_OK);
    CHECK_STATUS(ply_rwlock_trywrite(&L->rw), PLY_BUSY);
    spins = 100;
    CHECK_STATUS(ply_rwlock_write_until(&L->rw, give_up_after, &spins), PLY_TIMEOUT);
    CHECK_STATUS(ply_rwlock_unlock_read(&L->rw), PLY_OK);
    CHECK_STATUS(ply_rwlock_unlock_read(&L->rw), PLY_OK);
    CHECK_STATUS(ply_rwlock_trywrite(&L->rw), PLY_OK);
    spins = 100;
    CHECK_STATUS(ply_rwlock_read_until(&L->rw, give_up_after, &spins), PLY_TIMEOUT);
    CHECK_STATUS(ply_rwlock_unlock_write(&L->rw), PLY_OK);
    /* Unlocking a mode nobody holds is refused and changes nothing. */
    CHECK_STATUS(ply_rwlock_unlock_write(&L->rw), PLY_ERR_NOT_HELD);
    CHECK_STATUS(ply_rwlock_unlock_read(&L->rw), PLY_ERR_NOT_HELD);
    CHECK_STATUS(ply_rwlock_tryread(&L->rw), PLY_OK);
    CHECK_STATUS(ply_rwlock_unlock_write(&L->rw), PLY_ERR_NOT_HELD);
    CHECK_STATUS(ply_rwlock_trywrite(&L->rw), PLY_BUSY);
    CHECK_STATUS(ply_rwlock_unlock_read(&L->rw), PLY_OK);
    CHECK_STATUS(ply_rwlock_trywrite(&L->rw), PLY_OK);
    CHECK_STATUS(ply_rwlock_unlock_read(&L->rw), PLY_ERR_NOT_HELD);
    CHECK_STATUS(ply_rwlock_tryread(&L->rw), PLY_BUSY);
    CHECK_STATUS(ply_rwlock_unlock_write(&L->rw), PLY_OK);

    CHECK_STATUS(ply_semaphore_tryacquire(&L->sem), PLY_OK);
    CHECK_STATUS(ply_semaphore_tryacquire(&L->sem), PLY_OK);
    CHECK_STATUS(ply_semaphore_tryacquire(&L->sem), PLY_BUSY);
    spins = 100;
    CHECK_STATUS(ply_semaphore_acquire_until(&L->sem, give_up_after, &spins), PLY_TIMEOUT);
    CHECK(ply_semaphore_available(&L->sem) == 0);
    CHECK_STATUS(ply_semaphore_release(&L->sem, 2), PLY_OK);
    CHECK(ply_semaphore_available(&L->sem) == 2);
    /* More permits than the count holds: refused, nothing released. */
    CHECK_STATUS(ply_semaphore_release(&L->sem, UINT32_MAX - 1), PLY_ERR_OVERFLOW);
    CHECK(ply_semaphore_available(&L->sem) == 2);
    CHECK_STATUS(ply_semaphore_release(&L->sem, UINT32_MAX - 2), PLY_OK);
    CHECK(ply_semaphore_available(&L->sem) == UINT32_MAX);
    CHECK_STATUS(ply_semaphore_release(&L->sem, 1), PLY_ERR_OVERFLOW);
    CHECK_STATUS(ply_semaphore_init(&L->sem, 2), PLY_OK);

    CHECK(!ply_event_is_set(&L->event));
    spins = 100;
    CHECK_STATUS(ply_event_wait_until(&L->event, give_up_after, &spins), PLY_TIMEOUT);

    ply_barrier_t alone;
    CHECK_STATUS(ply_barrier_init(&alone, 0), PLY_ERR_RANGE);
    CHECK_STATUS(ply_barrier_init(&alone, 2), PLY_OK);
    bool leader = true;
    spins = 100;
    CHECK_STATUS(ply_barrier_wait_until(&alone, &leader, give_up_after, &spins), PLY_TIMEOUT);

    CHECK_STATUS(ply_spin_lock(NULL), PLY_ERR_NULL);
    CHECK_STATUS(ply_spin_init((ply_spin_t *)NULL), PLY_ERR_NULL);
    CHECK_STATUS(ply_ticket_init((ply_ticket_t *)((char *)&L->ticket + 1)), PLY_ERR_ALIGN);
    CHECK_STATUS(ply_once_call(&L->once, NULL, NULL), PLY_ERR_NULL);

    /* Every call on a misaligned object says so, and touches nothing. */
#define SKEW(p) ((void *)((char *)(p) + 1))
    CHECK_STATUS(ply_ticket_lock(SKEW(&L->ticket)), PLY_ERR_ALIGN);
    CHECK_STATUS(ply_ticket_unlock(SKEW(&L->ticket)), PLY_ERR_ALIGN);
    CHECK_STATUS(ply_rwlock_read(SKEW(&L->rw)), PLY_ERR_ALIGN);
    CHECK_STATUS(ply_rwlock_trywrite(SKEW(&L->rw)), PLY_ERR_ALIGN);
    CHECK_STATUS(ply_semaphore_acquire(SKEW(&L->sem)), PLY_ERR_ALIGN);
    CHECK(ply_semaphore_available(SKEW(&L->sem)) == 0);
    CHECK_STATUS(ply_event_set(SKEW(&L->event)), PLY_ERR_ALIGN);
    CHECK(!ply_event_is_set(SKEW(&L->event)));
    CHECK_STATUS(ply_barrier_wait(SKEW(&alone), NULL), PLY_ERR_ALIGN);
    CHECK_STATUS(ply_event_wait(NULL), PLY_ERR_NULL);
    CHECK(!ply_once_is_done(NULL));
#undef SKEW
}

static void count_once(void *arg) {
    struct locks *l = arg;
    l->once_runs++;
    l->payload = 42;
}

static void hammer(int id) {
    for (int i = 0; i < INCREMENTS; i++) {
        CHECK_STATUS(ply_spin_lock(&L->spin), PLY_OK);
        L->spin_count = L->spin_count + 1;
        CHECK_STATUS(ply_spin_unlock(&L->spin), PLY_OK);

        CHECK_STATUS(ply_ticket_lock(&L->ticket), PLY_OK);
        L->ticket_count = L->ticket_count + 1;
        CHECK_STATUS(ply_ticket_unlock(&L->ticket), PLY_OK);

        if (i % 4 == id % 4) {
            CHECK_STATUS(ply_rwlock_write(&L->rw), PLY_OK);
            L->rw_a = L->rw_a + 1;
            L->rw_b = L->rw_b + 1;
            CHECK_STATUS(ply_rwlock_unlock_write(&L->rw), PLY_OK);
        } else {
            CHECK_STATUS(ply_rwlock_read(&L->rw), PLY_OK);
            CHECK(L->rw_a == L->rw_b);
            CHECK_STATUS(ply_rwlock_unlock_read(&L->rw), PLY_OK);
        }

        if (i % 64 == 0) {
            CHECK_STATUS(ply_semaphore_acquire(&L->sem), PLY_OK);
            int now = __atomic_add_fetch(&L->inside, 1, __ATOMIC_SEQ_CST);
            CHECK(now <= 2);
            int seen = __atomic_load_n(&L->max_inside, __ATOMIC_SEQ_CST);
            while (now > seen &&
                   !__atomic_compare_exchange_n(&L->max_inside, &seen, now, 0, __ATOMIC_SEQ_CST,
                                                __ATOMIC_SEQ_CST)) {
            }
            sched_yield();
            __atomic_sub_fetch(&L->inside, 1, __ATOMIC_SEQ_CST);
            CHECK_STATUS(ply_semaphore_release(&L->sem, 1), PLY_OK);
        }
    }
    CHECK_STATUS(ply_once_call(&L->once, count_once, L), PLY_OK);
    CHECK(ply_once_is_done(&L->once) && L->payload == 42);
    /* Barrier rounds: everyone writes its round before arriving; after the
     * barrier everyone sees every party's write of that round. */
    for (int round = 0; round < 50; round++) {
        bool leader = false;
        CHECK_STATUS(ply_barrier_wait(&L->barrier, &leader), PLY_OK);
        if (leader) __atomic_add_fetch(&L->leaders[round], 1, __ATOMIC_SEQ_CST);
    }
}

static void *hammer_thread(void *arg) {
    hammer((int)(uintptr_t)arg);
    return NULL;
}

static void check_counts(long parties) {
    CHECK(L->spin_count == parties * INCREMENTS);
    CHECK(L->ticket_count == parties * INCREMENTS);
    CHECK(L->rw_a == L->rw_b && L->rw_a == parties * INCREMENTS / 4);
    CHECK(L->max_inside >= 1 && L->max_inside <= 2);
    CHECK(L->once_runs == 1);
    for (int round = 0; round < 50; round++) CHECK(L->leaders[round] == 1);
}

static void threads(void) {
    L = map_locks();
    try_and_bounded_forms();
    pthread_t t[THREADS];
    for (uintptr_t i = 0; i < THREADS; i++)
        CHECK(pthread_create(&t[i], NULL, hammer_thread, (void *)i) == 0);
    for (int i = 0; i < THREADS; i++) CHECK(pthread_join(t[i], NULL) == 0);
    check_counts(THREADS);
    munmap(L, sizeof *L);
}

static void processes(void) {
    L = map_locks();
    pid_t pids[THREADS];
    for (int i = 0; i < THREADS; i++) {
        pids[i] = fork();
        CHECK(pids[i] >= 0);
        if (pids[i] == 0) {
            hammer(i);
            _exit(0);
        }
    }
    for (int i = 0; i < THREADS; i++) {
        int status;
        CHECK(waitpid(pids[i], &status, 0) == pids[i]);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    check_counts(THREADS);
    munmap(L, sizeof *L);
}

/* An event set in one process releases a waiter in another, and what was
 * written before the set is visible after the wait. */
static void event_across_fork(void) {
    L = map_locks();
    pid_t child = fork();
    CHECK(child >= 0);
    if (child == 0) {
        CHECK_STATUS(ply_event_wait(&L->event), PLY_OK);
        _exit(L->payload == 7 ? 0 : 1);
    }
    L->payload = 7;
    CHECK_STATUS(ply_event_set(&L->event), PLY_OK);
    int status;
    CHECK(waitpid(child, &status, 0) == child);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK(ply_event_is_set(&L->event));
    CHECK_STATUS(ply_event_clear(&L->event), PLY_OK);
    CHECK(!ply_event_is_set(&L->event));
    munmap(L, sizeof *L);
}

int main(void) {
    watchdog(240);
    threads();
    processes();
    event_across_fork();
    puts("sync: ok");
    return 0;
}
