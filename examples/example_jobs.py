"""Python jobs used by ``jobyard.yaml`` (``python: example_jobs:count``).

jobyard imports this module from the configuration file's directory, in a
worker's child process. A function gets the job's params as keyword arguments,
and the job context first when its first parameter is named ``ctx``. A class
gets the context and the params in ``start``; its other hooks let jobyard
pause, resume, stop and clean up the job, and show its details.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jobyard.context import Context


def count(ctx: Context, n: int = 10, delay: float = 0.5) -> dict[str, int]:
    """Count to ``n``, one step every ``delay`` seconds, reporting progress."""
    done = 0
    for step in range(1, n + 1):
        if ctx.stopping:  # a cooperative stop: end cleanly between two steps
            ctx.log("stop asked after %d of %d steps", done, n)
            break
        time.sleep(delay)
        done = step
        ctx.progress(step / n, f"counted {step}/{n}")
        ctx.metric("count", step)
    return {"counted": done}


class Resize:
    """Resize ``images`` made-up images to ``width`` pixels, one every ``delay`` seconds.

    jobyard creates the object without arguments and runs ``start(ctx, **params)``.
    The other hooks are called from a control thread while ``start`` runs:
    ``pause``/``resume`` around a pause, ``stop`` to ask for a cooperative stop,
    ``details`` now and then (shown with the job). ``clean(ctx, **params)`` runs
    in a fresh process after the job was stopped or killed, to roll back; so it
    finds its work from the job id, not from this object.
    """

    def __init__(self) -> None:
        self.done = 0
        self.total = 0
        self.width = 0
        self.stopped = False

    def start(
        self, ctx: Context, images: int = 20, width: int = 800, delay: float = 0.3
    ) -> dict[str, int]:
        self.total, self.width = images, width
        workdir = scratch_dir(ctx)
        workdir.mkdir(parents=True, exist_ok=True)
        for index in range(images):
            if self.stopped or ctx.stopping:
                ctx.log("stopped after %d images", self.done)
                break
            time.sleep(delay)
            output = workdir / f"image-{index:04d}-{width}w.txt"
            output.write_text(f"image {index} resized to {width} px\n")
            self.done += 1
            ctx.progress(self.done / images, f"resized {output.name}")
        ctx.log("%d images in %s", self.done, workdir)
        return {"images": self.done}  # numbers in a returned dict become metrics

    def pause(self, ctx: Context) -> None:
        ctx.log("pausing after %d images", self.done)

    def resume(self, ctx: Context) -> None:
        ctx.log("resuming at image %d", self.done + 1)

    def stop(self, ctx: Context) -> None:
        self.stopped = True

    def details(self) -> dict[str, Any]:
        return {"resized": self.done, "of": self.total, "width": self.width}

    def clean(self, ctx: Context, **params: Any) -> None:
        shutil.rmtree(scratch_dir(ctx), ignore_errors=True)
        ctx.log("removed the partial output")


def scratch_dir(ctx: Context) -> Path:
    return Path(tempfile.gettempdir()) / f"jobyard-resize-{ctx.job_id}"
