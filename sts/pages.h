#ifndef UPD_STS_PAGES_H
#define UPD_STS_PAGES_H

#include <stddef.h>

/** The embedded browser page name ("enrol", "approve", "admin") and its length. @return NULL when unknown */
const char *upd_sts_page(const char *name, size_t *len);

#endif
