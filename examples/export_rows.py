"""Print one CSV row per hour between two dates, as an export would.

Run by the ``export`` job type of ``jobyard.yaml``. It reports its progress and
metrics with jobyard's line protocol on stdout::

    ##jobyard progress <fraction 0..1> [message]
    ##jobyard metric <name> <value>

Only the Python standard library is used, so it runs wherever ``python3`` does.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time

REGIONS = ("north", "east", "south", "west")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="start", type=dt.date.fromisoformat, required=True)
    parser.add_argument("--to", dest="end", type=dt.date.fromisoformat, required=True)
    parser.add_argument("--limit", type=int, default=1000)
    parser.add_argument("--delay", type=float, default=0.01, help="seconds per row")
    args = parser.parse_args(argv)
    if args.end < args.start:
        print(f"--to {args.end} is before --from {args.start}", file=sys.stderr)
        return 2
    hours = ((args.end - args.start).days + 1) * 24
    total = min(hours, args.limit)
    begin = dt.datetime.combine(args.start, dt.time())
    print("hour,region,value", flush=True)
    for index in range(total):
        hour = begin + dt.timedelta(hours=index)
        print(f"{hour:%Y-%m-%dT%H:00},{REGIONS[index % 4]},{(index * 37) % 1000}", flush=True)
        if (index + 1) % max(total // 10, 1) == 0:
            print(f"##jobyard progress {(index + 1) / total:.2f} {index + 1} rows", flush=True)
        time.sleep(args.delay)
    print(f"##jobyard metric rows {total}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
