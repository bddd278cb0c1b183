/* kvmlab stepper, part 4 of 4: mounting. Finds every stepper in the page, checks its data
 * format against the player's, and listens for links that carry a trace. */
(function (G) {
  "use strict";
  var Core = G.KvmlabCore, Player = G.KvmlabPlayer;
  var FORMAT = Core.FORMAT;
  if (G.KvmlabStepper && (G.KvmlabStepper.version || 0) >= FORMAT) return;  // a newer player is here

  var players = [];
  function refuse(root, msg) {
    while (root.firstChild) root.removeChild(root.firstChild);
    var p = document.createElement("p");
    p.className = "ks-refused";
    p.setAttribute("role", "alert");
    p.textContent = msg;
    root.appendChild(p);
  }
  function mount(root, data, opts) {
    if (root.__kvmlabPlayer) return root.__kvmlabPlayer;
    if (!data || data.v !== FORMAT) {
      refuse(root, "kvmlab stepper: this output holds stepper data in format v" + (data && data.v)
        + ", but the player on this page reads v" + FORMAT + ". Rebuild the page (or re-run the cell) "
        + "with one kvmlab version.");
      return null;
    }
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
      catch (e) { refuse(root, "kvmlab stepper: bad data (" + e.message + ")"); continue; }
      // a notebook output (data-kvmlab-live): the page URL belongs to the front end
      mount(root, data, root.getAttribute("data-kvmlab-live") ? {hash: false, scroll: false} : {});
    }
  }
  G.KvmlabStepper = {mount: mount, mountAll: mountAll, version: FORMAT, Core: Core};
  if (typeof document !== "undefined") {
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", mountAll);
    else mountAll();
  }
})(typeof globalThis !== "undefined" ? globalThis : this);
