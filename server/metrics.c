#include "server/metrics.h"
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* the status codes Updraft answers with; anything else is counted as "other" */
static const int statuses[] = {200, 201, 204, 206, 302, 304, 400, 401, 403, 404, 405, 409, 411, 413, 416, 422, 431, 500, 502, 503};
#define NSTATUSES (sizeof(statuses) / sizeof(statuses[0]))

/* latency histogram bucket upper bounds, microseconds */
static const uint64_t buckets_us[] = {100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000};
#define NBUCKETS (sizeof(buckets_us) / sizeof(buckets_us[0]))

struct st_upd_metrics_t {
    const char *program;
    const char *const *route_names;
    size_t nroutes;
    uint64_t *requests; /* [route][status index], the last status index is "other" */
    uint64_t latency[NBUCKETS + 1];
    uint64_t latency_count, latency_sum_us;
    uint64_t decisions[UPD_DECISION_COUNT];
    /* counters may be bumped from the clients-seen thread */
    _Atomic uint64_t counters[UPD_COUNTER_COUNT];
    struct {
        void (*fn)(void *arg, FILE *fp);
        void *arg;
    } renderers[8];
    size_t nrenderers;
};

void
upd_metrics_add_renderer(upd_metrics_t *m, void (*fn)(void *arg, FILE *fp), void *arg)
{
    if (m->nrenderers == sizeof(m->renderers) / sizeof(m->renderers[0]))
        abort();
    m->renderers[m->nrenderers].fn = fn;
    m->renderers[m->nrenderers].arg = arg;
    ++m->nrenderers;
}

upd_metrics_t *
upd_metrics_create(const char *program, const char *const *route_names, size_t nroutes)
{
    upd_metrics_t *m = calloc(1, sizeof(*m));
    if (m == NULL || (m->requests = calloc(nroutes * (NSTATUSES + 1), sizeof(uint64_t))) == NULL)
        abort();
    m->program = program;
    m->route_names = route_names;
    m->nroutes = nroutes;
    return m;
}

void
upd_metrics_destroy(upd_metrics_t *m)
{
    if (m == NULL)
        return;
    free(m->requests);
    free(m);
}

void
upd_metrics_request(upd_metrics_t *m, size_t route, int status, uint64_t duration_us)
{
    size_t si = NSTATUSES;
    for (size_t i = 0; i < NSTATUSES; ++i) {
        if (statuses[i] == status) {
            si = i;
            break;
        }
    }
    if (route >= m->nroutes)
        route = m->nroutes - 1;
    ++m->requests[route * (NSTATUSES + 1) + si];
    size_t b = 0;
    while (b < NBUCKETS && duration_us > buckets_us[b])
        ++b;
    ++m->latency[b];
    ++m->latency_count;
    m->latency_sum_us += duration_us;
}

void
upd_metrics_decision(upd_metrics_t *m, upd_decision_t d)
{
    if ((unsigned)d < UPD_DECISION_COUNT)
        ++m->decisions[d];
}

void
upd_metrics_add(upd_metrics_t *m, upd_counter_t c, uint64_t n)
{
    atomic_fetch_add_explicit(&m->counters[c], n, memory_order_relaxed);
}

char *
upd_metrics_render(const upd_metrics_t *m, size_t *len)
{
    static const char *const counter_names[UPD_COUNTER_COUNT] = {
        "updraft_framing_rejected_total",
        "updraft_clients_seen_recorded_total",
        "updraft_clients_seen_dropped_total",
        "updraft_store_errors_total",
    };
    static const char *const counter_help[UPD_COUNTER_COUNT] = {
        "Requests refused by the HTTP/1 framing guard.",
        "Clients-seen records committed to the store.",
        "Clients-seen records dropped because the queue was full.",
        "Store failures answered with a server error.",
    };
    char *buf = NULL;
    size_t size = 0;
    FILE *fp = open_memstream(&buf, &size);
    if (fp == NULL)
        abort();
    fprintf(fp, "# HELP updraft_requests_total HTTP requests by route and status.\n# TYPE updraft_requests_total counter\n");
    for (size_t r = 0; r < m->nroutes; ++r) {
        for (size_t s = 0; s <= NSTATUSES; ++s) {
            uint64_t n = m->requests[r * (NSTATUSES + 1) + s];
            if (n == 0)
                continue;
            if (s < NSTATUSES)
                fprintf(fp, "updraft_requests_total{program=\"%s\",route=\"%s\",status=\"%d\"} %" PRIu64 "\n", m->program,
                        m->route_names[r], statuses[s], n);
            else
                fprintf(fp, "updraft_requests_total{program=\"%s\",route=\"%s\",status=\"other\"} %" PRIu64 "\n", m->program,
                        m->route_names[r], n);
        }
    }
    fprintf(fp, "# HELP updraft_request_duration_seconds Time from the request's first byte to the end of its response.\n"
                "# TYPE updraft_request_duration_seconds histogram\n");
    uint64_t cum = 0;
    for (size_t b = 0; b < NBUCKETS; ++b) {
        cum += m->latency[b];
        fprintf(fp, "updraft_request_duration_seconds_bucket{program=\"%s\",le=\"%g\"} %" PRIu64 "\n", m->program,
                buckets_us[b] / 1e6, cum);
    }
    cum += m->latency[NBUCKETS];
    fprintf(fp, "updraft_request_duration_seconds_bucket{program=\"%s\",le=\"+Inf\"} %" PRIu64 "\n", m->program, cum);
    fprintf(fp, "updraft_request_duration_seconds_sum{program=\"%s\"} %.6f\n", m->program, m->latency_sum_us / 1e6);
    fprintf(fp, "updraft_request_duration_seconds_count{program=\"%s\"} %" PRIu64 "\n", m->program, m->latency_count);
    fprintf(fp, "# HELP updraft_rollout_decisions_total Personalised update checks by rollout outcome.\n"
                "# TYPE updraft_rollout_decisions_total counter\n");
    for (int d = 0; d < UPD_DECISION_COUNT; ++d)
        fprintf(fp, "updraft_rollout_decisions_total{outcome=\"%s\"} %" PRIu64 "\n", upd_decision_name((upd_decision_t)d),
                m->decisions[d]);
    for (int c = 0; c < UPD_COUNTER_COUNT; ++c)
        fprintf(fp, "# HELP %s %s\n# TYPE %s counter\n%s{program=\"%s\"} %" PRIu64 "\n", counter_names[c], counter_help[c],
                counter_names[c], counter_names[c], m->program, atomic_load_explicit(&m->counters[c], memory_order_relaxed));
    for (size_t i = 0; i < m->nrenderers; ++i)
        m->renderers[i].fn(m->renderers[i].arg, fp);
    fclose(fp);
    *len = size;
    return buf;
}
