/* kvmlab runnable lab: an editor holding the answer cell, graded by kvmlab on Pyodide in a Web Worker.
 * Markup (written by kvmlab.widgets.labpage): <div class="kvmlab-lab" data-kvmlab-base="../_kvmlab/"
 * data-kvmlab-wheel="kvmlab-...whl?h=..."> with a <script type="application/json" class="kvmlab-lab-data">
 * {id, title, starter, names, bounds, timeout}. No network beyond this origin; text is set with
 * textContent only. Test hook: window.kvmlabLab = {ready, grade(source[, {timeout}]), starter, stop(), id}. */
(function () {
  "use strict";
  var G = window;
  if (G.KvmlabLabPage) return;

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function button(cls, text) {
    var b = el("button", cls, text);
    b.type = "button";
    return b;
  }

  /* ------------------------------------------------------------ runtime: one worker per page */
  function TimeLimit(seconds) {
    this.name = "TimeLimit";
    this.seconds = seconds;
    this.message = "time limit: stopped after " + seconds + " s";
  }
  function Stopped() { this.name = "Stopped"; this.message = "stopped"; }

  function Runtime(base, wheel) {
    this.base = base;
    this.wheel = wheel;
    this.seq = 0;
    this.pending = {};
    this.queue = Promise.resolve();
    this.listeners = [];
    this.state = "idle";
    this.worker = null;
  }
  // the worker starts on first use (the test hook's `ready`, Grade, or the box coming near the viewport)
  Runtime.prototype.ensure = function () {
    if (!this.worker && this.state !== "failed") this.start();
    return this.ready;
  };
  Runtime.prototype.start = function () {
    var self = this;
    this.state = "loading";
    this.emit();
    this.t0 = performance.now();
    var w;
    try {
      w = new Worker(new URL("lab-worker.js", new URL(this.base, document.baseURI)), {type: "module"});
    } catch (e) {
      this.ready = Promise.reject(e);
      this.ready.catch(function () {});
      this.state = "failed";
      this.error = String(e && e.message || e);
      this.emit();
      return;
    }
    this.worker = w;
    this.ready = new Promise(function (resolve, reject) {
      w.onmessage = function (ev) {
        var m = ev.data || {};
        if (m.cmd === "ready") {
          self.state = "ready";
          self.info = m.info;
          self.loadSeconds = (performance.now() - self.t0) / 1000;
          self.emit();
          resolve(m.info);
          return;
        }
        if (m.cmd === "failed") {
          self.state = "failed";
          self.error = m.error;
          self.emit();
          reject(new Error(m.error));
          return;
        }
        var p = self.pending[m.id];
        if (!p) return;
        delete self.pending[m.id];
        p.done(m);
      };
      w.onerror = function (ev) {
        var msg = (ev && ev.message) || "the worker could not start";
        if (self.state === "loading") {
          self.state = "failed";
          self.error = msg;
          self.emit();
          reject(new Error(msg));
        }
      };
    });
    this.ready.catch(function () {});
    w.postMessage({cmd: "init", wheel: this.wheel});
  };
  Runtime.prototype.emit = function () {
    var self = this;
    this.listeners.forEach(function (f) { f(self); });
  };
  Runtime.prototype.onChange = function (f) { this.listeners.push(f); f(this); };
  // terminate the worker (endless loop, or the reader pressed Stop) and start a fresh one
  Runtime.prototype.restart = function (err) {
    if (this.worker) this.worker.terminate();
    var pend = this.pending;
    this.pending = {};
    Object.keys(pend).forEach(function (k) { pend[k].fail(err); });
    this.start();
  };
  Runtime.prototype.stop = function () { this.restart(new Stopped()); };
  // one request at a time; the time limit counts from when the worker gets the request
  Runtime.prototype.call = function (msg, limitSeconds) {
    var self = this;
    var job = this.queue.then(function () {
      return self.ensure().then(function () {
        return new Promise(function (resolve, reject) {
          var id = ++self.seq;
          var timer = null;
          self.pending[id] = {
            done: function (m) {
              clearTimeout(timer);
              if (m.ok) resolve(JSON.parse(m.json));
              else reject(new Error(m.error));
            },
            fail: function (e) { clearTimeout(timer); reject(e); }
          };
          msg.id = id;
          self.worker.postMessage(msg);
          if (limitSeconds) {
            timer = setTimeout(function () {
              if (self.pending[id]) self.restart(new TimeLimit(limitSeconds));
            }, limitSeconds * 1000);
          }
        });
      });
    });
    this.queue = job.catch(function () {});
    return job;
  };
  var runtimes = {};
  function runtimeFor(base, wheel) {
    var key = base + "|" + wheel;
    if (!runtimes[key]) runtimes[key] = new Runtime(base, wheel);
    return runtimes[key];
  }

  /* ------------------------------------------------------------ the stepper's player */
  var stepperLoading = null;
  function withStepper(base) {
    if (G.KvmlabStepper) return Promise.resolve(G.KvmlabStepper);
    if (!stepperLoading) {
      stepperLoading = new Promise(function (resolve, reject) {
        var link = document.createElement("link");
        link.rel = "stylesheet";
        link.href = base + "stepper.css";
        document.head.appendChild(link);
        var s = document.createElement("script");
        s.src = base + "stepper.js";
        s.onload = function () { resolve(G.KvmlabStepper); };
        s.onerror = function () { reject(new Error("could not load the stepper")); };
        document.head.appendChild(s);
      });
    }
    return stepperLoading;
  }
  function mountStepper(base, host, data) {
    return withStepper(base).then(function (K) {
      var root = el("div", "kvmlab-stepper");
      host.appendChild(root);
      K.mount(root, data, {hash: false, scroll: false});
      return root;
    });
  }

  /* ------------------------------------------------------------ one lab box */
  function fmtSeconds(s) { return s < 10 ? s.toFixed(1) : String(Math.round(s)); }

  function LabBox(root) {
    var self = this;
    var data = JSON.parse(root.querySelector("script.kvmlab-lab-data").textContent);
    this.root = root;
    this.data = data;
    this.base = root.getAttribute("data-kvmlab-base");
    this.limit = data.timeout || 20;
    this.kind = data.kind || "lab";
    this.key = (this.kind === "try" ? "kvmlab-try-draft:" : "kvmlab-lab-draft:") + data.id;
    this.rt = runtimeFor(this.base, root.getAttribute("data-kvmlab-wheel"));
    while (root.lastChild && root.lastChild.tagName !== "SCRIPT") root.removeChild(root.lastChild);
    // the notebook's static answer cell right before the box: the editor replaces it
    var prev = root.previousElementSibling;
    while (prev && (prev.tagName === "LINK" || prev.tagName === "SCRIPT")) prev = prev.previousElementSibling;
    if (prev && /(^|\s)tag_(answer|starter)(\s|$)/.test(prev.className)) prev.classList.add("kl-replaced");
    Array.prototype.slice.call(root.querySelectorAll("noscript, .kvmlab-lab-fallback")).forEach(function (n) {
      n.parentNode.removeChild(n);
    });

    var head = el("div", "kl-head");
    head.appendChild(el("strong", "kl-title", "Try it here: " + (data.title || data.id)));
    this.statusEl = el("span", "kl-runtime");
    this.statusEl.setAttribute("aria-live", "polite");
    head.appendChild(this.statusEl);
    root.appendChild(head);
    root.appendChild(el("p", "kl-help", this.kind === "try" ?
      "Write " + (data.names || []).join(", ") + " below and press Check: the explorer checks it in your " +
      "browser, with " + data.bounds + ". Your draft is kept in this browser. In the editor, Ctrl+Enter " +
      "checks, Tab indents; press Esc then Tab to leave it." :
      "Edit the answer below (" + (data.names || []).join(", ") + ") and press Grade: the explorer " +
      "checks it in your browser, in the same configurations as kvmlab grade. Your draft is " +
      "kept in this browser. In the editor, Ctrl+Enter grades, Tab indents; press Esc then Tab to leave it."));

    var edHost = el("div", "kl-editor");
    root.appendChild(edHost);
    var draft = null;
    try { draft = G.localStorage.getItem(this.key); } catch (e) { draft = null; }
    var initial = draft !== null ? draft : data.starter;
    var save = function (text) {
      try {
        if (text === data.starter) G.localStorage.removeItem(self.key);
        else G.localStorage.setItem(self.key, text);
      } catch (e) { /* storage may be disabled: the draft lives in the page only */ }
    };
    if (G.KvmlabEditor) {
      this.editor = G.KvmlabEditor.create(edHost, {doc: initial, label: "answer code for " + data.id,
                                                    onChange: save});
    } else {  // the editor bundle did not load: a plain text area still works
      var ta = el("textarea", "kl-textarea");
      ta.value = initial;
      ta.spellcheck = false;
      ta.setAttribute("aria-label", "answer code for " + data.id);
      ta.addEventListener("input", function () { save(ta.value); });
      edHost.appendChild(ta);
      this.editor = {get: function () { return ta.value; }, set: function (t) { ta.value = t; save(t); },
                     focus: function () { ta.focus(); }};
    }

    var bar = el("div", "kl-bar");
    this.gradeBtn = button("kl-grade", this.kind === "try" ? "Check" : "Grade");
    this.stopBtn = button("kl-stop", "Stop");
    this.stopBtn.disabled = true;
    this.resetBtn = button("kl-reset", "Reset to starter");
    this.draftEl = el("span", "kl-draft", draft !== null ? "your saved draft" : "");
    bar.appendChild(this.gradeBtn);
    bar.appendChild(this.stopBtn);
    bar.appendChild(this.resetBtn);
    bar.appendChild(this.draftEl);
    root.appendChild(bar);
    this.result = el("div", "kl-result");
    this.result.setAttribute("role", "status");
    this.result.setAttribute("aria-live", "polite");
    root.appendChild(this.result);
    this.stepperHost = el("div", "kl-stepper");
    root.appendChild(this.stepperHost);

    this.gradeBtn.addEventListener("click", function () { self.grade(self.editor.get()); });
    edHost.addEventListener("keydown", function (ev) {
      if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey) && !self.gradeBtn.disabled) {
        ev.preventDefault();
        self.grade(self.editor.get());
      }
    });
    this.stopBtn.addEventListener("click", function () { self.rt.stop(); });
    this.resetBtn.addEventListener("click", function () {
      self.editor.set(data.starter);
      save(data.starter);
      self.draftEl.textContent = "reset to the starter (Ctrl+Z undoes)";
    });
    this.rt.onChange(function (rt) { self.showRuntime(rt); });
    var rt = this.rt;
    if (G.IntersectionObserver) {
      var io = new IntersectionObserver(function (entries) {
        if (entries.some(function (x) { return x.isIntersecting; })) { io.disconnect(); rt.ensure(); }
      }, {rootMargin: "1500px 0px"});
      io.observe(root);
    } else {
      rt.ensure();
    }
  }
  LabBox.prototype.showRuntime = function (rt) {
    if (rt.state === "idle") {
      this.statusEl.textContent = "Python (Pyodide) loads in your browser when you get here";
    } else if (rt.state === "loading") {
      this.statusEl.textContent = "loading Python (Pyodide) in your browser…";
    } else if (rt.state === "ready") {
      var i = rt.info || {};
      this.statusEl.textContent = "ready: Python " + (i.python || "?") + ", kvmlab " + (i.kvmlab || "?") +
        ", loaded in " + fmtSeconds(rt.loadSeconds) + " s; nothing leaves this page";
    } else {
      this.statusEl.textContent = "Python could not start here: " + rt.error;
    }
    this.statusEl.className = "kl-runtime kl-" + rt.state;
  };
  LabBox.prototype.busy = function (on) {
    this.gradeBtn.disabled = on;
    this.stopBtn.disabled = !on;
    this.root.classList.toggle("kl-busy", on);
  };
  // grade `source` (time limit: limitSeconds, default the page's), show the verdict, resolve to {passed, property, states, message, timeLimit, ...}
  LabBox.prototype.grade = function (source, limitSeconds) {
    var self = this;
    var limit = limitSeconds || this.limit;
    var t0 = performance.now();
    this.busy(true);
    this.result.className = "kl-result kl-running";
    this.result.textContent = "";
    while (this.stepperHost.firstChild) this.stepperHost.removeChild(this.stepperHost.firstChild);
    var line = el("span", null, "grading…");
    this.result.appendChild(line);
    var tick = setInterval(function () {
      var s = (performance.now() - t0) / 1000;
      line.textContent = (self.rt.state === "loading" ? "waiting for Python to load… " : "grading… ") +
        Math.floor(s) + " s (time limit " + limit + " s once Python is ready)";
    }, 500);
    var msg = this.kind === "try" ? {cmd: "try", spec: JSON.stringify(this.data.spec), source: source} :
      {cmd: "grade", lab: this.data.id, source: source};
    return this.rt.call(msg, limit).then(function (r) {
      clearInterval(tick);
      self.busy(false);
      return self.show(r, (performance.now() - t0) / 1000);
    }, function (e) {
      clearInterval(tick);
      self.busy(false);
      var msg, more = null;
      if (e && e.name === "TimeLimit") {
        msg = "FAIL: time limit: grading was stopped after " + e.seconds + " s";
        more = "Python was restarted. Does a step of your code never return? A Python loop inside a step " +
          "(such as while True:) never hands the CPU back to the explorer: write a loop as a step that " +
          "jumps back, by returning the name of the step to run next.";
      } else if (e && e.name === "Stopped") {
        msg = "Stopped: grading was interrupted";
        more = "Python was restarted.";
      } else {
        msg = "ERROR: the grader could not run: " + (e && e.message || e);
      }
      var rep = {passed: false, property: null, states: 0, message: msg,
                 timeLimit: !!(e && e.name === "TimeLimit"), stopped: !!(e && e.name === "Stopped")};
      self.result.className = "kl-result kl-fail";
      self.result.textContent = "";
      self.result.appendChild(el("div", "kl-headline", "✗ " + msg));
      if (more) self.result.appendChild(el("div", "kl-more", more));
      return rep;
    });
  };
  LabBox.prototype.show = function (r, wall) {
    var rep = r.report || {};
    var R = this.result;
    R.textContent = "";
    R.className = "kl-result " + (rep.passed ? "kl-pass" : "kl-fail");
    var word = rep.passed ? "✓ PASS" : "✗ FAIL";
    var lines = String(rep.message || "").split("\n");
    // kvmlab's message already starts with its verdict ("PASS: ...", "FAIL: ..."): only the mark is added
    R.appendChild(el("div", "kl-headline", /^(PASS|FAIL|ERROR|NOT YET)\b/.test(lines[0]) ?
      word.slice(0, 1) + " " + lines[0] : word + ": " + lines[0]));
    if (lines.length > 1) R.appendChild(el("div", "kl-detail", lines.slice(1).join("\n")));
    var bounds = Array.isArray(rep.bounds) ? rep.bounds.join("; ") : rep.bounds;
    if (bounds && (rep.message || "").indexOf(bounds) < 0 && !(rep.runs && rep.runs.length)) {
      R.appendChild(el("div", "kl-bounds", "Checked within: " + bounds));
    }
    if (rep.problem) R.appendChild(el("div", "kl-problem", rep.problem));
    // kvmlab's own message names the property in words and the counterexample: add them only if it does not
    var said = String(rep.message || "");
    if (!rep.passed && rep.property && !(r.words && said.indexOf(r.words) >= 0)) {
      var p = el("div", "kl-property");
      p.appendChild(document.createTextNode("Violated: "));
      p.appendChild(el("code", null, rep.property));
      if (r.words) p.appendChild(document.createTextNode(": " + r.words));
      R.appendChild(p);
    }
    var cx = rep.counterexample;
    if (cx && cx.message && said.indexOf(cx.message) < 0) R.appendChild(el("div", "kl-cx", "Shortest counterexample" +
      (cx.schedule ? " (" + cx.schedule.length + " steps)" : "") + ": " + cx.message));
    if (rep.error && (rep.message || "").indexOf(rep.error) < 0) R.appendChild(el("pre", "kl-error", rep.error));
    if (rep.runs && rep.runs.length) {
      var det = el("details", "kl-runs");
      det.appendChild(el("summary", null, "the " + rep.runs.length + " configuration" +
        (rep.runs.length > 1 ? "s" : "") + " checked"));
      var wrap = el("div", "kl-runs-wrap");
      var tbl = el("table");
      var hr = el("tr");
      ["configuration", "assumption", "verdict", "states"].forEach(function (h) { hr.appendChild(el("th", null, h)); });
      tbl.appendChild(hr);
      rep.runs.forEach(function (run) {
        var tr = el("tr");
        tr.appendChild(el("td", null, run.settings));
        tr.appendChild(el("td", null, run.assumption || ""));
        tr.appendChild(el("td", null, run.verdict + (run.failed && run.failed.length ? ": " + run.failed.join(", ") : "")));
        tr.appendChild(el("td", null, (run.states || 0).toLocaleString("en")));
        tbl.appendChild(tr);
      });
      wrap.appendChild(tbl);
      det.appendChild(wrap);
      R.appendChild(det);
    }
    R.appendChild(el("div", "kl-meta", (rep.states || 0).toLocaleString("en") + " states explored, " +
      fmtSeconds(r.seconds || 0) + " s in the worker (" + fmtSeconds(wall) + " s here)"));
    if (r.output) {
      var d = el("details", "kl-output");
      d.appendChild(el("summary", null, "what your code printed"));
      d.appendChild(el("pre", null, r.output));
      R.appendChild(d);
    }
    var out = {passed: !!rep.passed, property: rep.property || null, states: rep.states || 0,
               message: rep.message || "", error: rep.error || null, counterexample: !!cx,
               stepper: !!r.stepper, timeLimit: false, stopped: false};
    if (r.stepper) {
      var host = this.stepperHost;
      host.appendChild(el("p", "kl-stepper-note",
        "Play the shortest counterexample (\"show me\") or find it yourself: you are the scheduler."));
      return mountStepper(this.base, host, r.stepper).then(function () { return out; }, function (e) {
        host.appendChild(el("p", "kl-error", String(e.message || e)));
        return out;
      });
    }
    return Promise.resolve(out);
  };

  /* ------------------------------------------------------------ mount every lab box */
  var boxes = [];
  function mountAll() {
    var nodes = document.querySelectorAll("div.kvmlab-lab[data-kvmlab-base]");
    for (var i = 0; i < nodes.length; i++) {
      if (nodes[i].__kvmlabLab) continue;
      try {
        nodes[i].__kvmlabLab = new LabBox(nodes[i]);
        boxes.push(nodes[i].__kvmlabLab);
      } catch (e) {
        nodes[i].appendChild(el("p", "kl-error", "kvmlab lab: " + (e && e.message || e)));
      }
    }
    if (boxes.length && !G.kvmlabLab) {
      var b = boxes[0];
      G.kvmlabLab = {
        id: b.data.id,
        starter: b.data.starter,
        get ready() { return b.rt.ensure().then(function () { return true; }); },
        grade: function (source, opts) { return b.grade(source, opts && opts.timeout); },
        stop: function () { b.rt.stop(); },
        runtime: b.rt
      };
    }
  }
  G.KvmlabLabPage = {mountAll: mountAll, runtimeFor: runtimeFor, mountStepper: mountStepper, version: 1};
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", mountAll);
  else mountAll();
})();
