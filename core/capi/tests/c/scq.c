/* The SCQ queue through the C ABI: argument checks, FIFO and full/empty at
 * several capacities and element sizes, many threads, many processes, and a
 * participant SIGKILLed mid-stream at many points while the others go on. */
#include <pthread.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>

#include "check.h"

static void argument_checks(void) {
    ply_scq_t q;
    static size_t buf[256];
    CHECK_STATUS(ply_scq_init(NULL, buf, 4, 4), PLY_ERR_NULL);
    CHECK_STATUS(ply_scq_init(&q, NULL, 4, 4), PLY_ERR_NULL);
    CHECK_STATUS(ply_scq_init(&q, (char *)buf + 1, 4, 4), PLY_ERR_ALIGN);
    CHECK_STATUS(ply_scq_init(&q, buf, 4, 0), PLY_ERR_SIZE);
    CHECK_STATUS(ply_scq_init(&q, buf, 0, 4), PLY_ERR_CAPACITY);
    CHECK_STATUS(ply_scq_init(&q, buf, 6, 4), PLY_ERR_CAPACITY);
    CHECK_STATUS(ply_scq_init(&q, buf, SIZE_MAX / 4, 4), PLY_ERR_SIZE);
    CHECK_STATUS(ply_scq_init(&q, buf, 4, 4), PLY_OK);
    CHECK_STATUS(ply_scq_push(&q, NULL), PLY_ERR_NULL);
    CHECK_STATUS(ply_scq_pop(&q, NULL), PLY_ERR_NULL);
    CHECK(ply_scq_capacity(&q) == 4 && ply_scq_capacity(NULL) == 0);
}

static void fifo(size_t capacity, size_t size) {
    ply_scq_t q;
    size_t *buf = malloc(ply_scq_buffer_size(capacity, size));
    unsigned char item[32], out[32];
    CHECK(buf != NULL && size <= sizeof item);
    CHECK_STATUS(ply_scq_init(&q, buf, capacity, size), PLY_OK);
    unsigned long next_in = 0, next_out = 0;
    for (int round = 0; round < 40; round++) {
        /* Fill to capacity, exactly. */
        while (next_in - next_out < capacity) {
            memset(item, (int)(next_in & 0xff), size);
            CHECK_STATUS(ply_scq_push(&q, item), PLY_OK);
            next_in++;
        }
        CHECK_STATUS(ply_scq_push(&q, item), PLY_FULL);
        /* Drain a varying amount, checking order. */
        for (size_t k = 0; k < (size_t)round % capacity + 1; k++) {
            CHECK_STATUS(ply_scq_pop(&q, out), PLY_OK);
            memset(item, (int)(next_out++ & 0xff), size);
            CHECK(memcmp(item, out, size) == 0);
        }
    }
    while (next_out < next_in) {
        CHECK_STATUS(ply_scq_pop(&q, out), PLY_OK);
        memset(item, (int)(next_out++ & 0xff), size);
        CHECK(memcmp(item, out, size) == 0);
    }
    CHECK_STATUS(ply_scq_pop(&q, out), PLY_EMPTY);
    free(buf);
}

enum { PRODUCERS = 2, CONSUMERS = 2, PER_PRODUCER = 50000 };

/* What the threads and processes share: the queue, its buffer, and a count of
 * how often each item arrived. */
struct shared {
    ply_scq_t q;
    size_t buf[4 * 64 + 2 * 64];
    unsigned char seen[PRODUCERS * PER_PRODUCER];
    size_t popped;
    size_t producer_arg;
};

static struct shared *map_shared(void) {
    struct shared *sh =
        mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(sh != MAP_FAILED);
    CHECK_STATUS(ply_scq_init(&sh->q, sh->buf, 64, 2 * sizeof(uint64_t)), PLY_OK);
    return sh;
}

static void produce(struct shared *sh, uint64_t p) {
    for (uint64_t i = 0; i < PER_PRODUCER; i++) {
        uint64_t item[2] = {p, i};
        while (ply_scq_push(&sh->q, item) == PLY_FULL) sched_yield();
    }
}

/* Pops until every item has arrived, checking per-producer order. */
static void consume(struct shared *sh) {
    uint64_t last[PRODUCERS];
    for (int p = 0; p < PRODUCERS; p++) last[p] = UINT64_MAX;
    while (__atomic_load_n(&sh->popped, __ATOMIC_SEQ_CST) < PRODUCERS * PER_PRODUCER) {
        uint64_t out[2];
        if (ply_scq_pop(&sh->q, out) != PLY_OK) {
            sched_yield();
            continue;
        }
        CHECK(out[0] < PRODUCERS && out[1] < PER_PRODUCER);
        CHECK(last[out[0]] == UINT64_MAX || last[out[0]] < out[1]);
        last[out[0]] = out[1];
        __atomic_add_fetch(&sh->seen[out[0] * PER_PRODUCER + out[1]], 1, __ATOMIC_SEQ_CST);
        __atomic_add_fetch(&sh->popped, 1, __ATOMIC_SEQ_CST);
    }
}

static void check_each_once(struct shared *sh) {
    for (size_t i = 0; i < PRODUCERS * PER_PRODUCER; i++) CHECK(sh->seen[i] == 1);
    uint64_t out[2];
    CHECK_STATUS(ply_scq_pop(&sh->q, out), PLY_EMPTY);
}

static struct shared *thread_shared;
static void *producer_thread(void *arg) {
    produce(thread_shared, (uint64_t)(uintptr_t)arg);
    return NULL;
}
static void *consumer_thread(void *arg) {
    (void)arg;
    consume(thread_shared);
    return NULL;
}

static void threads(void) {
    thread_shared = map_shared();
    pthread_t t[PRODUCERS + CONSUMERS];
    for (uintptr_t p = 0; p < PRODUCERS; p++)
        CHECK(pthread_create(&t[p], NULL, producer_thread, (void *)p) == 0);
    for (int c = 0; c < CONSUMERS; c++)
        CHECK(pthread_create(&t[PRODUCERS + c], NULL, consumer_thread, NULL) == 0);
    for (int i = 0; i < PRODUCERS + CONSUMERS; i++) CHECK(pthread_join(t[i], NULL) == 0);
    check_each_once(thread_shared);
    munmap(thread_shared, sizeof *thread_shared);
}

static void wait_ok(pid_t pid) {
    int status;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void processes(void) {
    struct shared *sh = map_shared();
    pid_t pids[PRODUCERS + CONSUMERS];
    for (int i = 0; i < PRODUCERS + CONSUMERS; i++) {
        pids[i] = fork();
        CHECK(pids[i] >= 0);
        if (pids[i] == 0) {
            if (i < PRODUCERS)
                produce(sh, (uint64_t)i);
            else
                consume(sh);
            _exit(0);
        }
    }
    for (int i = 0; i < PRODUCERS + CONSUMERS; i++) wait_ok(pids[i]);
    check_each_once(sh);
    munmap(sh, sizeof *sh);
}

/* Tokens circulate: each participant pops one and pushes it back, over and
 * over. One participant is SIGKILLed at a pseudo-random instant; the survivor
 * keeps circulating, then drains: at most the one token the victim held is
 * gone, no token is duplicated, and the queue still takes a full load (less at
 * most the one slot the victim held). */
enum { KILL_CAPACITY = 8, TOKENS = 6 };

struct arena {
    ply_scq_t q;
    size_t buf[4 * KILL_CAPACITY + KILL_CAPACITY];
    volatile int started;
};

static void circulate(struct arena *a, long rounds) {
    for (long r = 0; rounds < 0 || r < rounds; r++) {
        uint64_t token;
        if (ply_scq_pop(&a->q, &token) == PLY_OK) {
            CHECK(token < TOKENS);
            CHECK_STATUS(ply_scq_push(&a->q, &token), PLY_OK);
        }
    }
}

static void kill_one_mid_stream(unsigned seed) {
    struct arena *a =
        mmap(NULL, sizeof *a, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(a != MAP_FAILED);
    CHECK_STATUS(ply_scq_init(&a->q, a->buf, KILL_CAPACITY, sizeof(uint64_t)), PLY_OK);
    for (uint64_t t = 0; t < TOKENS; t++) CHECK_STATUS(ply_scq_push(&a->q, &t), PLY_OK);
    pid_t victim = fork();
    CHECK(victim >= 0);
    if (victim == 0) {
        a->started = 1;
        circulate(a, -1); /* until killed */
        _exit(0);
    }
    while (!a->started) sched_yield();
    /* The survivor works alongside for a while, then kills the victim. */
    circulate(a, 200 + (long)(seed * 7919u % 5000u));
    struct timespec pause = {0, (long)(seed * 104729u % 200000u)};
    nanosleep(&pause, NULL);
    CHECK(kill(victim, SIGKILL) == 0);
    int status;
    CHECK(waitpid(victim, &status, 0) == victim && WIFSIGNALED(status));
    /* It goes on. */
    circulate(a, 10000);
    unsigned char seen[TOKENS] = {0};
    int count = 0;
    uint64_t token;
    while (ply_scq_pop(&a->q, &token) == PLY_OK) {
        CHECK(token < TOKENS && !seen[token]);
        seen[token] = 1;
        count++;
    }
    CHECK(count >= TOKENS - 1);
    /* A full load, less at most one slot, in FIFO order. */
    int pushed = 0;
    for (uint64_t t = 100; ply_scq_push(&a->q, &t) == PLY_OK; t++) pushed++;
    CHECK(pushed >= KILL_CAPACITY - 1);
    for (int i = 0; i < pushed; i++) {
        CHECK_STATUS(ply_scq_pop(&a->q, &token), PLY_OK);
        CHECK(token == 100u + (uint64_t)i);
    }
    CHECK_STATUS(ply_scq_pop(&a->q, &token), PLY_EMPTY);
    munmap(a, sizeof *a);
}

int main(void) {
    watchdog(240);
    argument_checks();
    size_t capacities[] = {1, 2, 4, 8, 64};
    size_t sizes[] = {1, 3, 8, 16, 24};
    for (size_t c = 0; c < sizeof capacities / sizeof *capacities; c++)
        for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) fifo(capacities[c], sizes[s]);
    threads();
    processes();
    for (unsigned seed = 1; seed <= 40; seed++) kill_one_mid_stream(seed);
    puts("scq: ok");
    return 0;
}
