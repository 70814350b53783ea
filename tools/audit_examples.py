#!/usr/bin/env python3
"""List shmlab's public items whose docs hold no code example.

rustdoc's `missing_doc_code_examples` lint skips items re-exported from
private modules, constants, statics and modules; this walks rustdoc's JSON
from the crate root instead, following `pub use`, and prints every public
item (module, function, method, type, trait, constant, ...) whose docs have
no ``` block. Glob re-exports (`pub use x::*`) are not followed.

    cargo +nightly rustdoc --lib -- -Z unstable-options --output-format json
    AUDIT_JSON=target/doc/shmlab.json python3 tools/audit_examples.py [PATH-FILTER]

Prints the totals, then (with a filter such as `src/pool`) each item as
(path, kind, file, line). Nightly-only, so it is not part of CI.
"""

import json
import os
import sys
from collections import Counter

# Kinds of item that need an example of their own.
KINDS = {"function", "struct", "enum", "trait", "constant", "static",
         "macro", "type_alias", "module"}

crate = json.load(open(os.environ.get("AUDIT_JSON", "target/doc/shmlab.json")))
index = crate["index"]
seen, missing, total = set(), [], 0


def kind(item):
    return next(iter(item["inner"]))


def check(item, path):
    """Counts `item`, and records it if its docs hold no code block."""
    global total
    total += 1
    if "```" not in (item.get("docs") or ""):
        span = item.get("span") or {"filename": "?", "begin": [0]}
        missing.append(("::".join(path), kind(item), span["filename"], span["begin"][0]))


def walk(item_id, path):
    if item_id in seen or str(item_id) not in index:
        return
    seen.add(item_id)
    item = index[str(item_id)]
    k = kind(item)
    if k == "use":  # a re-export: the item it names, under this path
        target = item["inner"]["use"].get("id")
        if target is not None:
            walk(target, path)
        return
    if item.get("visibility") != "public":
        return
    path = path + [item["name"]] if item.get("name") else path
    if k in KINDS:
        check(item, path)
    if k == "module":
        for child in item["inner"]["module"]["items"]:
            walk(child, path)
    elif k in ("struct", "enum", "union"):
        for impl_id in item["inner"][k].get("impls", []):
            impl = index.get(str(impl_id), {}).get("inner", {}).get("impl")
            # Inherent methods only: trait impls are documented by the trait.
            if not impl or impl.get("trait") or impl.get("synthetic") or impl.get("blanket_impl"):
                continue
            for method_id in impl["items"]:
                method = index.get(str(method_id))
                if method and method.get("visibility") == "public":
                    check(method, path + [method["name"]])
    elif k == "trait":
        for member_id in item["inner"]["trait"]["items"]:
            member = index.get(str(member_id))
            if member:
                check(member, path + [member["name"]])


walk(crate["root"], [])
print("total items", total, "missing", len(missing))
print(Counter(m[2] for m in missing).most_common())
if len(sys.argv) > 1:
    for m in missing:
        if sys.argv[1] in m[2]:
            print(m)
