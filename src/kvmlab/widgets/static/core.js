/* kvmlab stepper, part 1 of 4: the pure core (no DOM). Graph decoding, the history with
 * undo, and the game: where the goal is, how far, loops played by hand, par.
 * Graph format: see kvmlab/export.py. Tested with node --test (tests/js/). */
(function (G) {
  "use strict";
  var FORMAT = 2;          // the data format this player reads (export.FORMAT_VERSION)
  var TRACE_CAP = 2000;    // longest trace a URL may load

  /* ---------------------------------------------------------------- graph */
  function Graph(d) {
    this.d = d;
    this.S = d.strings;
    this.n = d.threads.length;
    this.N = d.states.length;
    this.fatalSet = {};
    for (var i = 0; i < d.fatal.length; i++) this.fatalSet[d.fatal[i]] = true;
    this._dist = null;
    this._enabled = null;
  }
  Graph.prototype.s = function (i) { return i < 0 ? null : this.S[i]; };
  Graph.prototype.threads = function (i) {
    var t = this.d.states[i][0], out = [];
    for (var k = 0; k < this.n; k++) {
      out.push({pc: t[3 * k], status: this.s(t[3 * k + 1]) || "", ctx: this.s(t[3 * k + 2]) || ""});
    }
    return out;
  };
  Graph.prototype.edges = function (i) {
    var m = this.d.states[i][2], out = [];
    for (var k = 0; k < m.length; k += 5) {
      out.push({tid: m[k], move: this.S[m[k + 1]], choice: this.s(m[k + 2]), target: m[k + 3], splat: m[k + 4]});
    }
    return out;
  };
  Graph.prototype.edgesOf = function (i, tid) {
    return this.edges(i).filter(function (e) { return e.tid === tid; });
  };
  Graph.prototype.shared = function (i) {
    var sh = this.d.states[i][1], names = this.d.shapes[sh[0]], out = [];
    for (var k = 0; k < names.length; k++) out.push([names[k], this.S[sh[k + 1]]]);
    return out;
  };
  // the shared part of a state, comparable with ===
  Graph.prototype.sharedKey = function (i) { return this.d.states[i][1].join(","); };
  Graph.prototype.bad = function (i) {
    var S = this.S, b = this.d.bad[String(i)];
    return b ? b.map(function (x) { return {prop: S[x[0]], msg: S[x[1]], kind: x[2]}; }) : [];
  };
  Graph.prototype.splat = function (ix) {
    var S = this.S;
    return ix < 0 ? [] : this.d.splats[ix].map(function (sp) {
      return {prop: S[sp[0]], msg: S[sp[1]], text: S[sp[2]], fatal: !!sp[3]};
    });
  };
  Graph.prototype.isFatal = function (i) { return !!this.fatalSet[i]; };
  Graph.prototype.isTerminal = function (i) { return this.d.states[i][2].length === 0; };
  // bit set of the threads that can move in state i
  Graph.prototype.enabled = function (i) {
    var m = this.d.states[i][2], mask = 0;
    for (var k = 0; k < m.length; k += 5) mask |= 1 << m[k];
    return mask;
  };
  Graph.prototype.goal = function () { return this.d.goal_property || null; };
  // the goal's properties: breaking any one of them reaches the goal
  Graph.prototype.goals = function () {
    if (!this._goals) {
      var gs = this.d.goal_properties || (this.d.goal_property ? [this.d.goal_property] : []);
      this._goals = {};
      for (var i = 0; i < gs.length; i++) this._goals[gs[i]] = true;
    }
    return this._goals;
  };
  Graph.prototype.isGoal = function (prop) { return !!this.goals()[prop]; };
  // the goal's properties that some schedule breaks ([]: a fixed variant, or no goal)
  Graph.prototype.reachableGoals = function () {
    var cx = this.d.counterexamples || {};
    return Object.keys(this.goals()).filter(function (p) { return cx[p]; });
  };
  Graph.prototype.goalReachable = function () { return this.reachableGoals().length > 0; };
  // the property "show me" plays: the goal's with the shortest solution, else the first violation
  Graph.prototype.showProperty = function () {
    var cx = this.d.counterexamples || {};
    if (this.goal()) {
      var best = null;
      this.reachableGoals().forEach(function (p) {
        if (best === null || cx[p].schedule.length < cx[best].schedule.length) best = p;
      });
      return best;
    }
    var ks = Object.keys(cx);
    return ks.length ? ks[0] : null;
  };
  // does taking edge e reach a (non-termination) goal at once: a report, or a state that breaks it?
  Graph.prototype.edgeHitsGoal = function (e) {
    var self = this;
    function hit(x) { return self.isGoal(x.prop) && x.prop !== "terminates"; }
    return this.splat(e.splat).some(hit) || this.bad(e.target).some(hit);
  };
  /* Fewest steps from each state to the goal (-1: unreachable), by a breadth-first search
   * backwards from the goal: states that break a goal property (0), sources of a report edge
   * (1), and for a "terminates" goal the states on a cycle the fairness allows (d.loops: 0). */
  Graph.prototype.distances = function () {
    if (this._dist) return this._dist;
    var N = this.N, d = this.d, self = this, dist = new Int32Array(N).fill(-1);
    this._dist = dist;
    if (!this.goalReachable()) return dist;
    function hit(x) { return self.isGoal(x.prop) && x.prop !== "terminates"; }
    var pred = new Array(N), i, k, layer = [], next1 = [];
    for (i = 0; i < N; i++) pred[i] = [];
    for (i = 0; i < N; i++) {
      var m = d.states[i][2];
      for (k = 0; k < m.length; k += 5) {
        pred[m[k + 3]].push(i);
        if (m[k + 4] >= 0 && this.splat(m[k + 4]).some(hit)) next1.push(i);
      }
    }
    if (this.isGoal("terminates")) {
      (d.loops || []).forEach(function (s) { if (dist[s] < 0) { dist[s] = 0; layer.push(s); } });
    }
    for (i = 0; i < N; i++) {
      if (dist[i] < 0 && this.bad(i).some(hit)) { dist[i] = 0; layer.push(i); }
    }
    var depth = 0;
    while (layer.length || next1.length) {
      var nxt = [];
      if (depth === 0) next1.forEach(function (s) { if (dist[s] < 0) { dist[s] = 1; nxt.push(s); } });
      for (k = 0; k < layer.length; k++) {
        var ps = pred[layer[k]];
        for (var j = 0; j < ps.length; j++) {
          if (dist[ps[j]] < 0) { dist[ps[j]] = depth + 1; nxt.push(ps[j]); }
        }
      }
      if (depth === 0) next1 = [];
      layer = nxt;
      depth += 1;
    }
    return dist;
  };

  /* -------------------------------------------------------------- history */
  function History(graph) {
    this.g = graph;
    this.path = [0];   // state indices
    this.moves = [];   // edges taken
    this.pos = 0;      // where the reader is in path
    this.undos = [];   // runs replaced by Reset or Show me: {path, moves, pos, why}
  }
  History.prototype.current = function () { return this.path[this.pos]; };
  History.prototype.take = function (e) {
    this.path.length = this.pos + 1;
    this.moves.length = this.pos;
    this.path.push(e.target);
    this.moves.push(e);
    this.pos += 1;
  };
  History.prototype.jump = function (p) {
    if (p < 0 || p >= this.path.length) return false;
    this.pos = p;
    return true;
  };
  // start over, keeping the run for undo (why: "reset" or "show me")
  History.prototype.reset = function (why) {
    if (this.moves.length) {
      this.undos.push({path: this.path, moves: this.moves, pos: this.pos, why: why});
      if (this.undos.length > 20) this.undos.shift();
    }
    this.path = [0];
    this.moves = [];
    this.pos = 0;
  };
  History.prototype.canUndo = function () { return this.undos.length > 0; };
  History.prototype.undo = function () {
    var u = this.undos.pop();
    if (!u) return null;
    this.path = u.path;
    this.moves = u.moves;
    this.pos = u.pos;
    return u.why;
  };
  History.prototype.trace = function () {
    var out = [];
    for (var k = 0; k < this.pos; k++) out.push(this.moves[k].move);
    return out.join(",");
  };
  /* Replace the run with a trace (schedule items such as "1" or "1:fail"), in linear time.
   * Returns {applied, total, cut} where cut is null or {at (1-based item), item, reason}:
   * "illegal" (no such move in that state) or "cap" (longer than TRACE_CAP items). */
  History.prototype.load = function (items, cap) {
    cap = cap || TRACE_CAP;
    var g = this.g, cur = 0, path = [0], moves = [], cut = null, total = 0;
    for (var k = 0; k < items.length; k++) {
      var it = String(items[k]).trim();
      if (!it) continue;
      total += 1;
      if (cut) continue;
      if (moves.length >= cap) { cut = {at: total, item: it, reason: "cap"}; continue; }
      var m = g.d.states[cur][2], e = null;
      for (var j = 0; j < m.length; j += 5) {
        if (g.S[m[j + 1]] === it) {
          e = {tid: m[j], move: it, choice: g.s(m[j + 2]), target: m[j + 3], splat: m[j + 4]};
          break;
        }
      }
      if (!e) { cut = {at: total, item: it, reason: "illegal"}; continue; }
      moves.push(e);
      cur = e.target;
      path.push(cur);
    }
    this.path = path;
    this.moves = moves;
    this.pos = moves.length;
    return {applied: moves.length, total: total, cut: cut};
  };
  History.prototype.switches = function () {
    var n = 0;
    for (var k = 1; k < this.pos; k++) if (this.moves[k].tid !== this.moves[k - 1].tid) n += 1;
    return n;
  };

  /* ------------------------------------------------------------- the game */
  // every property broken along path[0..pos]: [{prop, msg, step, kind, text}], each breach once
  function violations(g, h) {
    var out = [], seen = {};
    function add(v) {
      var key = v.kind === "splat" ? v.step + "\u0000" + v.text : v.prop + "\u0000" + v.msg;
      if (seen[key]) return;
      seen[key] = true;
      out.push(v);
    }
    for (var p = 0; p <= h.pos; p++) {
      if (p > 0) {
        g.splat(h.moves[p - 1].splat).forEach(function (sp) {
          add({prop: sp.prop, msg: sp.msg, step: p, kind: "splat", text: sp.text});
        });
      }
      g.bad(h.path[p]).forEach(function (b) { add({prop: b.prop, msg: b.msg, step: p, kind: b.kind}); });
    }
    return out;
  }

  /* A loop played by hand: the current state already occurred earlier on the path.
   * Returns null or {from, to, fair, starved} (starved: labels of threads the fairness says
   * must run but never ran in the loop). The loop is moves[from..to). */
  function loopAt(g, h, upto) {
    var to = upto === undefined ? h.pos : upto, s = h.path[to];
    for (var j = to - 1; j >= 0; j--) {
      if (h.path[j] !== s) continue;
      var taken = 0, always = -1, any = 0;
      for (var k = j; k < to; k++) {
        taken |= 1 << h.moves[k].tid;
        var en = g.enabled(h.path[k]);
        always &= en;
        any |= en;
      }
      var fairness = g.d.fairness || "none";
      var must = fairness === "weak" ? always : (fairness === "strong" ? any : 0);
      var starvedMask = must & ~taken, starved = [];
      for (var t = 0; t < g.n; t++) if (starvedMask & (1 << t)) starved.push(g.d.threads[t].label);
      return {from: j, to: to, fair: starved.length === 0, starved: starved, fairness: fairness};
    }
    return null;
  }

  // the first fair loop on path[0..pos] (a win for a "terminates" goal), or null
  function firstFairLoop(g, h) {
    var firstAt = {};
    for (var p = 0; p <= h.pos; p++) {
      var s = h.path[p];
      if (firstAt[s] !== undefined) {
        var lp = loopAt(g, h, p);
        if (lp && lp.fair) return lp;
      } else firstAt[s] = p;
    }
    return null;
  }

  function countSwitches(moves, n) {
    var c = 0;
    for (var k = 1; k < n; k++) if (moves[k].tid !== moves[k - 1].tid) c += 1;
    return c;
  }

  /* Where the reader stands. Returns {
   *   outcome: "win" | "lost" | "dead" | "playing" | "safe" | "free",
   *   win: {step, msg, loop} | null, side: [violations other than the goal],
   *   loop: loopAt() at the current state or null, dist: fewest steps to the goal (-1: none),
   *   terminal, fatal, back: the last step from which the goal was still reachable (or -1),
   *   mine: {steps, switches} (up to the win, or so far), par: d.par } */
  function assess(g, h) {
    var d = g.d, goal = g.goal(), cur = h.current(), dist = g.distances();
    var viol = violations(g, h), win = null;
    var side = viol.filter(function (v) { return !g.isGoal(v.prop); });
    var gv = viol.filter(function (v) { return g.isGoal(v.prop); })[0];
    if (gv) win = {step: gv.step, msg: gv.msg, loop: null, kind: gv.kind, prop: gv.prop};
    if (g.isGoal("terminates")) {
      var fl = firstFairLoop(g, h);
      if (fl && (!win || fl.to < win.step)) win = {step: fl.to, msg: null, loop: fl, prop: "terminates"};
    }
    var terminal = g.isTerminal(cur), back = -1;
    for (var p = h.pos; p >= 0; p--) if (dist[h.path[p]] >= 0) { back = p; break; }
    var outcome;
    if (!goal && !g.showProperty()) outcome = "safe";
    else if (!goal) outcome = "free";
    else if (win) outcome = "win";
    else if (!g.goalReachable()) outcome = "safe";
    else if (terminal) outcome = "lost";
    else if (dist[cur] < 0) outcome = "dead";
    else outcome = "playing";
    var upto = win ? win.step : h.pos;
    return {
      outcome: outcome, win: win, side: side, violations: viol, loop: loopAt(g, h),
      dist: dist[cur], terminal: terminal, fatal: g.isFatal(cur), back: back,
      mine: {steps: upto, switches: countSwitches(h.moves, upto)}, par: d.par || null
    };
  }

  /* "Run this CPU until ...": take tid's steps while it has exactly one, stopping after a step
   * that changes the shared part of the state, reports, breaks a property, reaches the goal,
   * blocks or finishes the thread, or comes back to a state already on the path.
   * Returns {steps, why} (steps 0 with why "choice" or "blocked" when it cannot start). */
  function runUntil(g, h, tid, cap) {
    cap = cap || 500;
    var seen = {}, steps = 0, why = "cap";
    for (var p = 0; p <= h.pos; p++) seen[h.path[p]] = true;
    while (steps < cap) {
      var cur = h.current(), es = g.edgesOf(cur, tid);
      if (es.length === 0) { why = steps ? "blocked" : "blocked"; break; }
      if (es.length > 1) { why = "choice"; break; }
      var e = es[0], before = g.sharedKey(cur);
      h.take(e);
      steps += 1;
      var t = e.target, th = g.threads(t)[tid];
      if (e.splat >= 0) { why = "report"; break; }
      if (g.bad(t).length) { why = "bad"; break; }
      if (g.isFatal(t)) { why = "fatal"; break; }
      if (g.sharedKey(t) !== before) { why = "shared"; break; }
      if (th.pc < 0) { why = "done"; break; }
      if (g.edgesOf(t, tid).length === 0) { why = "blocked"; break; }
      if (seen[t]) { why = "loop"; break; }
      seen[t] = true;
    }
    return {steps: steps, why: why};
  }

  var Core = {
    FORMAT: FORMAT, TRACE_CAP: TRACE_CAP, Graph: Graph, History: History, violations: violations,
    loopAt: loopAt, firstFairLoop: firstFairLoop, assess: assess, runUntil: runUntil,
    countSwitches: countSwitches
  };
  if (!G.KvmlabCore || (G.KvmlabCore.FORMAT || 0) < FORMAT) G.KvmlabCore = Core;
  if (typeof module !== "undefined" && module.exports) module.exports = Core;
})(typeof globalThis !== "undefined" ? globalThis : this);
