/* presets.h - status-message presets (api/presets.c), shared with the CLI
 * (`presenced presets`), which checks them the same way. */
#ifndef API_PRESETS_H
#define API_PRESETS_H
#include <stddef.h>

#include <jansson.h>

#define PRESETS_MAX 20  /* presets per organization */

/* The presets an organization has until it sets its own: a JSON array of
 * {"text","emoji","expires"} objects. */
extern const char presets_default[];

/* 0 if a is a valid presets array (at most PRESETS_MAX objects with text,
 * optional emoji, optional expires of "30m", "1h", "4h", "today", "week"
 * or "never"), else -1 with err set. */
int presets_check(const json_t *a, char *err, size_t errlen);
#endif
