#!/usr/bin/env python3
"""Every test file of genmod_tests keeps its code in a namespace named after its path.

genmod_tests is a unity build (tests/CMakeLists.txt): CMake compiles eight test files as one
translation unit. A helper in an anonymous namespace, a constant or a `using namespace` at file
scope would then meet the next file's, so everything after a file's #include lines must sit in
`namespace <path with '/' as '_'> { ... }` (tests/README.md). This check says which file breaks
the rule, before the compiler finds a clash in whatever batch the file lands in.
"""
import pathlib
import re
import sys

root = pathlib.Path(__file__).resolve().parent.parent / "tests"
bad = []
for path in sorted(root.rglob("*_test.cpp")):
    rel = path.relative_to(root)
    if rel.parts[0] in ("alloc", "fuzz"):  # separate executables, not batched
        continue
    name = re.sub(r"[^A-Za-z0-9]", "_", str(rel.with_suffix("")))
    lines = path.read_text().split("\n")
    code = [l for l in lines if l.strip() and not l.startswith("//")]
    includes_end = max((i for i, l in enumerate(code) if l.startswith("#include")), default=-1)
    after = code[includes_end + 1 :]
    if not after or after[0] != f"namespace {name} {{" or after[-1] != f"}}  // namespace {name}":
        bad.append(f"tests/{rel}: expected its code after the #include lines inside "
                   f"'namespace {name} {{ ... }}  // namespace {name}'")
    elif any(l.startswith("#define") for l in after):
        bad.append(f"tests/{rel}: a #define leaks into the next files of its unity batch; use constexpr")
for line in bad:
    print(line, file=sys.stderr)
if bad:
    sys.exit(1)
print("every test file keeps its code in its own namespace")
