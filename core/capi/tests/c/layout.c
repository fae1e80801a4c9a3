/* The opaque types have exactly the Rust types' size and alignment: at compile
 * time against the header's constants, and at run time against the library. */
#include <assert.h>
#include <stdalign.h>

#include "check.h"

#define SAME(type, prefix)                                                     \
    static_assert(sizeof(type) == prefix##_SIZE, #type " size");               \
    static_assert(alignof(type) == prefix##_ALIGN, #type " alignment")

SAME(ply_spsc_t, PLY_SPSC);
SAME(ply_spsc_producer_t, PLY_SPSC_HANDLE);
SAME(ply_spsc_consumer_t, PLY_SPSC_HANDLE);
SAME(ply_array_queue_t, PLY_ARRAY_QUEUE);
SAME(ply_scq_t, PLY_SCQ);
SAME(ply_spin_t, PLY_SPIN);
SAME(ply_ticket_t, PLY_TICKET);
SAME(ply_rwlock_t, PLY_RWLOCK);
SAME(ply_semaphore_t, PLY_SEMAPHORE);
SAME(ply_event_t, PLY_EVENT);
SAME(ply_barrier_t, PLY_BARRIER);
SAME(ply_once_t, PLY_ONCE);
SAME(ply_schedule_t, PLY_SCHEDULE);
SAME(ply_dispenser_t, PLY_DISPENSER);
static_assert(PLY_WORD == sizeof(size_t), "word size");
static_assert(PLY_SCQ_BUFFER_SIZE(8, 3) == 8 * 4 * sizeof(size_t) + 24, "scq buffer");

#define RUNTIME(type, tag)                                                     \
    do {                                                                       \
        CHECK(ply_layout_size(tag) == sizeof(type));                           \
        CHECK(ply_layout_align(tag) == alignof(type));                         \
    } while (0)

int main(void) {
    watchdog(30);
    RUNTIME(ply_spsc_t, PLY_TYPE_SPSC);
    RUNTIME(ply_spsc_producer_t, PLY_TYPE_SPSC_HANDLE);
    RUNTIME(ply_array_queue_t, PLY_TYPE_ARRAY_QUEUE);
    RUNTIME(ply_scq_t, PLY_TYPE_SCQ);
    RUNTIME(ply_spin_t, PLY_TYPE_SPIN);
    RUNTIME(ply_ticket_t, PLY_TYPE_TICKET);
    RUNTIME(ply_rwlock_t, PLY_TYPE_RWLOCK);
    RUNTIME(ply_semaphore_t, PLY_TYPE_SEMAPHORE);
    RUNTIME(ply_event_t, PLY_TYPE_EVENT);
    RUNTIME(ply_barrier_t, PLY_TYPE_BARRIER);
    RUNTIME(ply_once_t, PLY_TYPE_ONCE);
    RUNTIME(ply_schedule_t, PLY_TYPE_SCHEDULE);
    RUNTIME(ply_dispenser_t, PLY_TYPE_DISPENSER);
    CHECK(ply_layout_size(-1) == 0 && ply_layout_size(1000) == 0);
    CHECK(ply_scq_buffer_size(8, 3) == PLY_SCQ_BUFFER_SIZE(8, 3));
    CHECK(ply_array_queue_buffer_size(5, 3) == PLY_ARRAY_QUEUE_BUFFER_SIZE(5, 3));
    CHECK(ply_array_queue_buffer_size(5, 3) == 5 * 2 * sizeof(size_t));
    CHECK(ply_spsc_buffer_size(5, 7) == PLY_SPSC_BUFFER_SIZE(5, 7));
    CHECK(ply_dispenser_buffer_size(9) == PLY_DISPENSER_BUFFER_SIZE(9));
    CHECK(ply_dispenser_buffer_size(9) == 9 * PLY_CACHE_LINE);
    CHECK(ply_spsc_buffer_size((size_t)-1, 2) == 0); /* overflow */
    puts("layout: ok");
    return 0;
}
