/* The array queue (per-slot stamps) through the C ABI: argument checks, FIFO
 * and full/empty at any capacity and several element sizes, the never-waiting
 * and bounded forms, many threads and many fork()ed processes. */
#include <pthread.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "check.h"

static void argument_checks(void) {
    ply_array_queue_t q;
    static size_t buf[64];
    CHECK_STATUS(ply_array_queue_init(NULL, buf, 4, 4), PLY_ERR_NULL);
    CHECK_STATUS(ply_array_queue_init(&q, NULL, 4, 4), PLY_ERR_NULL);
    CHECK_STATUS(ply_array_queue_init(&q, (char *)buf + 1, 4, 4), PLY_ERR_ALIGN);
    CHECK_STATUS(ply_array_queue_init(&q, buf, 4, 0), PLY_ERR_SIZE);
    CHECK_STATUS(ply_array_queue_init(&q, buf, 0, 4), PLY_ERR_CAPACITY);
    CHECK_STATUS(ply_array_queue_init(&q, buf, SIZE_MAX / 8, 4), PLY_ERR_SIZE);
    CHECK_STATUS(ply_array_queue_init(&q, buf, 3, 4), PLY_OK);
    CHECK_STATUS(ply_array_queue_push(&q, NULL), PLY_ERR_NULL);
    CHECK_STATUS(ply_array_queue_pop(&q, NULL), PLY_ERR_NULL);
    CHECK_STATUS(ply_array_queue_trypop(NULL, buf), PLY_ERR_NULL);
    CHECK(ply_array_queue_capacity(&q) == 3 && ply_array_queue_len(NULL) == 0);
}

static void fifo(size_t capacity, size_t size) {
    ply_array_queue_t q;
    size_t *buf = malloc(ply_array_queue_buffer_size(capacity, size));
    unsigned char item[32], out[32];
    CHECK(buf != NULL && size <= sizeof item);
    CHECK_STATUS(ply_array_queue_init(&q, buf, capacity, size), PLY_OK);
    unsigned long next_in = 0, next_out = 0;
    for (size_t round = 0; round < 6 * capacity + 5; round++) {
        while (next_in - next_out < capacity) {
            memset(item, (int)(next_in & 0xff), size);
            ply_status s = (next_in % 2) ? ply_array_queue_push(&q, item)
                                         : ply_array_queue_trypush(&q, item);
            CHECK_STATUS(s, PLY_OK);
            next_in++;
        }
        CHECK(ply_array_queue_len(&q) == capacity);
        CHECK_STATUS(ply_array_queue_push(&q, item), PLY_FULL);
        CHECK_STATUS(ply_array_queue_trypush(&q, item), PLY_FULL);
        for (size_t k = 0; k <= round % capacity; k++) {
            ply_status s = (k % 2) ? ply_array_queue_pop(&q, out) : ply_array_queue_trypop(&q, out);
            CHECK_STATUS(s, PLY_OK);
            memset(item, (int)(next_out++ & 0xff), size);
            CHECK(memcmp(item, out, size) == 0);
        }
    }
    while (next_out < next_in) {
        CHECK_STATUS(ply_array_queue_pop(&q, out), PLY_OK);
        memset(item, (int)(next_out++ & 0xff), size);
        CHECK(memcmp(item, out, size) == 0);
    }
    CHECK_STATUS(ply_array_queue_pop(&q, out), PLY_EMPTY);
    CHECK_STATUS(ply_array_queue_trypop(&q, out), PLY_EMPTY);
    long spins = 10;
    CHECK_STATUS(ply_array_queue_pop_until(&q, out, give_up_after, &spins), PLY_EMPTY);
    CHECK(ply_array_queue_len(&q) == 0);
    free(buf);
}

enum { PRODUCERS = 2, CONSUMERS = 2, PER_PRODUCER = 50000 };

struct shared {
    ply_array_queue_t q;
    size_t buf[3 * 37];
    unsigned char seen[PRODUCERS * PER_PRODUCER];
    size_t popped;
};

static struct shared *map_shared(void) {
    struct shared *sh =
        mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(sh != MAP_FAILED);
    CHECK(ply_array_queue_buffer_size(37, 2 * sizeof(uint64_t)) <= sizeof sh->buf);
    CHECK_STATUS(ply_array_queue_init(&sh->q, sh->buf, 37, 2 * sizeof(uint64_t)), PLY_OK);
    return sh;
}

static void produce(struct shared *sh, uint64_t p) {
    for (uint64_t i = 0; i < PER_PRODUCER; i++) {
        uint64_t item[2] = {p, i};
        while (ply_array_queue_push(&sh->q, item) == PLY_FULL) sched_yield();
    }
}

static void consume(struct shared *sh) {
    uint64_t last[PRODUCERS];
    for (int p = 0; p < PRODUCERS; p++) last[p] = UINT64_MAX;
    while (__atomic_load_n(&sh->popped, __ATOMIC_SEQ_CST) < PRODUCERS * PER_PRODUCER) {
        uint64_t out[2];
        if (ply_array_queue_pop(&sh->q, out) != PLY_OK) {
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
    CHECK_STATUS(ply_array_queue_pop(&sh->q, out), PLY_EMPTY);
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
    for (int i = 0; i < PRODUCERS + CONSUMERS; i++) {
        int status;
        CHECK(waitpid(pids[i], &status, 0) == pids[i]);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    check_each_once(sh);
    munmap(sh, sizeof *sh);
}

int main(void) {
    watchdog(240);
    argument_checks();
    size_t capacities[] = {1, 2, 3, 5, 7, 16};
    size_t sizes[] = {1, 3, 8, 16, 24};
    for (size_t c = 0; c < sizeof capacities / sizeof *capacities; c++)
        for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) fifo(capacities[c], sizes[s]);
    threads();
    processes();
    puts("array_queue: ok");
    return 0;
}
