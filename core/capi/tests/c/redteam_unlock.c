/* A hostile review's finding: unlocking a ticket lock or a reader-writer lock
 * that nobody holds returns PLY_OK and breaks the lock for good (the ticket
 * lock serves a ticket nobody has; the reader count underflows, so neither a
 * reader nor a writer ever gets in). Both states are cheap to detect; a
 * misuse must be an error that changes nothing. */
#include "check.h"

int main(void) {
    watchdog(30);
    static struct ply_ticket_t ticket;
    CHECK_STATUS(ply_ticket_init(&ticket), PLY_OK);
    CHECK(ply_ticket_unlock(&ticket) < 0);
    CHECK_STATUS(ply_ticket_trylock(&ticket), PLY_OK);
    CHECK_STATUS(ply_ticket_unlock(&ticket), PLY_OK);

    static struct ply_rwlock_t rw;
    CHECK_STATUS(ply_rwlock_init(&rw), PLY_OK);
    CHECK(ply_rwlock_unlock_read(&rw) < 0);
    CHECK(ply_rwlock_unlock_write(&rw) < 0);
    CHECK_STATUS(ply_rwlock_tryread(&rw), PLY_OK);
    CHECK_STATUS(ply_rwlock_unlock_read(&rw), PLY_OK);
    CHECK_STATUS(ply_rwlock_trywrite(&rw), PLY_OK);
    CHECK_STATUS(ply_rwlock_unlock_write(&rw), PLY_OK);
    return 0;
}
