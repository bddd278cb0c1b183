"""Drills: every stated verdict is the explorer's; the operators change code and C lines together."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

import pytest

from kvmlab import drills
from kvmlab.engine import KvmlabError


@pytest.mark.parametrize("d", drills.DRILLS, ids=[d.id for d in drills.DRILLS])
def test_stated_verdict_is_the_explorers(d):
    v = drills.verdict(d)
    assert v.complete, f"{d.id}: search stopped at a bound"
    if d.expect:
        assert set(d.expect) <= set(v.broken), (d.expect, v.broken)
        assert v.schedule, "a broken drill has a shortest counterexample"
    else:
        assert v.holds, v.broken


def test_every_chapter_has_eight_drills_and_several_operators():
    per = Counter(d.chapter for d in drills.DRILLS)
    assert sorted(per) == list(range(7))
    assert min(per.values()) >= 8
    for c in per:
        ops = {d.operator for d in drills.DRILLS if d.chapter == c}
        assert len(ops) >= 3, (c, ops)
    assert len({d.id for d in drills.DRILLS}) == len(drills.DRILLS)
    # both answers occur: a quiz where everything breaks teaches nothing
    assert any(not d.expect for d in drills.DRILLS) and any(d.expect for d in drills.DRILLS)


def test_mutant_changes_the_c_lines_it_claims():
    d = drills.get("ch0-drop-lock")
    diff = d.diff()
    assert "-    spin_lock(&lock);" in diff
    assert any(x.startswith("+") and "dropped" in x for x in diff)
    real, mut = d.listings()
    assert len(real) == len(mut)
    prog = d.variant().programs["worker"]
    assert "dropped" in prog._specs["lock"].c[0]


def test_swap_lines_reorders_and_remaps_the_loop_target():
    d = drills.get("ch0-load-before-lock")
    prog = d.variant().programs["worker"]
    assert prog._order[:2] == ("load", "lock")


def test_raw_to_sleeping_renames_calls_and_text():
    d = drills.get("ch1-raw-kvm-lock")
    prog = d.variant().programs["shrinker"]
    assert prog._specs["lock"].c[0].startswith("raw_spin_lock(")


def test_unknown_step_is_a_clear_error():
    bad = drills._d(0, "x", *drills.LU, [drills.E("drop_line", ("nope",))], [])
    with pytest.raises(KvmlabError, match="no step 'nope'"):
        bad.variant()


def test_wrong_expectation_is_caught_by_drill_html():
    d = drills.get("ch0-drop-lock")
    wrong = drills.Drill("ch0-wrong", 0, d.model, d.base, d.role, d.edits, ())
    with pytest.raises(KvmlabError, match="explorer found"):
        drills.drill_html(wrong)


def test_quiz_is_reproducible_and_has_a_key():
    a = drills.quiz("ch2", 5, 4)
    b = drills.quiz("2", 5, 4)
    assert [q["drill"] for q in a["questions"]] == [q["drill"] for q in b["questions"]]
    sets = {tuple(q["drill"] for q in drills.quiz("ch2", s, 4)["questions"]) for s in range(5)}
    assert len(sets) > 1, "the seed must change the set"
    md = drills.quiz_markdown(a)
    assert "## Answer key" in md and md.count("## Question") == 4
    for q in a["questions"]:
        assert q["answer"]["holds"] == (not drills.get(q["drill"]).expect)


def test_quiz_cli_json_and_bad_input():
    cmd = [sys.executable, "-m", "kvmlab.cli_teach", "quiz", "ch3", "--seed", "2", "--count", "3", "--json"]
    r = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert len(data["questions"]) == 3
    r = subprocess.run([sys.executable, "-m", "kvmlab.cli_teach", "quiz", "ch9", "--seed", "1"],
                       capture_output=True, text=True, check=False)
    assert r.returncode == 2 and "no drills" in r.stderr and "Traceback" not in r.stderr
