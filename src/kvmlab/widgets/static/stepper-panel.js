/* kvmlab stepper set-up panel: "and with 3 CPUs?" in the static book.
 * Adds a "Change the set-up" panel above every stepper of the page (variant, config switches,
 * params within their bounds); "Explore" runs kvmlab's export_graph on Pyodide in the lab
 * runtime's Web Worker (labpage.js) and mounts the new graph with KvmlabStepper.mount in place
 * of the book's one; "Back to the book's set-up" shows the original again.
 * Needs labpage.js (the runtime), stepper.js, and the page's <script id="kvmlab-models"> JSON
 * {base, wheel, timeout, max_states, models: {name: {variants, configs, params}}}. */
(function () {
  "use strict";
  var G = window;
  if (G.KvmlabStepperPanel) return;

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  var uid = 0;

  function Panel(root, data, spec, meta) {
    var self = this;
    this.root = root;
    this.data = data;
    this.spec = spec;
    this.meta = meta;
    this.custom = null;
    var det = el("details", "kvmlab-panel");
    var sum = el("summary", null, "Change the set-up (runs Python in your browser)");
    det.appendChild(sum);
    var form = el("div", "kp-form");
    det.appendChild(form);
    this.inputs = {};
    var n = ++uid;

    function field(labelText, input, help) {
      var row = el("div", "kp-row");
      var id = "kp-" + n + "-" + Object.keys(self.inputs).length;
      input.id = id;
      var lab = el("label", null, labelText);
      lab.htmlFor = id;
      row.appendChild(lab);
      row.appendChild(input);
      if (help) row.appendChild(el("span", "kp-help", help));
      form.appendChild(row);
    }
    var vs = el("select");
    spec.variants.forEach(function (v) {
      var o = el("option", null, v.name + (v.desc ? ": " + v.desc : ""));
      o.value = v.name;
      if (v.name === data.variant) o.selected = true;
      vs.appendChild(o);
    });
    field("variant", vs, null);
    this.inputs.variant = vs;
    Object.keys(spec.configs || {}).forEach(function (k) {
      var c = spec.configs[k];
      var cb = el("input");
      cb.type = "checkbox";
      cb.checked = k in data.config ? !!data.config[k] : !!c.default;
      field("CONFIG_" + k, cb, c.help);
      self.inputs["config:" + k] = cb;
    });
    Object.keys(spec.params || {}).forEach(function (k) {
      var p = spec.params[k];
      var cur = k in data.params ? data.params[k] : p.default;
      var inp;
      if (p.choices) {
        inp = el("select");
        p.choices.forEach(function (c) {
          var o = el("option", null, c);
          o.value = c;
          if (c === cur) o.selected = true;
          inp.appendChild(o);
        });
      } else {
        inp = el("input");
        inp.type = "number";
        inp.min = p.min;
        inp.max = p.max;
        inp.step = 1;
        inp.value = cur;
      }
      field(k, inp, (p.choices ? "" : p.min + " to " + p.max + ". ") + (p.help || ""));
      self.inputs["param:" + k] = inp;
    });
    var bar = el("div", "kp-bar");
    this.go = el("button", "kp-go", "Explore");
    this.go.type = "button";
    this.back = el("button", "kp-back", "Back to the book's set-up");
    this.back.type = "button";
    this.back.disabled = true;
    bar.appendChild(this.go);
    bar.appendChild(this.back);
    form.appendChild(bar);
    this.status = el("div", "kp-status");
    this.status.setAttribute("role", "status");
    this.status.setAttribute("aria-live", "polite");
    form.appendChild(this.status);
    root.parentNode.insertBefore(det, root);
    this.details = det;
    this.go.addEventListener("click", function () { self.explore(); });
    this.back.addEventListener("click", function () { self.restore(); });
    det.addEventListener("toggle", function () {
      if (det.open) KvmlabLabPage.runtimeFor(meta.base, meta.wheel).ensure();
    });
  }
  Panel.prototype.request = function () {
    var req = {model: this.data.model, variant: this.inputs.variant.value, config: {}, params: {},
               max_states: this.meta.max_states || 20000};
    var bad = [];
    var self = this;
    Object.keys(this.inputs).forEach(function (k) {
      var inp = self.inputs[k];
      if (k.indexOf("config:") === 0) req.config[k.slice(7)] = inp.checked;
      if (k.indexOf("param:") === 0) {
        var name = k.slice(6);
        var p = self.spec.params[name];
        if (p.choices) { req.params[name] = inp.value; return; }
        var v = Number(inp.value);
        if (!Number.isInteger(v) || v < p.min || v > p.max) bad.push(name + " must be a whole number from " + p.min +
                                                                       " to " + p.max);
        req.params[name] = v;
      }
    });
    req.stepper_id = (this.data.id || this.data.model) + "-custom";
    return {req: req, bad: bad};
  };
  Panel.prototype.explore = function () {
    var self = this;
    var r = this.request();
    if (r.bad.length) {
      this.status.className = "kp-status kp-error";
      this.status.textContent = r.bad.join("; ");
      return Promise.resolve(null);
    }
    var rt = KvmlabLabPage.runtimeFor(this.meta.base, this.meta.wheel);
    this.go.disabled = true;
    this.status.className = "kp-status";
    this.status.textContent = rt.state === "ready" ? "exploring every interleaving…" :
      "loading Python in your browser, then exploring…";
    var t0 = performance.now();
    var loading = rt.state !== "ready";
    return rt.call({cmd: "explore", request: JSON.stringify(r.req)}, this.meta.timeout || 30).then(function (d) {
      self.go.disabled = false;
      if (d.error) {
        self.status.className = "kp-status kp-error";
        self.status.textContent = d.error;
        return null;
      }
      return self.show(d, (performance.now() - t0) / 1000, loading);
    }, function (e) {
      self.go.disabled = false;
      self.status.className = "kp-status kp-error";
      self.status.textContent = e && e.name === "TimeLimit" ?
        "stopped after " + e.seconds + " s: this set-up has too many states to explore here; try smaller numbers" :
        "could not explore: " + (e && e.message || e);
      return null;
    });
  };
  Panel.prototype.show = function (d, seconds, loading) {
    if (this.custom) this.custom.parentNode.removeChild(this.custom);
    var host = el("div", "kvmlab-stepper");
    this.root.parentNode.insertBefore(host, this.root);
    this.root.hidden = true;
    G.KvmlabStepper.mount(host, d, {hash: false, scroll: false});
    this.custom = host;
    this.back.disabled = false;
    var cx = Object.keys(d.counterexamples || {});
    this.status.className = "kp-status";
    this.status.textContent = "showing " + d.variant + " with " + describe(d) + ": " + d.states.length +
      " states, explored in " + seconds.toFixed(1) + " s" + (loading ? " (with loading Python)" : "") + "; " +
      (cx.length ? "violated: " + cx.join(", ") : "every property holds in this set-up");
    return {states: d.states.length, violated: cx};
  };
  Panel.prototype.restore = function () {
    if (this.custom) this.custom.parentNode.removeChild(this.custom);
    this.custom = null;
    this.root.hidden = false;
    this.back.disabled = true;
    this.status.textContent = "showing the book's set-up again";
  };
  function describe(d) {
    var parts = [];
    Object.keys(d.config || {}).forEach(function (k) { parts.push(k + "=" + (d.config[k] ? "y" : "n")); });
    Object.keys(d.params || {}).forEach(function (k) { parts.push(k + "=" + d.params[k]); });
    return parts.join(" ") || "the defaults";
  }

  var panels = [];
  function mountAll() {
    var metaEl = document.getElementById("kvmlab-models");
    if (!metaEl || !G.KvmlabStepper || !G.KvmlabLabPage) return;
    var meta = JSON.parse(metaEl.textContent);
    var nodes = document.querySelectorAll("div[data-kvmlab-stepper]");
    for (var i = 0; i < nodes.length; i++) {
      var root = nodes[i];
      if (root.__kvmlabPanel || root.closest(".kvmlab-lab")) continue;
      // the mounted player keeps its graph (stepper.js: Player.d); before mounting, the JSON script has it
      var data = root.__kvmlabPlayer && root.__kvmlabPlayer.d;
      var src = root.querySelector("script.kvmlab-stepper-data");
      if (!data && src) {
        try { data = JSON.parse(src.textContent); } catch (e) { data = null; }
      }
      if (!data) continue;
      var spec = meta.models[data.model];
      if (!spec) continue;
      root.__kvmlabPanel = new Panel(root, data, spec, meta);
      panels.push(root.__kvmlabPanel);
    }
  }
  G.KvmlabStepperPanel = {mountAll: mountAll, panels: panels, version: 1};
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", mountAll);
  else mountAll();
})();
