/* pool.c — the thread pool behind heed_parallel: workers are created once and wait between jobs,
 * spinning briefly first (decode steps issue many short jobs) and then sleeping on a condition.
 * Tasks are handed out one index at a time from an atomic counter, so uneven tasks balance. */
#include "core/core.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#define SPIN_ROUNDS 4096

struct heed_pool {
    int n_workers; /* threads besides the caller */
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t start_cv, done_cv;
    /* the current job, published before `generation` is incremented */
    heed_task_fn fn;
    void *arg;
    int64_t n_tasks;
    atomic_int_fast64_t next_task;
    atomic_int pending;        /* workers that have not finished the current job */
    atomic_uint_fast64_t generation;
    atomic_int stop;
};

typedef struct {
    heed_pool *pool;
    int index; /* 1 .. n_workers; the caller is 0 */
} worker_arg;

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static void run_tasks(heed_pool *p, int thread)
{
    for (;;) {
        int64_t t = atomic_fetch_add(&p->next_task, 1);
        if (t >= p->n_tasks) return;
        p->fn(p->arg, t, thread);
    }
}

static void *worker_main(void *v)
{
    worker_arg *wa = v;
    heed_pool *p = wa->pool;
    const int index = wa->index;
    uint_fast64_t seen = 0;
    for (;;) {
        for (int k = 0; k < SPIN_ROUNDS && atomic_load(&p->generation) == seen && !atomic_load(&p->stop); k++)
            cpu_relax();
        if (atomic_load(&p->generation) == seen && !atomic_load(&p->stop)) {
            pthread_mutex_lock(&p->mu);
            while (atomic_load(&p->generation) == seen && !atomic_load(&p->stop))
                pthread_cond_wait(&p->start_cv, &p->mu);
            pthread_mutex_unlock(&p->mu);
        }
        if (atomic_load(&p->stop)) break;
        seen = atomic_load(&p->generation);
        run_tasks(p, index);
        if (atomic_fetch_sub(&p->pending, 1) == 1) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->done_cv);
            pthread_mutex_unlock(&p->mu);
        }
    }
    free(wa);
    return NULL;
}

heed_status heed_pool_create(heed_pool **out, int n_workers)
{
    *out = NULL;
    heed_pool *p = calloc(1, sizeof *p);
    if (!p) return HEED_ERR_NOMEM;
    if (n_workers < 0) n_workers = 0;
    p->threads = calloc((size_t)n_workers + 1, sizeof *p->threads);
    if (!p->threads) {
        free(p);
        return HEED_ERR_NOMEM;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->start_cv, NULL);
    pthread_cond_init(&p->done_cv, NULL);
    for (int i = 0; i < n_workers; i++) {
        worker_arg *wa = malloc(sizeof *wa);
        if (wa) *wa = (worker_arg){p, i + 1};
        if (!wa || pthread_create(&p->threads[i], NULL, worker_main, wa) != 0) {
            free(wa);
            heed_pool_free(p); /* joins the p->n_workers already started */
            return HEED_ERR_NOMEM;
        }
        p->n_workers = i + 1;
    }
    *out = p;
    return HEED_OK;
}

void heed_pool_free(heed_pool *p)
{
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stop, 1);
    pthread_cond_broadcast(&p->start_cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->n_workers; i++) pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->start_cv);
    pthread_cond_destroy(&p->done_cv);
    free(p->threads);
    free(p);
}

void heed_pool_run(heed_pool *p, int64_t n_tasks, heed_task_fn fn, void *arg)
{
    if (n_tasks <= 0) return;
    p->fn = fn;
    p->arg = arg;
    p->n_tasks = n_tasks;
    atomic_store(&p->next_task, 0);
    if (p->n_workers == 0 || n_tasks == 1) {
        run_tasks(p, 0);
        return;
    }
    atomic_store(&p->pending, p->n_workers);
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add(&p->generation, 1);
    pthread_cond_broadcast(&p->start_cv);
    pthread_mutex_unlock(&p->mu);
    run_tasks(p, 0);
    for (int k = 0; k < SPIN_ROUNDS && atomic_load(&p->pending) > 0; k++) cpu_relax();
    if (atomic_load(&p->pending) > 0) {
        pthread_mutex_lock(&p->mu);
        while (atomic_load(&p->pending) > 0) pthread_cond_wait(&p->done_cv, &p->mu);
        pthread_mutex_unlock(&p->mu);
    }
}
