/* Backup ids, schedule and retention (domain/backup.h). */
#include "domain/backup.h"
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "base/err.h"

void
upd_backup_id_format(int64_t t, char id[UPD_BACKUP_ID_LEN + 1])
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(id, UPD_BACKUP_ID_LEN + 1, "%Y%m%dT%H%M%SZ", &tm);
}

/* n decimal digits at s. @return the value, -1 when one is not a digit */
static int
digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; ++i) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

int
upd_backup_id_parse(const char *id, size_t len, int64_t *t)
{
    if (len != UPD_BACKUP_ID_LEN || id[8] != 'T' || id[15] != 'Z')
        return UPD_EINVAL;
    struct tm tm = {0};
    int year = digits(id, 4), mon = digits(id + 4, 2), day = digits(id + 6, 2), hour = digits(id + 9, 2), min = digits(id + 11, 2),
        sec = digits(id + 13, 2);
    if (year < 1970 || mon < 1 || mon > 12 || day < 1 || day > 31 || hour < 0 || hour > 23 || min < 0 || min > 59 || sec < 0 ||
        sec > 59)
        return UPD_EINVAL;
    tm.tm_year = year - 1900;
    tm.tm_mon = mon - 1;
    tm.tm_mday = day;
    tm.tm_hour = hour;
    tm.tm_min = min;
    tm.tm_sec = sec;
    time_t v = timegm(&tm);
    /* timegm normalises 31 February into March: only a date that formats back to itself is one */
    char back[UPD_BACKUP_ID_LEN + 1];
    upd_backup_id_format((int64_t)v, back);
    if (memcmp(back, id, UPD_BACKUP_ID_LEN) != 0)
        return UPD_EINVAL;
    *t = (int64_t)v;
    return 0;
}

int
upd_backup_parse_at(const char *s, uint32_t *seconds)
{
    size_t len = strlen(s);
    if ((len != 5 && len != 8) || s[2] != ':' || (len == 8 && s[5] != ':'))
        return UPD_EINVAL;
    int h = digits(s, 2), m = digits(s + 3, 2), sec = len == 8 ? digits(s + 6, 2) : 0;
    if (h < 0 || h > 23 || m < 0 || m > 59 || sec < 0 || sec > 59)
        return UPD_EINVAL;
    *seconds = (uint32_t)(h * 3600 + m * 60 + sec);
    return 0;
}

int64_t
upd_backup_next_run(int64_t now, uint64_t interval, uint32_t at)
{
    if (interval == 0)
        interval = 1;
    int64_t iv = (int64_t)interval, d = now - (int64_t)at;
    /* floor division: the run at or before now is at + k * iv, the next one a step later */
    int64_t k = d >= 0 ? d / iv : -((-d + iv - 1) / iv);
    return (int64_t)at + (k + 1) * iv;
}

size_t
upd_backup_expired(const upd_backup_entry_t *entries, size_t n, int64_t now, uint64_t retention, bool *expire)
{
    size_t newest_good = n, count = 0;
    for (size_t i = 0; i < n; ++i)
        if (entries[i].good && (newest_good == n || entries[i].time > entries[newest_good].time))
            newest_good = i;
    int64_t cutoff = now - (int64_t)retention;
    for (size_t i = 0; i < n; ++i) {
        expire[i] = i != newest_good && entries[i].time < cutoff;
        count += expire[i];
    }
    return count;
}
