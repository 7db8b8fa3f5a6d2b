"""Progress is throttled, ends at 100%, and reaches a real receiver as /progress/report."""

import time

from agentlib.progress import ProgressBoard
from agentlib.receiver import CallbackReceiver
from agentlib.reports import Reporter


def test_reports_are_throttled_and_the_last_one_is_complete():
    with CallbackReceiver() as receiver:
        reporter = Reporter()
        reporter.url = receiver.url
        try:
            board = ProgressBoard(reporter)
            progress = board.start("img-1", 1000, task_uuid="t-1", every=0.2)
            for _ in range(10):  # 10 adds within well under 0.2 s: no report yet
                progress.add(50)
            assert board.get("img-1")["progress"] == 50
            time.sleep(0.25)
            progress.add(100)  # past the interval: one report at 60%
            progress.done()
            reports = receiver.wait(count=2, commandpath="/progress/report")
        finally:
            reporter.close()
    bodies = [r.body for r in reports]
    assert [b["progress"] for b in bodies] == [60, 100]
    assert bodies[-1] == {"taskUuid": "t-1", "resourceUuid": "img-1", "progress": 100,
                          "bytesDone": 600, "bytesTotal": 1000, "stage": "download"}


def test_unknown_total_has_no_percent_until_done():
    board = ProgressBoard()
    progress = board.start("img-2", None, every=60)
    progress.add(123)
    assert board.get("img-2")["progress"] is None
    progress.done()
    assert (board.get("img-2")["progress"], board.get("img-2")["bytesTotal"]) == (100, 123)
    assert board.get("unknown") is None


def test_percent_stays_below_100_until_done():
    board = ProgressBoard()
    progress = board.start("img-3", 10, every=60)
    progress.add(10)
    assert board.get("img-3")["progress"] == 99
    progress.set_stage("verify")
    assert board.get("img-3")["stage"] == "verify"


def test_board_forgets_oldest_finished_entries_beyond_keep():
    board = ProgressBoard(keep=2)
    for i in range(4):
        board.start(f"r{i}", 1, every=60).done()
    running = board.start("running", 1, every=60)
    assert board.get("r0") is None and board.get("r1") is None and board.get("r2") is None
    assert board.get("r3")["progress"] == 100
    assert board.get("running")["progress"] == 0
    running.done()
