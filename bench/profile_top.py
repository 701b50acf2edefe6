"""Top entries of a py-spy raw profile (`py-spy record -f raw`, e.g. `bench/run.py --profile FILE`).

Prints the share of samples by package of the innermost frame, by innermost function (self time)
and by function anywhere on the stack (inclusive time).

    .venv/bin/python bench/profile_top.py FILE [--top 25]
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

_LINE = re.compile(r":\d+\)")


def package(frame: str) -> str:
    """`httpx`, `asyncio`, `examsync/adapters`: the package (or module) the frame's code is in."""
    found = re.search(r"\((.*?):\d+\)", frame)
    parts = (found.group(1) if found else frame).split("/")
    name = "/".join(parts[:2]) if parts[0] == "examsync" and len(parts) > 2 else parts[0]
    return name.removesuffix(".py")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", type=Path)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    total = 0
    for line in args.file.read_text(encoding="utf-8").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        total += n
        frames = [_LINE.sub(")", f) for f in stack.split(";")]
        own[frames[-1]] += n
        packages[package(stack.split(";")[-1])] += n
        for frame in set(frames):
            inclusive[frame] += n
    print(f"{total} samples")
    for title, counter in (("self, by package", packages), ("self, by function", own), ("inclusive", inclusive)):
        print(f"--- {title}")
        for name, n in counter.most_common(args.top):
            print(f"{n * 100 / total:5.1f}% {name}")


if __name__ == "__main__":
    main()
