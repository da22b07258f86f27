#ifndef UPD_IDS_H
#define UPD_IDS_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Validation of every identifier that reaches Updraft from outside (PROTOCOLS.md, "Common rules").
 * All functions take a pointer and a length (no NUL needed) and never read past len.
 */

#define UPD_ID_MAX 63        /* app ids and channel names: [a-z0-9][a-z0-9-]{0,62} */
#define UPD_FILENAME_MAX 200 /* [A-Za-z0-9._+-]{1,200}, never "." or ".." */
#define UPD_CLIENT_ID_MAX 128 /* [A-Za-z0-9._:-]{1,128} */
#define UPD_COUNTRY_LEN 2    /* ISO 3166-1 alpha-2, upper case */

typedef enum { UPD_PLATFORM_WINDOWS = 0, UPD_PLATFORM_MAC, UPD_PLATFORM_LINUX, UPD_PLATFORM_COUNT } upd_platform_t;
typedef enum { UPD_ARCH_X64 = 0, UPD_ARCH_ARM64, UPD_ARCH_IA32, UPD_ARCH_UNIVERSAL, UPD_ARCH_COUNT } upd_arch_t;

/** app ids and channel names share one grammar: [a-z0-9][a-z0-9-]{0,62} */
bool upd_id_is_app(const char *s, size_t len);
bool upd_id_is_channel(const char *s, size_t len);
/** [A-Za-z0-9._+-]{1,200}, not "." nor ".." */
bool upd_id_is_filename(const char *s, size_t len);
/** [A-Za-z0-9._:-]{1,128} */
bool upd_id_is_client(const char *s, size_t len);
/** two ASCII letters A-Z (upper case only) */
bool upd_id_is_country(const char *s, size_t len);

/**
 * Parses a platform name: "windows", "mac", "linux". Also accepts the aliases clients send:
 * "win32" (Squirrel.Windows) → windows, "darwin" (Squirrel.Mac, Tauri) → mac.
 * @return the platform, or -1 when unknown
 */
int upd_platform_parse(const char *s, size_t len);
/** "windows", "mac", "linux" */
const char *upd_platform_name(upd_platform_t p);

/**
 * Parses an arch name: "x64", "arm64", "ia32", "universal". Also accepts Tauri's and Rust's names
 * "x86_64" → x64, "aarch64" → arm64, "i686" and "x86" → ia32.
 * @return the arch, or -1 when unknown
 */
int upd_arch_parse(const char *s, size_t len);
/** "x64", "arm64", "ia32", "universal" */
const char *upd_arch_name(upd_arch_t a);

#endif
