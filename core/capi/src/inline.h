/* The spin lock's fast path, inline (as Concurrency Kit's header-only
 * ck_spinlock is): no call at all while the lock is free.
 *
 * ply_spin_t is one byte, the lock word: PLY_SPIN_UNLOCKED (0) when free,
 * PLY_SPIN_LOCKED (1) when held. Taking it is an atomic swap to locked with
 * acquire ordering that finds it unlocked (the ck_spinlock_fas fast path: a
 * swap that finds it locked changes nothing, as the word holds only these two
 * values); releasing it, a store of unlocked with release ordering. That is
 * ply-core's RawSpinMutex (whose compare-and-swap agrees with the swap on
 * every state), which the library's functions run, so inline and library
 * callers, in any threads and processes, share one lock. Only when the lock is held (or the pointer is NULL) does the
 * inline ply_spin_lock call the library's, which spins with backoff.
 *
 * Define PLY_NO_INLINE before including ply.h to call the library every time;
 * (ply_spin_lock)(lock), the name in parentheses, calls it once. Needs GCC or
 * Clang (their __atomic builtins); other compilers always call the library. */
#if !defined(PLY_NO_INLINE) && (defined(__GNUC__) || defined(__clang__))
static inline enum ply_status ply_spin_lock_inline(const struct ply_spin_t *lock) {
    if (lock != NULL &&
        __atomic_exchange_n((unsigned char *)&lock->_opaque[0], PLY_SPIN_LOCKED,
                            __ATOMIC_ACQUIRE) == PLY_SPIN_UNLOCKED)
        return PLY_OK;
    return (ply_spin_lock)(lock); /* held (or NULL): the library waits (or says so) */
}

static inline enum ply_status ply_spin_unlock_inline(const struct ply_spin_t *lock) {
    if (lock == NULL) return PLY_ERR_NULL;
    __atomic_store_n((unsigned char *)&lock->_opaque[0], PLY_SPIN_UNLOCKED, __ATOMIC_RELEASE);
    return PLY_OK;
}

#define ply_spin_lock(lock) ply_spin_lock_inline(lock)
#define ply_spin_unlock(lock) ply_spin_unlock_inline(lock)
#endif
