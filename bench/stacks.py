"""Summarise py-spy's raw (collapsed) stacks: the share of samples by thread, and by the
innermost frame of jobyard's own code (the library under it counted with it).

    .venv/bin/python bench/stacks.py /tmp/workflow.txt
    .venv/bin/python bench/stacks.py /tmp/workflow.txt --top 40

The stacks come from ``py-spy record --format raw`` (``--threads`` puts the thread at
their root; the benches' ``--profile`` options write them so).
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path


def summarise(text: str, top: int = 25) -> str:
    threads: Counter[str] = Counter()
    ours: Counter[str] = Counter()
    total = 0
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        samples, frames = int(count), stack.split(";")
        total += samples
        if frames[0].startswith("thread ("):  # py-spy --threads: "thread (0x…): name"
            threads[re.sub(r"\d+", "N", frames[0].partition(": ")[2] or frames[0])] += samples
        own = [frame for frame in frames if "jobyard/" in frame]
        ours[_function(own[-1]) if own else "(no frame of jobyard)"] += samples
    if not total:
        return "no samples"
    lines = [f"{total} samples"]
    if threads:
        lines += ["by thread:", *_shares(threads, total, top)]
    lines += ["by the innermost frame of jobyard:", *_shares(ours, total, top)]
    return "\n".join(lines)


def _function(frame: str) -> str:
    """``name (path/file.py:line)`` → ``name (path/file.py)``: a function, not a line."""
    return re.sub(r":\d+\)$", ")", frame)


def _shares(counts: Counter[str], total: int, top: int) -> list[str]:
    return [f"  {100 * n / total:5.1f} %  {name}" for name, n in counts.most_common(top)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", type=Path)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    print(summarise(args.file.read_text(), args.top))


if __name__ == "__main__":
    main()
