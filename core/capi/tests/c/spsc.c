/* The SPSC ring through the C ABI: argument checks, capacity 1, odd
 * capacities and element sizes across many laps, two threads, and a producer
 * and a consumer in two fork()ed processes over a MAP_SHARED ring. */
#include <pthread.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "check.h"

static void argument_checks(void) {
    ply_spsc_t ring;
    unsigned char buf[16];
    CHECK_STATUS(ply_spsc_init(NULL, buf, 4, 4), PLY_ERR_NULL);
    CHECK_STATUS(ply_spsc_init(&ring, NULL, 4, 4), PLY_ERR_NULL);
    CHECK_STATUS(ply_spsc_init(&ring, buf, 4, 0), PLY_ERR_SIZE);
    CHECK_STATUS(ply_spsc_init(&ring, buf, 0, 4), PLY_ERR_CAPACITY);
    CHECK_STATUS(ply_spsc_init(&ring, buf, SIZE_MAX / 2, 4), PLY_ERR_SIZE);
    CHECK_STATUS(ply_spsc_init(&ring, buf, SIZE_MAX / 2, 1), PLY_ERR_CAPACITY);
    CHECK_STATUS(ply_spsc_init((ply_spsc_t *)((char *)&ring + 1), buf, 4, 4), PLY_ERR_ALIGN);
    CHECK_STATUS(ply_spsc_init(&ring, buf, 4, 4), PLY_OK);
    ply_spsc_producer_t tx;
    ply_spsc_consumer_t rx;
    CHECK_STATUS(ply_spsc_producer(&ring, NULL), PLY_ERR_NULL);
    CHECK_STATUS(ply_spsc_producer(&ring, &tx), PLY_OK);
    CHECK_STATUS(ply_spsc_consumer(&ring, &rx), PLY_OK);
    CHECK_STATUS(ply_spsc_push(&tx, NULL), PLY_ERR_NULL);
    CHECK_STATUS(ply_spsc_pop(&rx, NULL), PLY_ERR_NULL);
    CHECK_STATUS(ply_spsc_pop(NULL, buf), PLY_ERR_NULL);
    CHECK(ply_spsc_len(NULL) == 0 && ply_spsc_capacity(NULL) == 0);
    CHECK(ply_spsc_capacity(&ring) == 4);

    /* Handles that ply_spsc_producer/consumer did not make where they are
     * (never made: zero or stray bytes; or copied) are refused, and the ring
     * is untouched. */
    unsigned char item[4] = {1, 2, 3, 4}, out[4] = {0};
    static const unsigned char fills[] = {0x00, 0xa5, 0xff};
    for (size_t f = 0; f < sizeof fills; f++) {
        ply_spsc_producer_t bad_tx;
        ply_spsc_consumer_t bad_rx;
        memset(&bad_tx, fills[f], sizeof bad_tx);
        memset(&bad_rx, fills[f], sizeof bad_rx);
        CHECK_STATUS(ply_spsc_push(&bad_tx, item), PLY_ERR_UNINIT);
        CHECK_STATUS(ply_spsc_pop(&bad_rx, out), PLY_ERR_UNINIT);
    }
    ply_spsc_producer_t tx_copy;
    ply_spsc_consumer_t rx_copy;
    memcpy(&tx_copy, &tx, sizeof tx);
    memcpy(&rx_copy, &rx, sizeof rx);
    CHECK_STATUS(ply_spsc_push(&tx_copy, item), PLY_ERR_UNINIT);
    CHECK_STATUS(ply_spsc_pop(&rx_copy, out), PLY_ERR_UNINIT);
    CHECK(ply_spsc_len(&ring) == 0);
    /* The real handles still work. */
    CHECK_STATUS(ply_spsc_push(&tx, item), PLY_OK);
    CHECK_STATUS(ply_spsc_pop(&rx, out), PLY_OK);
    CHECK(memcmp(item, out, sizeof item) == 0);
}

/* Fills items of `size` bytes with a pattern derived from their sequence
 * number, so a torn or misplaced copy shows. */
static void fill(unsigned char *item, size_t size, unsigned long seq) {
    for (size_t i = 0; i < size; i++) item[i] = (unsigned char)(seq * 31u + i * 7u + 1u);
}

static void laps(size_t capacity, size_t size) {
    ply_spsc_t ring;
    unsigned char *buf = malloc(ply_spsc_buffer_size(capacity, size));
    unsigned char item[64], out[64];
    CHECK(buf != NULL && size <= sizeof item);
    CHECK_STATUS(ply_spsc_init(&ring, buf, capacity, size), PLY_OK);
    ply_spsc_producer_t tx;
    ply_spsc_consumer_t rx;
    CHECK_STATUS(ply_spsc_producer(&ring, &tx), PLY_OK);
    CHECK_STATUS(ply_spsc_consumer(&ring, &rx), PLY_OK);
    unsigned long next_in = 0, next_out = 0;
    /* Vary the fill level so the positions cross the wrap at every offset. */
    for (size_t round = 0; round < 6 * capacity + 9; round++) {
        for (size_t k = 0; k < round % (capacity + 2); k++) {
            fill(item, size, next_in);
            ply_status s = ply_spsc_push(&tx, item);
            if (s == PLY_OK) {
                next_in++;
            } else {
                CHECK_STATUS(s, PLY_FULL);
                CHECK(ply_spsc_len(&ring) == capacity);
            }
        }
        CHECK(ply_spsc_len(&ring) == next_in - next_out);
        for (size_t k = 0; k < round % 3 + 1; k++) {
            ply_status s = ply_spsc_pop(&rx, out);
            if (s == PLY_OK) {
                fill(item, size, next_out++);
                CHECK(memcmp(item, out, size) == 0);
            } else {
                CHECK_STATUS(s, PLY_EMPTY);
                CHECK(next_in == next_out);
            }
        }
    }
    while (ply_spsc_pop(&rx, out) == PLY_OK) {
        fill(item, size, next_out++);
        CHECK(memcmp(item, out, size) == 0);
    }
    CHECK(next_in == next_out && next_in > 2 * capacity);
    free(buf);
}

enum { ITEMS = 200000 };

struct pair {
    ply_spsc_t *ring;
};

static void *produce(void *arg) {
    ply_spsc_producer_t tx;
    CHECK_STATUS(ply_spsc_producer(((struct pair *)arg)->ring, &tx), PLY_OK);
    for (uint64_t i = 0; i < ITEMS; i++) {
        uint64_t item[2] = {i, ~i};
        while (ply_spsc_push(&tx, item) == PLY_FULL) sched_yield();
    }
    return NULL;
}

/* Pops ITEMS items of two words, checking order and integrity. */
static void consume_all(ply_spsc_t *ring) {
    ply_spsc_consumer_t rx;
    CHECK_STATUS(ply_spsc_consumer(ring, &rx), PLY_OK);
    for (uint64_t i = 0; i < ITEMS; i++) {
        uint64_t out[2];
        ply_status s;
        while ((s = ply_spsc_pop(&rx, out)) == PLY_EMPTY) sched_yield();
        CHECK_STATUS(s, PLY_OK);
        CHECK(out[0] == i && out[1] == ~i);
    }
    uint64_t extra[2];
    CHECK_STATUS(ply_spsc_pop(&rx, extra), PLY_EMPTY);
}

static void two_threads(void) {
    static uint64_t buf[2 * 7];
    ply_spsc_t ring;
    CHECK_STATUS(ply_spsc_init(&ring, buf, 7, 2 * sizeof(uint64_t)), PLY_OK);
    struct pair p = {&ring};
    pthread_t t;
    CHECK(pthread_create(&t, NULL, produce, &p) == 0);
    consume_all(&ring);
    CHECK(pthread_join(t, NULL) == 0);
}

/* The ring and its buffer in one MAP_SHARED mapping, made before fork(): the
 * child produces, the parent consumes. */
static void two_processes(void) {
    struct shared {
        ply_spsc_t ring;
        uint64_t buf[2 * 64];
    } *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(sh != MAP_FAILED);
    CHECK_STATUS(ply_spsc_init(&sh->ring, sh->buf, 64, 2 * sizeof(uint64_t)), PLY_OK);
    pid_t child = fork();
    CHECK(child >= 0);
    if (child == 0) {
        struct pair p = {&sh->ring};
        produce(&p);
        _exit(0);
    }
    consume_all(&sh->ring);
    int status;
    CHECK(waitpid(child, &status, 0) == child);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK(munmap(sh, sizeof *sh) == 0);
}

int main(void) {
    watchdog(120);
    argument_checks();
    size_t capacities[] = {1, 2, 3, 5, 7, 8, 13};
    size_t sizes[] = {1, 3, 4, 8, 16, 24};
    for (size_t c = 0; c < sizeof capacities / sizeof *capacities; c++)
        for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) laps(capacities[c], sizes[s]);
    two_threads();
    two_processes();
    puts("spsc: ok");
    return 0;
}
