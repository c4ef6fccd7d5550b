"""What grew between two ``tracemalloc`` snapshots of the server (see ``bench.soak``).

    .venv/bin/python -m bench.tracediff /tmp/soak.snap.1 /tmp/soak.snap.5 --top 15

Prints the total traced size of each, then the allocation sites that grew most,
grouped by ``--by`` (``traceback``: whole stacks, the most telling; ``lineno``: the
innermost line), each with its size and count difference and, for tracebacks, the
innermost frames of the stack that are in ``jobyard`` (or the innermost at all).
"""

from __future__ import annotations

import argparse
import tracemalloc
from pathlib import Path


def describe(stat: tracemalloc.StatisticDiff, frames: int) -> str:
    head = f"{stat.size_diff / 1024:+10.1f} KiB {stat.count_diff:+8d} blocks"
    chosen = [f for f in stat.traceback if "jobyard" in f.filename] or list(stat.traceback)
    where = [f"    {f.filename}:{f.lineno}" for f in chosen[-frames:]]
    innermost = stat.traceback[-1]
    return "\n".join([f"{head}  {innermost.filename}:{innermost.lineno}", *where])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", type=Path)
    parser.add_argument("new", type=Path)
    parser.add_argument("--by", choices=["traceback", "lineno", "filename"], default="traceback")
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--frames", type=int, default=8, help="frames shown per stack")
    args = parser.parse_args()
    old = tracemalloc.Snapshot.load(str(args.old))
    new = tracemalloc.Snapshot.load(str(args.new))
    for name, snap in (("old", old), ("new", new)):
        total = sum(t.size for t in snap.traces)
        print(f"{name}: {total / 2**20:.1f} MiB traced in {len(snap.traces)} blocks")
    for stat in new.compare_to(old, args.by)[: args.top]:
        print(describe(stat, args.frames))


if __name__ == "__main__":
    main()
