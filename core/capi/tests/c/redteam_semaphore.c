/* A hostile review's finding: releasing more permits than a u32 holds wraps
 * the count (1 + UINT32_MAX == 0), so every later acquire waits forever. A
 * misuse must be an error that changes nothing (see ply_status). */
#include "check.h"

int main(void) {
    watchdog(30);
    struct ply_semaphore_t sem;
    CHECK_STATUS(ply_semaphore_init(&sem, 1), PLY_OK);
    ply_status released = ply_semaphore_release(&sem, UINT32_MAX);
    if (released < 0) {
        CHECK(ply_semaphore_available(&sem) == 1);
    } else {
        /* Accepted: the count may saturate, but never fall below what was
         * there. */
        CHECK(ply_semaphore_available(&sem) >= 1);
    }
    CHECK_STATUS(ply_semaphore_tryacquire(&sem), PLY_OK);
    return 0;
}
