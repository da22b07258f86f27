/* Placeholder pages: the real ones (sts/www/) replace this file. */
#include "sts/pages.h"

#include <string.h>

static const char placeholder[] = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Updraft approvals</title></head>\n"
                                  "<body><h1>Updraft approvals</h1><p>This page is not built in yet.</p></body></html>\n";

const char *
upd_sts_page(const char *name, size_t *len)
{
    if (strcmp(name, "enrol") != 0 && strcmp(name, "approve") != 0 && strcmp(name, "admin") != 0)
        return NULL;
    *len = sizeof(placeholder) - 1;
    return placeholder;
}
