#!/usr/bin/env python3
"""Statically checks deploy/Containerfile (no image is built here):

  scripts/check-containerfile.py [--file PATH] [--context DIR]

- it starts FROM a base image;
- every COPY/ADD source exists in the build context (run scripts/build-static first: the
  binary is build/mcescan-exporter);
- the ENTRYPOINT (exec form) runs a file that a COPY put there;
- apt-get install names every package the copied binary needs (scripts/runtime-deps);
- every --flag in ENTRYPOINT/CMD is one that the copied binary's `serve --help` (or the named
  subcommand's) lists.

Exit 0 when all hold; otherwise one line per finding and exit 1.
"""
import argparse
import json
import os
import re
import shlex
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def instructions(text):
    """(keyword, argument text) per instruction, continuation lines joined, comments dropped."""
    out, buf = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if buf and line.startswith("#"):
            continue
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        keyword, _, rest = buf.strip().partition(" ")
        out.append((keyword.upper(), rest.strip()))
        buf = ""
    if buf:
        out.append(("<unterminated>", buf))
    return out


def words(arg):
    """Exec form (JSON array) or shell form, as a list of words."""
    if arg.startswith("["):
        value = json.loads(arg)
        if not isinstance(value, list) or not all(isinstance(w, str) for w in value):
            raise ValueError(f"not a JSON array of strings: {arg}")
        return value
    return shlex.split(arg)


def copies(steps):
    """(sources, destination) of every COPY/ADD from the build context (not --from=stage)."""
    result = []
    for keyword, arg in steps:
        if keyword not in ("COPY", "ADD"):
            continue
        parts = words(arg)
        if any(p.startswith("--from=") for p in parts):
            continue
        parts = [p for p in parts if not p.startswith("--")]
        result.append((parts[:-1], parts[-1]))
    return result


def installed_packages(steps):
    names = set()
    for keyword, arg in steps:
        if keyword != "RUN":
            continue
        for m in re.finditer(r"apt-get\s+install\s+([^&;|]+)", arg):
            names.update(w for w in m.group(1).split() if not w.startswith("-"))
    return names


def check(path, context):
    findings = []
    steps = instructions(open(path).read())
    if not steps or steps[0][0] not in ("FROM", "ARG") or not any(k == "FROM" for k, _ in steps):
        findings.append("no FROM before the first instruction")
    if any(k == "<unterminated>" for k, _ in steps):
        findings.append("the last instruction ends in a line continuation")
    placed = {}  # path in the image -> source in the context
    for sources, dest in copies(steps):
        for src in sources:
            full = os.path.join(context, src)
            if not os.path.exists(full):
                findings.append(f"COPY source {src} does not exist in {context} (run scripts/build-static first)")
            target = dest if not dest.endswith("/") and len(sources) == 1 else os.path.join(dest, os.path.basename(src))
            placed[target] = full
    entry = [arg for k, arg in steps if k == "ENTRYPOINT"]
    cmd = [arg for k, arg in steps if k == "CMD"]
    binary = None
    if not entry:
        findings.append("no ENTRYPOINT")
    else:
        if not entry[-1].startswith("["):
            findings.append("ENTRYPOINT is in shell form (signals would go to /bin/sh, not the daemon)")
        program = words(entry[-1])[0]
        binary = placed.get(program)
        if binary is None:
            findings.append(f"ENTRYPOINT runs {program}, which no COPY puts there (COPY targets: {', '.join(sorted(placed)) or 'none'})")
    if binary and os.path.exists(binary):
        findings += check_binary(binary, steps, words(entry[-1])[1:] + (words(cmd[-1]) if cmd else []))
    return findings


def check_binary(binary, steps, args):
    findings = []
    deps = subprocess.run([os.path.join(HERE, "runtime-deps"), binary], capture_output=True, text=True)
    if deps.returncode != 0:
        return [f"runtime-deps {binary}: {deps.stderr.strip()}"]
    wanted = {line.split()[0] for line in deps.stdout.splitlines() if line.strip()}
    missing = wanted - installed_packages(steps)
    if missing:
        findings.append(f"apt-get install lacks {', '.join(sorted(missing))}, which {os.path.basename(binary)} links")
    # Flags belong to a subcommand; without one the daemon runs `serve` (the default).
    sub = args[0] if args and not args[0].startswith("-") else "serve"
    helptext = subprocess.run([binary, sub, "--help"], capture_output=True, text=True).stdout
    for arg in args:
        if arg.startswith("--"):
            flag = arg.split("=", 1)[0]
            if not re.search(re.escape(flag) + r"(?![\w.-])", helptext):
                findings.append(f"{flag} (ENTRYPOINT/CMD) is not a flag of {os.path.basename(binary)} {sub} --help")
    return findings


def main():
    root = os.path.dirname(HERE)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--file", default=os.path.join(root, "deploy", "Containerfile"))
    ap.add_argument("--context", default=root, help="build context (default: the repository root)")
    a = ap.parse_args()
    try:
        findings = check(a.file, a.context)
    except (ValueError, IndexError) as e:
        findings = [f"cannot parse {a.file}: {e}"]
    for f in findings:
        print(f"check-containerfile: {f}")
    if findings:
        sys.exit(1)
    print(f"check-containerfile: {os.path.relpath(a.file)}: FROM, COPY sources, ENTRYPOINT, packages and flags ok")


if __name__ == "__main__":
    main()
