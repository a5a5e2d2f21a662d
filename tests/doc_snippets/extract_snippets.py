#!/usr/bin/env python3
"""Extracts the C++ code blocks of the documentation into translation units that the test build
compiles, so that a snippet that no longer matches the API fails the build instead of misleading
a reader. See tests/doc_snippets/README.md for the conventions a snippet follows.

Every fenced block whose info string is `cpp` in a Markdown file becomes one function (or, for
declarations, one namespace) in the generated file, after `#include <genmod/genmod.hpp>` and
`using namespace genmod;`. `#line` directives point compiler errors at the Markdown line.

Usage:
  extract_snippets.py --root DIR --out FILE.cpp DOC.md        one TU for one Markdown file
  extract_snippets.py --root DIR --each OUTDIR DOC.md [...]   one TU per snippet (to find which
                                                              snippets of a file fail)
Exit status 0, or 1 with a message naming the file and line of a malformed marker.
"""

import argparse
import os
import re
import sys

FENCE = re.compile(r"^(?P<indent>\s*)```(?P<info>[^`\s]*)\s*$")
MARKER_START = re.compile(r"^\s*<!--\s*snippet:(?P<rest>.*)$")
KINDS = ("context", "file", "skip")


class Snippet:
    def __init__(self, doc, line, code, indent):
        self.doc = doc          # path relative to the repository root, with '/'
        self.line = line        # 1-based line of the opening fence
        self.code = code        # the block's lines, indentation of the fence removed
        self.context = []       # (first line, lines) of each context marker
        self.file_scope = False
        self.skip = None        # the reason, when skipped


def fail(doc, line, message):
    sys.exit(f"{doc}:{line}: {message}")


def parse(doc, text):
    lines = text.split("\n")
    snippets, pending = [], []
    i = 0
    while i < len(lines):
        line = lines[i]
        m = MARKER_START.match(line)
        if m:
            start = i
            body = [m.group("rest")]
            while "-->" not in body[-1]:
                i += 1
                if i >= len(lines):
                    fail(doc, start + 1, "unterminated <!-- snippet: ... --> marker")
                body.append(lines[i])
            body[-1] = body[-1][: body[-1].index("-->")]
            first = body[0].strip().split(None, 1)
            kind = first[0] if first else ""
            if kind not in KINDS:
                fail(doc, start + 1, f"snippet marker '{kind}' is not one of {', '.join(KINDS)}")
            rest = ([first[1]] if len(first) > 1 else []) + body[1:]
            pending.append((kind, start + 1, rest))
            i += 1
            continue
        f = FENCE.match(line)
        if f:
            indent, info = f.group("indent"), f.group("info")
            j = i + 1
            while j < len(lines) and not re.match(r"^\s*```\s*$", lines[j]):
                j += 1
            if j >= len(lines):
                fail(doc, i + 1, "unterminated code block")
            if info in ("cpp", "c++"):
                code = [l[len(indent):] if l.startswith(indent) else l.lstrip() for l in lines[i + 1 : j]]
                s = Snippet(doc, i + 1, code, indent)
                for kind, at, rest in pending:
                    if kind == "context":
                        if not "".join(rest).strip():
                            fail(doc, at, "a context marker needs the C++ declarations it supplies")
                        s.context.append((at, rest))
                    elif kind == "file":
                        s.file_scope = True
                    else:
                        reason = " ".join(r.strip() for r in rest).strip()
                        if not reason:
                            fail(doc, at, "a skip marker needs a reason: <!-- snippet: skip REASON -->")
                        s.skip = reason
                if any(re.match(r"^\s*int\s+main\s*\(", l) for l in code):
                    s.file_scope = True
                snippets.append(s)
            elif pending:
                fail(doc, pending[0][1], f"snippet marker before a '{info or 'plain'}' block, not a cpp one")
            pending = []
            i = j + 1
            continue
        if line.strip() and pending:
            fail(doc, pending[0][1], "a snippet marker must come right before a ```cpp block")
        i += 1
    if pending:
        fail(doc, pending[0][1], "a snippet marker must come right before a ```cpp block")
    return snippets


def identifier(text):
    return re.sub(r"[^0-9A-Za-z_]", "_", text)


def render(snippets, doc, out_name):
    """The translation unit for `snippets` (all from `doc`), as a list of lines."""
    includes, body = ["#include <genmod/genmod.hpp>"], []
    compiled = 0
    for s in snippets:
        ns = f"genmod_doc_snippets::{identifier(doc)}_{s.line}"
        if s.skip:
            body.append(f"// {doc}:{s.line}: skipped ({s.skip})")
            continue
        compiled += 1
        code = []
        for l in s.code:  # includes go to the top of the file; the line stays, empty
            if l.lstrip().startswith("#include"):
                if l.strip() not in includes:
                    includes.append(l.strip())
                code.append("")
            else:
                code.append(l)
        body.append(f"namespace {ns} {{")
        body.append("using namespace genmod;")
        if not s.file_scope:
            body.append("[[maybe_unused]] void snippet() {")
        for at, rest in s.context:
            body.append(f'#line {at} "{doc}"')
            body.extend(rest)
        body.append(f'#line {s.line + 1} "{doc}"')
        body.extend(code)
        body.append("#line {LINE} \"{FILE}\"")  # back to the generated file, filled in below
        if not s.file_scope:
            body.append("}")
        body.append(f"}}  // namespace {ns}")
        body.append("")
    head = [f"// Generated from {doc} by tests/doc_snippets/extract_snippets.py: edit the Markdown, not this."]
    if compiled:  # a file without C++ need not pay for parsing the library
        head += [*includes, ""]
    fn = f"int genmod_doc_snippets_{identifier(doc)}() {{ return {compiled}; }}"
    lines = head + body + [f"/// The number of snippets of {doc} compiled here.", fn, ""]
    return [l.replace("{LINE}", str(n + 2)).replace("{FILE}", out_name) if l == '#line {LINE} "{FILE}"' else l
            for n, l in enumerate(lines)]


def write_if_changed(path, lines):
    # An edit to a page's prose leaves its snippets as they were: keeping the file (and its time
    # stamp) then spares a recompilation. The build reruns this cheap script until the next change.
    text = "\n".join(lines)
    if os.path.exists(path):
        with open(path) as f:
            if f.read() == text:
                return
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", required=True, help="repository root (paths are reported relative to it)")
    group = ap.add_mutually_exclusive_group(required=True)
    group.add_argument("--out", help="the translation unit to write (one Markdown file)")
    group.add_argument("--each", help="a directory to write one translation unit per snippet into")
    ap.add_argument("docs", nargs="+")
    args = ap.parse_args()
    if args.out and len(args.docs) != 1:
        ap.error("--out takes exactly one Markdown file")
    for path in args.docs:
        doc = os.path.relpath(os.path.abspath(path), os.path.abspath(args.root)).replace(os.sep, "/")
        with open(path, encoding="utf-8") as f:
            snippets = parse(doc, f.read())
        if args.out:
            write_if_changed(args.out, render(snippets, doc, os.path.abspath(args.out)))
        else:
            for s in snippets:
                if s.skip:
                    continue
                out = os.path.join(args.each, f"{identifier(doc)}_{s.line}.cpp")
                write_if_changed(out, render([s], doc, os.path.abspath(out)))


if __name__ == "__main__":
    main()
