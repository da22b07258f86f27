#include "base/log.h"
#include "base/err.h"
#include <stdio.h>
#include <string.h>
#include <time.h>

upd_log_level_t upd_log_level = UPD_LOG_INFO;
static const char *log_program = "updraft";
static const char *const level_names[] = {"ERROR", "WARN", "INFO", "DEBUG"};

void
upd_log_init(const char *program)
{
    log_program = program;
}

int
upd_log_level_parse(const char *s, upd_log_level_t *out)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    for (int i = 0; i < 4; ++i) {
        if (strcmp(s, names[i]) == 0) {
            *out = (upd_log_level_t)i;
            return 0;
        }
    }
    return UPD_EINVAL;
}

void
upd_log_write(upd_log_level_t level, const char *fmt, ...)
{
    char ts[32], msg[2048];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    /* one fprintf per line so that concurrent writers (the clients-seen thread) do not interleave */
    fprintf(stderr, "%s %s %s: %s\n", ts, level_names[level], log_program, msg);
}
