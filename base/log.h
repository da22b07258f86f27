#ifndef UPD_LOG_H
#define UPD_LOG_H

#include <stdarg.h>

/*
 * One line per event on stderr: "2026-11-29T01:52:31Z LEVEL program: message". The level is tested
 * before the arguments are evaluated (the macro), so disabled debug lines cost a comparison.
 * Never pass secrets (API keys, signatures, credentials) to these.
 */

typedef enum { UPD_LOG_ERROR = 0, UPD_LOG_WARN, UPD_LOG_INFO, UPD_LOG_DEBUG } upd_log_level_t;

extern upd_log_level_t upd_log_level;

/** Sets the program name printed on every line. */
void upd_log_init(const char *program);
/** Parses "error", "warn", "info", "debug". @return 0 or UPD_EINVAL */
int upd_log_level_parse(const char *s, upd_log_level_t *out);
void upd_log_write(upd_log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define upd_log(level, ...)                                                                                                        \
    do {                                                                                                                           \
        if ((level) <= upd_log_level)                                                                                              \
            upd_log_write((level), __VA_ARGS__);                                                                                   \
    } while (0)
#define upd_log_error(...) upd_log(UPD_LOG_ERROR, __VA_ARGS__)
#define upd_log_warn(...) upd_log(UPD_LOG_WARN, __VA_ARGS__)
#define upd_log_info(...) upd_log(UPD_LOG_INFO, __VA_ARGS__)
#define upd_log_debug(...) upd_log(UPD_LOG_DEBUG, __VA_ARGS__)

#endif
