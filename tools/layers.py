#!/usr/bin/env python3
"""layers.py - checks that the modules of src/ use one another one way only.

A module is a folder of src/ (net, http, ws, hub, api, server, cli, ...) or
a file at its top (config, main).  Module A uses module B when a file of A
includes a header of B, or when an object file of A calls (or reads) a
symbol that an object file of B defines (nm: undefined in A, defined in
B), so a function declared by hand instead of through its header counts
too.  Every module that uses one that uses it back, directly or around a
circle, is listed, and the check fails.

    tools/layers.py [--src src] [--obj build/obj/src] [--graph]
    tools/layers.py --self-test

--self-test copies src/ to a temporary folder, adds one include that
points up (net/conn.c includes hub/hub.h) and checks that the check then
fails, naming that include: a check that cannot fail is no check.

Without object files (not built yet), only the includes are checked, and
it says so.  --graph prints every edge and the order of the layers.
"""
import argparse
import os
import re
import subprocess
import sys

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
SRC = os.path.join(ROOT, "src")
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def module_of(rel):
    """src-relative path -> module name."""
    parts = rel.split("/")
    if len(parts) > 1:
        return parts[0]
    return os.path.splitext(parts[0])[0]


def include_edges(SRC):
    edges = {}
    for d, _, files in os.walk(SRC):
        for f in files:
            if not f.endswith((".c", ".h")):
                continue
            path = os.path.join(d, f)
            rel = os.path.relpath(path, SRC)
            a = module_of(rel)
            with open(path, encoding="utf-8", errors="replace") as fh:
                text = fh.read()
            for inc in INCLUDE.findall(text):
                target = os.path.join(SRC, inc)
                if not os.path.exists(target):
                    continue  # generated, or a path of the tests
                b = module_of(inc)
                if a != b:
                    edges.setdefault((a, b), set()).add("%s includes %s" % (rel, inc))
    return edges


def symbol_edges(SRC, objdir):
    defined, wanted = {}, []
    for d, _, files in os.walk(objdir):
        for f in files:
            if not f.endswith(".o"):
                continue
            path = os.path.join(d, f)
            rel = os.path.relpath(path, objdir)[:-2] + ".c"
            if not os.path.exists(os.path.join(SRC, rel)):
                continue  # left from a source file since removed
            mod = module_of(rel)
            out = subprocess.run(["nm", "-P", path], capture_output=True,
                                 text=True, check=True).stdout
            for line in out.splitlines():
                fields = line.split()
                if len(fields) < 2:
                    continue
                name, kind = fields[0], fields[1]
                if kind == "U":
                    wanted.append((mod, rel, name))
                elif kind in "TDBRVWGS" or kind in "tdbr":
                    if kind.isupper():
                        defined.setdefault(name, (mod, rel))
    edges = {}
    for mod, rel, name in wanted:
        if name not in defined:
            continue  # a library's
        bmod, brel = defined[name]
        if bmod != mod:
            edges.setdefault((mod, bmod), set()).add(
                "%s uses %s (%s)" % (rel, name, brel))
    return edges


def cycles(nodes, adj):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(adj.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return out


def shortest(adj, inside, start, goal):
    """Modules from start to goal (both included) inside one circle."""
    prev, todo = {start: None}, [start]
    while todo:
        v = todo.pop(0)
        if v == goal:
            break
        for w in sorted(adj.get(v, ())):
            if w in inside and w not in prev:
                prev[w] = v
                todo.append(w)
    path, v = [], goal
    while v is not None:
        path.append(v)
        v = prev[v]
    return path[::-1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", default=SRC)
    ap.add_argument("--obj", default=os.path.join(ROOT, "build", "obj", "src"))
    ap.add_argument("--graph", action="store_true")
    ap.add_argument("--self-test", action="store_true")
    args = ap.parse_args()
    if args.self_test:
        return self_test()
    return check(args.src, args.obj, args.graph)


def self_test():
    import shutil
    import tempfile
    tmp = tempfile.mkdtemp(prefix="layers-")
    try:
        src = os.path.join(tmp, "src")
        shutil.copytree(SRC, src)
        if check(src, os.path.join(tmp, "none"), False, quiet=True) != 0:
            print("layers self-test: the tree fails before the change",
                  file=sys.stderr)
            return 1
        path = os.path.join(src, "net", "conn.c")
        with open(path, encoding="utf-8") as f:
            text = f.read()
        with open(path, "w", encoding="utf-8") as f:
            f.write('#include "hub/hub.h"\n' + text)
        if check(src, os.path.join(tmp, "none"), False, quiet=True) == 0:
            print("layers self-test: an include from net/ up to hub/ was "
                  "not found", file=sys.stderr)
            return 1
        print("layers self-test: a reverse include is caught")
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def check(SRC, objdir, graph, quiet=False):
    edges = include_edges(SRC)
    if os.path.isdir(objdir):
        for k, v in symbol_edges(SRC, objdir).items():
            edges.setdefault(k, set()).update(v)
        how = "includes and symbols"
    else:
        how = "includes only (no object files in %s)" % objdir
    nodes = {m for e in edges for m in e}
    adj = {}
    for a, b in edges:
        adj.setdefault(a, set()).add(b)

    if graph:
        for (a, b) in sorted(edges):
            print("%-8s -> %s" % (a, b))
    bad = cycles(nodes, adj)
    if not bad:
        # Layers from the bottom: a module comes after all it uses.
        order, done = [], set()
        while len(done) < len(nodes):
            ready = sorted(m for m in nodes - done if adj.get(m, set()) <= done)
            order.append(ready)
            done.update(ready)
        if quiet:
            return 0
        print("layers: one way (%s): %s" % (
            how, " < ".join("{%s}" % ",".join(l) if len(l) > 1 else l[0]
                            for l in order)))
        return 0
    if quiet:
        return 1
    print("layers: modules that use each other (%s):" % how, file=sys.stderr)
    for comp in bad:
        inside = set(comp)
        seen = set()
        # Each use inside the circle, with the shortest way back.
        for (a, b) in sorted(e for e in edges if e[0] in inside and e[1] in inside):
            path = shortest(adj, inside, b, a)
            circle = [a] + path
            key = frozenset(zip(circle, circle[1:]))
            if key in seen:
                continue
            seen.add(key)
            print("  circle: %s" % " -> ".join(circle), file=sys.stderr)
            for x, y in zip(circle, circle[1:]):
                why = sorted(edges[(x, y)])
                more = " (and %d more)" % (len(why) - 1) if len(why) > 1 else ""
                print("    %s -> %s: %s%s" % (x, y, why[0], more), file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
