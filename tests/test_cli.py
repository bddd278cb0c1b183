"""The CLI, as a grader or a learner calls it: exit codes, JSON shape, clear errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kvmlab


def run(*args):
    p = subprocess.run([sys.executable, "-m", "kvmlab.cli", *args], capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


def test_list_json_names_every_model_with_variants_and_commits():
    code, out, _ = run("list", "--json")
    assert code == 0
    data = {m["name"]: m for m in json.loads(out)}
    assert {"lost_update", "apf_wake"} <= set(data)
    v = {x["name"]: x for x in data["apf_wake"]["variants"]}
    assert v["recheck"]["commit"] == "0547758a6de3"
    assert {"no_duplicate_token", "no_lost_wakeup", "no_leak", "no_sleep_in_atomic"} <= set(
        data["apf_wake"]["properties"])
    assert "PREEMPT_RT" in data["apf_wake"]["configs"] and "waiters" in data["apf_wake"]["params"]


def test_check_exit_codes_and_json():
    code, out, _ = run("check", "apf_wake", "--variant", "recheck", "--json")
    assert code == 0
    d = json.loads(out)
    for k in ("model", "variant", "config", "params", "complete", "states", "transitions", "depth",
              "seconds", "violations"):
        assert k in d
    assert d["complete"] and d["violations"] == []
    code, out, _ = run("check", "apf_wake", "--variant", "unlock_alloc", "--json")
    assert code == 1
    v = {x["property"]: x for x in json.loads(out)["violations"]}
    assert set(v) >= {"no_duplicate_token", "no_lost_wakeup", "no_leak"}
    step = v["no_lost_wakeup"]["trace"][0]
    assert set(step) >= {"thread", "c", "fn"}
    assert all(isinstance(x, str) for x in v["no_lost_wakeup"]["schedule"])
    code, out, _ = run("check", "apf_wake", "--variant", "original", "--config", "PREEMPT_RT=y", "--json")
    assert code == 1
    sp = json.loads(out)["violations"][0]["splat"]
    assert sp.startswith("BUG: sleeping function called from invalid context at ")
    code, out, _ = run("check", "apf_wake", "--variant", "recheck", "--param", "waiters=2", "--param", "wakers=2",
                       "--max-states", "50")
    assert code == 3 and "INCOMPLETE" in out
    code, out, _ = run("check", "apf_wake", "--variant", "recheck", "--no-reduction")
    assert code == 0 and "all properties hold" in out


@pytest.mark.parametrize("args,msg", [
    (["check", "nope"], "unknown model"),
    (["check", "apf_wake", "--variant", "nope"], "unknown variant"),
    (["check", "apf_wake", "--config", "PREEMPT_RT"], "expected NAME=VALUE"),
    (["check", "apf_wake", "--config", "FOO=y"], "unknown config"),
    (["check", "apf_wake", "--param", "waiters=100"], "between"),
    (["replay", "apf_wake", "--schedule", "0,7"], "no thread 7"),
    (["replay", "apf_wake", "--schedule", ""], "empty"),
    (["replay", "apf_wake", "--schedule", "x"], "expected a thread id"),
    (["check"], "required"),
])
def test_bad_input_exit_2_without_traceback(args, msg):
    code, out, err = run(*args)
    assert code == 2
    assert msg in err and "Traceback" not in err


def test_replay_blocked_and_finished_threads_are_clear_errors():
    # CPU1 (waker) takes b->lock; CPU0 cannot take it
    code, out, err = run("replay", "apf_wake", "--variant", "recheck", "--schedule", "1,0")
    assert code == 2 and "cannot move: spinning on b->lock (held by CPU1)" in err
    r = kvmlab.check("lost_update", "plain")
    full = r.violation("no_lost_update").schedule
    code, out, err = run("replay", "lost_update", "--variant", "plain", "--schedule", ",".join(full + ["0"]))
    assert code == 2 and "has finished" in err


def test_replay_prints_c_lines_and_state():
    code, out, _ = run("replay", "apf_wake", "--variant", "unlock_alloc", "--schedule", "1,1,1,1")
    assert code == 0
    assert "raw_spin_lock(&b->lock);" in out and "b->lock" in out
    code, out, _ = run("replay", "apf_wake", "--variant", "unlock_alloc", "--schedule", "1,1,1,1", "--json")
    steps = json.loads(out)["steps"]
    assert [s["thread"] for s in steps] == [1, 1, 1, 1]


# -- random schedules replay deterministically; bad ones fail clearly ---------------------

MODELS = [("lost_update", "plain", {"cpus": 2, "loops": 2}), ("apf_wake", "recheck", {"waiters": 2}),
          ("apf_wake", "unlock_alloc", {"waiters": 1})]


@settings(max_examples=40, deadline=None)
@given(which=st.sampled_from(MODELS), picks=st.lists(st.integers(0, 10_000), min_size=1, max_size=40))
def test_random_schedules_replay_deterministically(which, picks):
    name, variant, params = which
    sys_ = kvmlab.load(name, variant, params=params)
    tr = kvmlab.engine.Trace(sys_)
    sched = []
    for p in picks:
        ok, _ = sys_.enabled(tr.key)
        if not ok:
            break
        tid = ok[p % len(ok)]
        moves = [m for m, _ in sys_.expand(tr.key, tid)]
        mv = moves[p // len(ok) % len(moves)]
        tr.step(mv)
        sched.append(mv)
    again = kvmlab.replay(name, variant, params=params, schedule=sched)
    assert [s["state"] for s in again.steps] == [s["state"] for s in tr.steps]
    assert [s["c"] for s in again.steps] == [s["c"] for s in tr.steps]


@settings(max_examples=40, deadline=None)
@given(which=st.sampled_from(MODELS), picks=st.lists(st.integers(-3, 12), min_size=1, max_size=30))
def test_arbitrary_schedules_either_replay_or_fail_clearly(which, picks):
    """Replay accepts exactly the legal schedules (judged here step by step) and names the first bad item."""
    name, variant, params = which
    sys_ = kvmlab.load(name, variant, params=params)
    key, first_bad, why = sys_.initial, None, None
    for n, p in enumerate(picks, 1):
        if not 0 <= p < sys_.nthreads:
            first_bad, why = n, "no thread"
        elif key[2 + p] is None:
            first_bad, why = n, "has finished"
        else:
            worlds, blocked = sys_.attempts(key, p)
            if blocked is not None:
                first_bad, why = n, f"cannot move: {blocked}"
            else:
                key = worlds[0][1].key()  # a bare thread id takes the first outcome of a choice
                continue
        break
    try:
        tr = kvmlab.replay(name, variant, params=params, schedule=[str(p) for p in picks])
    except kvmlab.KvmlabError as e:
        assert first_bad is not None, f"a legal schedule was refused: {e}"
        assert str(e).startswith(f"schedule step {first_bad}: ") and why in str(e), (str(e), why)
    else:
        assert first_bad is None, f"step {first_bad} should have been refused ({why})"
        assert len(tr.steps) == len(picks) and tr.key == key
