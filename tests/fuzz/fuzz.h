#ifndef UPD_FUZZ_H
#define UPD_FUZZ_H

/* Shared by the libFuzzer targets in tests/fuzz/: an invariant check that survives NDEBUG and names what broke. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_CHECK(cond)                                                                                                            \
    do {                                                                                                                            \
        if (!(cond)) {                                                                                                              \
            fprintf(stderr, "%s:%d: invariant violated: %s\n", __FILE__, __LINE__, #cond);                                          \
            abort();                                                                                                                \
        }                                                                                                                           \
    } while (0)

/* A heap copy of exactly size bytes (no terminator), so ASan catches any read past the end; free() it. */
static inline char *
fuzz_dup(const void *data, size_t size)
{
    char *p = malloc(size != 0 ? size : 1);
    if (p == NULL)
        abort();
    if (size != 0)
        memcpy(p, data, size);
    return p;
}

/* The same with a NUL appended, for APIs that take C strings. */
static inline char *
fuzz_strdup(const void *data, size_t size)
{
    char *p = malloc(size + 1);
    if (p == NULL)
        abort();
    if (size != 0)
        memcpy(p, data, size);
    p[size] = '\0';
    return p;
}

static inline int
fuzz_sign(int v)
{
    return (v > 0) - (v < 0);
}

#endif
