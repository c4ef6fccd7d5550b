"""bench/stacks.py: py-spy's raw stacks summed up by thread and by jobyard's frame."""

from __future__ import annotations

from bench.stacks import summarise

RAW = """\
thread (0x7f01): worker-host-12;run (threading.py:975);_loop (jobyard/worker/loop.py:355);\
claim (jobyard/store/queue.py:40);execute (sqlalchemy/engine/base.py:1494) 6
thread (0x7f01): worker-host-12;run (threading.py:975);_loop (jobyard/worker/loop.py:356);\
claim (jobyard/store/queue.py:41) 2
thread (0x7f02): job-17;_drive (jobyard/worker/attempt.py:280) 1
thread (0x7f03): MainThread;run (asyncio/runners.py:118) 1
not a stack line
"""


def test_samples_are_shared_out_by_thread_and_by_the_innermost_jobyard_function() -> None:
    lines = summarise(RAW).splitlines()
    assert lines[0] == "10 samples"
    assert lines[1:5] == [
        "by thread:",
        "   80.0 %  worker-host-N",
        "   10.0 %  job-N",
        "   10.0 %  MainThread",
    ]
    assert lines[5:] == [
        "by the innermost frame of jobyard:",
        "   80.0 %  claim (jobyard/store/queue.py)",
        "   10.0 %  _drive (jobyard/worker/attempt.py)",
        "   10.0 %  (no frame of jobyard)",
    ]


def test_no_samples_says_so() -> None:
    assert summarise("") == "no samples"
