/* kvmlab stepper, part 2 of 4: the trace in the page URL (#stepper-ID=0,1,1:fail&...), read and
 * written with URLSearchParams; links into closed <details> open them. */
(function (G) {
  "use strict";
  function params() {
    return new URLSearchParams(((G.location && G.location.hash) || "").replace(/^#/, ""));
  }
  // the value of key in the URL's fragment, or null
  function readTrace(key) {
    try { return params().get(key); } catch (e) { return null; }
  }
  // set (or, with an empty value, remove) key in the fragment without a navigation
  function writeTrace(key, value) {
    if (!G.history || !G.history.replaceState) return;
    var p = params();
    if (value) p.set(key, value); else p.delete(key);
    // commas and colons are legal in a fragment: keep shared links readable
    var h = p.toString().replace(/%2C/gi, ",").replace(/%3A/gi, ":");
    var url = G.location.pathname + G.location.search + (h ? "#" + h : "");
    try { G.history.replaceState(G.history.state, "", url); } catch (e) { /* sandboxed frame */ }
  }
  // open every <details> around el (a link into a folded box), then bring el into view
  function reveal(el, scroll) {
    for (var p = el.parentElement; p; p = p.parentElement) {
      if (p.tagName === "DETAILS" && !p.open) p.open = true;
    }
    if (scroll !== false && el.scrollIntoView) el.scrollIntoView({block: "start"});
  }
  var Url = {readTrace: readTrace, writeTrace: writeTrace, reveal: reveal};
  if (!G.KvmlabUrl) G.KvmlabUrl = Url;
  if (typeof module !== "undefined" && module.exports) module.exports = Url;
})(typeof globalThis !== "undefined" ? globalThis : this);
