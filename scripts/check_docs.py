#!/usr/bin/env python3
"""Fails when a public entity of include/genmod/ has no documentation comment.

Runs Doxygen on docs/Doxyfile.in with the public-API settings (EXTRACT_ALL=NO, private members
and every `detail` namespace excluded, WARN_IF_UNDOCUMENTED=YES) and lists, per file:
  * every Doxygen warning in include/genmod/ or docs/ (undocumented members and classes, and
    malformed comments, which would break the reference the `docs` target builds);
  * what Doxygen 1.9 does not warn about: undocumented concepts, and undocumented namespaces
    (whose members Doxygen then leaves unchecked): those come from its XML output.

Usage: scripts/check_docs.py [--only PATH_SUBSTRING ...] [--skip PATH_SUBSTRING ...]
Exit status: 0 when everything is documented, 1 when something is not, 2 when Doxygen is missing.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Settings that turn the reference's configuration into the check's: no HTML, XML for the
# concepts and namespaces, and the public-API extraction rules stated again so that an edit to the
# reference's configuration cannot loosen the check.
OVERRIDES = """
GENERATE_HTML          = NO
GENERATE_XML           = YES
XML_OUTPUT             = xml
XML_PROGRAMLISTING     = NO
SOURCE_BROWSER         = NO
EXTRACT_ALL            = NO
EXTRACT_PRIVATE        = NO
EXTRACT_ANON_NSPACES   = NO
EXCLUDE_SYMBOLS        = detail *::detail
WARN_IF_UNDOCUMENTED   = YES
WARN_IF_DOC_ERROR      = YES
WARN_FORMAT            = "$file:$line: $text"
WARN_LOGFILE           = {log}
QUIET                  = YES
"""
WARNING = re.compile(r"^(?P<file>/[^:]+):(?P<line>\d+): warning: (?P<text>.*)$")


def project_version():
    with open(os.path.join(ROOT, "CMakeLists.txt")) as f:
        m = re.search(r"project\(genmod VERSION ([0-9.]+)", f.read())
    return m.group(1) if m else "unknown"


def run_doxygen(out):
    with open(os.path.join(ROOT, "docs", "Doxyfile.in")) as f:
        config = f.read()
    config = (config.replace("@PROJECT_VERSION@", project_version())
              .replace("@GENMOD_SOURCE_DIR@", ROOT)
              .replace("@GENMOD_DOCS_OUTPUT@", out))
    log = os.path.join(out, "warnings.log")
    config += OVERRIDES.format(log=log)
    subprocess.run(["doxygen", "-"], input=config, text=True, check=True, cwd=out,
                   stdout=subprocess.DEVNULL)
    with open(log) as f:
        return f.read().splitlines()


def parse_warnings(lines):
    """(file, line, text) for each warning; continuation lines join the warning above them."""
    found = []
    for raw in lines:
        m = WARNING.match(raw)
        if m:
            found.append([m["file"], int(m["line"]), m["text"]])
        elif found and raw.strip():
            found[-1][2] += " " + raw.strip()
    return found


def text_of(element):
    return "".join(element.itertext()).strip() if element is not None else ""


def undocumented_compounds(xml_dir):
    """Concepts and namespaces (outside `detail`) with neither a brief nor a detailed description."""
    found = []
    index = ET.parse(os.path.join(xml_dir, "index.xml")).getroot()
    for compound in index.findall("compound"):
        kind, name = compound.get("kind"), compound.findtext("name")
        if kind not in ("concept", "namespace") or "detail" in name.split("::"):
            continue
        if not name.startswith("genmod"):
            continue  # e.g. a namespace alias or std specialisation Doxygen lists on its own
        root = ET.parse(os.path.join(xml_dir, compound.get("refid") + ".xml")).getroot()
        definition = root.find("compounddef")
        if text_of(definition.find("briefdescription")) or text_of(definition.find("detaileddescription")):
            continue
        location = definition.find("location")
        file = location.get("file") if location is not None else os.path.join(ROOT, "docs", "namespaces.dox")
        line = int(location.get("line", 0)) if location is not None else 0
        hint = " (describe it in docs/namespaces.dox)" if kind == "namespace" else ""
        found.append([file, line, f"{kind.capitalize()} {name} is not documented{hint}."])
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", default=[], help="report only paths containing this")
    parser.add_argument("--skip", action="append", default=[], help="do not report paths containing this")
    args = parser.parse_args()
    if shutil.which("doxygen") is None:
        print("check_docs: doxygen not found; install it with scripts/install-deps.sh", file=sys.stderr)
        return 2

    start = time.time()
    with tempfile.TemporaryDirectory(prefix="genmod-docs-") as out:
        warnings = parse_warnings(run_doxygen(out))
        warnings += undocumented_compounds(os.path.join(out, "xml"))

    ours = (os.path.join(ROOT, "include", "genmod") + os.sep, os.path.join(ROOT, "docs") + os.sep)
    offenders = {}
    for file, line, text in warnings:
        if not file.startswith(ours):
            continue
        rel = os.path.relpath(file, ROOT)
        if args.only and not any(s in rel for s in args.only):
            continue
        if any(s in rel for s in args.skip):
            continue
        # Doxygen repeats a member once per template instantiation it sees ("of class Foo< float >"):
        # one entry per place in the source is enough.
        key = re.sub(r" of (class|struct|namespace|file|union|concept) .*", "", text)
        offenders.setdefault(rel, {})[(line, key)] = text

    seconds = time.time() - start
    if not offenders:
        scope = " (filtered by --only/--skip)" if args.only or args.skip else ""
        print(f"check_docs: every public entity in include/genmod/ is documented{scope} ({seconds:.1f} s)")
        return 0
    total = sum(len(v) for v in offenders.values())
    for rel in sorted(offenders):
        for (line, _), text in sorted(offenders[rel].items()):
            print(f"{rel}:{line}: {text}")
    print(f"\ncheck_docs: {total} undocumented or malformed entries in {len(offenders)} files "
          f"({seconds:.1f} s). Give each public entity a `///` line saying what it is and what it "
          f"promises; internals go in a `detail` namespace.", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
