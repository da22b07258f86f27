/*
 * Fuzzes the control API's release body (upd_release_from_request, domain/release.h) and the storage round trip.
 *
 * Input: the JSON body of POST /v1/apps/APP/releases, parsed by jansson as control/api.c parses it.
 * Invariants: the result is 0 or UPD_EINVAL; a refusal names the field and leaves nothing allocated; an accepted release
 * has valid ids, 1-64 uniquely named files with known platform, arch and kind and a canonical sha512, and survives the
 * storage round trip (upd_release_to_json, json_dumps as storage/store.c writes it, json_loadb as it reads it back,
 * upd_release_from_json) with every field equal.
 */
#include <jansson.h>
#include <stdint.h>
#include "base/err.h"
#include "domain/release.h"
#include "tests/fuzz/fuzz.h"

#define APP "acme"
#define NOW 1764380000 /* 2025-11-29T01:33:20Z */

static bool
same_str(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static void
check_accepted(const upd_release_t *rel)
{
    FUZZ_CHECK(strcmp(rel->app, APP) == 0);
    FUZZ_CHECK(rel->channel[0] == '\0' || upd_id_is_channel(rel->channel, strlen(rel->channel))); /* "": a draft */
    upd_version_t v;
    FUZZ_CHECK(upd_version_parse(rel->version, strlen(rel->version), &v) == 0);
    FUZZ_CHECK(rel->notes == NULL || rel->notes[0] != '\0');
    FUZZ_CHECK(strcmp(rel->pub_date, "2025-11-29T01:33:20Z") == 0);
    FUZZ_CHECK(rel->nfiles >= 1 && rel->nfiles <= UPD_RELEASE_MAX_FILES && rel->files != NULL);
    for (size_t i = 0; i < rel->nfiles; ++i) {
        const upd_file_t *f = &rel->files[i];
        FUZZ_CHECK(upd_id_is_filename(f->name, strlen(f->name)));
        for (size_t k = 0; k < i; ++k)
            FUZZ_CHECK(strcmp(rel->files[k].name, f->name) != 0);
        FUZZ_CHECK((unsigned)f->platform < UPD_PLATFORM_COUNT && (unsigned)f->arch < UPD_ARCH_COUNT);
        FUZZ_CHECK(f->kind > UPD_KIND_UNKNOWN && f->kind < UPD_KIND_COUNT);
        FUZZ_CHECK(f->size <= INT64_MAX);
        FUZZ_CHECK(strlen(f->sha512) == UPD_SHA512_B64_LEN && f->sha512[UPD_SHA512_B64_LEN - 1] == '=');
        FUZZ_CHECK(f->sha1[0] == '\0' && f->blockmap_size == -1);
        FUZZ_CHECK(f->signature == NULL || (f->signature[0] != '\0' && strlen(f->signature) <= UPD_SIGNATURE_MAX));
    }
}

static void
check_round_trip(const upd_release_t *rel)
{
    json_t *j = upd_release_to_json(rel);
    FUZZ_CHECK(j != NULL);
    char *text = json_dumps(j, JSON_COMPACT);
    FUZZ_CHECK(text != NULL);
    json_decref(j);
    json_error_t jerr;
    json_t *stored = json_loadb(text, strlen(text), 0, &jerr);
    FUZZ_CHECK(stored != NULL);
    free(text);

    upd_release_t back;
    FUZZ_CHECK(upd_release_from_json(stored, &back) == 0);
    json_decref(stored);
    FUZZ_CHECK(strcmp(back.app, rel->app) == 0 && strcmp(back.channel, rel->channel) == 0 &&
               strcmp(back.version, rel->version) == 0 && strcmp(back.pub_date, rel->pub_date) == 0);
    FUZZ_CHECK(same_str(back.notes, rel->notes));
    FUZZ_CHECK(back.nfiles == rel->nfiles);
    for (size_t i = 0; i < rel->nfiles; ++i) {
        const upd_file_t *a = &rel->files[i], *b = &back.files[i];
        FUZZ_CHECK(strcmp(a->name, b->name) == 0);
        FUZZ_CHECK(a->platform == b->platform && a->arch == b->arch && a->kind == b->kind);
        FUZZ_CHECK(a->size == b->size && a->blockmap_size == b->blockmap_size);
        FUZZ_CHECK(strcmp(a->sha512, b->sha512) == 0 && strcmp(a->sha1, b->sha1) == 0);
        FUZZ_CHECK(same_str(a->signature, b->signature));
    }
    upd_release_dispose(&back);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_error_t jerr;
    json_t *body = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &jerr); /* as control/api.c */
    if (body == NULL)
        return 0;

    upd_release_t rel;
    char errbuf[512] = "";
    int ret = upd_release_from_request(APP, body, NOW, &rel, errbuf, sizeof(errbuf));
    FUZZ_CHECK(ret == 0 || ret == UPD_EINVAL);
    if (ret != 0) {
        FUZZ_CHECK(errbuf[0] != '\0' && memchr(errbuf, '\0', sizeof(errbuf)) != NULL);
        FUZZ_CHECK(rel.files == NULL && rel.notes == NULL && rel.nfiles == 0);
    } else {
        check_accepted(&rel);
        check_round_trip(&rel);
        upd_release_dispose(&rel);
    }
    json_decref(body);
    return 0;
}
