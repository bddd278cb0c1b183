"""The small script that ties a diagram to a stepper on the same page.

A timeline or state graph whose HTML carries ``data-kvmlab-link`` (model,
variant, config, params; for a timeline, its moves) looks for a stepper of the
same configuration on the page (``div[data-kvmlab-stepper]`` and its JSON
data). Only if there is one:

* a timeline's steps become links: a click (or Enter) sets the URL hash
  ``#stepper-<id>=<moves up to that step>``, which the stepper replays;
* a state graph marks the stepper's current state (class ``kvs-current``)
  and a click on a state plays a shortest schedule to it.

Steppers inside a live notebook output (``data-kvmlab-live``) ignore the
URL, so nothing is linked there. The coordination is only through the DOM
and the URL hash.
"""

from __future__ import annotations

import json

SCRIPT = r"""
(function () {
  var G = window;
  if (G.KvmlabDiagrams) { G.KvmlabDiagrams.scan(); return; }
  function canon(o) {
    if (o === null || typeof o !== "object") return JSON.stringify(o);
    var ks = Object.keys(o).sort();
    return "{" + ks.map(function (k) { return JSON.stringify(k) + ":" + canon(o[k]); }).join(",") + "}";
  }
  function sysKey(d) { return canon({m: d.model, v: d.variant, c: d.config || {}, p: d.params || {}}); }
  function data(root) {  // the player keeps the graph (and removes its script element once mounted)
    if (root.__kvmlabPlayer && root.__kvmlabPlayer.d) return root.__kvmlabPlayer.d;
    if (!root.__kvmlabData) {
      var s = root.querySelector("script.kvmlab-stepper-data");
      try { root.__kvmlabData = s ? JSON.parse(s.textContent) : null; } catch (e) { root.__kvmlabData = null; }
    }
    return root.__kvmlabData;
  }
  function findStepper(sys) {
    var k = sysKey(sys), all = document.querySelectorAll("div[data-kvmlab-stepper]");
    for (var i = 0; i < all.length; i++) {
      if (all[i].getAttribute("data-kvmlab-live")) continue;
      var d = data(all[i]);
      if (d && d.id && sysKey(d) === k) return all[i];
    }
    return null;
  }
  function go(root, moves) {
    var d = data(root), key = "stepper-" + d.id;
    for (var e = root.parentElement; e; e = e.parentElement) if (e.tagName === "DETAILS") e.open = true;
    var h = (G.location.hash || "").replace(/^#/, "");
    var parts = (h ? h.split("&") : []).filter(function (p) { return p && p.split("=")[0] !== key; });
    parts.push(key + "=" + moves.join(","));
    var nh = "#" + parts.join("&");
    if (G.location.hash === nh) { if (root.scrollIntoView) root.scrollIntoView({block: "start"}); }
    else G.location.hash = nh;
  }
  function stepOf(g, re) { var m = (g.id || "").match(re); return m ? +m[1] : -1; }
  function clickable(g, label, fn) {
    g.classList.add("kvs-linked");
    g.setAttribute("tabindex", "0");
    g.setAttribute("role", "link");
    g.setAttribute("aria-label", label);
    g.addEventListener("click", function (ev) { ev.preventDefault(); fn(); });
    g.addEventListener("keydown", function (ev) {
      if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); fn(); }
    });
  }
  function caption(box, text) {
    var p = document.createElement("p");
    p.className = "kv-caption";
    p.textContent = text;
    box.appendChild(p);
  }
  function movesOf(d, i) {  // [tid, move, choice, target, splat] * n
    var flat = d.states[i][2], out = [];
    for (var j = 0; j + 4 < flat.length; j += 5) out.push([d.strings[flat[j + 1]], flat[j + 3]]);
    return out;
  }
  function pathTo(d, target) {  // a shortest schedule from the initial state (BFS over the embedded graph)
    var prev = {0: null}, queue = [0];
    while (queue.length) {
      var s = queue.shift();
      if (s === target) break;
      movesOf(d, s).forEach(function (m) { if (!(m[1] in prev)) { prev[m[1]] = [s, m[0]]; queue.push(m[1]); } });
    }
    if (!(target in prev)) return null;
    var out = [];
    for (var t = target; prev[t]; t = prev[t][0]) out.unshift(prev[t][1]);
    return out;
  }
  function current(root) {
    var p = root.__kvmlabPlayer, d = data(root);
    if (p && p.path && typeof p.pos === "number" && typeof p.path[p.pos] === "number") return p.path[p.pos];
    var h = (G.location.hash || "").replace(/^#/, "").split("&"), key = "stepper-" + d.id, cur = 0;
    for (var i = 0; i < h.length; i++) {
      if (h[i].split("=")[0] !== key) continue;
      decodeURIComponent(h[i].slice(key.length + 1)).split(",").forEach(function (mv) {
        if (!mv || cur < 0) return;
        var hit = movesOf(d, cur).filter(function (m) { return m[0] === mv; })[0];
        cur = hit ? hit[1] : -1;
      });
    }
    return cur;
  }
  function linkTimeline(box, meta, root) {
    var n = 0;
    box.querySelectorAll("g.kvs_step").forEach(function (g) {
      var k = stepOf(g, /step(\d+)$/);
      if (k < 1) return;
      n++;
      clickable(g, "open the stepper at step " + k, function () { go(root, meta.moves.slice(0, k)); });
    });
    if (n) caption(box, "Click a step to open the stepper at that step.");
  }
  function linkStates(box, meta, root) {
    var d = data(root), nodes = {};
    box.querySelectorAll("g.kvs_state").forEach(function (g) {
      var i = stepOf(g, /state(\d+)$/);
      if (i < 0 || i >= d.states.length) return;
      nodes[i] = g;
      if (i === 0) return;
      clickable(g, "play a shortest schedule to this state in the stepper", function () {
        var m = pathTo(d, i);
        if (m && m.length) go(root, m);
      });
    });
    var last = null;
    function mark() {
      var c = current(root);
      if (last !== null && nodes[last]) nodes[last].classList.remove("kvs-current");
      if (nodes[c]) nodes[c].classList.add("kvs-current");
      last = c;
      box.setAttribute("data-current", String(c));
    }
    if (G.MutationObserver) {
      new MutationObserver(function () { mark(); setTimeout(mark, 120); setTimeout(mark, 600); })
        .observe(root, {attributes: true, attributeFilter: ["data-pos"], childList: true});
    }
    G.addEventListener("hashchange", function () { setTimeout(mark, 0); });
    mark();
    caption(box, "The outlined state is where the stepper is; click a state to go there by a shortest schedule.");
  }
  function scan() {
    document.querySelectorAll("div[data-kvmlab-link]").forEach(function (box) {
      if (box.__kvmlabLinked) return;
      var meta;
      try { meta = JSON.parse(box.getAttribute("data-kvmlab-link")); } catch (e) { return; }
      var root = findStepper(meta.system);
      if (!root) return;
      box.__kvmlabLinked = true;
      if (meta.kind === "timeline") linkTimeline(box, meta, root);
      else if (meta.kind === "states") linkStates(box, meta, root);
    });
  }
  G.KvmlabDiagrams = {scan: scan, version: 1};
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", scan);
  else scan();
})();
"""


def link_meta(kind: str, sys, moves: list[str] | None = None) -> str:
    """The ``data-kvmlab-link`` JSON for a diagram of ``sys`` (the same keys as the stepper's data)."""
    meta = {"kind": kind, "system": {
        "model": type(sys.model).name, "variant": sys.variant.name,
        "config": {k: bool(v) for k, v in sys.config.items()}, "params": dict(sys.params)}}
    if moves is not None:
        meta["moves"] = [str(m) for m in moves]
    return json.dumps(meta, separators=(",", ":"), ensure_ascii=False)


def script_tag() -> str:
    """The linking script (defines ``window.KvmlabDiagrams`` once; later copies only rescan)."""
    return "<script>" + SCRIPT.replace("</", "<\\/") + "</script>"
