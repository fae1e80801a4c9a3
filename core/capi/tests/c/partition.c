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

    /* A schedule no constructor made (zero or stray bytes) is refused, with
     * nothing written, rather than read as one. */
    static const unsigned char fills[] = {0x00, 0xa5, 0xff};
    for (size_t f = 0; f < sizeof fills; f++) {
        ply_schedule_t garbage;
        memset(&garbage, fills[f], sizeof garbage);
        size_t start = 7, end = 7;
        CHECK(ply_schedule_chunks(&garbage) == 0);
        CHECK_STATUS(ply_schedule_chunk(&garbage, 0, &start, &end), PLY_ERR_UNINIT);
        CHECK(start == 7 && end == 7);
    }
    CHECK_STATUS(ply_schedule_chunk(NULL, 0, &a0, &a1), PLY_ERR_NULL);

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

/* WORKERS workers, and one more id for a worker that dies. */
enum { LEN = 20000, WORKERS = 4, IDS = WORKERS + 1 };

struct shared {
    ply_dispenser_t d;
    _Alignas(PLY_CACHE_LINE) unsigned char slots[PLY_DISPENSER_BUFFER_SIZE(IDS)];
    ply_schedule_t s;
    unsigned char covered[LEN];
};

static struct shared *map_shared(size_t chunk) {
    struct shared *sh =
        mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(sh != MAP_FAILED);
    CHECK_STATUS(ply_dispenser_init(&sh->d, sh->slots, IDS), PLY_OK);
    CHECK(ply_dispenser_workers(&sh->d) == IDS);
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
    CHECK_STATUS(ply_dispenser_claim(&sh->d, IDS, &sh->s, &index, &start, &end), PLY_ERR_RANGE);
    CHECK_STATUS(ply_dispenser_complete(&sh->d, IDS), PLY_ERR_RANGE);
    CHECK_STATUS(ply_dispenser_held_by(&sh->d, (size_t)-1, &index), PLY_ERR_RANGE);
    CHECK_STATUS(ply_dispenser_reclaim(&sh->d, IDS + 100, &index), PLY_ERR_RANGE);
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

/* The caller chooses the number of workers: many more than any fixed table,
 * in a buffer sized at run time. One thread plays them all in turn; every
 * third one dies holding its chunk, and a supervisor re-queues it. Every index
 * is still covered exactly once. */
static void caller_sized(void) {
    enum { MANY = 300, MANY_LEN = 5000 };
    ply_dispenser_t d;
    void *slots = aligned_alloc(PLY_CACHE_LINE, ply_dispenser_buffer_size(MANY));
    CHECK(slots != NULL && ply_dispenser_buffer_size(MANY) == PLY_DISPENSER_BUFFER_SIZE(MANY));
    CHECK_STATUS(ply_dispenser_init(&d, slots, MANY), PLY_OK);
    CHECK(ply_dispenser_workers(&d) == MANY);
    ply_schedule_t s;
    CHECK_STATUS(ply_schedule_fixed(&s, MANY_LEN, 3), PLY_OK);
    static unsigned char covered[MANY_LEN];
    size_t index, start, end, done = 0;
    for (size_t round = 0;; round++) {
        size_t worker = round % MANY;
        ply_status st = ply_dispenser_claim(&d, worker, &s, &index, &start, &end);
        if (st == PLY_DONE) break;
        CHECK_STATUS(st, PLY_OK);
        if (round % 3 == 2) { /* dies; its chunk goes back */
            size_t back;
            CHECK_STATUS(ply_dispenser_reclaim(&d, worker, &back), PLY_OK);
            CHECK(back == index);
            continue;
        }
        for (size_t i = start; i < end; i++) covered[i]++;
        CHECK_STATUS(ply_dispenser_complete(&d, worker), PLY_OK);
        done++;
    }
    CHECK(done == ply_schedule_chunks(&s));
    for (size_t i = 0; i < MANY_LEN; i++) CHECK(covered[i] == 1);
    CHECK_STATUS(ply_dispenser_claim(&d, MANY, &s, &index, &start, &end), PLY_ERR_RANGE);
    free(slots);
}

static void dispenser_errors(void) {
    static union {
        ply_dispenser_t d;
        size_t words[256];
    } u;
    static size_t slots[64];
    CHECK_STATUS(ply_dispenser_init(NULL, slots, 2), PLY_ERR_NULL);
    CHECK_STATUS(ply_dispenser_init(&u.d, NULL, 2), PLY_ERR_NULL);
    CHECK_STATUS(ply_dispenser_init(&u.d, (char *)slots + 1, 2), PLY_ERR_ALIGN);
    CHECK_STATUS(ply_dispenser_init(&u.d, slots, 0), PLY_ERR_CAPACITY);
    CHECK_STATUS(ply_dispenser_init(&u.d, slots, SIZE_MAX / 2), PLY_ERR_SIZE);
    CHECK_STATUS(ply_dispenser_init(&u.d, u.words, 2), PLY_ERR_OVERLAP);
    CHECK(ply_dispenser_buffer_size(0) == 0 && ply_dispenser_buffer_size(SIZE_MAX / 2) == 0);
    /* Never initialized: every call says so. */
    size_t index, start, end;
    ply_schedule_t s;
    CHECK_STATUS(ply_schedule_fixed(&s, 10, 2), PLY_OK);
    CHECK_STATUS(ply_dispenser_claim(&u.d, 0, &s, &index, &start, &end), PLY_ERR_UNINIT);
    CHECK_STATUS(ply_dispenser_complete(&u.d, 0), PLY_ERR_UNINIT);
    CHECK_STATUS(ply_dispenser_attach(&u.d, slots), PLY_ERR_UNINIT);
    CHECK(ply_dispenser_workers(&u.d) == 0 && ply_dispenser_issued(&u.d) == 0);
    CHECK(ply_dispenser_workers(NULL) == 0);
    CHECK_STATUS(ply_dispenser_init(&u.d, slots, 2), PLY_OK);
    CHECK_STATUS(ply_dispenser_attach(&u.d, slots), PLY_OK);
    CHECK_STATUS(ply_dispenser_attach(&u.d, slots + 1), PLY_ERR_MAPPING);
    ply_schedule_t garbage;
    memset(&garbage, 0xa5, sizeof garbage);
    CHECK_STATUS(ply_dispenser_claim(&u.d, 1, &garbage, &index, &start, &end), PLY_ERR_UNINIT);
    CHECK(ply_dispenser_issued(&u.d) == 0);
    CHECK_STATUS(ply_dispenser_claim(&u.d, 1, &s, &index, &start, &end), PLY_OK);
    CHECK(index == 0 && start == 0 && end == 2 && ply_dispenser_issued(&u.d) == 1);
}

int main(void) {
    watchdog(120);
    schedules();
    dispenser_threads();
    dispenser_processes_with_a_death();
    caller_sized();
    dispenser_errors();
    puts("partition: ok");
    return 0;
}
