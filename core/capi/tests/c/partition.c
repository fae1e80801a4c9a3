/* Schedules, shards and the chunk dispenser through the C ABI: every index
 * covered exactly once, the errors, threads and fork()ed workers sharing one
 * dispenser, and a dead worker's chunk reclaimed and finished by another. */
#include <pthread.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "check.h"

/* Every index of 0..len in exactly one chunk, chunks in increasing order. */
static void covers(const ply_schedule_t *s, size_t len) {
    size_t next = 0, chunks = ply_schedule_chunks(s);
    for (size_t i = 0; i < chunks; i++) {
        size_t start, end;
        CHECK_STATUS(ply_schedule_chunk(s, i, &start, &end), PLY_OK);
        CHECK(start == next && end >= start);
        next = end;
    }
    CHECK(next == len);
    size_t start, end;
    CHECK_STATUS(ply_schedule_chunk(s, chunks, &start, &end), PLY_ERR_RANGE);
}

static void schedules(void) {
    ply_schedule_t s;
    for (size_t len = 0; len < 300; len += 37) {
        for (size_t parts = 1; parts < 9; parts++) {
            CHECK_STATUS(ply_schedule_even(&s, len, parts), PLY_OK);
            covers(&s, len);
            CHECK(ply_schedule_chunks(&s) == (len < parts ? len : parts));
            CHECK_STATUS(ply_schedule_fixed(&s, len, parts), PLY_OK);
            covers(&s, len);
            CHECK_STATUS(ply_schedule_guided(&s, len, parts, 2, 3), PLY_OK);
            covers(&s, len);
        }
    }
    uint64_t costs[100];
    for (int i = 0; i < 100; i++) costs[i] = (uint64_t)i * (uint64_t)i;
    CHECK_STATUS(ply_schedule_weighted(&s, costs, 100, 4), PLY_OK);
    covers(&s, 100);
    size_t a0, a1, b0, b1;
    CHECK_STATUS(ply_schedule_chunk(&s, 0, &a0, &a1), PLY_OK);
    CHECK_STATUS(ply_schedule_chunk(&s, 3, &b0, &b1), PLY_OK);
    CHECK(a1 - a0 > b1 - b0); /* cheap items first: the first part is longer */
    CHECK_STATUS(ply_schedule_weighted(&s, NULL, 0, 3), PLY_OK);
    covers(&s, 0);

    CHECK_STATUS(ply_schedule_even(&s, 10, 0), PLY_ERR_SCHEDULE);
    CHECK_STATUS(ply_schedule_fixed(&s, 10, 0), PLY_ERR_SCHEDULE);
    CHECK_STATUS(ply_schedule_guided(&s, 10, 2, 0, 1), PLY_ERR_SCHEDULE);
    CHECK_STATUS(ply_schedule_weighted(&s, costs, 10, 0), PLY_ERR_SCHEDULE);
    CHECK_STATUS(ply_schedule_weighted(&s, NULL, 10, 2), PLY_ERR_NULL);
    CHECK_STATUS(ply_schedule_even(NULL, 10, 2), PLY_ERR_NULL);

    size_t next = 0;
    for (size_t k = 0; k < 7; k++) {
        size_t start, end;
        CHECK_STATUS(ply_shard(k, 7, 1000, &start, &end), PLY_OK);
        CHECK(start == next);
        next = end;
    }
    CHECK(next == 1000);
    CHECK_STATUS(ply_shard(7, 7, 1000, &a0, &a1), PLY_ERR_RANGE);
    CHECK_STATUS(ply_shard(0, 0, 1000, &a0, &a1), PLY_ERR_SCHEDULE);
}

enum { LEN = 20000, WORKERS = 4 };

struct shared {
    ply_dispenser_t d;
    ply_schedule_t s;
    unsigned char covered[LEN];
};

static struct shared *map_shared(size_t chunk) {
    struct shared *sh =
        mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(sh != MAP_FAILED);
    CHECK_STATUS(ply_dispenser_init(&sh->d), PLY_OK);
    CHECK_STATUS(ply_schedule_fixed(&sh->s, LEN, chunk), PLY_OK);
    return sh;
}

/* Claims chunks until none is left; marks each index of each. */
static void work(struct shared *sh, size_t worker) {
    size_t index, start, end;
    ply_status st;
    while ((st = ply_dispenser_claim(&sh->d, worker, &sh->s, &index, &start, &end)) == PLY_OK) {
        for (size_t i = start; i < end; i++) __atomic_add_fetch(&sh->covered[i], 1, __ATOMIC_SEQ_CST);
        CHECK_STATUS(ply_dispenser_complete(&sh->d, worker), PLY_OK);
    }
    CHECK_STATUS(st, PLY_DONE);
}

static void check_covered(struct shared *sh) {
    for (size_t i = 0; i < LEN; i++) CHECK(sh->covered[i] == 1);
}

static struct shared *thread_shared;
static void *work_thread(void *arg) {
    work(thread_shared, (size_t)(uintptr_t)arg);
    return NULL;
}

static void dispenser_threads(void) {
    thread_shared = map_shared(7);
    pthread_t t[WORKERS];
    for (uintptr_t w = 0; w < WORKERS; w++)
        CHECK(pthread_create(&t[w], NULL, work_thread, (void *)w) == 0);
    for (int w = 0; w < WORKERS; w++) CHECK(pthread_join(t[w], NULL) == 0);
    check_covered(thread_shared);
    CHECK(ply_dispenser_issued(&thread_shared->d) == ply_schedule_chunks(&thread_shared->s));
    munmap(thread_shared, sizeof *thread_shared);
}

/* Forked workers share the dispenser; one claims a chunk and dies without
 * finishing it. The supervisor reclaims it, and a worker finishes it. */
static void dispenser_processes_with_a_death(void) {
    struct shared *sh = map_shared(50);
    size_t index, start, end;
    CHECK_STATUS(ply_dispenser_claim(&sh->d, 64, &sh->s, &index, &start, &end), PLY_ERR_RANGE);
    pid_t doomed = fork();
    CHECK(doomed >= 0);
    if (doomed == 0) {
        CHECK_STATUS(ply_dispenser_claim(&sh->d, 0, &sh->s, &index, &start, &end), PLY_OK);
        _exit(0); /* dies holding the chunk, nothing marked */
    }
    int status;
    CHECK(waitpid(doomed, &status, 0) == doomed && WIFEXITED(status));
    size_t held;
    CHECK_STATUS(ply_dispenser_held_by(&sh->d, 0, &held), PLY_OK);
    CHECK(held == 0);
    CHECK_STATUS(ply_dispenser_reclaim(&sh->d, 0, &index), PLY_OK);
    CHECK(index == 0);
    CHECK_STATUS(ply_dispenser_held_by(&sh->d, 0, &held), PLY_EMPTY);
    CHECK_STATUS(ply_dispenser_reclaim(&sh->d, 0, &index), PLY_EMPTY);
    pid_t pids[WORKERS];
    for (int w = 0; w < WORKERS; w++) {
        pids[w] = fork();
        CHECK(pids[w] >= 0);
        if (pids[w] == 0) {
            work(sh, (size_t)w + 1);
            _exit(0);
        }
    }
    for (int w = 0; w < WORKERS; w++) {
        CHECK(waitpid(pids[w], &status, 0) == pids[w]);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    check_covered(sh);
    munmap(sh, sizeof *sh);
}

int main(void) {
    watchdog(120);
    schedules();
    dispenser_threads();
    dispenser_processes_with_a_death();
    puts("partition: ok");
    return 0;
}
