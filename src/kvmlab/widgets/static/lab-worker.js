/* kvmlab lab worker: Pyodide and the kvmlab wheel in a module Web Worker.
 * The page (labpage.js) terminates this worker when a grading overruns its time limit,
 * so a learner's endless loop never blocks the tab. Everything loads from this origin.
 * Messages in:  {cmd: "init", wheel}            -> {cmd: "ready", info, seconds} | {cmd: "failed", error}
 *               {id, cmd: "grade", lab, source}  -> {id, ok: true, json} | {id, ok: false, error}
 *               {id, cmd: "try", spec, source}   -> same shape (a chapter exercise's variant)
 *               {id, cmd: "explore", request}    -> same shape (request: JSON text)
 *               {id, cmd: "selftest"}            -> same shape */
import {loadPyodide} from "./pyodide/pyodide.mjs";

const base = new URL("./", import.meta.url);
let webrun = null;
let starting = null;

async function start(wheel) {
  const t0 = performance.now();
  const py = await loadPyodide({indexURL: new URL("pyodide/", base).href, packages: [],
                                stdout: () => {}, stderr: () => {}});
  const t1 = performance.now();
  // revalidate every visit (a 304 when unchanged): the book may have been rebuilt with new code
  const resp = await fetch(new URL(wheel, base), {cache: "no-cache"});
  if (!resp.ok) throw new Error("could not load " + wheel + " (HTTP " + resp.status + ")");
  const site = py.runPython("import sysconfig; sysconfig.get_path('purelib')");
  py.unpackArchive(await resp.arrayBuffer(), "wheel", {extractDir: site});
  const t2 = performance.now();
  webrun = py.pyimport("kvmlab.widgets.webrun");
  const info = JSON.parse(webrun.info());
  const t3 = performance.now();
  // where the start-up time goes (the benchmark reports it)
  info.phases = {pyodide: (t1 - t0) / 1000, wheel: (t2 - t1) / 1000, imports: (t3 - t2) / 1000};
  return {info: info, seconds: (t3 - t0) / 1000};
}

self.onmessage = async (ev) => {
  const m = ev.data || {};
  if (m.cmd === "init") {
    if (!starting) starting = start(m.wheel);
    try {
      const r = await starting;
      self.postMessage({cmd: "ready", info: r.info, seconds: r.seconds});
    } catch (e) {
      self.postMessage({cmd: "failed", error: String(e && e.message || e)});
    }
    return;
  }
  try {
    if (!webrun) throw new Error("the Python runtime is not loaded");
    let json;
    if (m.cmd === "grade") json = webrun.grade(m.lab, m.source);
    else if (m.cmd === "try") json = webrun.try_variant(m.spec, m.source);
    else if (m.cmd === "explore") json = webrun.explore(m.request);
    else if (m.cmd === "selftest") json = webrun.selftest();
    else throw new Error("unknown command " + m.cmd);
    self.postMessage({id: m.id, ok: true, json: json});
  } catch (e) {
    // a Python exception that escaped kvmlab's own handling: its last line is the message
    const text = String(e && e.message || e).trim().split("\n");
    self.postMessage({id: m.id, ok: false, error: text[text.length - 1] || "error"});
  }
};
