#!/usr/bin/env python3
"""Runs every example of a Markdown doc against a live exporter and compares the output.

usage: check-doc-examples.py DOC.md BASE_URL

An example is a `<!-- example -->` line followed by a ```sh block (the command) and the next
fenced block (the expected output). `http://localhost:10120` in a command is replaced by BASE_URL.
In the expected output `...` matches any text; everything else must match exactly (trailing
white space ignored). Examples run in order, so later ones see what earlier ones changed.
"""
import re
import subprocess
import sys


def examples(text):
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].strip() == "<!-- example -->":
            blocks = []
            j = i + 1
            while len(blocks) < 2 and j < len(lines):
                if lines[j].startswith("```"):
                    k = j + 1
                    while not lines[k].startswith("```"):
                        k += 1
                    blocks.append("\n".join(lines[j + 1:k]))
                    j = k + 1
                else:
                    j += 1
            yield i + 1, blocks[0], blocks[1]
            i = j
        else:
            i += 1


def matches(expected, actual):
    pattern = "".join(".*" if part == "..." else re.escape(part) for part in re.split(r"(\.\.\.)", expected.strip()))
    return re.fullmatch(pattern, actual.strip(), re.DOTALL) is not None


def main():
    doc, base = sys.argv[1], sys.argv[2].rstrip("/")
    failures = count = 0
    for line, command, expected in examples(open(doc, encoding="utf-8").read()):
        count += 1
        cmd = command.replace("http://localhost:10120", base)
        out = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=30).stdout
        if matches(expected, out):
            print(f"ok   {doc}:{line}: {command.splitlines()[0][:90]}")
        else:
            failures += 1
            print(f"FAIL {doc}:{line}: {cmd}\n  expected: {expected}\n  got:      {out.strip()}")
    print(f"{count - failures} passed, {failures} failed")
    return 1 if failures or count == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
