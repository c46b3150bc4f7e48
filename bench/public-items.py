#!/usr/bin/env python3
"""Count a crate's public API surface, and which items of a crate another crate uses.

Issue 14 (§5) asked for a narrower berth-container; this prints the numbers, from the source,
at any commit (stdlib only, no build):

    bench/public-items.py crates/container crates/oci           # the worktree
    bench/public-items.py --rev 7c028d3 crates/container        # a commit, read with git show
    bench/public-items.py --features fuzzing crates/container   # with a feature on
    bench/public-items.py --list crates/container               # every counted item, by path
    bench/public-items.py --uses berth_container crates/runtime-cli/src
                         # the items of berth_container that code names

How it counts. It parses every module of the crate compiled in a default Linux build
(`src/lib.rs`, then `mod` declarations inline or in `name.rs` / `name/mod.rs` / `#[path]`),
then walks what is reachable from the crate root, as a user of the crate sees it:

- a module is reachable from the root through `pub mod` (every module on the way `pub`) or
  through a `pub use` of the module; in a reachable module, every item declared with a bare
  `pub` is reachable — fn, struct, enum, union, trait, type, const, static — and counts once,
  where it is defined, however many paths lead to it;
- a `pub use` of one of the crate's own items makes that item reachable (an item declared `pub`
  in a private module and re-exported from the root counts as that item); a `pub use` of
  another crate's item (or of a whole crate) counts as one "use";
- "pub items" is the sum of those and the reachable modules other than the root;
- "pub methods", separately: the `pub fn`s of inherent `impl` blocks of reachable structs,
  enums and unions (matched by type name anywhere in the crate); trait-impl methods carry no
  `pub` and are not counted.

Not counted: `pub(crate)`, `pub(super)`, `pub(in …)` and private items; items under a
`#[cfg(…)]` false in a default Linux build (`test` is false, `feature = "x"` is true only with
`--features x`, `unix`/`target_os = "linux"` are true, anything else false), so `#[cfg(test)]`
modules never count; fields, variants, associated consts and types, macros, and items inside
function bodies; nor a `pub` type in a private module that is reachable only through a public
signature and has no path (berth-cgroups' `Hierarchy`, berth-container's `ipc::Failure`: rustc's
`unreachable_pub` accepts those, this count does not). It reads tokens (comments and literals removed) and matches brackets; it does
not expand macros, so items a macro generates are missed.

`--uses CRATE DIR` counts the distinct items of CRATE that the `.rs` files under DIR name: every
`use CRATE::…` tree expanded, every `CRATE::a::b` path, and `m::x` for an `m` imported from
CRATE; a path is cut after its first type name (`Container::create` is the item `Container`),
and a module that only prefixes other paths is not an item itself.
"""

import argparse
import os
import re
import subprocess
import sys
from collections import Counter

# ----------------------------------------------------------------------------- source access


class Source:
    """Reads files from the worktree, or from a commit with `git show REV:PATH`."""

    def __init__(self, rev):
        self.rev = rev
        self.top = None
        if rev:
            self.top = subprocess.run(["git", "rev-parse", "--show-toplevel"], check=True,
                                      capture_output=True, text=True).stdout.strip()

    def _rel(self, path):
        return os.path.relpath(os.path.abspath(path), self.top)

    def read(self, path):
        if not self.rev:
            try:
                with open(path, encoding="utf-8") as f:
                    return f.read()
            except FileNotFoundError:
                return None
        r = subprocess.run(["git", "-C", self.top, "show", f"{self.rev}:{self._rel(path)}"],
                           capture_output=True, text=True)
        return r.stdout if r.returncode == 0 else None

    def rust_files(self, directory):
        if not self.rev:
            out = []
            for root, _, files in os.walk(directory):
                out += [os.path.join(root, f) for f in files if f.endswith(".rs")]
            return sorted(out)
        r = subprocess.run(["git", "-C", self.top, "ls-tree", "-r", "--name-only", self.rev, "--",
                            self._rel(directory)], check=True, capture_output=True, text=True)
        return [os.path.join(self.top, p) for p in r.stdout.split() if p.endswith(".rs")]


# ----------------------------------------------------------------------------- tokens

TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<line>//[^\n]*)
  | (?P<block>/\*)
  | (?P<raw>(?:br|r)(?P<hashes>\#*)")
  | (?P<str>b?"(?:[^"\\]|\\.)*")
  | (?P<char>b?'(?:[^'\\\n]|\\(?:x[0-9a-fA-F]{2}|u\{[0-9a-fA-F]{1,6}\}|.))')
  | (?P<life>'[A-Za-z_][A-Za-z0-9_]*)
  | (?P<ident>r\#[A-Za-z_][A-Za-z0-9_]*|[A-Za-z_][A-Za-z0-9_]*)
  | (?P<num>[0-9][0-9A-Za-z_.]*)
  | (?P<path>::)
  | (?P<punct>.)
""", re.VERBOSE | re.DOTALL)


LIT = "\0"  # a literal other than a plain string


def tokens(text):
    """Identifiers, `::`, single punctuation; a string becomes `"` + its text, other literals
    LIT; comments are dropped."""
    out, i, n = [], 0, len(text)
    while i < n:
        m = TOKEN.match(text, i)
        kind = m.lastgroup if m.lastgroup != "hashes" else "raw"
        if kind == "block":  # nested block comments
            depth, j = 1, m.end()
            while depth and j < n:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            i = j
            continue
        if m.group("raw"):
            end = text.find('"' + m.group("hashes"), m.end())
            i = len(text) if end < 0 else end + 1 + len(m.group("hashes"))
            out.append(LIT)
            continue
        i = m.end()
        if kind in ("ws", "line"):
            continue
        if kind == "str":  # kept: `#[path = "…"]`, `feature = "…"`
            out.append('"' + m.group(kind).lstrip("b")[1:-1])
        elif kind in ("char", "num"):
            out.append(LIT)
        elif kind == "life":
            out.append("'")
        else:
            out.append(m.group(kind))
    return out


OPEN, CLOSE = {"(": ")", "[": "]", "{": "}"}, {")", "]", "}"}


def match(toks, i):
    """Index just past the group that opens at toks[i]."""
    depth = 0
    while i < len(toks):
        t = toks[i]
        if t in OPEN:
            depth += 1
        elif t in CLOSE:
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return i


def skip_to(toks, i, stops):
    """From i, the index of the first token in `stops` outside any bracket group."""
    while i < len(toks) and toks[i] not in stops:
        i = match(toks, i) if toks[i] in OPEN else i + 1
    return i


# ----------------------------------------------------------------------------- cfg


def cfg_true(toks, features):
    """Evaluates a cfg predicate's tokens (inside the parentheses) for a default Linux build."""
    pos = [0]

    def pred():
        name = toks[pos[0]]
        pos[0] += 1
        if pos[0] < len(toks) and toks[pos[0]] == "(":
            pos[0] += 1
            args = []
            while toks[pos[0]] != ")":
                args.append(pred())
                if toks[pos[0]] == ",":
                    pos[0] += 1
            pos[0] += 1
            return {"any": any(args), "all": all(args), "not": not args[0] if args else True}.get(name, False)
        if pos[0] < len(toks) and toks[pos[0]] == "=":
            value = toks[pos[0] + 1].lstrip('"')
            pos[0] += 2
            if name == "feature":
                return value in features
            return (name, value) in {("target_os", "linux"), ("target_family", "unix")}
        return name in ("unix", "linux")

    try:
        return pred()
    except IndexError:
        return True


# ----------------------------------------------------------------------------- items

KINDS = {"fn", "struct", "enum", "union", "trait", "type", "const", "static", "mod", "use"}


def use_leaves(toks, prefix=()):
    """The leaf paths of a use tree, as tuples (glob → '*', `x as y` → x's path)."""
    leaves, path, i = [], list(prefix), 0
    while i < len(toks):
        t = toks[i]
        if t == "{":
            end = match(toks, i)
            inner, depth, start = toks[i + 1:end - 1], 0, 0
            for j, u in enumerate(inner + [","]):
                depth += u in OPEN
                depth -= u in CLOSE
                if u == "," and depth == 0:
                    if inner[start:j]:
                        leaves += use_leaves(inner[start:j], tuple(path))
                    start = j + 1
            return leaves
        if t == "as":
            break
        if t == "*":
            path.append("*")
        elif t != "::":
            path.append(t)
        i += 1
    if path and path[-1] == "self":
        path.pop()
    return [tuple(path)] if path else []


class Module:
    def __init__(self, path, public):
        self.path, self.public = path, public  # path: tuple of names from the root
        self.items = {}  # name -> (kind, public) for fn/struct/enum/union/trait/type/const/static
        self.mods = {}  # name -> Module
        self.uses = []  # (public, leaf path tuple)
        self.impls = []  # (self type name, [pub method names]) of inherent impls


def impl_self_type(toks):
    """The self type's name of `impl<…> Type<…> where …` (tokens after `impl`), or None for a
    trait impl (`impl … Trait for Type`)."""
    depth, names, prev = 0, [], None
    for t in toks:
        if t == "<":
            depth += 1
        elif t == ">" and prev != "-":
            depth -= 1
        elif depth == 0 and t == "for":
            return None
        elif depth == 0 and t == "where":
            break
        elif depth == 0 and re.match(r"[A-Za-z_]", t) and t not in ("dyn", "mut", "const", "unsafe"):
            names.append(t)
        prev = t
    return names[-1] if names else None


class Crate:
    """A crate's module tree (every module compiled in a default build), then what is
    reachable from its root."""

    def __init__(self, src, features):
        self.src, self.features = src, features
        self.root = Module((), True)

    def module_file(self, here, name, attrs_path, mod_rs):
        if attrs_path:
            return os.path.join(os.path.dirname(here), attrs_path)
        base = os.path.dirname(here) if mod_rs else os.path.splitext(here)[0]
        for cand in (os.path.join(base, name + ".rs"), os.path.join(base, name, "mod.rs")):
            if self.src.read(cand) is not None:
                return cand
        return None

    def parse_file(self, path, module, mod_rs):
        text = self.src.read(path)
        if text is None:
            print(f"warning: {path} not found (module {'::'.join(module.path)})", file=sys.stderr)
            return
        toks = tokens(text)
        self.parse(toks, 0, len(toks), path, module, mod_rs)

    def parse(self, toks, i, end, path, module, mod_rs, impl=None):
        """Items of `module` in toks[i:end]; with `impl`, the pub fns of that impl body."""
        while i < end:
            enabled, file_attr = True, None
            while i < end and toks[i] == "#":  # attributes
                inner = i + 1 < end and toks[i + 1] == "!"
                j = i + 2 if inner else i + 1
                close = match(toks, j)
                body = toks[j + 1:close - 1]
                if not inner and body[:1] == ["cfg"] and len(body) > 2:
                    enabled = enabled and cfg_true(body[2:-1], self.features)
                if not inner and body[:2] == ["path", "="] and len(body) > 2:
                    file_attr = body[2].lstrip('"')
                i = close
            if i >= end:
                break
            public = toks[i] == "pub"
            if public:
                i += 1
                if toks[i] == "(":  # pub(crate), pub(super), pub(in …)
                    public, i = False, match(toks, i)
            while toks[i] in ("unsafe", "async", "default", "extern") or toks[i].startswith('"') or (
                    toks[i] == "const" and toks[i + 1] in ("fn", "unsafe", "async", "extern")):
                if toks[i] == "extern" and toks[i + 1] in ("crate", "{"):
                    break
                i += 1
            kw = toks[i]
            if kw == "extern" and toks[i + 1] == "crate":  # extern crate x [as y];
                if enabled and impl is None:
                    module.uses.append((public, (toks[i + 2],)))
                i = skip_to(toks, i, {";"}) + 1
            elif kw == "impl" or kw == "extern":
                j = skip_to(toks, i, {"{", ";"})
                close = match(toks, j) if toks[j] == "{" else j + 1
                if enabled and kw == "impl" and toks[j] == "{" and impl is None:
                    ty = impl_self_type(toks[i + 1:j])
                    if ty:
                        methods = []
                        self.parse(toks, j + 1, close - 1, path, module, mod_rs, impl=methods)
                        module.impls.append((ty, methods))
                i = close
            elif kw == "mod":
                name = toks[i + 1]
                j = skip_to(toks, i, {"{", ";"})
                close = match(toks, j) if toks[j] == "{" else j + 1
                if enabled and impl is None:
                    child = Module(module.path + (name,), public)
                    module.mods[name] = child
                    if toks[j] == "{":  # inline: its files would live under this file's stem
                        self.parse(toks, j + 1, close - 1, path, child, mod_rs)
                    else:
                        f = self.module_file(path, name, file_attr, mod_rs)
                        if f is None:
                            print(f"warning: no file for module {name} in {path}", file=sys.stderr)
                        else:
                            self.parse_file(f, child, os.path.basename(f) == "mod.rs")
                i = close
            elif kw == "use":
                j = skip_to(toks, i, {";"})
                if enabled and impl is None:
                    module.uses += [(public, leaf) for leaf in use_leaves(toks[i + 1:j])]
                i = j + 1
            elif kw in KINDS or kw == "macro_rules":
                # the item's name; then its end: `;` or a `{…}` body outside (…) and […]
                name = toks[i + 1] if kw != "macro_rules" else toks[i + 2]
                if kw in ("const", "static", "type"):
                    close = skip_to(toks, i, {";"}) + 1
                else:
                    j = skip_to(toks, i, {"{", ";"})
                    close = match(toks, j) if toks[j] == "{" else j + 1
                if enabled and kw != "macro_rules":
                    if impl is not None:
                        if kw == "fn" and public:
                            impl.append(name)
                    else:
                        module.items[name] = (kw, public)
                i = close
            elif i + 1 < end and toks[i + 1] == "!":  # a macro invocation at item level
                j = i + 2 + (toks[i + 2] not in OPEN)  # macro_rules-like `name! ident {…}`
                i = match(toks, j)
                if i < end and toks[i] == ";":
                    i += 1
            else:  # anything else (a stray `;`, an unknown form): step over one token
                i = match(toks, i) if toks[i] in OPEN else i + 1

    # ------------------------------------------------------------------ reachability

    def resolve(self, module, leaf):
        """(Module, item name or None for the module itself, or '*') a use path names inside this
        crate, or None for another crate's."""
        parts = list(leaf)
        if parts[0] == "crate":
            m, parts = self.root, parts[1:]
        elif parts[0] in ("self", "super"):
            m = module
            while parts and parts[0] in ("self", "super"):
                if parts.pop(0) == "super":
                    m = self.find(m.path[:-1])
        elif parts[0] in module.mods:  # 2018 paths: a child module by name
            m = module
        else:
            return None
        while parts and parts[0] in m.mods:
            m = m.mods[parts.pop(0)]
        if not parts:
            return m, None
        if len(parts) == 1:
            return m, parts[0]
        return None

    def find(self, path):
        m = self.root
        for p in path:
            m = m.mods[p]
        return m

    def reachable(self):
        """Counter of kinds and the list of (kind, defining path) reachable from the root:
        through pub modules and pub re-exports; a pub use of another crate's item counts as a
        "use"; plus "method" for the pub fns of inherent impls of reachable types."""
        seen_mods, seen_items, external, queue = set(), set(), set(), [self.root]
        while queue:
            m = queue.pop()
            if m.path in seen_mods:
                continue
            seen_mods.add(m.path)
            for name, (kind, public) in m.items.items():
                if public:
                    seen_items.add((kind, m.path + (name,)))
            for name, child in m.mods.items():
                if child.public:
                    queue.append(child)
            for public, leaf in m.uses:
                if not public:
                    continue
                r = self.resolve(m, leaf)
                if r is None:
                    external.add(m.path + (leaf[-1],) if leaf[-1] != "*" else m.path + leaf)
                    continue
                target, name = r
                if name is None:
                    queue.append(target)
                elif name == "*":
                    queue.append(target)  # its pub items (their own visibility still applies)
                elif name in target.mods:
                    queue.append(target.mods[name])
                elif name in target.items:
                    seen_items.add((target.items[name][0], target.path + (name,)))
                else:  # a re-export of a re-export: follow it one more step
                    for _, l2 in target.uses:
                        if l2[-1] == name:
                            r2 = self.resolve(target, l2)
                            if r2 and r2[1] in (r2[0].items or {}):
                                seen_items.add((r2[0].items[r2[1]][0], r2[0].path + (r2[1],)))
                                break
                    else:
                        external.add(m.path + (name,))
        found = [(k, p) for k, p in seen_items]
        found += [("mod", p) for p in seen_mods if p]
        found += [("use", p) for p in external]
        types = {p[-1] for k, p in seen_items if k in ("struct", "enum", "union")}
        stack = [self.root]
        while stack:
            m = stack.pop()
            stack += m.mods.values()
            for ty, methods in m.impls:
                if ty in types:
                    found += [("method", m.path + (ty, f)) for f in methods]
        return sorted(found)


def count(src, crate_dir, features):
    crate = Crate(src, features)
    lib = os.path.join(crate_dir, "src", "lib.rs")
    if src.read(lib) is None:
        return None
    crate.parse_file(lib, crate.root, True)
    return crate.reachable()


def is_type(name):
    return name[:1].isupper() and any(c.islower() for c in name)


def uses(src, crate_name, directory):
    """The distinct items of CRATE that DIR's .rs files name: every `use CRATE::…` tree
    expanded, every `CRATE::a::b` path, and `m::x` where `m` was imported from CRATE; a path is
    cut after its first type name (`Container::create` is the item `Container`), and a module
    that is only a prefix of other paths is not an item itself."""
    found = set()
    for f in src.rust_files(directory):
        toks = tokens(src.read(f) or "")
        imported = {}  # a name this file imported from CRATE -> its full path
        for i, t in enumerate(toks):
            if t == "use" and (i == 0 or toks[i - 1] in (";", "}", "{", "]", "pub", ")")):
                j = skip_to(toks, i, {";"})
                for leaf in use_leaves(toks[i + 1:j]):
                    if leaf and leaf[0] == crate_name and len(leaf) > 1:
                        found.add(leaf)
                        imported[leaf[-1]] = leaf
        for i, t in enumerate(toks):
            if (t == crate_name or t in imported) and i + 1 < len(toks) and toks[i + 1] == "::" \
                    and (i == 0 or toks[i - 1] != "::") and not (t != crate_name and i > 0 and toks[i - 1] == "use"):
                # a path expression: CRATE::a::b, or m::b for an imported m
                parts, j = list(imported.get(t, (crate_name,))), i + 2
                while j < len(toks) and re.match(r"[A-Za-z_]", toks[j]):
                    parts.append(toks[j])
                    if j + 2 < len(toks) and toks[j + 1] == "::" and toks[j + 2] != "<":
                        j += 2
                    else:
                        break
                found.add(tuple(parts))
    items = set()
    for p in found:
        cut = next((k + 1 for k, seg in enumerate(p) if k and is_type(seg)), len(p))
        items.add(p[:cut])
    return {"::".join(p) for p in items
            if not any(q != p and q[:len(p)] == p for q in items)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rev", help="read the files at this commit (git show) instead of the worktree")
    ap.add_argument("--features", default="", help="comma-separated features taken as enabled")
    ap.add_argument("--list", action="store_true", help="print every counted item")
    ap.add_argument("--uses", metavar="CRATE", help="count CRATE::… paths used in the given directories")
    ap.add_argument("dirs", nargs="+", help="crate directories (or, with --uses, source directories)")
    a = ap.parse_args()
    src = Source(a.rev)
    features = {f for f in a.features.split(",") if f}
    if a.uses:
        for d in a.dirs:
            paths = uses(src, a.uses, d)
            print(f"{d}: {len(paths)} items of {a.uses}")
            if a.list:
                for p in sorted(paths):
                    print(f"  {p}")
        return
    kinds = ["mod", "fn", "struct", "enum", "trait", "type", "const", "static", "use"]
    print("| crate | pub items | " + " | ".join(kinds) + " | other | pub methods |")
    print("| --- " * (len(kinds) + 4) + "|")
    for d in a.dirs:
        found = count(src, d, features)
        if found is None:
            print(f"| {d} | (no src/lib.rs{' at ' + a.rev if a.rev else ''}) |")
            continue
        by = Counter(k for k, _ in found)
        methods = by.pop("method", 0)
        other = sum(v for k, v in by.items() if k not in kinds)
        print(f"| {d} | {sum(by.values())} | " + " | ".join(str(by[k]) for k in kinds)
              + f" | {other} | {methods} |")
        if a.list:
            for k, p in found:
                print(f"  {k:8} {'::'.join(p)}")


if __name__ == "__main__":
    main()
