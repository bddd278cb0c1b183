// The stepper's pure core (graph, history, game) under node's built-in test runner.
// Run by tests/test_stepper_js.py, which exports the graphs into KVMLAB_JS_FIXTURES.
"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const Core = require(path.join(__dirname, "../../src/kvmlab/widgets/static/core.js"));

const DIR = process.env.KVMLAB_JS_FIXTURES;
function load(name) { return new Core.Graph(JSON.parse(fs.readFileSync(path.join(DIR, name + ".json"), "utf8"))); }
function play(g, schedule) {
  const h = new Core.History(g);
  const r = h.load(schedule);
  assert.equal(r.cut, null, "schedule " + schedule + " must be legal");
  return h;
}

test("the data format is the one the player reads", () => {
  const g = load("lu");
  assert.equal(g.d.v, Core.FORMAT);
});

test("distances: the shortest solution's length from the start, one less after each of its steps", () => {
  for (const name of ["lu", "apf"]) {
    const g = load(name), dist = g.distances(), cex = g.d.counterexamples[g.goal()].schedule;
    assert.equal(dist[0], cex.length, name);
    assert.equal(g.d.par.steps, cex.length);
    const h = new Core.History(g);
    for (let k = 0; k < cex.length; k++) {
      const e = g.edges(h.current()).find((x) => x.move === cex[k]);
      assert.ok(e, name + ": move " + cex[k]);
      h.take(e);
      if (k < cex.length - 1) assert.equal(dist[h.current()], cex.length - k - 1, name + " step " + (k + 1));
    }
    const a = Core.assess(g, h);
    assert.equal(a.outcome, "win", name);
    assert.equal(a.mine.steps, cex.length);
    assert.ok(a.mine.switches >= g.d.par.switches, "par switches are the fewest");
  }
});

test("the win is for the goal only: a side violation is not a win", () => {
  const g = load("apf");
  // no_duplicate_token breaks before the goal on the shortest no_lost_wakeup run? find a run that
  // breaks some other property without the goal
  const other = Object.keys(g.d.counterexamples).find((p) => p !== g.goal());
  const h = play(g, g.d.counterexamples[other].schedule);
  const a = Core.assess(g, h);
  assert.ok(a.side.some((v) => v.prop === other));
  if (!a.violations.some((v) => v.prop === g.goal())) assert.notEqual(a.outcome, "win");
});

test("a finished run that missed the goal is lost, and says where it was still reachable", () => {
  const g = load("lu");
  const h = play(g, ["0", "0", "1", "1"]);  // CPU0 then CPU1: no lost update
  const a = Core.assess(g, h);
  assert.equal(a.terminal, true);
  assert.equal(a.outcome, "lost");
  assert.ok(a.back >= 0 && a.back < 4);
  assert.ok(g.distances()[h.path[a.back]] >= 0);
});

test("dead: not finished, but no schedule from here reaches the goal", () => {
  const g = load("apf"), dist = g.distances();
  let found = -1;
  for (let i = 0; i < g.N; i++) if (dist[i] < 0 && !g.isTerminal(i)) { found = i; break; }
  assert.ok(found >= 0, "apf_wake has states past the point of no return");
  // walk there with a BFS over the graph
  const prev = new Map([[0, null]]), q = [0];
  while (q.length) {
    const v = q.shift();
    if (v === found) break;
    for (const e of g.edges(v)) if (!prev.has(e.target)) { prev.set(e.target, [v, e.move]); q.push(e.target); }
  }
  const sched = [];
  for (let v = found; prev.get(v); v = prev.get(v)[0]) sched.unshift(prev.get(v)[1]);
  const a = Core.assess(g, play(g, sched));
  assert.equal(a.outcome, "dead");
});

test("a fixed variant: the explorer found nothing, the game says so", () => {
  const g = load("fixed");
  assert.equal(g.goalReachable(), false);
  const a = Core.assess(g, new Core.History(g));
  assert.equal(a.outcome, "safe");
  assert.equal(g.distances()[0], -1);
});

test("load is linear, caps long traces and says where an illegal item cut it", () => {
  const g = load("loop");
  const cyc = g.d.counterexamples.terminates;
  const loop = cyc.schedule.slice(cyc.loop_start);
  const long = cyc.schedule.slice(0, cyc.loop_start);
  while (long.length < 5000) long.push(...loop);
  const h = new Core.History(g);
  const t0 = process.hrtime.bigint();
  const r = h.load(long);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  assert.equal(r.applied, Core.TRACE_CAP);
  assert.equal(r.cut.reason, "cap");
  assert.equal(r.cut.at, Core.TRACE_CAP + 1);
  assert.equal(r.total, long.length);
  console.log(`  load of ${long.length} items: ${ms.toFixed(1)} ms`);
  const r2 = new Core.History(g).load(["0", "0", "7", "0"]);
  assert.deepEqual([r2.applied, r2.cut.at, r2.cut.item, r2.cut.reason], [2, 3, "7", "illegal"]);
});

test("undo brings back the run a reset or show me replaced", () => {
  const g = load("apf");
  const h = play(g, ["1", "1", "1", "1", "0"]);
  h.jump(3);
  const trace = h.trace();
  h.reset("reset");
  assert.equal(h.trace(), "");
  assert.equal(h.undo(), "reset");
  assert.equal(h.trace(), trace);
  assert.equal(h.path.length, 6, "the steps after the current one come back too");
  assert.equal(h.undo(), null);
});

test("a loop played by hand is named, and counts as a win for a terminates goal", () => {
  const g = load("loop");
  const cex = g.d.counterexamples.terminates;
  const h = play(g, cex.schedule);
  const lp = Core.loopAt(g, h);
  assert.ok(lp, "the lasso returns to a state already on the path");
  assert.equal(lp.from, cex.loop_start);
  assert.equal(lp.fair, true);
  const a = Core.assess(g, h);
  assert.equal(a.outcome, "win");
  assert.equal(a.win.loop.from, cex.loop_start);
  // the loop states are where the distance is 0
  assert.equal(g.distances()[h.path[cex.loop_start]], 0);
});

test("an unfair loop is named but is not a hang under weak fairness", () => {
  // a hand-built graph: two threads, state 0 -(t0)-> 1 -(t0)-> 0 while t1 is enabled all along
  const S = ["", "0", "1", "done"];
  const d = {
    v: Core.FORMAT, strings: S, fairness: "weak", goal_property: "terminates", goal_kind: "lasso", loops: [],
    threads: [{label: "CPU0", code: []}, {label: "CPU1", code: []}], shapes: [[]], splats: [], bad: {}, fatal: [],
    counterexamples: {terminates: {schedule: ["0", "0"], loop_start: 0, kind: "lasso"}},
    states: [
      [[0, 0, -1, 0, 0, -1], [0], [0, 1, -1, 1, -1, 1, 2, -1, 2, -1]],
      [[1, 0, -1, 0, 0, -1], [0], [0, 1, -1, 0, -1, 1, 2, -1, 2, -1]],
      [[-1, 3, -1, -1, 3, -1], [0], []],
    ],
  };
  const g = new Core.Graph(d);
  const h = play(g, ["0", "0"]);
  const lp = Core.loopAt(g, h);
  assert.deepEqual([lp.from, lp.to, lp.fair, lp.starved], [0, 2, false, ["CPU1"]]);
  assert.notEqual(Core.assess(g, h).outcome, "win");
  d.fairness = "none";
  assert.equal(Core.loopAt(new Core.Graph(d), h).fair, true);
});

test("run until: stops after the step that changes the shared state", () => {
  const g = load("lu");
  const h = new Core.History(g);
  const r = Core.runUntil(g, h, 0);
  assert.equal(r.why, "shared");
  assert.equal(r.steps, 2, "load (private tmp), then store (shared counter)");
  assert.notEqual(g.sharedKey(h.path[h.pos - 1]), g.sharedKey(h.current()));
  for (let k = 0; k < h.pos - 1; k++) assert.equal(g.sharedKey(h.path[k]), g.sharedKey(h.path[k + 1]));
  const r2 = Core.runUntil(g, h, 0);
  assert.deepEqual(r2, {steps: 0, why: "blocked"}, "CPU0 is done");
});

test("run until: stops at a choice without choosing", () => {
  const g = load("apf");
  const h = new Core.History(g);
  let guard = 0;
  let r;
  do { r = Core.runUntil(g, h, 1); guard++; } while (r.steps > 0 && r.why !== "choice" && guard < 20);
  const es = g.edgesOf(h.current(), 1);
  if (r.why === "choice") assert.ok(es.length > 1);
});

test("a goal of several properties: breaking any one wins, the others are side notes", () => {
  const g = load("apf");
  const d = Object.assign({}, g.d, {goal_property: "no_duplicate_token",
    goal_properties: ["no_duplicate_token", "no_lost_wakeup"]});
  const g2 = new Core.Graph(d);
  const dup = g.d.counterexamples.no_duplicate_token.schedule;
  const lost = g.d.counterexamples.no_lost_wakeup.schedule;
  assert.equal(g2.distances()[0], Math.min(dup.length, lost.length));
  assert.equal(g2.showProperty(), dup.length <= lost.length ? "no_duplicate_token" : "no_lost_wakeup");
  const a = Core.assess(g2, play(g2, lost));
  assert.equal(a.outcome, "win");
  assert.ok(["no_duplicate_token", "no_lost_wakeup"].includes(a.win.prop));
  assert.ok(a.side.every((v) => v.prop !== "no_duplicate_token" && v.prop !== "no_lost_wakeup"));
});
