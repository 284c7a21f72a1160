/*
 * Preloaded before libfaketime by .ci/at: sleeps on the monotonic clocks go straight to the
 * kernel.
 *
 * Why: .ci/at moves only the wall clock (FAKETIME_DONT_FAKE_MONOTONIC=1), because a faked
 * monotonic clock hangs every Python lock, Event or Queue wait with a timeout (glibc's
 * sem_clockwait, which libfaketime 0.9.10 does not intercept, waits for a deadline decades
 * ahead). But libfaketime 0.9.10 still shifts absolute monotonic deadlines given to
 * clock_nanosleep, so Python's time.sleep fails with EINVAL. This wrapper keeps libfaketime
 * away from monotonic sleeps and hands wall-clock sleeps to it unchanged.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

typedef int (*clock_nanosleep_fn)(clockid_t, int, const struct timespec *, struct timespec *);

int clock_nanosleep(clockid_t clock, int flags, const struct timespec *req, struct timespec *rem)
{
    static clock_nanosleep_fn next;

    if (clock != CLOCK_REALTIME && clock != CLOCK_REALTIME_ALARM && clock != CLOCK_TAI)
        return syscall(SYS_clock_nanosleep, clock, flags, req, rem) == 0 ? 0 : errno;
    if (next == NULL)
        next = (clock_nanosleep_fn)dlsym(RTLD_NEXT, "clock_nanosleep");
    return next(clock, flags, req, rem);
}
