/* A small fork-join thread pool for the tensor engine's parallel loops.

   Why not Dispatch: a forward pass runs a few hundred parallel loops of 0.1-5 ms each, and waking a
   parked Dispatch worker costs tens of microseconds of futex and scheduler work every time (and more on
   a busy or virtualised machine). Here the workers spin for a short while after each loop, as OpenMP
   runtimes do, so that the next loop finds them awake; then they sleep on a condition variable.

   One job at a time: a caller that finds the pool busy (a nested loop, or a second thread) runs its
   chunks itself. The job state is one 64-bit word, generation << 48 | chunks << 24 | next chunk, so a
   worker can only claim a chunk of the job it saw (see ck_pool_run). */
#define _GNU_SOURCE
#include "CKernels.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#if defined(__x86_64__)
#include <immintrin.h>
#define CK_PAUSE() _mm_pause()
#else
#define CK_PAUSE() ((void)0)
#endif

#define CK_MAX_WORKERS 63
#define CK_SPIN_NS 300000L /* how long an idle worker spins before sleeping */

static struct {
    pthread_once_t once;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    int workers;
    int sleeping;
    atomic_flag busy;
    _Atomic unsigned long long state;
    atomic_long done;
    ck_task_fn fn;
    void *ctx;
} pool = {PTHREAD_ONCE_INIT, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, ATOMIC_FLAG_INIT, 0, 0, 0, 0};

static long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000L + t.tv_nsec;
}

/* Claims and runs chunks of the job in `s`'s generation until none is left. */
static void work(unsigned long long s) {
    for (;;) {
        unsigned long long next = s & 0xffffff, chunks = (s >> 24) & 0xffffff;
        if (next >= chunks) return;
        if (atomic_compare_exchange_weak(&pool.state, &s, s + 1)) {
            /* The chunk is ours and not done, so the job is still running: fn and ctx are its own. */
            pool.fn(pool.ctx, (long)next);
            atomic_fetch_add(&pool.done, 1);
            s = atomic_load(&pool.state);
        }
        /* on failure s holds the current state: retry with it (another generation has no chunks for us
           until it is published with next = 0, which the loop then claims correctly) */
    }
}

static void *worker_main(void *arg) {
    (void)arg;
    unsigned long long seen = atomic_load(&pool.state) >> 48;
    for (;;) {
        long spin_start = now_ns();
        unsigned long long s;
        int n = 0;
        for (;;) {
            s = atomic_load(&pool.state);
            if ((s >> 48) != seen) break;
            CK_PAUSE();
            if (++n % 256 == 0 && now_ns() - spin_start > CK_SPIN_NS) {
                pthread_mutex_lock(&pool.lock);
                pool.sleeping++;
                while ((atomic_load(&pool.state) >> 48) == seen) pthread_cond_wait(&pool.wake, &pool.lock);
                pool.sleeping--;
                pthread_mutex_unlock(&pool.lock);
                spin_start = now_ns();
            }
        }
        seen = s >> 48;
        work(s);
    }
    return 0;
}

/* The threads of parallel loops (0 until chosen) and whether the workers were started. */
static atomic_int threads_chosen = 0;
static atomic_int started = 0;
static void start_workers(void);

/* DETR_TUI_THREADS when it is a positive number, else the processors this process may run on. */
static int default_threads(void) {
    const char *text = getenv("DETR_TUI_THREADS");
    if (text && *text) {
        char *end;
        long n = strtol(text, &end, 10);
        if (*end == 0 && n > 0) return (int)(n > CK_MAX_WORKERS + 1 ? CK_MAX_WORKERS + 1 : n);
    }
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    return online > 0 ? (int)online : 1;
}

int ck_pool_threads(void) {
    int t = atomic_load(&threads_chosen);
    if (t > 0) return t;
    int expected = 0;
    atomic_compare_exchange_strong(&threads_chosen, &expected, default_threads());
    return atomic_load(&threads_chosen);
}

int ck_pool_set_threads(int n) {
    if (n < 1) return 0;
    if (n > CK_MAX_WORKERS + 1) n = CK_MAX_WORKERS + 1;
    atomic_store(&threads_chosen, n);
    if (!atomic_load(&started)) return 1;
    pthread_once(&pool.once, start_workers);  /* waits until the workers are counted */
    return n <= pool.workers + 1;
}

static void start_workers(void) {
    atomic_store(&started, 1);
    int want = ck_pool_threads() - 1;
    if (want > CK_MAX_WORKERS) want = CK_MAX_WORKERS;
    for (int i = 0; i < want; i++) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&t, &attr, worker_main, 0) == 0) pool.workers++;
        pthread_attr_destroy(&attr);
    }
}

int ck_pool_workers(void) {
    pthread_once(&pool.once, start_workers);
    return pool.workers;
}

void ck_pool_run(long chunks, ck_task_fn fn, void *ctx) {
    if (chunks <= 0) return;
    pthread_once(&pool.once, start_workers);
    if (chunks == 1 || pool.workers == 0 || chunks > 0xffffff || atomic_flag_test_and_set(&pool.busy)) {
        for (long c = 0; c < chunks; c++) fn(ctx, c);
        return;
    }
    pool.fn = fn;
    pool.ctx = ctx;
    atomic_store(&pool.done, 0);
    unsigned long long gen = (atomic_load(&pool.state) >> 48) + 1;
    atomic_store(&pool.state, (gen & 0xffff) << 48 | (unsigned long long)chunks << 24);
    pthread_mutex_lock(&pool.lock);
    if (pool.sleeping > 0) pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.lock);
    work(atomic_load(&pool.state));
    int n = 0;
    while (atomic_load(&pool.done) < chunks) {
        CK_PAUSE();
        if (++n % 1024 == 0) sched_yield();
    }
    atomic_flag_clear(&pool.busy);
}
