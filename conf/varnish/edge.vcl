vcl 4.1;
# Updraft's CDN edge: Varnish 7.1 in front of one or more updraft-origin processes.
#
#   varnishd -j none -n DIR -a 0.0.0.0:80 -T 127.0.0.1:6082 -f /path/to/edge.vcl -s malloc,1g \
#            -p ban_lurker_sleep=0.01
#
# What it does, and why:
# - Non-personalised feeds and /download redirects are cached for the origin's max-age (60 s by
#   default) and purged on release: the control plane sends `BAN /` with `X-Updraft-Tags` (see
#   vcl_recv) after every release and rollout change, once the origins serve the new state.
#   So the TTL only bounds staleness when a purge was lost; normally an answer is current the
#   moment the control call returns.
# - Personalised answers (a client id in `X-Updraft-Client`, `x-user-staging-id`, `?client_id=`,
#   or Squirrel.Windows' `/c/CLIENT/` path) go straight to an origin: every origin decides the
#   same, and caching one client's answer for another would break the rollout.
# - Artifacts are immutable (the origin says so): cached for as long as storage allows.
# - stale-if-error: when every origin is down, the last answer is served for up to the origin's
#   stale-if-error (a day). Banned objects are never served stale: a ban removes them outright.
#
# Tags: the origin sends `Surrogate-Key: app:A chan:A/C rel:A/V` (and the same as `Cache-Tag`,
# comma-separated, for Cloudflare). The ban matches whole tags in the Surrogate-Key stored on the
# object. A ban takes effect at once: every lookup tests the object found against newer bans. It
# references only obj.*, so the ban lurker also evicts matching objects in the background (bans
# older than ban_lurker_age, 60 s by default), and the ban list stays short.
#
# xkey (varnish-modules, `apt install varnish-modules`) is the faster alternative once many
# objects carry many tags: `import xkey;`, in vcl_backend_response
# `set beresp.http.xkey = beresp.http.Surrogate-Key;`, and in the BAN branch call
# `xkey.purge(tag)` (or `xkey.softpurge`) per tag instead of std.ban(). Bans are kept here because
# they need nothing beyond Varnish itself and are exact for the few objects an app has.

import std;
import directors;

# Who may BAN and PURGE: the control plane. Widen to its address when it runs on another host.
acl purgers {
    "127.0.0.1";
    "::1";
}

# --- origins ---------------------------------------------------------------------------------
# One backend block per origin, and one add_backend() line for it in vcl_init below. The probe
# takes an origin out of rotation while its /healthz fails (state store or object storage
# unreachable) and, when every origin is sick, lets stale objects be served (vcl_recv).
# BEGIN BACKENDS
backend origin1 {
    .host = "127.0.0.1";
    .port = "8080";
    .connect_timeout = 1s;
    .first_byte_timeout = 15s;
    .between_bytes_timeout = 15s;
    .probe = {
        .url = "/healthz";
        .interval = 1s;
        .timeout = 1s;
        .window = 5;
        .threshold = 3;
    }
}
# END BACKENDS

sub vcl_init {
    new origins = directors.round_robin();
    # BEGIN DIRECTOR MEMBERS
    origins.add_backend(origin1);
    # END DIRECTOR MEMBERS
}

# --- requests --------------------------------------------------------------------------------

sub vcl_recv {
    set req.backend_hint = origins.backend();

    # electron-updater adds ?noCache=RANDOM to every feed request to defeat caches. This edge is
    # purged on every change, so a cached feed is as current as the origin's: drop the parameter
    # so all clients share one object (the origin ignores it).
    if (req.url ~ "[?&]noCache=") {
        set req.url = regsuball(req.url, "([?&])noCache=[^&]*&?", "\1");
        set req.url = regsub(req.url, "[?&]$", "");
    }

    # Release propagation: `BAN /` with `X-Updraft-Tags: app:acme chan:acme/latest rel:acme/1.3.0`
    # evicts every object carrying ANY of those tags. Tags are spliced into a regex, so only the
    # characters the control plane produces are accepted; `.` and `+` become bracket expressions,
    # and the alternation is anchored on the whitespace that separates tags in Surrogate-Key, so
    # `rel:acme/1.3.0` cannot match `rel:acme/1.3.0-beta.1` nor `app:acme` match `app:acme-pro`.
    # Varnish 7.1's std.ban() splits its argument on blanks and keeps quotes as part of the
    # regex (a quoted `"app:acme"` never matches), hence an unquoted regex with `[[:space:]]`
    # and not one literal space or backslash in it.
    if (req.method == "BAN") {
        if (client.ip !~ purgers) {
            return (synth(403, "Forbidden"));
        }
        if (req.http.X-Updraft-Tags !~ "^[ ]*[a-z0-9:/._+-]+([ ]+[a-z0-9:/._+-]+)*[ ]*$") {
            return (synth(400, "X-Updraft-Tags: expected space-separated tags of [a-z0-9:/._+-]"));
        }
        set req.http.X-Ban-Re = regsuball(regsuball(req.http.X-Updraft-Tags, "^ +| +$", ""), "([.+])", "[\1]");
        set req.http.X-Ban-Re = "(^|[[:space:]])(" + regsuball(req.http.X-Ban-Re, " +", "|") + ")([[:space:]]|$)";
        if (std.ban("obj.http.Surrogate-Key ~ " + req.http.X-Ban-Re)) {
            return (synth(200, "Banned"));
        }
        return (synth(400, std.ban_error()));
    }

    # PURGE of one URL (all its Vary variants), for hand-work and tools that purge by URL.
    if (req.method == "PURGE") {
        if (client.ip !~ purgers) {
            return (synth(403, "Forbidden"));
        }
        return (purge);
    }

    # The origin's public routes take GET and HEAD only; let it answer anything else itself.
    if (req.method != "GET" && req.method != "HEAD") {
        return (pass);
    }

    # Personalised: the answer depends on the client id, and the origin marks it private.
    # Passing (rather than letting the builtin create a hit-for-miss object per URL) keeps one
    # cache entry per client id out of storage.
    if (req.http.X-Updraft-Client || req.http.X-User-Staging-Id ||
        req.url ~ "[?&]client_id=" ||
        req.url ~ "^/update/[^/?]+/win32/.*/c/[^/?]+/") {
        return (pass);
    }

    # More than one range (electron-updater's differential download): Varnish answers a single
    # range only, and would send the whole file with 200, which electron-updater refuses. The
    # origin answers multipart/byteranges from its own verified cache.
    if (req.http.Range ~ ",") {
        return (pass);
    }

    # Nothing on the public routes depends on cookies; a cookie would otherwise make the builtin
    # VCL pass (a browser following a /download link may carry the site's cookies).
    if (req.url ~ "^/(update|download|artifacts)/") {
        unset req.http.Cookie;
    }

    # stale-if-error: objects keep a long grace (vcl_backend_response); while an origin is
    # healthy only a short one is used, so an expired object is refetched (in the background for
    # up to 10 s past its TTL). When all origins are sick, the whole grace applies.
    if (std.healthy(req.backend_hint)) {
        set req.grace = 10s;
    }
    # Then the builtin vcl_recv: GET/HEAD without Authorization (or Cookie) are looked up.
    # The builtin vcl_hash keys on URL and Host; the origin's `Vary: X-Updraft-Client,
    # X-User-Staging-Id` adds nothing here since requests with those headers were passed.
}

sub vcl_synth {
    set resp.http.Content-Type = "text/plain; charset=utf-8";
    set resp.body = resp.reason + {"
"};
    return (deliver);
}

# --- fetches ---------------------------------------------------------------------------------

sub vcl_backend_fetch {
    # not for the origin's eyes
    unset bereq.http.X-Ban-Re;
}

sub vcl_backend_response {
    # A background refresh that fails keeps the stale object instead of replacing it.
    if (beresp.status >= 500 && bereq.is_bgfetch) {
        return (abandon);
    }
    # Only what the origin marks cacheable is cached. Its errors (404 before a channel's first
    # release or platform, 503 while its store is unavailable) carry no Cache-Control and no tags:
    # cached for Varnish's default_ttl (120 s), no ban could evict them after the release that
    # fixes them. A one-second hit-for-miss marker instead.
    if (!beresp.http.Cache-Control) {
        set beresp.ttl = 1s;
        set beresp.uncacheable = true;
        return (deliver);
    }
    # Honour stale-if-error=N as grace (Varnish 7.1 reads only stale-while-revalidate itself);
    # keep as long so conditional refetches (ETag) can revalidate an expired object.
    if (beresp.http.Cache-Control ~ "stale-if-error=[0-9]+") {
        set beresp.grace = std.duration(regsub(beresp.http.Cache-Control,
            "^.*stale-if-error=([0-9]+).*$", "\1s"), 0s);
        set beresp.keep = beresp.grace;
    }
    # Surrogate-Key stays on the object: the BAN above matches it (and the lurker needs it there).
}

sub vcl_backend_error {
    # Connection refused or a timeout at one origin: try the next one the director picks.
    if (bereq.retries < 2) {
        return (retry);
    }
    if (bereq.is_bgfetch) {
        return (abandon);
    }
}

# --- responses -------------------------------------------------------------------------------

sub vcl_deliver {
    # Tags are this edge's business. Cache-Tag is left for a Cloudflare tier in front, which
    # consumes and strips it itself.
    unset resp.http.Surrogate-Key;
    if (obj.hits > 0) {
        set resp.http.X-Cache = "HIT";
    } else {
        set resp.http.X-Cache = "MISS";
    }
}
