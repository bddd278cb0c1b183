/* kvmlab stepper, part 3 of 4: the view. Builds the DOM once per stepper and updates it after
 * every move. Model text goes in with textContent only. Needs KvmlabCore and KvmlabUrl. */
(function (G) {
  "use strict";
  var Core = G.KvmlabCore, Url = G.KvmlabUrl;
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
  function plural(n, one, many) { return n + " " + (n === 1 ? one : (many || one + "s")); }
  var CONT = /(&&|\|\||,|\()\s*$/;
  var RUN_WHY = {shared: "it changed the shared state", report: "the kernel reported something",
    bad: "a property broke", fatal: "the run ended", done: "it finished", blocked: "it cannot move on",
    choice: "its next step has several outcomes", loop: "it came back to an earlier state", cap: "500 steps"};

  // where solved puzzles are remembered: the page's file name and the stepper's id
  function solvedKey(id) {
    var page = ((G.location && G.location.pathname) || "").split("/").pop().replace(/\.html?$/, "") || "index";
    return "kvmlab-solved:" + page + ":" + id;
  }
  function readSolved(id) {
    try { var v = G.localStorage.getItem(solvedKey(id)); return v ? JSON.parse(v) : null; }
    catch (e) { return null; }
  }
  function writeSolved(id, rec) {
    try { G.localStorage.setItem(solvedKey(id), JSON.stringify(rec)); } catch (e) { /* storage off */ }
  }

  function Player(root, data, opts) {
    this.root = root;
    this.d = data;
    this.opts = opts || {};
    this.g = new Core.Graph(data);
    this.h = new Core.History(this.g);
    this.n = this.g.n;
    this.timer = null;
    this.assisted = "";       // "Show me" or "a link" made this run: it does not count as solved
    this.notice = "";
    this.lastHash = "";
    this.build();
    var restored = false;
    if (this.opts.hash !== false) {
      var h = Url.readTrace(this.hashKey());
      if (h) { this.loadTrace(h); restored = true; }
      this.lastHash = h || "";   // our key's value in the URL as we last read or wrote it
    }
    this.render();
    if (restored && this.opts.scroll !== false) Url.reveal(root);
  }
  // read-only views of the history, for page scripts (the diagrams' links mark the current state)
  Object.defineProperty(Player.prototype, "path", {get: function () { return this.h.path; }});
  Object.defineProperty(Player.prototype, "pos", {get: function () { return this.h.pos; }});
  Player.prototype.hashKey = function () { return "stepper-" + this.d.id; };
  Player.prototype.s = function (i) { return i < 0 ? null : this.d.strings[i]; };
  Player.prototype.current = function () { return this.h.current(); };

  /* ---- building the DOM once ---- */
  Player.prototype.build = function () {
    var d = this.d, self = this, root = this.root, g = this.g;
    this.uid = "ks" + (++uidCounter);
    clear(root);
    root.classList.add("kvmlab-stepper");
    root.setAttribute("role", "group");
    root.setAttribute("aria-label", "Stepper: " + d.title);
    root.tabIndex = 0;
    root.style.setProperty("--ks-ncpu", String(Math.min(this.n, 4)));
    root.classList.toggle("ks-many", this.n > 4);  // two rows of CPUs: shorter code panes

    var head = el("div", "ks-head");
    head.appendChild(el("span", "ks-title", d.title));
    var meta = [d.model + " · " + d.variant];
    if (d.commit) meta.push(d.commit);
    var cfg = Object.keys(d.config || {}).map(function (k) { return k + "=" + (d.config[k] ? "y" : "n"); });
    var prm = Object.keys(d.params || {}).map(function (k) { return k + "=" + d.params[k]; });
    if (cfg.length) meta.push(cfg.join(" "));
    if (prm.length) meta.push(prm.join(" "));
    meta.push(d.states.length + " states");
    if (d.fairness && d.fairness !== "none") meta.push(d.fairness + " fairness");
    head.appendChild(el("span", "ks-meta", meta.join(" · ")));
    this.solvedBadge = el("span", "ks-solved-badge", "");
    head.appendChild(this.solvedBadge);
    root.appendChild(head);

    var goalProp = g.goal();
    if (d.goal || goalProp) {
      var goal = el("div", "ks-goal");
      goal.appendChild(el("span", "ks-goal-label", "Goal: "));
      goal.appendChild(el("span", "ks-goal-text", d.goal || ("break " + (d.goal_properties || [goalProp]).join(" or "))));
      if (d.par) {
        goal.appendChild(el("span", "ks-par", "par: " + plural(d.par.steps, "step") + ", "
          + plural(d.par.switches, "context switch", "context switches")));
      }
      root.appendChild(goal);
    }

    var bar = el("div", "ks-bar");
    this.undoBtn = button("ks-btn", "↶ Undo", "Undo the last Reset or Show me (key u)");
    this.resetBtn = button("ks-btn", "⟲ Reset", "Reset to the initial state (key r; Undo brings the run back)");
    this.backBtn = button("ks-btn", "◀ Back", "Back one step (key Left arrow)");
    this.fwdBtn = button("ks-btn", "Forward ▶", "Forward one step (key Right arrow)");
    this.undoBtn.setAttribute("aria-keyshortcuts", "u");
    this.resetBtn.setAttribute("aria-keyshortcuts", "r");
    this.backBtn.setAttribute("aria-keyshortcuts", "ArrowLeft");
    this.fwdBtn.setAttribute("aria-keyshortcuts", "ArrowRight");
    this.undoBtn.addEventListener("click", function () { self.stop(); self.undo(); });
    this.resetBtn.addEventListener("click", function () { self.stop(); self.reset(); });
    this.backBtn.addEventListener("click", function () { self.stop(); self.jump(self.h.pos - 1); });
    this.fwdBtn.addEventListener("click", function () { self.stop(); self.jump(self.h.pos + 1); });
    [this.undoBtn, this.resetBtn, this.backBtn, this.fwdBtn].forEach(function (b) { bar.appendChild(b); });
    this.counter = el("span", "ks-counter");
    bar.appendChild(this.counter);
    if (g.showProperty()) {
      var sp = g.showProperty();
      this.showBtn = button("ks-btn ks-show", "Show me",
        "Show me: play the shortest interleaving that breaks " + sp + " (Undo brings your run back)");
      this.showBtn.addEventListener("click", function () { self.showMe(); });
      bar.appendChild(this.showBtn);
    }
    this.wideBtn = button("ks-btn ks-wide", "⤢ Wide", "Play in the whole window (Escape to leave)");
    this.wideBtn.setAttribute("aria-pressed", "false");
    this.wideBtn.addEventListener("click", function () { self.toggleWide(); });
    bar.appendChild(this.wideBtn);
    this.keys = el("span", "ks-keys", "Click the stepper first, then: 0–" + (this.n - 1)
      + " step a CPU · Shift+digit run it · ← → history · r reset · u undo");
    bar.appendChild(this.keys);
    root.appendChild(bar);

    this.status = el("div", "ks-status");
    this.statusMain = el("div", "ks-st-main");
    this.statusSide = el("div", "ks-st-side");
    this.status.appendChild(this.statusMain);
    this.status.appendChild(this.statusSide);
    root.appendChild(this.status);
    this.live = el("div", "ks-sr");
    this.live.setAttribute("aria-live", "polite");
    this.live.setAttribute("role", "status");
    root.appendChild(this.live);

    var cpus = el("div", "ks-cpus");
    this.cpu = [];
    d.threads.forEach(function (th, tid) {
      var box = el("section", "ks-cpu" + (tid === 0 ? " ks-open" : ""));
      box.setAttribute("aria-label", th.label + ": " + th.title);
      var h = el("div", "ks-cpu-head");
      h.appendChild(el("span", "ks-cpu-label", th.label));
      var title = (th.title || "").indexOf(th.label + ": ") === 0 ? th.title.slice(th.label.length + 2) : th.title;
      if (title && title !== th.label) h.appendChild(el("span", "ks-cpu-title", title));
      var tog = button("ks-btn ks-codetog", "code", "Show " + th.label + "'s code");
      tog.setAttribute("aria-expanded", tid === 0 ? "true" : "false");
      tog.addEventListener("click", function () {
        var open = !box.classList.contains("ks-open");
        box.classList.toggle("ks-open", open);
        tog.setAttribute("aria-expanded", open ? "true" : "false");
        if (open) self.keepInView(tid);
      });
      h.appendChild(tog);
      box.appendChild(h);
      var btns = el("div", "ks-cpu-btns");
      var key = tid < 10 ? String(tid) : "";
      var step = button("ks-btn ks-step", "Step", "Step " + th.label + (key ? " (key " + key + ")" : ""));
      step.appendChild(el("span", "ks-lbl", " " + th.label));
      if (key) step.appendChild(el("span", "ks-key", " [" + key + "]"));
      if (key) step.setAttribute("aria-keyshortcuts", key);
      step.dataset.tid = tid;
      step.addEventListener("click", function () { self.stop(); self.stepThread(tid, true); });
      btns.appendChild(step);
      var run = button("ks-btn ks-run", "▶▶", "Run " + th.label + " until it touches shared state, blocks, "
        + "finishes, reaches a choice or reports" + (key ? " (key Shift+" + key + ")" : ""));
      run.title = "Run " + th.label + " until it touches shared state, blocks, finishes, reaches a choice or reports";
      run.addEventListener("click", function () { self.stop(); self.runThread(tid, true); });
      btns.appendChild(run);
      var choices = el("span", "ks-choices");
      btns.appendChild(choices);
      box.appendChild(btns);
      var why = el("div", "ks-why");
      why.id = self.uid + "-why-" + tid;
      step.setAttribute("aria-describedby", why.id);
      run.setAttribute("aria-describedby", why.id);
      box.appendChild(why);
      var curline = el("div", "ks-curline");
      curline.setAttribute("aria-hidden", "true");
      box.appendChild(curline);
      var code = el("ol", "ks-code");
      code.setAttribute("aria-label", th.label + " code");
      var lines = [], lastFn = null, prevText = "";
      th.code.forEach(function (st, pc) {
        var fn = self.s(st[0]);
        if (fn !== lastFn) {
          code.appendChild(el("li", "ks-fn", fn + "()"));
          lastFn = fn;
          prevText = "";
        }
        var li = el("li", "ks-line");
        li.appendChild(el("span", "ks-mark", ""));
        var txt = el("span", "ks-c");
        var ind = st[3] || [];
        st[1].forEach(function (ci, k) {
          var raw = self.s(ci), cont = CONT.test(prevText);
          var line = el("span", "ks-cl", cont ? raw : raw.replace(/^\s+/, ""));
          line.style.paddingLeft = (2 * (ind[k] || 0)) + "ch";
          txt.appendChild(line);
          prevText = raw;
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
      self.cpu.push({box: box, step: step, run: run, choices: choices, why: why, lines: lines, code: code,
                     ctx: ctx, cur: -2, curline: curline});
    });
    root.appendChild(cpus);

    var bottom = el("div", "ks-bottom");
    var shBox = el("section", "ks-panel ks-shared");
    shBox.setAttribute("aria-label", "Shared state");
    shBox.appendChild(el("div", "ks-h", "Shared state"));
    this.sharedGrid = el("dl", "ks-grid");
    shBox.appendChild(this.sharedGrid);
    bottom.appendChild(shBox);
    root.appendChild(bottom);

    var more = el("div", "ks-more");
    var prBox = el("section", "ks-panel ks-props");
    prBox.setAttribute("aria-label", "Properties");
    prBox.appendChild(el("div", "ks-h", "Properties"));
    this.propList = el("ul", "ks-proplist");
    prBox.appendChild(this.propList);
    more.appendChild(prBox);
    var hiBox = el("section", "ks-panel ks-history");
    hiBox.setAttribute("aria-label", "History");
    hiBox.appendChild(el("div", "ks-h", "History"));
    this.histList = el("ol", "ks-hist");
    this.histList.setAttribute("aria-label", "History: click a step to go back to it");
    hiBox.appendChild(this.histList);
    more.appendChild(hiBox);
    var con = el("section", "ks-panel ks-console-box");
    con.setAttribute("aria-label", "Kernel console");
    con.appendChild(el("div", "ks-h", "Console (dmesg)"));
    this.console = el("pre", "ks-console");
    con.appendChild(this.console);
    more.appendChild(con);
    root.appendChild(more);

    root.addEventListener("keydown", function (ev) { self.onKey(ev); });
    // a stepper revealed later (a folded box, a hidden answer): bring each current line into view
    if (G.ResizeObserver) {
      var ro = new G.ResizeObserver(function () { for (var t = 0; t < self.n; t++) self.keepInView(t); });
      this.cpu.forEach(function (c) { ro.observe(c.code); });
    }
  };

  Player.prototype.toggleWide = function (on) {
    var wide = on === undefined ? !this.root.classList.contains("ks-wide-on") : on;
    this.root.classList.toggle("ks-wide-on", wide);
    this.wideBtn.setAttribute("aria-pressed", wide ? "true" : "false");
    this.wideBtn.textContent = wide ? "⤡ Leave wide" : "⤢ Wide";
    if (document.body) document.body.classList.toggle("ks-body-wide", wide);
    for (var t = 0; t < this.n; t++) this.keepInView(t);
  };

  /* ---- actions ---- */
  Player.prototype.take = function (edge, tid) {
    this.h.take(edge);
    this.render({announce: true, focusTid: tid});
  };
  // tid's step button: take its one move, or ask for an outcome, or say why it cannot move
  Player.prototype.stepThread = function (tid, fromClick) {
    var es = this.g.edgesOf(this.current(), tid);
    if (es.length === 1) this.take(es[0], fromClick ? tid : undefined);
    else if (es.length > 1) {
      var c = this.cpu[tid].choices.querySelector("button");
      if (c) c.focus();
      this.say(this.d.threads[tid].label + ": choose an outcome: " + es.map(function (e) { return e.choice; }).join(" / "));
    } else {
      this.say(this.d.threads[tid].label + " cannot move: " + this.cpu[tid].why.textContent);
    }
  };
  Player.prototype.runThread = function (tid, fromClick) {
    var r = Core.runUntil(this.g, this.h, tid);
    if (r.steps === 0) { this.stepThread(tid, fromClick); return; }
    this.render({announce: true, focusTid: fromClick ? tid : undefined,
                 run: this.d.threads[tid].label + " ran " + plural(r.steps, "step") + " and stopped: " + RUN_WHY[r.why] + ". "});
  };
  Player.prototype.jump = function (p) {
    if (this.h.jump(p)) this.render({announce: true});
  };
  Player.prototype.reset = function () {
    if (!this.h.moves.length) return;
    this.h.reset("reset");
    this.h.undos[this.h.undos.length - 1].assisted = this.assisted;
    this.assisted = "";
    this.render({announce: true});
  };
  Player.prototype.undo = function () {
    var u = this.h.undos[this.h.undos.length - 1];
    if (!u) return;
    this.h.undo();
    this.assisted = u.assisted || "";
    this.render({announce: true});
  };
  Player.prototype.loadTrace = function (h) {
    var r = this.h.load(h.split(","));
    this.notice = "";
    if (r.cut && r.cut.reason === "cap") {
      this.notice = "This link's trace has " + r.total + " steps: the stepper loaded the first "
        + Core.TRACE_CAP + ".";
    } else if (r.cut) {
      this.notice = "This link's trace was cut at item " + r.cut.at + " (\"" + r.cut.item
        + "\"): no such move there. The " + plural(r.applied, "step") + " before it are loaded.";
    }
    this.assisted = r.applied ? "a link" : "";
    return r;
  };
  Player.prototype.stop = function () {
    if (this.timer) { clearTimeout(this.timer); this.timer = null; }
    if (this.showBtn) this.showBtn.textContent = "Show me";
  };
  Player.prototype.showMe = function () {
    var self = this;
    if (this.timer) { this.stop(); return; }
    var cex = this.d.counterexamples[this.g.showProperty()];
    if (!cex) return;
    var sched = cex.schedule.slice();
    if (this.h.moves.length) {
      this.h.reset("show me");
      this.h.undos[this.h.undos.length - 1].assisted = this.assisted;
    } else this.h.reset("show me");
    this.assisted = "Show me";
    this.render({});
    var reduce = G.matchMedia && G.matchMedia("(prefers-reduced-motion: reduce)").matches;
    var delay = this.opts.delay !== undefined ? this.opts.delay
      : (reduce ? 0 : Math.max(120, Math.min(450, Math.floor(6000 / Math.max(1, sched.length)))));
    if (delay === 0) {
      this.h.load(sched);
      this.render({announce: true});
      return;
    }
    this.showBtn.textContent = "Stop";
    var k = 0;
    function tick() {
      if (k >= sched.length) { self.timer = null; self.showBtn.textContent = "Show me"; return; }
      var e = self.g.edges(self.current()).filter(function (x) { return x.move === sched[k]; })[0];
      if (!e) { self.stop(); return; }
      k += 1;
      self.h.take(e);
      self.render({announce: k === sched.length});
      self.timer = setTimeout(tick, delay);
    }
    this.timer = setTimeout(tick, delay);
  };
  Player.prototype.onKey = function (ev) {
    if (ev.altKey || ev.ctrlKey || ev.metaKey) return;
    var t = ev.target;
    if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA")) return;
    var k = ev.key, m = /^Digit([0-9])$/.exec(ev.code || "");
    var digit = /^[0-9]$/.test(k) ? +k : (m ? +m[1] : -1);
    if (digit >= 0 && digit < this.n) {
      this.stop();
      if (ev.shiftKey) this.runThread(digit, false); else this.stepThread(digit, false);
      ev.preventDefault();
    } else if (k === "ArrowLeft") { this.stop(); this.jump(this.h.pos - 1); ev.preventDefault(); }
    else if (k === "ArrowRight") { this.stop(); this.jump(this.h.pos + 1); ev.preventDefault(); }
    else if (k === "r" || k === "R") { this.stop(); this.reset(); ev.preventDefault(); }
    else if (k === "u" || k === "U") { this.stop(); this.undo(); ev.preventDefault(); }
    else if (k === "Escape" && this.root.classList.contains("ks-wide-on")) { this.toggleWide(false); ev.preventDefault(); }
  };
  Player.prototype.say = function (text) { this.live.textContent = text; };

  // keep tid's current line visible inside its code pane (never scrolls the page)
  Player.prototype.keepInView = function (tid) {
    var c = this.cpu[tid];
    if (!c || c.cur < 0) return;
    var li = c.lines[c.cur], pane = c.code;
    if (!pane.clientHeight) return;
    var top = li.offsetTop, bottom = top + li.offsetHeight;  // the pane is the line's offsetParent
    if (top < pane.scrollTop + 4 || bottom > pane.scrollTop + pane.clientHeight - 4) {
      pane.scrollTop = Math.max(0, top - pane.clientHeight / 3);
    }
  };

  /* ---- rendering ---- */
  Player.prototype.render = function (how) {
    how = how || {};
    var t0 = (G.performance && performance.now) ? performance.now() : 0;
    var self = this, d = this.d, g = this.g, h = this.h;
    var cur = this.current();
    var ths = g.threads(cur);
    var es = g.edges(cur);
    var a = Core.assess(g, h);
    var active = document.activeElement;

    ths.forEach(function (th, tid) {
      var c = self.cpu[tid];
      var mine = es.filter(function (e) { return e.tid === tid; });
      if (c.cur !== th.pc) {
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
          c.curline.textContent = "▶ " + Array.prototype.map.call(li.querySelectorAll(".ks-cl"),
            function (x) { return x.textContent.trim(); }).join(" ");
        } else c.curline.textContent = "✓ done";
        self.keepInView(tid);
      }
      c.box.classList.toggle("ks-done", th.pc < 0);
      clear(c.choices);
      var blocked = mine.length === 0;
      c.step.setAttribute("aria-disabled", blocked ? "true" : "false");
      c.run.setAttribute("aria-disabled", blocked ? "true" : "false");
      c.step.classList.toggle("ks-off", blocked);
      c.run.classList.toggle("ks-off", blocked);
      if (blocked) {
        var why = th.pc < 0 ? "done" : (th.status || "cannot move");
        c.why.textContent = (th.pc < 0 ? "✓ " : "blocked: ") + why;
        c.why.className = "ks-why ks-blocked";
      } else if (mine.length > 1) {
        c.why.textContent = "this step has " + mine.length + " outcomes:";
        c.why.className = "ks-why";
        mine.forEach(function (e) {
          var b = button("ks-btn ks-choice", e.choice || e.move,
            "Step " + d.threads[tid].label + " with outcome " + (e.choice || e.move));
          b.dataset.move = e.move;
          b.addEventListener("click", function () { self.stop(); self.take(e, tid); });
          c.choices.appendChild(b);
        });
      } else {
        c.why.textContent = "";
        c.why.className = "ks-why";
      }
      c.ctx.textContent = th.ctx;
    });

    this.renderShared(cur);
    this.renderProps(a, es.length === 0);
    this.renderStatus(a);
    this.renderHistory();

    var lines = [];
    a.violations.forEach(function (v) {
      if (v.kind === "splat") lines.push("[step " + v.step + "] " + v.text);
      else lines.push("[step " + v.step + "] kvmlab: " + v.prop + ": " + v.msg);
    });
    this.console.textContent = lines.length ? lines.join("\n\n") : "(no kernel messages)";
    this.console.classList.toggle("ks-console-bad", lines.length > 0);

    this.backBtn.disabled = h.pos === 0;
    this.fwdBtn.disabled = h.pos >= h.path.length - 1;
    this.resetBtn.disabled = h.moves.length === 0;
    this.undoBtn.disabled = !h.canUndo();
    var u = h.undos[h.undos.length - 1];
    this.undoBtn.textContent = u ? "↶ Undo " + u.why : "↶ Undo";
    this.counter.textContent = "step " + h.pos + (h.path.length - 1 > h.pos ? " of " + (h.path.length - 1) : "")
      + (a.fatal ? " · run ended" : "");

    if (a.outcome === "win" && !this.assisted && d.id) {
      var prev = readSolved(d.id);
      if (!prev || prev.steps > a.mine.steps) writeSolved(d.id, {steps: a.mine.steps, switches: a.mine.switches});
    }
    var solved = d.id ? readSolved(d.id) : null;
    this.solvedBadge.textContent = solved ? "✓ solved (" + plural(solved.steps, "step") + ")" : "";
    this.root.classList.toggle("ks-is-solved", !!solved);

    if (how.announce) {
      var last = h.pos > 0 ? h.moves[h.pos - 1] : null, say = "";
      if (last) {
        var pc = g.threads(h.path[h.pos - 1])[last.tid].pc;
        say = "Step " + h.pos + ": " + d.threads[last.tid].label + " ran "
          + d.threads[last.tid].code[pc][1].map(function (i) { return self.s(i).trim(); }).join(" ")
          + (last.choice ? " [" + last.choice + "]" : "") + ". ";
      } else say = "Step 0. ";
      this.say((how.run || "") + say + this.statusMain.textContent);
    }
    if (this.opts.hash !== false && h.trace() !== this.lastHash) this.scheduleHash();
    // focus: stay where the keyboard user was; a choice button that was rebuilt hands over to the
    // same CPU's first new choice or its Step button, any other rebuilt control to the stepper
    if (active && active !== document.body && !active.isConnected) {
      var ft = how.focusTid;
      var target = ft !== undefined ? (this.cpu[ft].choices.querySelector("button") || this.cpu[ft].step) : this.root;
      try { target.focus({preventScroll: true}); } catch (e) { target.focus(); }
    }
    this.root.dataset.state = cur;
    this.root.dataset.pos = h.pos;
    this.root.dataset.outcome = a.outcome;
    if (t0) this.lastRenderMs = performance.now() - t0;
  };

  Player.prototype.renderShared = function (cur) {
    var g = this.g, h = this.h, self = this;
    var now = g.shared(cur);
    var before = h.pos > 0 ? g.shared(h.path[h.pos - 1]) : null;
    var prev = {};
    if (before) before.forEach(function (kv) { prev[kv[0]] = kv[1]; });
    clear(this.sharedGrid);
    now.forEach(function (kv) {
      var changed = before && prev[kv[0]] !== kv[1];
      var cell = el("div", "ks-kv" + (changed ? " ks-changed" : ""));
      cell.appendChild(el("dt", null, kv[0]));
      var dd = el("dd", null, kv[1]);
      if (changed) {
        dd.setAttribute("aria-label", kv[1] + " (changed by the last step, was " + prev[kv[0]] + ")");
        dd.title = "was " + prev[kv[0]];
      }
      cell.appendChild(dd);
      self.sharedGrid.appendChild(cell);
    });
  };

  Player.prototype.renderProps = function (a, terminal) {
    var d = this.d, self = this;
    clear(this.propList);
    var loopBad = a.win && a.win.loop;
    Object.keys(d.properties).forEach(function (p) {
      var v = a.violations.filter(function (x) { return x.prop === p; })[0];
      if (!v && p === "terminates" && loopBad) {
        v = {prop: p, step: loopBad.to, msg: "steps " + (loopBad.from + 1) + "–" + loopBad.to + " can repeat forever"};
      }
      var li = el("li", "ks-prop " + (v ? (self.g.isGoal(p) ? "ks-bad-goal" : "ks-bad") : "ks-ok"));
      li.appendChild(el("span", "ks-icon", v ? "✗" : (terminal ? "✓" : "…")));
      li.appendChild(el("code", null, p));
      li.appendChild(el("span", "ks-prop-msg", v ? " broken at step " + v.step + ": " + v.msg
        : (terminal ? " held on this run" : " holds so far")));
      if (d.properties[p]) li.appendChild(el("span", "ks-prop-desc", " — " + d.properties[p]));
      self.propList.appendChild(li);
    });
  };

  Player.prototype.renderStatus = function (a) {
    var d = this.d, g = this.g, self = this, main = this.statusMain, side = this.statusSide;
    clear(main);
    clear(side);
    var cls = "ks-status ks-banner ks-st-" + a.outcome;  // ks-banner: the status's older name, kept for page scripts
    function strong(t) { main.appendChild(el("strong", null, t)); }
    function text(t, where) { (where || main).appendChild(el("span", null, t)); }
    function backButton(p) {
      var b = button("ks-btn ks-goback", "Back to step " + p, "Go back to step " + p);
      b.addEventListener("click", function () { self.stop(); self.jump(p); });
      main.appendChild(b);
    }
    var par = a.par ? " · par: " + plural(a.par.steps, "step") + ", "
      + plural(a.par.switches, "switch", "switches") : "";
    var mine = "your run: " + plural(a.mine.steps, "step") + ", " + plural(a.mine.switches, "switch", "switches");
    if (a.outcome === "win") {
      if (a.win.loop) {
        strong("★ You found it: ");
        text("you are back in the state of step " + a.win.loop.from + ": this can repeat forever. ");
      } else {
        strong("★ You found it: ");
        main.appendChild(el("code", null, a.win.prop));
        text(" — " + a.win.msg + " (step " + a.win.step + "). ");
      }
      text(mine + par + (this.assisted ? " (played by " + this.assisted + ": not counted as solved)" : "") + ".");
    } else if (a.outcome === "safe") {
      strong("✓ The explorer checked all " + d.states.length + " states: ");
      if (g.goal()) {
        text("no schedule reaches the bad state. ");
        text(a.terminal ? "This run finished, as promised." : "Try anyway: every state you can reach is one of them.");
      } else {
        text("no schedule breaks a property. ");
        text(a.terminal ? "This run finished." : d.goal ? "Follow the goal above to see how." : "Step as you like.");
      }
    } else if (a.outcome === "free") {
      strong("Free play: ");
      text("schedules can break " + Object.keys(d.counterexamples).join(", ") + ".");
    } else if (a.outcome === "lost") {
      strong("✗ Run over, goal not reached. ");
      if (a.back >= 0) { text("From step " + a.back + " it was still reachable. "); backButton(a.back); }
    } else if (a.outcome === "dead") {
      strong("✗ No longer reachable: ");
      text("no schedule from here reaches the goal. ");
      if (a.back >= 0) backButton(a.back);
    } else {
      strong("Goal reachable: ");
      text("at least " + plural(a.dist, "more step") + " from here" + (a.mine.steps ? " (" + mine + ")" : "") + ".");
    }
    // the second line: a notice from the URL, a loop played by hand, or what else broke
    var sideCls = "";
    if (this.notice) { text("⚠ " + this.notice, side); sideCls = " ks-side-notice"; this.notice = ""; }
    else if (a.loop && !(a.win && a.win.loop && a.win.loop.to === a.loop.to)) {
      var lp = a.loop;
      text("↻ You are back in the state of step " + lp.from + ": this can repeat forever", side);
      if (!lp.fair) {
        text(", but only if the scheduler never runs " + lp.starved.join(", ") + ", which could run "
          + (lp.fairness === "weak" ? "all along" : "in this loop") + ": the model assumes " + lp.fairness
          + " fairness, so this is not a hang.", side);
      } else text(g.isGoal("terminates") ? "." : " (a livelock: terminates does not hold on this run).", side);
      sideCls = " ks-side-loop";
    } else if (a.side.length) {
      var v = a.side[0];
      side.appendChild(el("strong", null, "⚠ Also broken: "));
      side.appendChild(el("code", null, v.prop));
      text(" at step " + v.step + ": " + v.msg + (a.side.length > 1 ? " (+" + (a.side.length - 1) + " more below)" : ""), side);
      sideCls = " ks-side-amber";
    }
    // ks-banner-bad: a hook for tests and styles, "something broke on this run"
    this.status.className = cls + sideCls + (a.violations.length || (a.win && a.win.loop) ? " ks-banner-bad" : "");
  };

  Player.prototype.renderHistory = function () {
    var self = this, d = this.d, g = this.g, h = this.h;
    var items = this.histItems || (this.histItems = []);
    var k0 = 0;
    while (k0 < items.length && k0 < h.moves.length && items[k0].edge === h.moves[k0]
           && items[k0].from === h.path[k0]) k0++;
    for (var r = items.length - 1; r >= k0; r--) { this.histList.removeChild(items[r].li); items.pop(); }
    if (this.emptyHist) { this.histList.removeChild(this.emptyHist); this.emptyHist = null; }
    var frag = document.createDocumentFragment();
    for (var k = k0; k < h.moves.length; k++) {
      (function (k) {
        var e = h.moves[k];
        var pc = g.threads(h.path[k])[e.tid].pc;
        var code = d.threads[e.tid].code[pc];
        var text = d.threads[e.tid].label + ": " + code[1].map(function (i) { return self.s(i).trim(); }).join(" ");
        if (e.choice) text += "  [" + e.choice + "]";
        if (e.splat >= 0) text += "  ⚠ report";
        var li = el("li");
        var b = button("ks-hist-btn", text, "Go to step " + (k + 1) + ": " + text);
        b.addEventListener("click", function () { self.stop(); self.jump(k + 1); });
        li.appendChild(b);
        frag.appendChild(li);
        items.push({edge: e, from: h.path[k], li: li, btn: b});
      })(k);
    }
    this.histList.appendChild(frag);
    for (var j = 0; j < items.length; j++) {
      var it = items[j];
      var cls = (j < h.pos ? "ks-past" : "ks-future") + (j + 1 === h.pos ? " ks-here" : "");
      if (it.li.className !== cls) {
        it.li.className = cls;
        if (j + 1 === h.pos) it.btn.setAttribute("aria-current", "step");
        else it.btn.removeAttribute("aria-current");
      }
    }
    if (h.pos > 0 && items[h.pos - 1] && this.lastHistPos !== h.pos) {
      var li = items[h.pos - 1].li, box = this.histList;
      if (li.offsetTop < box.scrollTop || li.offsetTop + li.offsetHeight > box.scrollTop + box.clientHeight) {
        box.scrollTop = li.offsetTop - box.clientHeight / 2;
      }
    }
    this.lastHistPos = h.pos;
    if (!items.length) { this.emptyHist = el("li", "ks-empty", "no step yet"); this.histList.appendChild(this.emptyHist); }
  };

  // the URL is updated shortly after the last change, outside the click's critical path
  // (and browsers throttle history.replaceState when it is called on every step of an animation)
  Player.prototype.scheduleHash = function () {
    var self = this;
    if (this.hashTimer) clearTimeout(this.hashTimer);
    this.hashTimer = setTimeout(function () {
      self.hashTimer = null;
      var now = Url.readTrace(self.hashKey()) || "";
      if (now !== self.lastHash) {  // the URL changed under us (a link, an edit): follow it
        self.onHash();
        return;
      }
      self.lastHash = self.h.trace();
      Url.writeTrace(self.hashKey(), self.lastHash);
    }, this.timer ? 400 : 60);
  };
  // a link in the page such as <a href="#stepper-ID=0,1,1">, or an edited URL, replays a trace
  // (the run it replaces can be brought back with Undo)
  Player.prototype.onHash = function () {
    var h = Url.readTrace(this.hashKey());
    if (h === null || h === this.h.trace()) {
      this.lastHash = h || "";
      return;
    }
    this.lastHash = h;
    this.stop();
    if (this.h.moves.length) this.h.reset("link");
    this.loadTrace(h);
    this.render({announce: true});
    if (this.opts.scroll !== false) Url.reveal(this.root);
  };

  G.KvmlabPlayer = Player;
})(typeof globalThis !== "undefined" ? globalThis : this);
