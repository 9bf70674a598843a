#!/usr/bin/env python3
"""The house rules of crates/README.md, measured (issue #32): the binary's size, long functions,
import circles between modules, `Result<_, String>` in library code.

    scripts/house.py            # report; exit 1 when a rule is broken
    scripts/house.py --quiet    # only what is broken

Functions are found by their `fn` line and measured to the brace that closes them (strings,
chars and comments skipped). A function marked with a `// house: data table` comment on the
line above is a data table and not measured. Modules are files; `use crate::a::b` in file X
is an edge X -> a (the module file of the first path segment that names one), and `super::`
an edge to the parent; a circle is a strongly connected set of more than one module.
"""

import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "crates")
BINARY = "sostle"
BINARY_BUDGET = 4000
FN_BUDGET = 150


def rust_files(crate):
    src = os.path.join(ROOT, crate, "src")
    for d, _, fs in os.walk(src):
        for f in fs:
            if f.endswith(".rs"):
                yield os.path.join(d, f)


def strip(text):
    """The text with string, char and comment contents blanked (newlines kept)."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == "r" and re.match(r'r#*"', text[i:i + 10]) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            m = re.match(r'r(#*)"', text[i:])
            end = '"' + m.group(1)
            j = text.find(end, i + len(m.group(0)))
            j = n if j < 0 else j + len(end)
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            j += 1
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == "'":
            m = re.match(r"'(\\.[^']*|[^\\'])'", text[i:])
            if m:
                out.append(" " * len(m.group(0)))
                i += len(m.group(0))
            else:
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def long_functions(path):
    raw = open(path, encoding="utf-8").read()
    text = strip(raw)
    lines = text.split("\n")
    raw_lines = raw.split("\n")
    found = []
    in_tests = None
    for i, line in enumerate(lines):
        if re.match(r"\s*mod tests\b", line) or re.match(r"\s*#\[cfg\(test\)\]", line):
            in_tests = i
            break
    limit = len(lines) if in_tests is None else in_tests
    i = 0
    while i < limit:
        m = re.match(r"\s*(pub(\([^)]*\))?\s+)?(const\s+)?(async\s+)?(unsafe\s+)?fn\s+(\w+)", lines[i])
        if not m:
            i += 1
            continue
        name = m.group(6)
        # Find the opening brace (or a `;` for a declaration without body).
        depth, j, opened = 0, i, False
        while j < len(lines):
            for ch in lines[j]:
                if ch == "{":
                    depth += 1
                    opened = True
                elif ch == "}":
                    depth -= 1
                elif ch == ";" and not opened and depth == 0:
                    break
            else:
                if opened and depth == 0:
                    break
                j += 1
                continue
            break
        length = j - i + 1
        marked = i > 0 and "house: data table" in raw_lines[i - 1]
        if opened and length > FN_BUDGET and not marked:
            found.append((name, i + 1, length))
        i += 1
    return found


def module_of(crate_src, path):
    rel = os.path.relpath(path, crate_src)[:-3]
    parts = rel.split(os.sep)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return tuple(parts)


def imports(crate_src, files):
    mods = {module_of(crate_src, f): f for f in files}
    edges = {m: set() for m in mods}
    for m, f in mods.items():
        text = strip(open(f, encoding="utf-8").read())
        # Only code outside `mod tests`.
        cut = re.search(r"\n\s*#\[cfg\(test\)\]\s*\n\s*mod tests", text)
        if cut:
            text = text[:cut.start()]
        paths = re.findall(r"\bcrate::([\w:]+)", text)
        paths += [
            "::".join(list(m[:-1]) + [p]) for p in re.findall(r"\bsuper::([\w:]+)", text)
        ] if m else []
        for p in paths:
            segs = tuple(s for s in p.split("::") if s)
            target = None
            for k in range(len(segs), 0, -1):
                if segs[:k] in mods:
                    target = segs[:k]
                    break
            if target is None or target == m or target == ():
                continue
            # A module importing its own child or its parent's items through `mod.rs` is
            # the module tree, not a circle; count only edges between siblings' trees.
            if target[:len(m)] == m or m[:len(target)] == target:
                continue
            edges[m].add(target)
    return edges


def circles(edges):
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
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

    sys.setrecursionlimit(10000)
    for v in list(edges):
        if v not in index:
            visit(v)
    return out


def main():
    quiet = "--quiet" in sys.argv
    broken = 0
    crates = sorted(d for d in os.listdir(ROOT) if os.path.isdir(os.path.join(ROOT, d, "src")))
    binary_lines = sum(
        len(open(f, encoding="utf-8").read().split("\n")) - 1 for f in rust_files(BINARY)
    )
    ok = binary_lines <= BINARY_BUDGET
    broken += not ok
    if not ok or not quiet:
        print(f"{'ok ' if ok else 'BAD'} crates/{BINARY}/src: {binary_lines} lines (budget {BINARY_BUDGET})")
    for crate in crates:
        src = os.path.join(ROOT, crate, "src")
        files = sorted(rust_files(crate))
        for f in files:
            for name, line, length in long_functions(f):
                broken += 1
                print(f"BAD {os.path.relpath(f, ROOT)}:{line}: fn {name} is {length} lines (budget {FN_BUDGET})")
        for c in circles(imports(src, files)):
            broken += 1
            print(f"BAD {crate}: import circle between " + ", ".join("::".join(m) or "crate" for m in c))
        if crate != BINARY:
            for f in files:
                text = strip(open(f, encoding="utf-8").read())
                cut = re.search(r"\n\s*#\[cfg\(test\)\]\s*\n\s*mod tests", text)
                if cut:
                    text = text[:cut.start()]
                for m in re.finditer(r"Result<[^<>;{]*?(<[^<>]*>)?[^<>;{]*?,\s*String\s*>", text):
                    broken += 1
                    line = text.count("\n", 0, m.start()) + 1
                    print(f"BAD {os.path.relpath(f, ROOT)}:{line}: Result<_, String> in library code")
    if not quiet:
        print("house rules: " + ("kept" if broken == 0 else f"{broken} broken"))
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
