/* goldens.h — where the tests find tests/data ($HEED_TEST_DATA, set by ctest) and how they read the
 * token ids of a golden file (stored as I64 by the Python scripts). Header-only, like harness.h. */
#ifndef HEED_TEST_GOLDENS_H
#define HEED_TEST_GOLDENS_H

#include "heed.h"

#include <stdlib.h>
#include <string.h>

static inline const char *data_dir(void)
{
    const char *d = getenv("HEED_TEST_DATA");
    return d ? d : "tests/data";
}

/* A golden tensor as int32 (I64 in the file), [*n] malloc'd; NULL when absent or not I64. */
static inline int32_t *golden_ids(const heed_st *g, const char *name, int64_t *n)
{
    const heed_st_tensor *t = heed_st_find(g, name);
    if (!t || t->dtype != HEED_ST_I64) return NULL;
    int32_t *ids = malloc(sizeof *ids * (size_t)(t->n_elems ? t->n_elems : 1));
    for (int64_t i = 0; ids && i < t->n_elems; i++) {
        int64_t v;
        memcpy(&v, (const char *)t->data + i * 8, 8);
        ids[i] = (int32_t)v;
    }
    *n = t->n_elems;
    return ids;
}

#endif /* HEED_TEST_GOLDENS_H */
