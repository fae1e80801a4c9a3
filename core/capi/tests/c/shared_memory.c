/* The queues in memory that two processes map at different addresses: one
 * memfd object, mapped by the parent at one address and by the child, after it
 * dropped the inherited view and put a PROT_NONE placeholder in its place, at
 * another. Items move both ways through an SPSC ring in each direction, an
 * SCQ queue and an array queue, every one counted, and both claim chunks from
 * one dispenser, every index covered once. Then what ply checks:
 * attach before init, a buffer at the wrong distance, a copied control block,
 * an overlapping buffer, an object of another type. */
#include <sched.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "check.h"

enum { CAP = 64, ITEMS = 100000, ITEM = 2 * sizeof(uint64_t) };

/* One object, mapped whole: every control block with its buffer. */
struct region {
    ply_spsc_t down; /* parent -> child */
    uint64_t down_buf[CAP];
    ply_spsc_t up; /* child -> parent */
    uint64_t up_buf[CAP];
    ply_scq_t scq;
    _Alignas(size_t) unsigned char scq_buf[PLY_SCQ_BUFFER_SIZE(CAP, ITEM)];
    ply_array_queue_t aq;
    _Alignas(size_t) unsigned char aq_buf[PLY_ARRAY_QUEUE_BUFFER_SIZE(CAP, ITEM)];
    ply_dispenser_t d;
    _Alignas(PLY_CACHE_LINE) unsigned char d_buf[PLY_DISPENSER_BUFFER_SIZE(2)];
    ply_schedule_t schedule;
    unsigned char covered[ITEMS];
    /* seen[queue][from][seq]: how often each item arrived; 0 = SCQ, 1 = array. */
    unsigned char seen[2][2][ITEMS];
    size_t popped[2];
};

static pid_t child_pid;

/* Fails the parent at once if the child died (a fault at a wrong address,
 * say), instead of waiting for its items until the watchdog fires. */
static void child_alive(void) {
    if (child_pid == 0) return;
    int status;
    pid_t r = waitpid(child_pid, &status, WNOHANG);
    CHECK(r == 0);
}

static void wait_turn(unsigned long *spins) {
    if (++*spins % 1024 == 0) child_alive();
    sched_yield();
}

static struct region *map_region(int fd) {
    struct region *r = mmap(NULL, sizeof *r, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHECK(r != MAP_FAILED);
    return r;
}

/* Pushes ITEMS sequence numbers into `tx` while popping ITEMS from `rx`,
 * checking their order; interleaved, so neither side waits for the other to
 * finish first. */
static void spsc_both_ways(ply_spsc_producer_t *tx, ply_spsc_consumer_t *rx) {
    uint64_t next_in = 0, next_out = 0;
    unsigned long spins = 0;
    while (next_in < ITEMS || next_out < ITEMS) {
        int moved = 0;
        if (next_in < ITEMS && ply_spsc_push(tx, &next_in) == PLY_OK) next_in++, moved = 1;
        uint64_t v;
        ply_status s = ply_spsc_pop(rx, &v);
        if (s == PLY_OK) {
            CHECK(v == next_out);
            next_out++;
            moved = 1;
        } else {
            CHECK_STATUS(s, PLY_EMPTY);
        }
        if (!moved) wait_turn(&spins);
    }
}

/* Pushes ITEMS items {from, seq} into MPMC queue `which` and pops until both
 * sides' 2 * ITEMS have arrived, counting each in `seen`. */
static void mpmc_both_ways(struct region *r, int which, uint64_t from) {
    uint64_t next_in = 0;
    uint64_t last[2] = {UINT64_MAX, UINT64_MAX};
    unsigned long spins = 0;
    while (next_in < ITEMS || __atomic_load_n(&r->popped[which], __ATOMIC_SEQ_CST) < 2 * ITEMS) {
        int moved = 0;
        if (next_in < ITEMS) {
            uint64_t item[2] = {from, next_in};
            ply_status s = which == 0 ? ply_scq_push(&r->scq, item) : ply_array_queue_push(&r->aq, item);
            if (s == PLY_OK) {
                next_in++;
                moved = 1;
            } else {
                CHECK_STATUS(s, PLY_FULL);
            }
        }
        uint64_t out[2];
        ply_status s = which == 0 ? ply_scq_pop(&r->scq, out) : ply_array_queue_pop(&r->aq, out);
        if (s == PLY_OK) {
            CHECK(out[0] < 2 && out[1] < ITEMS);
            /* FIFO per producer, as each consumer sees it. */
            CHECK(last[out[0]] == UINT64_MAX || last[out[0]] < out[1]);
            last[out[0]] = out[1];
            __atomic_add_fetch(&r->seen[which][out[0]][out[1]], 1, __ATOMIC_SEQ_CST);
            __atomic_add_fetch(&r->popped[which], 1, __ATOMIC_SEQ_CST);
            moved = 1;
        } else {
            CHECK_STATUS(s, PLY_EMPTY);
        }
        if (!moved) wait_turn(&spins);
    }
}

/* Claims chunks of the shared schedule as `worker` until none is left. */
static void claim_chunks(struct region *r, size_t worker) {
    size_t index, start, end;
    ply_status s;
    while ((s = ply_dispenser_claim(&r->d, worker, &r->schedule, &index, &start, &end)) == PLY_OK) {
        for (size_t i = start; i < end; i++) __atomic_add_fetch(&r->covered[i], 1, __ATOMIC_SEQ_CST);
        CHECK_STATUS(ply_dispenser_complete(&r->d, worker), PLY_OK);
    }
    CHECK_STATUS(s, PLY_DONE);
}

/* The child: drops the parent's view, blocks its address range with a
 * PROT_NONE placeholder (so the new view cannot land there, and any use of a
 * parent address faults), maps the object again, and checks it is elsewhere. */
static void child(int fd, struct region *parent_view) {
    watchdog(120); /* alarms are not inherited across fork() */
    CHECK(munmap(parent_view, sizeof *parent_view) == 0);
    void *placeholder = mmap(parent_view, sizeof *parent_view, PROT_NONE,
                             MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    CHECK(placeholder == (void *)parent_view);
    struct region *r = map_region(fd);
    CHECK(r != parent_view);

    CHECK_STATUS(ply_spsc_attach(&r->down, r->down_buf), PLY_OK);
    CHECK_STATUS(ply_spsc_attach(&r->up, r->up_buf), PLY_OK);
    CHECK_STATUS(ply_scq_attach(&r->scq, r->scq_buf), PLY_OK);
    CHECK_STATUS(ply_array_queue_attach(&r->aq, r->aq_buf), PLY_OK);
    CHECK_STATUS(ply_dispenser_attach(&r->d, r->d_buf), PLY_OK);
    /* The parent's buffer addresses are not this process's. */
    CHECK_STATUS(ply_spsc_attach(&r->down, parent_view->down_buf), PLY_ERR_MAPPING);
    CHECK_STATUS(ply_scq_attach(&r->scq, parent_view->scq_buf), PLY_ERR_MAPPING);
    CHECK_STATUS(ply_array_queue_attach(&r->aq, parent_view->aq_buf), PLY_ERR_MAPPING);
    CHECK_STATUS(ply_dispenser_attach(&r->d, parent_view->d_buf), PLY_ERR_MAPPING);
    CHECK(ply_spsc_capacity(&r->down) == CAP && ply_scq_capacity(&r->scq) == CAP);

    ply_spsc_producer_t tx;
    ply_spsc_consumer_t rx;
    CHECK_STATUS(ply_spsc_producer(&r->up, &tx), PLY_OK);
    CHECK_STATUS(ply_spsc_consumer(&r->down, &rx), PLY_OK);
    spsc_both_ways(&tx, &rx);
    mpmc_both_ways(r, 0, 1);
    mpmc_both_ways(r, 1, 1);
    claim_chunks(r, 1);
    CHECK(munmap(r, sizeof *r) == 0);
    CHECK(munmap(placeholder, sizeof *parent_view) == 0);
}

static void two_addresses(void) {
    int fd = memfd_create("ply-shared-memory-test", MFD_CLOEXEC);
    CHECK(fd >= 0);
    CHECK(ftruncate(fd, sizeof(struct region)) == 0);
    struct region *r = map_region(fd);

    /* A fresh object is zero-filled: nothing is initialized yet. */
    CHECK_STATUS(ply_scq_attach(&r->scq, r->scq_buf), PLY_ERR_UNINIT);
    CHECK_STATUS(ply_array_queue_attach(&r->aq, r->aq_buf), PLY_ERR_UNINIT);
    CHECK_STATUS(ply_spsc_attach(&r->up, r->up_buf), PLY_ERR_UNINIT);
    uint64_t item[2] = {0, 0};
    CHECK_STATUS(ply_scq_push(&r->scq, item), PLY_ERR_UNINIT);
    CHECK_STATUS(ply_array_queue_pop(&r->aq, item), PLY_ERR_UNINIT);
    ply_spsc_producer_t tx;
    CHECK_STATUS(ply_spsc_producer(&r->up, &tx), PLY_ERR_UNINIT);
    CHECK_STATUS(ply_dispenser_attach(&r->d, r->d_buf), PLY_ERR_UNINIT);
    CHECK_STATUS(ply_dispenser_complete(&r->d, 0), PLY_ERR_UNINIT);
    CHECK(ply_spsc_capacity(&r->up) == 0 && ply_scq_capacity(&r->scq) == 0);

    CHECK_STATUS(ply_spsc_init(&r->down, r->down_buf, CAP, sizeof(uint64_t)), PLY_OK);
    CHECK_STATUS(ply_spsc_init(&r->up, r->up_buf, CAP, sizeof(uint64_t)), PLY_OK);
    CHECK_STATUS(ply_scq_init(&r->scq, r->scq_buf, CAP, ITEM), PLY_OK);
    CHECK_STATUS(ply_array_queue_init(&r->aq, r->aq_buf, CAP, ITEM), PLY_OK);
    CHECK_STATUS(ply_dispenser_init(&r->d, r->d_buf, 2), PLY_OK);
    CHECK_STATUS(ply_schedule_fixed(&r->schedule, ITEMS, 7), PLY_OK);

    child_pid = fork();
    CHECK(child_pid >= 0);
    if (child_pid == 0) {
        child(fd, r);
        _exit(0);
    }
    ply_spsc_consumer_t rx;
    CHECK_STATUS(ply_spsc_producer(&r->down, &tx), PLY_OK);
    CHECK_STATUS(ply_spsc_consumer(&r->up, &rx), PLY_OK);
    spsc_both_ways(&tx, &rx);
    mpmc_both_ways(r, 0, 0);
    mpmc_both_ways(r, 1, 0);
    claim_chunks(r, 0);

    int status;
    CHECK(waitpid(child_pid, &status, 0) == child_pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    child_pid = 0;
    for (int q = 0; q < 2; q++)
        for (int from = 0; from < 2; from++)
            for (size_t i = 0; i < ITEMS; i++) CHECK(r->seen[q][from][i] == 1);
    for (size_t i = 0; i < ITEMS; i++) CHECK(r->covered[i] == 1);
    CHECK(ply_dispenser_issued(&r->d) == ply_schedule_chunks(&r->schedule));
    uint64_t out[2];
    CHECK_STATUS(ply_scq_pop(&r->scq, out), PLY_EMPTY);
    CHECK_STATUS(ply_array_queue_pop(&r->aq, out), PLY_EMPTY);
    CHECK(ply_spsc_len(&r->up) == 0 && ply_spsc_len(&r->down) == 0);
    CHECK(munmap(r, sizeof *r) == 0);
    CHECK(close(fd) == 0);
}

/* In one process: what else the checks catch. */
static void misuse(void) {
    static struct region r;
    CHECK_STATUS(ply_scq_init(&r.scq, r.scq_buf, CAP, ITEM), PLY_OK);
    CHECK_STATUS(ply_array_queue_init(&r.aq, r.aq_buf, CAP, ITEM), PLY_OK);
    CHECK_STATUS(ply_spsc_init(&r.up, r.up_buf, CAP, sizeof(uint64_t)), PLY_OK);
    CHECK_STATUS(ply_scq_attach(&r.scq, r.scq_buf), PLY_OK);
    CHECK_STATUS(ply_scq_attach(&r.scq, r.scq_buf + sizeof(size_t)), PLY_ERR_MAPPING);
    CHECK_STATUS(ply_spsc_attach(&r.up, NULL), PLY_ERR_NULL);

    /* A copied control block would look for its buffer elsewhere. */
    static ply_scq_t copy;
    memcpy(&copy, &r.scq, sizeof copy);
    CHECK_STATUS(ply_scq_attach(&copy, r.scq_buf), PLY_ERR_MAPPING);
    static ply_spsc_t ring_copy;
    memcpy(&ring_copy, &r.up, sizeof ring_copy);
    CHECK_STATUS(ply_spsc_attach(&ring_copy, r.up_buf), PLY_ERR_MAPPING);
    CHECK_STATUS(ply_dispenser_init(&r.d, r.d_buf, 2), PLY_OK);
    static ply_dispenser_t d_copy;
    memcpy(&d_copy, &r.d, sizeof d_copy);
    CHECK_STATUS(ply_dispenser_attach(&d_copy, r.d_buf), PLY_ERR_MAPPING);
    static ply_array_queue_t aq_copy;
    memcpy(&aq_copy, &r.aq, sizeof aq_copy);
    CHECK_STATUS(ply_array_queue_attach(&aq_copy, r.aq_buf), PLY_ERR_MAPPING);

    /* An object of another type is not taken for one of these. */
    uint64_t item[2] = {1, 2};
    CHECK_STATUS(ply_scq_push((ply_scq_t *)(void *)&r.aq, item), PLY_ERR_UNINIT);
    CHECK_STATUS(ply_array_queue_push((ply_array_queue_t *)(void *)&r.scq, item), PLY_ERR_UNINIT);
    CHECK_STATUS(ply_scq_attach((ply_scq_t *)(void *)&r.aq, r.aq_buf), PLY_ERR_UNINIT);
    ply_spsc_consumer_t rx;
    CHECK_STATUS(ply_spsc_consumer((ply_spsc_t *)(void *)&r.scq, &rx), PLY_ERR_UNINIT);
    CHECK(ply_array_queue_len((ply_array_queue_t *)(void *)&r.scq) == 0);
    /* The real ones still work. */
    CHECK_STATUS(ply_scq_push(&r.scq, item), PLY_OK);
    CHECK_STATUS(ply_array_queue_push(&r.aq, item), PLY_OK);

    /* A buffer overlapping its control block. */
    static union {
        ply_scq_t scq;
        ply_spsc_t spsc;
        ply_array_queue_t aq;
        size_t words[4096];
    } u;
    CHECK_STATUS(ply_scq_init(&u.scq, u.words, 8, 8), PLY_ERR_OVERLAP);
    CHECK_STATUS(ply_spsc_init(&u.spsc, (char *)&u.spsc + sizeof u.spsc - 1, 8, 8),
                 PLY_ERR_OVERLAP);
    CHECK_STATUS(ply_array_queue_init(&u.aq, u.words + 2, 8, 8), PLY_ERR_OVERLAP);
    /* Right after the control block is fine. */
    CHECK_STATUS(ply_spsc_init(&u.spsc, (char *)&u.spsc + sizeof u.spsc, 8, 8), PLY_OK);
    CHECK_STATUS(ply_scq_init(&u.scq, (char *)&u.scq + sizeof u.scq, 8, 8), PLY_OK);
}

int main(void) {
    watchdog(120);
    two_addresses();
    misuse();
    puts("shared_memory: ok");
    return 0;
}
