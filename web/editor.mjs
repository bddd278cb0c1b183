// The lab pages' code editor: CodeMirror 6 with Python, bundled offline by tools/vendor_web.py.
// Exposes globalThis.KvmlabEditor.create(parent, {doc, label, onChange}) -> {get, set, focus, view}.
// Colours come from CSS classes (tok-*, see labpage.css), so the book's light and dark modes apply.
import {EditorView, basicSetup} from "codemirror";
import {keymap} from "@codemirror/view";
import {EditorState} from "@codemirror/state";
import {indentWithTab} from "@codemirror/commands";
import {indentUnit, syntaxHighlighting} from "@codemirror/language";
import {python} from "@codemirror/lang-python";
import {classHighlighter} from "@lezer/highlight";

function create(parent, opts) {
  opts = opts || {};
  const onChange = opts.onChange;
  const view = new EditorView({
    parent,
    state: EditorState.create({
      doc: opts.doc || "",
      extensions: [
        basicSetup,
        keymap.of([indentWithTab]),
        indentUnit.of("    "),
        python(),
        syntaxHighlighting(classHighlighter),
        EditorView.contentAttributes.of({"aria-label": opts.label || "code editor"}),
        EditorView.updateListener.of((u) => { if (u.docChanged && onChange) onChange(u.state.doc.toString()); }),
      ],
    }),
  });
  return {
    view,
    get: () => view.state.doc.toString(),
    set: (text) => view.dispatch({changes: {from: 0, to: view.state.doc.length, insert: text}}),
    focus: () => view.focus(),
  };
}

globalThis.KvmlabEditor = {create, version: 1};
