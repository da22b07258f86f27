#!/usr/bin/env python3
"""The include graph keeps its layers (README "Layout", ../shared/STYLE.md section 1).

Every `#include "DIR/FILE.h"` in the project's C sources must point at its own folder or at a folder
of a lower layer; `handlers/` (the origin), `control/` (the control plane) and `sts/` (the approval
service) never include each other; `cli/` uses `base/` and `domain/` only. The layers below the event loop (`base/`, `domain/`,
`storage/`) never include h2o, and `base/` no library but libc. Every library source `X.c` has its
header `X.h` beside it and includes it first, so a header is the whole public face of one file.

Prints one line per violation (file:line: what, and the rule) and exits 1 when there is any.
Tests, benches and tools are not part of the graph.
"""
import os
import re
import sys

ROOT = os.environ.get("UPDRAFT_SOURCE_DIR") or os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# bottom up; a folder may include its own and any of a lower rank
# handlers/ (the origin), control/ (the control plane) and sts/ (the approval service) are programs' folders side by side
RANK = {"base": 0, "domain": 1, "storage": 2, "loop": 3, "server": 4, "handlers": 5, "control": 5, "sts": 5, "programs": 6}
# folders outside the ladder, with what they may include
OWN = {"cli": {"base", "domain", "cli"}}
# where the programs' entry points live; they need no header of their own
MAINS = {"programs", "cli/main.c"}
# below the loop: no h2o; base: libc and POSIX only
NO_H2O = {"base", "domain", "storage"}
LIBC_ONLY = {"base"}
SYSTEM_OK = re.compile(r"^(std[a-z]*\.h|string\.h|strings\.h|errno\.h|inttypes\.h|limits\.h|ctype\.h|time\.h|assert\.h|"
                       r"stdarg\.h|pthread\.h|unistd\.h|fcntl\.h|sys/.*|arpa/.*|netinet/.*)$")

INCLUDE = re.compile(r'^\s*#\s*include\s+([<"])([^>"]+)[>"]')


def sources(root=None):
    root = root or ROOT
    for top in sorted(set(RANK) | set(OWN)):
        d = os.path.join(root, top)
        if not os.path.isdir(d):
            continue
        for name in sorted(os.listdir(d)):
            if name.endswith((".c", ".h")):
                yield top, name


def allowed(src_dir, dst_dir):
    if src_dir in OWN:
        return dst_dir in OWN[src_dir]
    if dst_dir == src_dir:
        return True
    return dst_dir in RANK and RANK[dst_dir] < RANK[src_dir]


def check(root=None):
    root = root or ROOT
    problems = []
    for top, name in sources(root):
        rel = f"{top}/{name}"
        with open(os.path.join(root, rel), encoding="utf-8") as f:
            lines = f.read().split("\n")
        first_local = None
        for no, line in enumerate(lines, 1):
            m = INCLUDE.match(line)
            if not m:
                continue
            kind, target = m.groups()
            if kind == "<":
                if top in NO_H2O and (target == "h2o.h" or target.startswith("h2o/")):
                    problems.append(f"{rel}:{no}: includes <{target}>: {top}/ lies below the event loop and never uses h2o")
                elif top in LIBC_ONLY and not SYSTEM_OK.match(target):
                    problems.append(f"{rel}:{no}: includes <{target}>: base/ uses no library but libc")
                continue
            if first_local is None:
                first_local = target
            dst = target.split("/", 1)[0] if "/" in target else None
            if dst is None:
                problems.append(f'{rel}:{no}: includes "{target}": name headers from the root ("DIR/FILE.h")')
            elif not os.path.exists(os.path.join(root, target)):
                problems.append(f'{rel}:{no}: includes "{target}", which does not exist')
            elif not allowed(top, dst):
                why = (f"{top}/ may include only {', '.join(sorted(OWN[top]))}/" if top in OWN else
                       f"{dst}/ is not below {top}/" if RANK.get(dst, 99) >= RANK[top] else "")
                problems.append(f'{rel}:{no}: includes "{target}": {why}')
        if name.endswith(".c") and top not in MAINS and rel not in MAINS:
            header = f"{top}/{name[:-2]}.h"
            if not os.path.exists(os.path.join(root, header)):
                problems.append(f"{rel}: has no header {header} beside it (one header per .c)")
            elif first_local != header:
                problems.append(f'{rel}: includes "{first_local}" first, not its own header {header}')
    return problems


def self_test():
    """The checker refuses each kind of violation in a small tree made here (a checker that cannot fail proves nothing)."""
    import tempfile
    files = {
        "base/err.h": "", "base/err.c": '#include "base/err.h"\n',
        "base/bad.h": "", "base/bad.c": '#include "base/bad.h"\n#include <jansson.h>\n',
        "storage/store.h": '#include "base/err.h"\n', "storage/store.c": '#include "storage/store.h"\n#include <h2o.h>\n',
        "domain/up.h": "", "domain/up.c": '#include "domain/up.h"\n#include "storage/store.h"\n',
        "handlers/feed.h": "", "handlers/feed.c": '#include "handlers/feed.h"\n#include "control/api.h"\n#include "sts/approve.h"\n',
        "control/api.h": "", "control/api.c": '#include "base/err.h"\n#include "control/api.h"\n',
        "control/lonely.c": '#include "base/err.h"\n',
        "sts/approve.h": "", "sts/approve.c": '#include "sts/approve.h"\n#include "handlers/feed.h"\n',
        "cli/args.h": "", "cli/args.c": '#include "cli/args.h"\n#include "storage/store.h"\n#include "domain/gone.h"\n',
        "programs/origin.c": '#include "handlers/feed.h"\n#include "control/api.h"\n',
    }
    expected = [
        ("base/bad.c:2", "base/ uses no library but libc"),
        ("storage/store.c:2", "never uses h2o"),
        ("domain/up.c:2", "storage/ is not below domain/"),
        ("handlers/feed.c:2", "control/ is not below handlers/"),
        ("handlers/feed.c:3", "sts/ is not below handlers/"),
        ("control/api.c", "not its own header"),
        ("control/lonely.c", "has no header"),
        ("sts/approve.c:2", "handlers/ is not below sts/"),
        ("cli/args.c:2", "cli/ may include only"),
        ("cli/args.c:3", "does not exist"),
    ]
    with tempfile.TemporaryDirectory() as root:
        for rel, text in files.items():
            os.makedirs(os.path.join(root, os.path.dirname(rel)), exist_ok=True)
            with open(os.path.join(root, rel), "w") as f:
                f.write(text)
        problems = check(root)
    missed = [e for e in expected if not any(p.startswith(e[0]) and e[1] in p for p in problems)]
    extra = [p for p in problems if not any(p.startswith(e[0]) and e[1] in p for e in expected)]
    for e in missed:
        print(f"self-test: not caught: {e[0]}: {e[1]}")
    for p in extra:
        print(f"self-test: reported but allowed: {p}")
    return not missed and not extra


def main():
    if not self_test():
        print("0 passed, 1 failed")
        return 1
    problems = check()
    for p in problems:
        print(p)
    nfiles = sum(1 for _ in sources())
    print(f"layers: {nfiles} files, {len(problems)} violation(s)")
    print(f"{1 if not problems else 0} passed, {1 if problems else 0} failed")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
