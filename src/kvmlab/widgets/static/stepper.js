/* kvmlab stepper: the reader plays the scheduler over a precomputed state graph.
 * One player for the static book (self-contained HTML) and live notebooks (anywidget).
 * No framework, no network. Model text is inserted with textContent only.
 * Graph format: see kvmlab/widgets/export.py. */
(function () {
  "use strict";
  var G = typeof globalThis !== "undefined" ? globalThis : window;
  if (G.KvmlabStepper) return;

  var uidCounter = 0;
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function button(cls, text, label) {
    var b = el("button", cls, text);
    b.type = "button";
    if (label) b.setAttribute("aria-label", label);
    return b;
  }
  function clear(e) { while (e.firstChild) e.removeChild(e.firstChild); }

  /* ---------------------------------------------------------------- hash */
  function readHash() {
    var out = {};
    var h = (G.location && G.location.hash || "").replace(/^#/, "");
    h.split("&").forEach(function (part) {
      var i = part.indexOf("=");
      if (i > 0) {
        try { out[decodeURIComponent(part.slice(0, i))] = decodeURIComponent(part.slice(i + 1)); }
        catch (e) { /* ignore malformed parts */ }
      }
    });
    return out;
  }
  function writeHash(key, value) {
    if (!G.history || !G.history.replaceState) return;
    var h = (G.location.hash || "").replace(/^#/, "");
    var parts = h ? h.split("&") : [];
    var kept = parts.filter(function (p) { return p.split("=")[0] !== key && p !== ""; });
    if (value) kept.push(key + "=" + value);
    var nh = kept.length ? "#" + kept.join("&") : "";
    var url = G.location.pathname + G.location.search + nh;
    try { G.history.replaceState(G.history.state, "", url); } catch (e) { /* sandboxed */ }
  }

  /* ---------------------------------------------------------------- player */
  function Player(root, data, opts) {
    this.root = root;
    this.d = data;
    this.opts = opts || {};
    this.S = data.strings;
    this.n = data.threads.length;
    this.path = [0];      // state indices
    this.moves = [];      // edge records {tid, move, choice, target, splat}
    this.pos = 0;         // current position in path
    this.timer = null;
    this.lassoNote = null;
    this.build();
    var restored = false;
    this.lastHash = "";   // our key's value in the URL as we last wrote or read it
    if (this.opts.hash !== false) {
      var h = readHash()[this.hashKey()];
      if (h) restored = this.load(h.split(","));
      this.lastHash = h || "";
    }
    this.render();
    if (restored && root.scrollIntoView && this.opts.scroll !== false) {
      root.scrollIntoView({block: "start"});
    }
  }

  Player.prototype.hashKey = function () { return "stepper-" + this.d.id; };
  Player.prototype.s = function (i) { return i < 0 ? null : this.S[i]; };

  Player.prototype.stateAt = function (i) {
    var st = this.d.states[i], t = st[0], out = [];
    for (var k = 0; k < this.n; k++) {
      out.push({pc: t[3 * k], status: this.s(t[3 * k + 1]) || "", ctx: this.s(t[3 * k + 2]) || ""});
    }
    return out;
  };
  Player.prototype.edges = function (i) {
    var m = this.d.states[i][2], out = [];
    for (var k = 0; k < m.length; k += 5) {
      out.push({tid: m[k], move: this.S[m[k + 1]], choice: this.s(m[k + 2]), target: m[k + 3], splat: m[k + 4]});
    }
    return out;
  };
  Player.prototype.shared = function (i) {
    var sh = this.d.states[i][1], names = this.d.shapes[sh[0]], out = [];
    for (var k = 0; k < names.length; k++) out.push([names[k], this.S[sh[k + 1]]]);
    return out;
  };

  /* ---- building the DOM once ---- */
  Player.prototype.build = function () {
    var d = this.d, self = this, root = this.root;
    this.uid = "ks" + (++uidCounter);
    clear(root);
    root.classList.add("kvmlab-stepper");
    root.setAttribute("role", "group");
    root.setAttribute("aria-label", "Stepper: " + d.title);
    root.tabIndex = 0;

    var head = el("div", "ks-head");
    head.appendChild(el("div", "ks-title", d.title));
    var meta = [d.model + " · variant " + d.variant];
    if (d.commit) meta.push(d.commit);
    var cfg = Object.keys(d.config || {}).map(function (k) { return k + "=" + (d.config[k] ? "y" : "n"); });
    var prm = Object.keys(d.params || {}).map(function (k) { return k + "=" + d.params[k]; });
    if (cfg.length) meta.push(cfg.join(" "));
    if (prm.length) meta.push(prm.join(" "));
    meta.push(d.states.length + " states");
    head.appendChild(el("div", "ks-meta", meta.join(" · ")));
    root.appendChild(head);

    var goalProp = this.goalProperty();
    if (d.goal || goalProp) {
      var goal = el("div", "ks-goal");
      goal.appendChild(el("span", "ks-goal-label", "Goal: "));
      goal.appendChild(el("span", "ks-goal-text", d.goal || ("break " + goalProp)));
      if (goalProp && d.counterexamples[goalProp]) {
        this.showBtn = button("ks-btn ks-show", "Show me", "Show me: play the shortest interleaving that breaks " + goalProp);
        this.showBtn.addEventListener("click", function () { self.showMe(); });
        goal.appendChild(this.showBtn);
      }
      root.appendChild(goal);
    }

    this.banner = el("div", "ks-banner");
    this.banner.setAttribute("role", "status");
    this.banner.setAttribute("aria-live", "polite");
    root.appendChild(this.banner);

    var ctl = el("div", "ks-controls");
    this.resetBtn = button("ks-btn", "⟲ Reset", "Reset to the initial state (key r)");
    this.backBtn = button("ks-btn", "◀ Back", "Back one step (key Left arrow)");
    this.fwdBtn = button("ks-btn", "Forward ▶", "Forward one step (key Right arrow)");
    this.resetBtn.addEventListener("click", function () { self.stop(); self.jump(0, true); });
    this.backBtn.addEventListener("click", function () { self.stop(); self.jump(self.pos - 1); });
    this.fwdBtn.addEventListener("click", function () { self.stop(); self.jump(self.pos + 1); });
    ctl.appendChild(this.resetBtn);
    ctl.appendChild(this.backBtn);
    ctl.appendChild(this.fwdBtn);
    this.counter = el("span", "ks-counter");
    ctl.appendChild(this.counter);
    ctl.appendChild(el("span", "ks-keys", "keys: 0–9 step a CPU · ← → history · r reset"));
    root.appendChild(ctl);

    var cpus = el("div", "ks-cpus");
    this.cpu = [];
    d.threads.forEach(function (th, tid) {
      var box = el("section", "ks-cpu");
      box.setAttribute("aria-label", th.label + ": " + th.title);
      var h = el("div", "ks-cpu-head");
      h.appendChild(el("span", "ks-cpu-label", th.label));
      h.appendChild(el("span", "ks-cpu-title", th.title));
      box.appendChild(h);
      var btns = el("div", "ks-cpu-btns");
      var step = button("ks-btn ks-step", "Step " + th.label, "Step " + th.label + " (key " + tid + ")");
      step.dataset.tid = tid;
      step.addEventListener("click", function () { self.stop(); self.stepThread(tid); });
      btns.appendChild(step);
      var choices = el("span", "ks-choices");
      btns.appendChild(choices);
      box.appendChild(btns);
      var why = el("div", "ks-why");
      why.id = self.uid + "-why-" + tid;
      step.setAttribute("aria-describedby", why.id);
      box.appendChild(why);
      var code = el("ol", "ks-code");
      code.setAttribute("aria-label", th.label + " code");
      var lines = [], lastFn = null;
      th.code.forEach(function (st, pc) {
        var fn = self.S[st[0]];
        if (fn !== lastFn) {
          var fh = el("li", "ks-fn", fn + "()");
          fh.setAttribute("aria-hidden", "true");
          code.appendChild(fh);
          lastFn = fn;
        }
        var li = el("li", "ks-line");
        li.appendChild(el("span", "ks-mark", ""));
        var txt = el("span", "ks-c");
        st[1].forEach(function (ci, k) {
          if (k) txt.appendChild(document.createElement("br"));
          txt.appendChild(document.createTextNode(self.S[ci]));
        });
        li.appendChild(txt);
        li.title = fn + "(): step " + st[2];
        code.appendChild(li);
        lines.push(li);
      });
      box.appendChild(code);
      var ctx = el("div", "ks-ctx");
      box.appendChild(ctx);
      cpus.appendChild(box);
      self.cpu.push({box: box, step: step, choices: choices, why: why, lines: lines, ctx: ctx, cur: -1});
    });
    root.appendChild(cpus);

    var bottom = el("div", "ks-bottom");
    var shBox = el("section", "ks-panel ks-shared");
    shBox.appendChild(el("h4", null, "Shared state"));
    this.sharedTable = el("table", "ks-table");
    this.sharedTable.setAttribute("aria-label", "Shared state");
    shBox.appendChild(this.sharedTable);
    bottom.appendChild(shBox);

    var prBox = el("section", "ks-panel ks-props");
    prBox.appendChild(el("h4", null, "Properties"));
    this.propList = el("ul", "ks-proplist");
    prBox.appendChild(this.propList);
    bottom.appendChild(prBox);

    var hiBox = el("section", "ks-panel ks-history");
    hiBox.appendChild(el("h4", null, "History"));
    this.histList = el("ol", "ks-hist");
    this.histList.setAttribute("aria-label", "History: click a step to go back to it");
    hiBox.appendChild(this.histList);
    bottom.appendChild(hiBox);
    root.appendChild(bottom);

    var con = el("section", "ks-panel ks-console-box");
    con.appendChild(el("h4", null, "Console (dmesg)"));
    this.console = el("pre", "ks-console");
    this.console.setAttribute("aria-label", "Kernel console");
    this.console.setAttribute("aria-live", "polite");
    con.appendChild(this.console);
    root.appendChild(con);

    root.addEventListener("keydown", function (ev) { self.onKey(ev); });
  };

  Player.prototype.goalProperty = function () {
    var d = this.d;
    if (d.goal_property) return d.goal_property;
    var ks = Object.keys(d.counterexamples || {});
    return ks.length ? ks[0] : null;
  };

  /* ---- actions ---- */
  Player.prototype.current = function () { return this.path[this.pos]; };

  Player.prototype.take = function (edge) {
    this.path.length = this.pos + 1;
    this.moves.length = this.pos;
    this.path.push(edge.target);
    this.moves.push(edge);
    this.pos += 1;
    this.lassoNote = null;
    this.render();
  };
  Player.prototype.stepThread = function (tid) {
    var es = this.edges(this.current()).filter(function (e) { return e.tid === tid; });
    if (es.length === 1) this.take(es[0]);
    else if (es.length > 1) {
      var c = this.cpu[tid].choices.querySelector("button");
      if (c) c.focus();
      this.cpu[tid].why.textContent = "choose an outcome: " + es.map(function (e) { return e.choice; }).join(" / ");
    }
  };
  Player.prototype.jump = function (p, reset) {
    if (reset) { this.path = [0]; this.moves = []; p = 0; }
    if (p < 0 || p >= this.path.length) return;
    this.pos = p;
    this.lassoNote = null;
    this.render();
  };
  Player.prototype.load = function (items) {
    var cur = 0, path = [0], moves = [];
    for (var k = 0; k < items.length; k++) {
      var it = String(items[k]).trim();
      if (!it) continue;
      var e = this.edges(cur).filter(function (x) { return x.move === it; })[0];
      if (!e) break;
      moves.push(e);
      cur = e.target;
      path.push(cur);
    }
    this.path = path;
    this.moves = moves;
    this.pos = moves.length;
    return moves.length > 0;
  };
  Player.prototype.stop = function () {
    if (this.timer) { clearTimeout(this.timer); this.timer = null; }
    if (this.showBtn) this.showBtn.textContent = "Show me";
  };
  Player.prototype.showMe = function () {
    var self = this;
    if (this.timer) { this.stop(); return; }
    var cex = this.d.counterexamples[this.goalProperty()];
    if (!cex) return;
    var sched = cex.schedule.slice();
    this.jump(0, true);
    var delay = this.opts.delay !== undefined ? this.opts.delay
      : Math.max(120, Math.min(450, Math.floor(6000 / Math.max(1, sched.length))));
    this.showBtn.textContent = "Stop";
    var k = 0;
    function tick() {
      if (k >= sched.length) {
        self.timer = null;
        self.showBtn.textContent = "Show me";
        if (cex.kind === "lasso") {
          self.lassoNote = cex.message + " — steps " + (cex.loop_start + 1) + "–" + sched.length
            + " return to the state after step " + cex.loop_start + " and can repeat forever";
          self.render();
        }
        return;
      }
      var e = self.edges(self.current()).filter(function (x) { return x.move === sched[k]; })[0];
      if (!e) { self.stop(); return; }
      self.take(e);
      k += 1;
      self.timer = setTimeout(tick, delay);
    }
    this.timer = setTimeout(tick, delay);
  };
  Player.prototype.onKey = function (ev) {
    if (ev.altKey || ev.ctrlKey || ev.metaKey) return;
    var t = ev.target;
    if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA")) return;
    var k = ev.key;
    if (/^[0-9]$/.test(k)) {
      var tid = +k;
      if (tid < this.n) { this.stop(); this.stepThread(tid); ev.preventDefault(); }
    } else if (k === "ArrowLeft") { this.stop(); this.jump(this.pos - 1); ev.preventDefault(); }
    else if (k === "ArrowRight") { this.stop(); this.jump(this.pos + 1); ev.preventDefault(); }
    else if (k === "r" || k === "R") { this.stop(); this.jump(0, true); ev.preventDefault(); }
  };

  /* ---- what went wrong so far ---- */
  Player.prototype.violations = function () {
    // [{prop, msg, step, kind}] along path[0..pos]
    var out = [], S = this.S, d = this.d;
    for (var p = 0; p <= this.pos; p++) {
      if (p > 0) {
        var e = this.moves[p - 1];
        if (e.splat >= 0) {
          d.splats[e.splat].forEach(function (sp) {
            out.push({prop: S[sp[0]], msg: S[sp[1]], step: p, kind: "splat", text: S[sp[2]]});
          });
        }
      }
      var bad = d.bad[String(this.path[p])];
      if (bad) bad.forEach(function (b) { out.push({prop: S[b[0]], msg: S[b[1]], step: p, kind: b[2]}); });
    }
    // an invariant stays broken over several states: report each breach once, where it began
    var seen = {};
    return out.filter(function (v) {
      var k = v.kind === "splat" ? v.step + "\u0000" + v.text : v.prop + "\u0000" + v.msg;
      if (seen[k]) return false;
      seen[k] = true;
      return true;
    });
  };

  /* ---- rendering ---- */
  Player.prototype.render = function () {
    var t0 = (G.performance && performance.now) ? performance.now() : 0;
    var self = this, d = this.d, S = this.S;
    var hadFocus = document.activeElement && this.root.contains(document.activeElement);
    var cur = this.current();
    var ths = this.stateAt(cur);
    var es = this.edges(cur);
    var fatal = d.fatal.indexOf(cur) >= 0;

    ths.forEach(function (th, tid) {
      var c = self.cpu[tid];
      var mine = es.filter(function (e) { return e.tid === tid; });
      if (c.cur >= 0) {
        c.lines[c.cur].classList.remove("ks-current");
        c.lines[c.cur].removeAttribute("aria-current");
        c.lines[c.cur].firstChild.textContent = "";
      }
      c.cur = th.pc;
      if (th.pc >= 0) {
        var li = c.lines[th.pc];
        li.classList.add("ks-current");
        li.setAttribute("aria-current", "step");
        li.firstChild.textContent = "▶";
      }
      c.box.classList.toggle("ks-done", th.pc < 0);
      clear(c.choices);
      if (mine.length === 0) {
        var why = th.pc < 0 ? "done" : (th.status || "cannot move");
        c.step.disabled = true;
        c.step.title = d.threads[tid].label + " cannot move: " + why;
        c.why.textContent = (th.pc < 0 ? "✓ " : "blocked: ") + why;
        c.why.className = "ks-why ks-blocked";
      } else {
        c.step.disabled = false;
        c.step.title = "Run " + d.threads[tid].label + "'s highlighted line";
        c.why.textContent = mine.length > 1 ? "this step has " + mine.length + " outcomes:" : "";
        c.why.className = "ks-why";
        if (mine.length > 1) {
          c.step.disabled = true;
          c.step.title = "choose an outcome";
          mine.forEach(function (e) {
            var b = button("ks-btn ks-choice", e.choice || e.move,
              "Step " + d.threads[tid].label + " with outcome " + (e.choice || e.move));
            b.dataset.move = e.move;
            b.addEventListener("click", function () { self.stop(); self.take(e); });
            c.choices.appendChild(b);
          });
        }
      }
      c.ctx.textContent = th.ctx;
    });

    // shared state, with what the last step changed marked
    var now = this.shared(cur);
    var before = this.pos > 0 ? this.shared(this.path[this.pos - 1]) : null;
    var prev = {};
    if (before) before.forEach(function (kv) { prev[kv[0]] = kv[1]; });
    clear(this.sharedTable);
    now.forEach(function (kv) {
      var tr = el("tr");
      var changed = before && prev[kv[0]] !== kv[1];
      tr.appendChild(el("th", null, kv[0]));
      var td = el("td", null, kv[1]);
      tr.appendChild(td);
      var mk = el("td", "ks-chg", changed ? "◀ changed" : "");
      tr.appendChild(mk);
      if (changed) {
        tr.className = "ks-changed";
        td.setAttribute("aria-label", kv[1] + " (changed by the last step, was " + prev[kv[0]] + ")");
      }
      self.sharedTable.appendChild(tr);
    });

    // properties
    var viol = this.violations();
    var terminal = es.length === 0;
    clear(this.propList);
    Object.keys(d.properties).forEach(function (p) {
      var v = viol.filter(function (x) { return x.prop === p; })[0];
      if (!v && p === "terminates" && self.lassoNote) v = {prop: p, msg: self.lassoNote, step: self.pos};
      var li = el("li", v ? "ks-prop ks-bad" : "ks-prop ks-ok");
      var icon = v ? "✗" : (terminal ? "✓" : "…");
      li.appendChild(el("span", "ks-icon", icon));
      li.appendChild(el("code", null, p));
      var txt = v ? " violated at step " + v.step + ": " + v.msg
        : (terminal ? " held on this run" : " holds so far");
      li.appendChild(el("span", "ks-prop-msg", txt));
      if (d.properties[p]) li.title = d.properties[p];
      self.propList.appendChild(li);
    });

    // banner
    clear(this.banner);
    var goalProp = this.goalProperty();
    if (viol.length || this.lassoNote) {
      var gv = viol.filter(function (x) { return x.prop === goalProp; })[0];
      this.banner.className = "ks-banner ks-banner-bad";
      if (this.lassoNote && !gv) {
        this.banner.appendChild(el("strong", null, goalProp === "terminates" ? "✗ Goal reached — " : "✗ "));
        this.banner.appendChild(el("span", null, this.lassoNote));
        if (viol.length) this.banner.appendChild(el("span", null, " (+" + viol.length + " more below)"));
      } else {
        var first = gv || viol[0];
        var head = gv ? "✗ Goal reached — bad state: " : "✗ Bad state reached: ";
        this.banner.appendChild(el("strong", null, head));
        this.banner.appendChild(el("code", null, first.prop));
        this.banner.appendChild(el("span", null, " — " + first.msg + " (step " + first.step + ")"));
        if (viol.length > 1) this.banner.appendChild(el("span", null, " (+" + (viol.length - 1) + " more below)"));
      }
    } else if (terminal) {
      this.banner.className = "ks-banner ks-banner-ok";
      this.banner.appendChild(el("strong", null, "✓ Run finished with every property intact."));
    } else {
      this.banner.className = "ks-banner ks-banner-none";
    }

    // history: rebuilt only from the first entry that changed
    var items = this.histItems || (this.histItems = []);
    var k0 = 0;
    while (k0 < items.length && k0 < this.moves.length && items[k0].edge === this.moves[k0]
           && items[k0].from === this.path[k0]) k0++;
    for (var r = items.length - 1; r >= k0; r--) { this.histList.removeChild(items[r].li); items.pop(); }
    if (this.emptyHist) { this.histList.removeChild(this.emptyHist); this.emptyHist = null; }
    for (var k = k0; k < this.moves.length; k++) {
      (function (k) {
        var e = self.moves[k];
        var pc = self.stateAt(self.path[k])[e.tid].pc;
        var code = d.threads[e.tid].code[pc];
        var text = d.threads[e.tid].label + ": " + code[1].map(function (i) { return S[i]; }).join(" ");
        if (e.choice) text += "  [" + e.choice + "]";
        if (e.splat >= 0) text += "  ⚠ report";
        var li = el("li");
        var b = button("ks-hist-btn", text, "Go to step " + (k + 1) + ": " + text);
        b.addEventListener("click", function () { self.stop(); self.jump(k + 1); });
        li.appendChild(b);
        self.histList.appendChild(li);
        items.push({edge: e, from: self.path[k], li: li, btn: b});
      })(k);
    }
    items.forEach(function (it, k) {
      var cls = (k < self.pos ? "ks-past" : "ks-future") + (k + 1 === self.pos ? " ks-here" : "");
      if (it.li.className !== cls) it.li.className = cls;
      if (k + 1 === self.pos) it.btn.setAttribute("aria-current", "step");
      else it.btn.removeAttribute("aria-current");
    });
    if (this.pos > 0 && items[this.pos - 1] && this.lastHistPos !== this.pos) {
      var li = items[this.pos - 1].li, box = this.histList;
      if (li.offsetTop < box.scrollTop || li.offsetTop + li.offsetHeight > box.scrollTop + box.clientHeight) {
        box.scrollTop = li.offsetTop - box.clientHeight / 2;
      }
    }
    this.lastHistPos = this.pos;
    if (!items.length) { this.emptyHist = el("li", "ks-empty", "no step yet"); this.histList.appendChild(this.emptyHist); }

    // console: reports printed at the step they happen
    var lines = [];
    viol.forEach(function (v) {
      if (v.kind === "splat") lines.push("[step " + v.step + "] " + v.text);
      else lines.push("[step " + v.step + "] kvmlab: " + v.prop + ": " + v.msg);
    });
    if (this.lassoNote) lines.push("kvmlab: terminates: " + this.lassoNote);
    this.console.textContent = lines.length ? lines.join("\n\n") : "(no kernel messages)";
    this.console.classList.toggle("ks-console-bad", lines.length > 0);

    this.backBtn.disabled = this.pos === 0;
    this.fwdBtn.disabled = this.pos >= this.path.length - 1;
    this.resetBtn.disabled = this.path.length === 1;
    this.counter.textContent = "step " + this.pos + (this.path.length - 1 > this.pos ? " of " + (this.path.length - 1) : "")
      + (fatal ? " · run ended" : "");
    if (this.opts.hash !== false && this.traceString() !== this.lastHash) this.scheduleHash();
    if (hadFocus && !this.root.contains(document.activeElement)) {
      // the focused control was rebuilt: keep the keyboard on this stepper
      try { this.root.focus({preventScroll: true}); } catch (e) { this.root.focus(); }
    }
    this.root.dataset.state = cur;
    this.root.dataset.pos = this.pos;
    if (t0) this.lastRenderMs = performance.now() - t0;
  };

  // the URL is updated shortly after the last change, outside the click's critical path
  // (and browsers throttle history.replaceState when it is called on every step of an animation)
  Player.prototype.scheduleHash = function () {
    var self = this;
    if (this.hashTimer) clearTimeout(this.hashTimer);
    this.hashTimer = setTimeout(function () {
      self.hashTimer = null;
      var now = readHash()[self.hashKey()] || "";
      if (now !== self.lastHash) {  // the URL changed under us (a link, an edit): follow it
        self.onHash();
        return;
      }
      self.lastHash = self.traceString();
      writeHash(self.hashKey(), self.lastHash);
    }, this.timer ? 400 : 60);
  };
  Player.prototype.traceString = function () {
    return this.moves.slice(0, this.pos).map(function (e) { return e.move; }).join(",");
  };
  // a link in the page such as <a href="#stepper-ID=0,1,1">, or an edited URL, replays a trace
  Player.prototype.onHash = function () {
    var h = readHash()[this.hashKey()];
    if (h === undefined || h === this.traceString()) {
      this.lastHash = h || "";
      return;
    }
    this.lastHash = h;
    this.stop();
    this.load(h.split(","));
    this.render();
    if (this.root.scrollIntoView) this.root.scrollIntoView({block: "start"});
  };
  var players = [];
  function mount(root, data, opts) {
    if (root.__kvmlabPlayer) return root.__kvmlabPlayer;
    var p = new Player(root, data, opts);
    root.__kvmlabPlayer = p;
    if (!opts || opts.hash !== false) {
      players.push(p);
      if (players.length === 1) {
        G.addEventListener("hashchange", function () { players.forEach(function (q) { q.onHash(); }); });
      }
    }
    return p;
  }
  function mountAll() {
    var nodes = document.querySelectorAll("div[data-kvmlab-stepper]");
    for (var i = 0; i < nodes.length; i++) {
      var root = nodes[i];
      if (root.__kvmlabPlayer) continue;
      var src = root.querySelector("script.kvmlab-stepper-data");
      if (!src) continue;
      var data;
      try { data = JSON.parse(src.textContent); }
      catch (e) { root.textContent = "kvmlab stepper: bad data (" + e.message + ")"; continue; }
      // a notebook output (data-kvmlab-live): the page URL belongs to the front end
      mount(root, data, root.getAttribute("data-kvmlab-live") ? {hash: false, scroll: false} : {});
    }
  }
  G.KvmlabStepper = {mount: mount, mountAll: mountAll, version: 1};
  if (typeof document !== "undefined") {
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", mountAll);
    else mountAll();
  }
})();
