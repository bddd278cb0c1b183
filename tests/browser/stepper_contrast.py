"""WCAG contrast of every visible text node inside an element, for the stepper browser tests."""

# (root) => [[class, text, ratio]] for each text whose contrast with its background is below 4.5:1;
# the background is the first ancestor's that is mostly opaque
CONTRAST_JS = """(root) => {
  function rgb(s) { const m = s.match(/[\\d.]+/g); return m ? m.map(Number) : [0, 0, 0, 0]; }
  function lum(c) { const f = (v) => { v /= 255;
                      return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
                    return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]); }
  function bg(e) { for (; e; e = e.parentElement) { const c = rgb(getComputedStyle(e).backgroundColor);
                   if (c.length < 4 || c[3] > 0.5) return c; } return [255, 255, 255]; }
  const bad = [];
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const e = n.parentElement;
    if (!n.textContent.trim() || !e.getClientRects().length) continue;
    const st = getComputedStyle(e);
    if (st.visibility === 'hidden' || e.closest('.ks-sr')) continue;
    const a = lum(rgb(st.color)), b = lum(bg(e));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    if (ratio < 4.5) bad.push([e.className, n.textContent.trim().slice(0, 30), ratio.toFixed(2)]);
  }
  return bad;
}"""
