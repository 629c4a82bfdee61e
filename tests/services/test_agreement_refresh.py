"""The agreement refresh after a gate is coalesced per scope: gates committed while one runs get one more pass."""

import threading

from services import review


def test_gates_during_a_refresh_are_covered_by_one_more_pass(monkeypatch):
    started, release, passes = threading.Event(), threading.Event(), []

    def slow_refresh(sessions, rubric_version_id, batch):
        passes.append((rubric_version_id, batch))
        if len(passes) == 1:
            started.set()
            assert release.wait(10)
        return f"report-{len(passes)}"

    monkeypatch.setattr(review, "refresh_agreement", slow_refresh)
    sessions = object()
    out = {}
    first = threading.Thread(target=lambda: out.setdefault("first", review.refresh_agreement_coalesced(sessions, 1, "b")))
    first.start()
    assert started.wait(10)
    # Two more gates of the same scope while the first pass runs: neither recomputes, both are covered.
    assert review.refresh_agreement_coalesced(sessions, 1, "b") is None
    assert review.refresh_agreement_coalesced(sessions, 1, "b") is None
    # Another scope is not held up by this one.
    assert review.refresh_agreement_coalesced(sessions, 2, "b") == "report-2"
    release.set()
    first.join(10)
    assert passes == [(1, "b"), (2, "b"), (1, "b")]  # one extra pass of scope 1 for both gates
    assert out["first"] == "report-3"
    assert review.refresh_agreement_coalesced(sessions, 1, "b") == "report-4"  # idle again: runs at once


def test_a_request_makes_at_most_two_passes_then_a_thread_carries_on(monkeypatch):
    passes, gate = [], threading.Event()

    def refresh(sessions, rubric_version_id, batch):
        passes.append(threading.current_thread().name)
        if len(passes) <= 3:  # a gate arrives during each of the first three passes
            state = review._REFRESH[(id(sessions), rubric_version_id, batch)]
            with review._REFRESH_LOCK:
                state["dirty"] = True
        else:
            gate.set()
        return len(passes)

    monkeypatch.setattr(review, "refresh_agreement", refresh)
    sessions = object()
    assert review.refresh_agreement_coalesced(sessions, 7, None) == 2  # returned after its two passes
    assert gate.wait(10)
    for _ in range(100):
        if not review._REFRESH[(id(sessions), 7, None)]["running"]:
            break
        threading.Event().wait(0.01)
    assert passes[:2] == [threading.current_thread().name] * 2
    assert passes[2:] == ["ff-agreement-refresh"] * 2 and not review._REFRESH[(id(sessions), 7, None)]["running"]
