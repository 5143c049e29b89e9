"""rce.report.chart_helper: charts drawn in the helper process are the charts drawn here."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

import pytest
from report_fixtures import complete_results, hostile_results

from rce.report import chart_helper, charts, render_html
from rce.report.narrative import build_view

pytestmark = pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="the helper needs two cores")


@pytest.fixture(autouse=True)
def _idle_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    # Whatever else runs on the test machine, these tests are about the helper itself.
    monkeypatch.setattr(chart_helper, "_spare_core", lambda before, now: True)


def test_report_identical_with_and_without_the_helper() -> None:
    local = {name: render_html(res()) for name, res in
             (("complete", complete_results), ("hostile", hostile_results))}
    with chart_helper.charts_on_two_cores():
        chart_helper.start_helper()
        assert chart_helper.helper_running()
        shared = {name: render_html(res()) for name, res in
                  (("complete", complete_results), ("hostile", hostile_results))}
        helper = chart_helper._helper
    assert shared == local
    assert not chart_helper.helper_running()
    assert helper is not None and helper.proc.returncode is not None  # ended and waited for


def test_the_helper_really_draws(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []
    original = chart_helper._Helper.draw

    def spy(self, name, payload):  # type: ignore[no-untyped-def]
        asked.append(name)
        return original(self, name, payload)

    monkeypatch.setattr(chart_helper._Helper, "draw", spy)
    results = complete_results()
    local = build_view(results)
    bars = ({"worse": 0.1, "no_change": 0.5, "better": 0.4},)
    with chart_helper.charts_on_two_cores():
        chart_helper.start_helper()
        helper = chart_helper._helper
        assert helper is not None
        # The helper draws (once its imports are done; it answers at low priority) ...
        payload = chart_helper._payload(charts.probability_bars, bars, {"title": "t"})
        assert payload is not None
        assert helper.draw("probability_bars", payload) == charts.probability_bars(
            *bars, title="t")
        # ... and is given charts of a report's batch while this process draws others.
        asked.clear()
        jobs = [(charts.probability_bars, bars, {"title": f"t{i}"}) for i in range(40)]
        svgs = chart_helper.render_jobs(jobs)
        view = build_view(results)
    assert asked, "no chart of the batch was sent to the helper"
    assert svgs == [charts.probability_bars(*a, **k) for _f, a, k in jobs]
    assert view == local


@contextlib.contextmanager
def _killed_helper() -> Iterator[chart_helper._Helper]:
    """Inside a charts_on_two_cores() block whose helper process was killed after it started."""
    with chart_helper.charts_on_two_cores():
        chart_helper.start_helper()
        helper = chart_helper._helper
        assert helper is not None
        helper.proc.kill()
        helper.proc.wait()
        yield helper


def test_a_dead_helper_leaves_every_chart_to_this_process() -> None:
    results = complete_results()
    local = build_view(results)
    with _killed_helper() as helper:
        assert build_view(results) == local
        assert not helper.alive


def test_no_helper_outside_the_block() -> None:
    chart_helper.start_helper()
    assert not chart_helper.helper_running()
    with chart_helper.charts_on_two_cores():
        assert not chart_helper.helper_running()  # started on request only
        chart_helper.start_helper()
        assert chart_helper.helper_running()
    assert not chart_helper.helper_running()


def test_start_soon_decides_on_the_machine_use_since_the_block_began(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    seen: list[float] = []

    def spare(before, now):  # type: ignore[no-untyped-def]
        seen.append(now[0] - before[0] if before and now else -1.0)
        return decision

    monkeypatch.setattr(chart_helper, "_spare_core", spare)

    def started_within(seconds: float) -> bool:
        end = time.monotonic() + seconds
        while time.monotonic() < end and not chart_helper.helper_running():
            time.sleep(0.02)
        return chart_helper.helper_running()

    for decision in (False, True):
        seen.clear()
        with chart_helper.charts_on_two_cores():
            chart_helper.start_helper_soon()
            assert not chart_helper.helper_running()  # not at once: it waits for evidence
            assert started_within(2.0) is decision
        assert not chart_helper.helper_running()
        if seen[0] >= 0:  # with /proc/stat: decided on at least EVIDENCE_SECONDS of it
            assert seen[0] >= chart_helper.EVIDENCE_SECONDS - 0.01
    # A block that ends before the delay starts nothing.
    decision = True
    with chart_helper.charts_on_two_cores():
        chart_helper.start_helper_soon()
    time.sleep(chart_helper.EVIDENCE_SECONDS + 0.3)
    assert not chart_helper.helper_running() and chart_helper._helper is None


def test_arguments_that_do_not_survive_json_stay_here() -> None:
    assert chart_helper._payload(charts.bar_chart, (["a"], [1.0]), {"title": "t"}) is not None
    assert chart_helper._payload(charts.bar_chart, ({"a"}, [1.0]), {"title": "t"}) is None
    assert chart_helper._payload(charts.bar_chart, (["a"], [1.0]), {"title": object()}) is None
    assert chart_helper._payload(len, ([1],), {}) is None  # not a chart function


def test_prefetched_charts_are_used_and_other_jobs_are_not_confused() -> None:
    from rce.report.narrative import prefetch_charts

    results = complete_results()
    local = render_html(results)
    other = hostile_results()
    local_other = render_html(other)
    with chart_helper.charts_on_two_cores():
        chart_helper.start_helper()
        prefetch_charts(results)
        assert chart_helper._prefetched is not None
        assert render_html(results) == local  # takes the prefetched queue over
        assert chart_helper._prefetched is None
        prefetch_charts(results)
        assert render_html(other) == local_other  # different charts: drawn anew
    assert chart_helper._prefetched is None


def test_no_helper_when_other_programs_hold_the_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.undo()
    spare = chart_helper._spare_core
    # (wall s, machine busy s over all cores, this process's CPU s)
    assert spare((0.0, 100.0, 1.0), (2.0, 102.2, 3.0))  # others used 0.2 core-s in 2 s
    assert not spare((0.0, 100.0, 1.0), (2.0, 104.0, 3.0))  # others kept a core busy
    assert spare((0.0, 100.0, 1.0), (2.0, 103.5, 4.0))  # busy, but it was this process
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    assert not spare((0.0, 100.0, 1.0), (2.0, 100.0, 3.0))


# --- calls: a slow pure function run in the helper while this process does other work ------


def _gap_frame():
    from test_gaps import make_frame

    return make_frame(n=800, seed=3)


def test_a_call_in_the_helper_gives_the_value_computed_here(monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    from rce.config import Plan
    from rce.stats.gaps import compute_gaps

    answered: list[bool] = []
    original = chart_helper._Helper.call

    def spy(self, name, payload):  # type: ignore[no-untyped-def]
        done, value = original(self, name, payload)
        answered.append(done)
        return done, value

    monkeypatch.setattr(chart_helper._Helper, "call", spy)
    frame = _gap_frame()
    local = compute_gaps(frame, plan=Plan(), outcome="percentile")
    with chart_helper.charts_on_two_cores():
        chart_helper.start_helper()
        pending = chart_helper.call_in_helper(compute_gaps, frame, plan=Plan(),
                                              outcome="percentile")
        assert pending._thread is not None
        pending._thread.join()  # .result() itself never waits for the helper
        shared = pending.result()
        # the pipe is still in step: charts after a call come back from the helper too
        assert chart_helper.render_jobs(
            [(charts.probability_bars, ({"worse": 0.1, "no_change": 0.5, "better": 0.4},),
              {"title": "t"})] * 2) == [charts.probability_bars(
                  {"worse": 0.1, "no_change": 0.5, "better": 0.4}, title="t")] * 2
    assert answered == [True], "the helper did not compute the value"
    assert shared.to_dict() == local.to_dict()  # to the last digit
    pd_testing = pytest.importorskip("pandas.testing")
    pd_testing.assert_frame_equal(shared.rows, local.rows, check_exact=True)


def test_a_call_that_fails_in_the_helper_raises_its_error_here() -> None:
    from rce.config import Plan
    from rce.errors import DataError
    from rce.stats.gaps import compute_gaps

    frame = _gap_frame().drop(columns=["outcome_percentile"])
    with chart_helper.charts_on_two_cores():
        chart_helper.start_helper()
        pending = chart_helper.call_in_helper(compute_gaps, frame, plan=Plan())
        assert pending._thread is not None
        pending._thread.join()
        assert pending._answer == (False, None)
        with pytest.raises(DataError) as err:
            pending.result()
        assert chart_helper.helper_running()  # an error answer keeps the helper in use
    with pytest.raises(DataError) as direct:
        compute_gaps(frame, plan=Plan())
    assert str(err.value) == str(direct.value)


def test_a_dead_helper_leaves_the_call_to_this_process() -> None:
    from rce.config import Plan
    from rce.stats.gaps import compute_gaps

    frame = _gap_frame()
    with _killed_helper():
        value = chart_helper.call_in_helper(compute_gaps, frame, plan=Plan()).result()
    assert value.to_dict() == compute_gaps(frame, plan=Plan()).to_dict()


def test_a_call_the_helper_has_not_answered_yet_runs_here(monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    import threading

    from rce.config import Plan
    from rce.stats.gaps import compute_gaps

    release = threading.Event()
    original = chart_helper._Helper.call

    def slow(self, name, payload):  # type: ignore[no-untyped-def]
        release.wait(30)  # a helper starved by other programs
        return original(self, name, payload)

    monkeypatch.setattr(chart_helper._Helper, "call", slow)
    frame = _gap_frame()
    with chart_helper.charts_on_two_cores():
        chart_helper.start_helper()
        pending = chart_helper.call_in_helper(compute_gaps, frame, plan=Plan())
        value = pending.result()  # does not wait for the helper
        assert pending._thread is not None and pending._thread.is_alive()
        release.set()
        pending._thread.join()
    assert value.to_dict() == compute_gaps(frame, plan=Plan()).to_dict()


def test_the_helper_runs_at_low_priority() -> None:
    if not hasattr(os, "getpriority"):
        pytest.skip("no process priorities here")
    with chart_helper.charts_on_two_cores():
        chart_helper.start_helper()
        helper = chart_helper._helper
        assert helper is not None
        # after a round trip: the helper sets its priority before it answers anything
        svg = helper.draw("probability_bars", chart_helper._payload(
            charts.probability_bars, ({"worse": 0.1, "no_change": 0.5, "better": 0.4},),
            {"title": "t"}) or b"")
        assert svg is not None
        assert os.getpriority(os.PRIO_PROCESS, helper.proc.pid) == (
            os.getpriority(os.PRIO_PROCESS, 0) + chart_helper.HELPER_NICE)


def test_only_listed_functions_are_sent_and_none_without_a_helper(monkeypatch: pytest.MonkeyPatch
                                                                  ) -> None:
    sent: list[str] = []
    monkeypatch.setattr(chart_helper._Helper, "call",
                        lambda self, name, payload: (sent.append(name), (False, None))[1])
    from rce.config import Plan
    from rce.stats.gaps import compute_gaps

    frame = _gap_frame()
    monkeypatch.setattr(chart_helper, "MAX_CALL_BYTES", sys.getsizeof(frame) - 1)
    with chart_helper.charts_on_two_cores():
        chart_helper.start_helper()
        assert chart_helper.call_in_helper(sorted, [3, 1, 2]).result() == [1, 2, 3]
        # arguments too large to hold three times over stay here
        assert chart_helper.call_in_helper(compute_gaps, frame, plan=Plan()).result().n == 800
    assert chart_helper.call_in_helper(sorted, [2, 1]).result() == [1, 2]  # no helper here
    assert sent == []
