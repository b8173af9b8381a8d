"""Self-contained API documentation pages: an interactive explorer (/docs) and a static
reference (/redoc).

Both are single HTML responses with inline CSS (and, for the explorer, inline JS): they load
nothing from any other origin, so they work on machines without internet access and pass
`DOCS_CSP`, which the app sends as the Content-Security-Policy of these pages.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

__all__ = ["DOCS_CSP", "reference_page", "swagger_page"]

DOCS_CSP = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "connect-src 'self'; img-src data:"
)

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_MAX_DEPTH = 10
_FACT_KEYS = (
    "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength",
    "minItems", "maxItems", "pattern", "default",
)  # fmt: skip

_CSS = """
:root{color-scheme:light dark;--fg:#1f2328;--bg:#fff;--mu:#59636e;--ln:#d1d9e0;
--card:#f6f8fa;--ac:#0969da;--ok:#1a7f37;--bad:#cf222e}
@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--bg:#0d1117;--mu:#9198a1;
--ln:#3d444d;--card:#151b23;--ac:#4493f8;--ok:#3fb950;--bad:#f85149}}
*{box-sizing:border-box}
body{margin:0;font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
color:var(--fg);background:var(--bg)}
header,main{max-width:1040px;margin:0 auto;padding:1rem 1.2rem}
header{border-bottom:1px solid var(--ln)}
h1{font-size:1.6rem;margin:.2rem 0}h2{font-size:1.25rem;margin:1.6rem 0 .4rem}
h3{font-size:1.05rem;margin:.2rem 0}h4{font-size:.95rem;margin:1rem 0 .3rem}
code,pre,textarea,input{font:13px/1.45 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
pre{background:var(--card);border:1px solid var(--ln);border-radius:6px;padding:.6rem;
margin:.3rem 0;overflow:auto;max-height:26rem;white-space:pre-wrap;overflow-wrap:anywhere}
.badge{display:inline-block;min-width:4.5em;text-align:center;border-radius:4px;
padding:0 .4em;font:700 12px/1.7 ui-monospace,monospace;color:#fff;background:#6e7781}
.m-get .badge{background:#0969da}.m-post .badge{background:#1a7f37}
.m-put .badge{background:#9a6700}.m-patch .badge{background:#8250df}
.m-delete .badge{background:#cf222e}
.op{border:1px solid var(--ln);border-radius:8px;margin:.55rem 0;background:var(--bg)}
.op>summary,.op>h3{padding:.5rem .75rem;display:flex;flex-wrap:wrap;gap:.2rem .6rem;
align-items:center}
.op>summary{cursor:pointer;list-style:none}.op>summary::-webkit-details-marker{display:none}
.op>summary::after{content:"\\25B8";margin-left:auto;color:var(--mu)}
.op[open]>summary::after{content:"\\25BE"}
.op[open]>summary,.op>h3{border-bottom:1px solid var(--ln)}
.path{font-weight:600;overflow-wrap:anywhere}.sum{color:var(--mu);font-weight:400}
ul.schema summary{cursor:pointer;width:max-content}
.lock{font-size:12px;color:var(--mu);border:1px solid var(--ln);border-radius:4px;
padding:0 .35em}
.body{padding:.4rem .9rem .9rem}
table{border-collapse:collapse;width:100%;display:block;overflow-x:auto;font-size:14px}
th,td{text-align:left;border-bottom:1px solid var(--ln);padding:.3rem .6rem .3rem 0;
vertical-align:top}
ul.schema,ul.schema ul{list-style:none;margin:0;padding-left:1.1rem;
border-left:1px dotted var(--ln)}
ul.schema{padding-left:0;border:0;margin:.2rem 0}
.ty{color:var(--ac)}.req{color:var(--bad);font-size:12px}.ref{font-size:12px}
.facts,.desc,.meta{color:var(--mu);font-size:13px}.desc{white-space:pre-line}
.resp{margin:.4rem 0}
:focus-visible{outline:2px solid var(--ac);outline-offset:2px}
@media (max-width:600px){body{font-size:14px}header,main{padding:.6rem}}
"""

_EXPLORER_CSS = """
.auth,.filter{display:flex;flex-wrap:wrap;gap:.4rem;align-items:center;margin:.6rem 0}
.auth label,.filter label{font-weight:600}.auth input,.filter input{flex:1 1 14rem}
.try{border-top:1px dashed var(--ln);margin-top:1rem;padding-top:.4rem}
.field{display:flex;flex-direction:column;margin:.45rem 0}
.field label{font-weight:600;font-size:13px}
input,textarea{width:100%;padding:.4rem;border:1px solid var(--ln);border-radius:6px;
background:var(--bg);color:var(--fg)}
textarea{resize:vertical;min-height:6rem}
button{font:inherit;padding:.35rem 1rem;border-radius:6px;border:1px solid var(--ln);
background:var(--card);color:var(--fg);cursor:pointer}
button.send{background:#1a7f37;border-color:#1a7f37;color:#fff}
button:disabled{opacity:.6;cursor:progress}
.status{font-weight:600;margin:.6rem 0 .2rem}.ok{color:var(--ok)}.bad{color:var(--bad)}
ol.events{padding-left:1.6rem;margin:.3rem 0}.ev{font-weight:600}
"""

_SCRIPT = r"""
(() => {
"use strict";
const SPEC_URL = __SPEC_URL__;
const TOKEN_KEY = "agentflow.docs.token";
const $ = (id) => document.getElementById(id);
const app = $("app");
let spec = {};
let uid = 0;

function h(tag, props, ...kids) {
  const n = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "text") n.textContent = String(v);
    else if (k === "class") n.className = v;
    else n.setAttribute(k, v === true ? "" : String(v));
  }
  for (const kid of kids.flat()) {
    if (kid !== null && kid !== undefined && kid !== false) n.append(kid);
  }
  return n;
}
const isObj = (v) => v !== null && typeof v === "object" && !Array.isArray(v);
const str = (v) => (typeof v === "string" ? v : JSON.stringify(v));
function pretty(text) {
  try { return JSON.stringify(JSON.parse(text), null, 2); } catch (e) { return text; }
}

function deref(node) {
  let ref = null;
  for (let i = 0; i < 20 && isObj(node) && typeof node.$ref === "string"; i++) {
    ref = node.$ref;
    if (!ref.startsWith("#/")) return [{}, ref];
    let cur = spec;
    for (const part of ref.slice(2).split("/")) {
      const key = part.replace(/~1/g, "/").replace(/~0/g, "~");
      cur = isObj(cur) && Object.prototype.hasOwnProperty.call(cur, key) ? cur[key] : undefined;
    }
    node = cur;
  }
  return [node, ref];
}

function typeName(s) {
  if (s === false) return "never";
  if (!isObj(s)) return "any";
  if (Array.isArray(s.type)) return s.type.join(" | ");
  if (s.type) return String(s.type);
  if (s.properties) return "object";
  if (s.items) return "array";
  for (const c of ["oneOf", "anyOf", "allOf"]) if (Array.isArray(s[c])) return c;
  return "any";
}
function facts(s) {
  const out = [];
  if (!isObj(s)) return out;
  if (s.format) out.push("format: " + str(s.format));
  if (Array.isArray(s.enum)) out.push("enum: " + s.enum.map((v) => JSON.stringify(v)).join(", "));
  if ("const" in s) out.push("const: " + JSON.stringify(s.const));
  for (const k of ["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength",
                   "maxLength", "minItems", "maxItems", "pattern", "default"]) {
    if (k in s) out.push(k + ": " + str(s[k]));
  }
  if (s.additionalProperties === false) out.push("no other fields");
  return out;
}
function node(label, meta, raw, req, depth, seen) {
  const [s, ref] = deref(raw);
  const line = h("div", {class: "sl"});
  if (label !== null) line.append(
    meta ? h("span", {class: "meta"}, label) : h("code", {}, label), " ");
  if (req) line.append(h("span", {class: "req"}, "required"), " ");
  line.append(h("span", {class: "ty"}, typeName(s)));
  if (ref) line.append(" ", h("span", {class: "ref"}, "\u2192 " + ref.split("/").pop()));
  const f = facts(s);
  if (f.length) line.append(" ", h("span", {class: "facts"}, f.join(" \u00b7 ")));
  if (isObj(s) && s.description) line.append(h("div", {class: "desc"}, str(s.description)));
  const li = h("li", {}, line);
  if (!isObj(s) || depth > 10) return li;
  if (ref && seen.includes(ref)) { li.append(h("div", {class: "meta"}, "(recursive)")); return li; }
  const seen2 = ref ? seen.concat(ref) : seen;
  const kids = [];
  const required = Array.isArray(s.required) ? s.required : [];
  if (isObj(s.properties)) {
    for (const [k, v] of Object.entries(s.properties)) {
      kids.push(node(k, false, v, required.includes(k), depth + 1, seen2));
    }
  }
  if (isObj(s.items)) kids.push(node("items", true, s.items, false, depth + 1, seen2));
  for (const c of ["oneOf", "anyOf", "allOf"]) {
    if (Array.isArray(s[c])) {
      s[c].forEach((v, i) => kids.push(node(c + " #" + (i + 1), true, v, false, depth + 1, seen2)));
    }
  }
  if (isObj(s.additionalProperties)) {
    kids.push(node("other fields", true, s.additionalProperties, false, depth + 1, seen2));
  }
  if (!kids.length) return li;
  // a component's fields fold away: error responses all share one, for instance
  if (ref) li.append(h("details", {}, h("summary", {class: "meta"}, "fields"), h("ul", {}, kids)));
  else li.append(h("ul", {}, kids));
  return li;
}
const tree = (schema) => h("ul", {class: "schema"}, node(null, false, schema, false, 0, []));

function example(raw, depth, seen) {
  const [s, ref] = deref(raw);
  if (!isObj(s) || depth > 6 || (ref && seen.includes(ref))) return null;
  seen = ref ? seen.concat(ref) : seen;
  if ("example" in s) return s.example;
  if (Array.isArray(s.examples) && s.examples.length) return s.examples[0];
  if ("const" in s) return s.const;
  if ("default" in s) return s.default;
  if (Array.isArray(s.enum) && s.enum.length) return s.enum[0];
  for (const c of ["oneOf", "anyOf", "allOf"]) {
    if (Array.isArray(s[c]) && s[c].length) return example(s[c][0], depth + 1, seen);
  }
  let t = Array.isArray(s.type) ? s.type.find((x) => x !== "null") : s.type;
  if (!t) t = s.properties ? "object" : s.items ? "array" : null;
  if (t === "object") {
    const props = isObj(s.properties) ? s.properties : {};
    const req = Array.isArray(s.required) ? s.required.filter((k) => k in props) : [];
    const keys = req.length ? req : depth === 0 ? Object.keys(props).slice(0, 1) : [];
    const o = {};
    for (const k of keys) o[k] = example(props[k], depth + 1, seen);
    return o;
  }
  if (t === "array") { const v = example(s.items, depth + 1, seen); return v === null ? [] : [v]; }
  if (t === "string") return s.format === "date-time" ? new Date(0).toISOString() : "string";
  if (t === "integer" || t === "number") return typeof s.minimum === "number" ? s.minimum : 0;
  if (t === "boolean") return false;
  return null;
}

function token() {
  try { return sessionStorage.getItem(TOKEN_KEY) || ""; } catch (e) { return ""; }
}
function needsAuth(op) {
  const sec = Array.isArray(op.security) ? op.security : spec.security;
  return Array.isArray(sec) && sec.some((r) => isObj(r) && Object.keys(r).length > 0);
}
function baseUrl() {
  const s = Array.isArray(spec.servers) && isObj(spec.servers[0]) ? spec.servers[0].url : "";
  const local = typeof s === "string" && s.startsWith("/") && !s.startsWith("//");
  return local ? s.replace(/\/$/, "") : "";
}

function parseFrame(frame) {
  let ev = "message", id = "";
  const data = [];
  for (const line of frame.split("\n")) {
    if (!line || line.startsWith(":")) continue;
    const i = line.indexOf(":");
    const field = i < 0 ? line : line.slice(0, i);
    let v = i < 0 ? "" : line.slice(i + 1);
    if (v.startsWith(" ")) v = v.slice(1);
    if (field === "event") ev = v;
    else if (field === "data") data.push(v);
    else if (field === "id") id = v;
  }
  return data.length ? {ev, id, data: data.join("\n")} : null;
}
async function readStream(res, out) {
  const count = h("p", {class: "meta"}, "streaming\u2026");
  const list = h("ol", {class: "events"});
  out.append(count, list);
  const reader = res.body.getReader();
  const dec = new TextDecoder();
  let buf = "", n = 0;
  const emit = (frame) => {
    const e = parseFrame(frame);
    if (!e) return;
    n++;
    list.append(h("li", {}, h("span", {class: "ev"}, e.ev),
                  e.id ? h("span", {class: "meta"}, " #" + e.id) : null,
                  h("pre", {}, pretty(e.data))));
    count.textContent = n + " event(s), streaming\u2026";
  };
  for (;;) {
    const {done, value} = await reader.read();
    if (done) break;
    buf = (buf + dec.decode(value, {stream: true})).replace(/\r\n?/g, "\n");
    let i;
    while ((i = buf.indexOf("\n\n")) >= 0) { emit(buf.slice(0, i)); buf = buf.slice(i + 2); }
  }
  buf += dec.decode();
  if (buf.trim()) emit(buf);
  count.textContent = n + " event(s), stream closed";
}

async function send(ctx) {
  const {path, method, op, inputs, body, out, sendBtn, cancelBtn} = ctx;
  out.replaceChildren();
  const fail = (msg) => out.append(h("p", {class: "status bad", role: "alert"}, msg));
  let url = path;
  const query = new URLSearchParams();
  const headers = {};
  for (const [p, input] of inputs) {
    const v = input.value;
    if (p.in === "path") {
      if (!v) return fail("Path parameter \u201c" + p.name + "\u201d is required.");
      url = url.split("{" + p.name + "}").join(encodeURIComponent(v));
    } else if (v !== "") {
      if (p.in === "query") query.append(p.name, v); else headers[p.name] = v;
    }
  }
  const qs = query.toString();
  if (qs) url += "?" + qs;
  const init = {method: method.toUpperCase(), headers};
  if (body && body.value.trim()) {
    try {
      JSON.parse(body.value);
    } catch (e) {
      return fail("The body is not valid JSON: " + e.message);
    }
    init.body = body.value;
    headers["Content-Type"] = "application/json";
  }
  if (needsAuth(op) && token()) headers.Authorization = "Bearer " + token();
  const ctl = new AbortController();
  init.signal = ctl.signal;
  cancelBtn.onclick = () => ctl.abort();
  cancelBtn.hidden = false;
  sendBtn.disabled = true;
  const t0 = performance.now();
  try {
    const res = await fetch(baseUrl() + url, init);
    const ms = Math.round(performance.now() - t0);
    out.append(h("p", {class: "status " + (res.ok ? "ok" : "bad")},
                   init.method + " " + url + " \u2192 " + res.status + " " + res.statusText),
               h("p", {class: "meta"}, "X-Request-ID: " +
                   (res.headers.get("x-request-id") || "(none)") + " \u00b7 " + ms + " ms"));
    const type = res.headers.get("content-type") || "";
    if (type.includes("text/event-stream") && res.body) await readStream(res, out);
    else out.append(h("pre", {class: "resbody"}, pretty(await res.text())));
  } catch (e) {
    fail(e && e.name === "AbortError" ? "Cancelled." : "Request failed: " + (e && e.message));
  } finally {
    cancelBtn.hidden = true;
    sendBtn.disabled = false;
  }
}

function params(item, op) {
  const all = new Map();
  for (const list of [item.parameters, op.parameters]) {
    if (!Array.isArray(list)) continue;
    for (const raw of list) {
      const [p] = deref(raw);
      if (isObj(p) && typeof p.name === "string") all.set(p.in + ":" + p.name, p);
    }
  }
  return [...all.values()];
}

function operation(path, method, item, op) {
  const id = "op" + (++uid);
  const ps = params(item, op);
  const summary = h("summary", {}, h("span", {class: "badge"}, method.toUpperCase()),
                    h("code", {class: "path"}, path),
                    op.summary ? h("span", {class: "sum"}, str(op.summary)) : null,
                    needsAuth(op) ? h("span", {class: "lock", title: "requires a bearer token"},
                                      "auth") : null);
  const body = h("div", {class: "body"});
  if (op.description) body.append(h("p", {class: "desc"}, str(op.description)));
  if (op.operationId) body.append(h("p", {class: "meta"}, "operationId: " + str(op.operationId)));
  if (ps.length) {
    const rows = ps.map((p) => h("tr", {}, h("td", {}, h("code", {}, p.name)),
      h("td", {}, str(p.in)), h("td", {}, typeName(deref(p.schema)[0])),
      h("td", {}, p.required ? "yes" : "no"),
      h("td", {}, p.description ? str(p.description) : "")));
    const head = ["Name", "In", "Type", "Required", "Description"].map((t) => h("th", {}, t));
    body.append(h("h4", {}, "Parameters"),
                h("table", {}, h("thead", {}, h("tr", {}, head)), h("tbody", {}, rows)));
  }
  const [rb] = deref(op.requestBody);
  const content = isObj(rb) && isObj(rb.content) ? rb.content : {};
  if (Object.keys(content).length) {
    body.append(h("h4", {}, "Request body"));
    for (const [media, m] of Object.entries(content)) {
      body.append(h("p", {class: "meta"}, media + (rb.required ? ", required" : "")));
      if (isObj(m) && m.schema !== undefined) body.append(tree(m.schema));
    }
  }
  if (isObj(op.responses)) {
    body.append(h("h4", {}, "Responses"));
    for (const [code, raw] of Object.entries(op.responses)) {
      const [r] = deref(raw);
      const box = h("div", {class: "resp"}, h("strong", {}, code), " ",
                    isObj(r) && r.description ? str(r.description) : "");
      if (isObj(r) && isObj(r.content)) {
        for (const [media, m] of Object.entries(r.content)) {
          box.append(h("div", {class: "meta"}, media));
          if (isObj(m) && m.schema !== undefined) box.append(tree(m.schema));
        }
      }
      body.append(box);
    }
  }
  const label = "Try " + method.toUpperCase() + " " + path;
  const form = h("form", {class: "try", novalidate: true, "aria-label": label});
  form.append(h("h4", {}, "Try it"));
  const inputs = [];
  for (const p of ps) {
    if (!["path", "query", "header"].includes(p.in)) continue;
    const iid = id + "-p" + (++uid);
    const input = h("input", {id: iid, type: "text", name: p.name, autocomplete: "off",
                              placeholder: typeName(deref(p.schema)[0])});
    inputs.push([p, input]);
    form.append(h("div", {class: "field"}, h("label", {for: iid}, p.name + " (" + p.in +
      (p.required ? ", required" : "") + ")"), input));
  }
  let textarea = null;
  const json = content["application/json"];
  if (isObj(json)) {
    const bid = id + "-body";
    const text = JSON.stringify(example(json.schema, 0, []), null, 2);
    const rows = Math.min(14, text.split("\n").length + 1);
    textarea = h("textarea", {id: bid, spellcheck: "false", rows});
    textarea.value = text;
    const lab = h("label", {for: bid}, "Request body (JSON)");
    form.append(h("div", {class: "field"}, lab, textarea));
  }
  const sendBtn = h("button", {type: "submit", class: "send"}, "Send");
  const cancelBtn = h("button", {type: "button", hidden: true}, "Cancel");
  const out = h("div", {class: "result", "aria-live": "polite"});
  form.append(h("div", {class: "auth"}, sendBtn, cancelBtn), out);
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    send({path, method, op, inputs, body: textarea, out, sendBtn, cancelBtn});
  });
  body.append(form);
  const d = h("details", {class: "op m-" + method, id}, summary, body);
  const words = [method, path, str(op.summary || ""), str(op.operationId || "")];
  d.dataset.search = words.join(" ").toLowerCase();
  return d;
}

function render() {
  const info = isObj(spec.info) ? spec.info : {};
  const meta = [];
  if (info.version) meta.push("Version " + str(info.version));
  if (spec.openapi) meta.push("OpenAPI " + str(spec.openapi));
  $("meta").textContent = meta.join(" \u00b7 ");
  if (info.description) $("desc").textContent = str(info.description);
  const comps = isObj(spec.components) ? spec.components : {};
  if (isObj(comps.securitySchemes) && Object.keys(comps.securitySchemes).length) {
    const input = $("token");
    input.value = token();
    input.addEventListener("input", () => {
      try { sessionStorage.setItem(TOKEN_KEY, input.value.trim()); } catch (e) { /* off */ }
    });
    $("clear").addEventListener("click", () => {
      input.value = "";
      try { sessionStorage.removeItem(TOKEN_KEY); } catch (e) { /* off */ }
    });
    $("auth").hidden = false;
  }
  const groups = new Map();
  for (const t of Array.isArray(spec.tags) ? spec.tags : []) {
    if (isObj(t) && t.name) groups.set(str(t.name), []);
  }
  const paths = isObj(spec.paths) ? spec.paths : {};
  for (const [path, item] of Object.entries(paths)) {
    if (!isObj(item)) continue;
    for (const m of ["get", "put", "post", "delete", "options", "head", "patch", "trace"]) {
      const op = item[m];
      if (!isObj(op)) continue;
      const tag = Array.isArray(op.tags) && op.tags.length ? str(op.tags[0]) : "default";
      if (!groups.has(tag)) groups.set(tag, []);
      groups.get(tag).push(operation(path, m, item, op));
    }
  }
  app.replaceChildren();
  for (const [tag, ops] of groups) {
    if (ops.length) app.append(h("section", {"data-tag": tag}, h("h2", {}, tag), ops));
  }
  if (!app.children.length) app.append(h("p", {}, "This document lists no operations."));
  $("filter").hidden = false;
  $("q").addEventListener("input", (ev) => {
    const q = ev.target.value.trim().toLowerCase();
    for (const sec of app.querySelectorAll("section")) {
      let shown = 0;
      for (const d of sec.querySelectorAll("details.op")) {
        d.hidden = q !== "" && !d.dataset.search.includes(q);
        if (!d.hidden) shown++;
      }
      sec.hidden = shown === 0;
    }
  });
}

fetch(SPEC_URL, {headers: {Accept: "application/json"}})
  .then((r) => { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
  .then((doc) => { spec = isObj(doc) ? doc : {}; render(); })
  .catch((e) => app.replaceChildren(h("p", {class: "bad", role: "alert"},
    "Could not load the API description from " + SPEC_URL + ": " + e.message)));
})();
"""

_SWAGGER_HTML = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>__TITLE__ \u00b7 API explorer</title>
<link rel="icon" href="data:,">
<style>__CSS__</style>
</head>
<body>
<header>
<h1>__TITLE__</h1>
<p class="meta" id="meta"></p>
<p class="desc" id="desc"></p>
<div class="auth" id="auth" hidden>
<label for="token">Bearer token</label>
<input id="token" type="password" autocomplete="off" spellcheck="false"
 placeholder="paste a token to send as Authorization: Bearer \u2026">
<button type="button" id="clear">Clear</button>
<p class="meta">Kept in this tab's session storage only; sent with operations that need it.</p>
</div>
<div class="filter" id="filter" hidden>
<label for="q">Filter</label>
<input id="q" type="search" placeholder="path, method or summary" autocomplete="off">
</div>
</header>
<main id="app"><p>Loading the API description\u2026</p></main>
<script>__SCRIPT__</script>
</body>
</html>
"""


def _json_for_script(value: object) -> str:
    """A JSON literal that is safe inside an inline <script> (no `</script>`, no `<!--`)."""
    return (
        json.dumps(value)
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def swagger_page(openapi_url: str, title: str) -> str:
    """The interactive explorer: a page whose inline script fetches `openapi_url` (same
    origin) and renders every operation with a "Try it" form. Document data only ever
    reaches the DOM as text (textContent), never as markup."""
    values = {
        "CSS": _CSS + _EXPLORER_CSS,
        "SCRIPT": _SCRIPT.replace("__SPEC_URL__", _json_for_script(openapi_url)),
        "TITLE": html.escape(title),
    }
    # One pass, so text from the arguments is never itself scanned for placeholders.
    return re.sub(r"__(CSS|SCRIPT|TITLE)__", lambda m: values[m.group(1)], _SWAGGER_HTML)


# -- the static reference ----------------------------------------------------------------


def _e(value: object) -> str:
    return html.escape(value if isinstance(value, str) else str(value), quote=True)


def _text(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _map(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _deref(document: Mapping[str, Any], node: Any) -> tuple[Any, str | None]:
    """Follow local `$ref`s (JSON pointers into the document); returns the target and the
    last reference followed."""
    ref: str | None = None
    for _ in range(20):
        if not isinstance(node, Mapping) or not isinstance(node.get("$ref"), str):
            break
        ref = node["$ref"]
        if not ref.startswith("#/"):
            return {}, ref
        target: Any = document
        for part in ref[2:].split("/"):
            key = part.replace("~1", "/").replace("~0", "~")
            target = target.get(key) if isinstance(target, Mapping) else None
        node = target
    return node, ref


def _type_name(schema: Any) -> str:
    if schema is False:
        return "never"
    if not isinstance(schema, Mapping):
        return "any"
    kind = schema.get("type")
    if isinstance(kind, list):
        return " | ".join(_text(k) for k in kind)
    if kind:
        return _text(kind)
    if "properties" in schema:
        return "object"
    if "items" in schema:
        return "array"
    for combinator in ("oneOf", "anyOf", "allOf"):
        if isinstance(schema.get(combinator), list):
            return combinator
    return "any"


def _facts(schema: Any) -> list[str]:
    if not isinstance(schema, Mapping):
        return []
    facts: list[str] = []
    if "format" in schema:
        facts.append(f"format: {_text(schema['format'])}")
    if isinstance(schema.get("enum"), list):
        facts.append(
            "enum: " + ", ".join(json.dumps(v, ensure_ascii=False) for v in schema["enum"])
        )
    if "const" in schema:
        facts.append(f"const: {json.dumps(schema['const'], ensure_ascii=False)}")
    facts += [f"{key}: {_text(schema[key])}" for key in _FACT_KEYS if key in schema]
    if schema.get("additionalProperties") is False:
        facts.append("no other fields")
    return facts


def _schema_children(schema: Mapping[str, Any]) -> Iterator[tuple[str, bool, Any, bool]]:
    """(label, label is a keyword rather than a field name, sub-schema, required)"""
    required = schema.get("required")
    required_names = set(required) if isinstance(required, list) else set()
    for name, sub in _map(schema.get("properties")).items():
        yield str(name), False, sub, name in required_names
    if isinstance(schema.get("items"), Mapping):
        yield "items", True, schema["items"], False
    for combinator in ("oneOf", "anyOf", "allOf"):
        options = schema.get(combinator)
        if isinstance(options, list):
            for i, sub in enumerate(options, 1):
                yield f"{combinator} #{i}", True, sub, False
    if isinstance(schema.get("additionalProperties"), Mapping):
        yield "other fields", True, schema["additionalProperties"], False


def _schema_item(
    document: Mapping[str, Any],
    label: str | None,
    keyword: bool,
    raw: Any,
    required: bool,
    depth: int,
    seen: tuple[str, ...],
) -> str:
    schema, ref = _deref(document, raw)
    out = ['<li><div class="sl">']
    if label is not None:
        out.append(
            f'<span class="meta">{_e(label)}</span> ' if keyword else f"<code>{_e(label)}</code> "
        )
    if required:
        out.append('<span class="req">required</span> ')
    out.append(f'<span class="ty">{_e(_type_name(schema))}</span>')
    if ref:
        out.append(f' <span class="ref">\u2192 {_e(ref.rsplit("/", 1)[-1])}</span>')
    facts = _facts(schema)
    if facts:
        out.append(f' <span class="facts">{_e(" · ".join(facts))}</span>')
    if isinstance(schema, Mapping) and schema.get("description"):
        out.append(f'<div class="desc">{_e(_text(schema["description"]))}</div>')
    out.append("</div>")
    if isinstance(schema, Mapping) and depth < _MAX_DEPTH:
        if ref is not None and ref in seen:
            out.append('<div class="meta">(recursive)</div>')
        else:
            inner = (*seen, ref) if ref is not None else seen
            children = [
                _schema_item(document, name, kw, sub, req, depth + 1, inner)
                for name, kw, sub, req in _schema_children(schema)
            ]
            if children and ref is not None:
                # a component's fields fold away; the Schemas section shows them too
                out.append(
                    '<details><summary class="meta">fields</summary><ul>'
                    + "".join(children)
                    + "</ul></details>"
                )
            elif children:
                out.append("<ul>" + "".join(children) + "</ul>")
    out.append("</li>")
    return "".join(out)


def _schema_tree(document: Mapping[str, Any], schema: Any) -> str:
    return (
        '<ul class="schema">' + _schema_item(document, None, False, schema, False, 0, ()) + "</ul>"
    )


def _anchor(prefix: str, text: str, used: set[str]) -> str:
    base = prefix + re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")
    anchor, n = base, 1
    while anchor in used:
        n += 1
        anchor = f"{base}-{n}"
    used.add(anchor)
    return anchor


def _parameters(document: Mapping[str, Any], item: Mapping[str, Any], op: Mapping[str, Any]) -> str:
    merged: dict[tuple[str, str], Mapping[str, Any]] = {}
    for source in (item.get("parameters"), op.get("parameters")):
        for raw in source if isinstance(source, list) else []:
            param, _ = _deref(document, raw)
            if isinstance(param, Mapping) and "name" in param:
                merged[(_text(param.get("in", "")), _text(param["name"]))] = param
    if not merged:
        return ""
    rows = "".join(
        f"<tr><td><code>{_e(name)}</code></td><td>{_e(where)}</td>"
        f"<td>{_e(_type_name(_deref(document, p.get('schema'))[0]))}</td>"
        f"<td>{'yes' if p.get('required') else 'no'}</td>"
        f"<td>{_e(_text(p.get('description', '')))}</td></tr>"
        for (where, name), p in merged.items()
    )
    return (
        "<h4>Parameters</h4><table><thead><tr><th>Name</th><th>In</th><th>Type</th>"
        f"<th>Required</th><th>Description</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def _content(document: Mapping[str, Any], content: object) -> str:
    out = []
    for media, entry in _map(content).items():
        out.append(f'<div class="meta">{_e(media)}</div>')
        if isinstance(entry, Mapping) and "schema" in entry:
            out.append(_schema_tree(document, entry["schema"]))
    return "".join(out)


def _operation(
    document: Mapping[str, Any],
    anchor: str,
    method: str,
    path: str,
    item: Mapping[str, Any],
    op: Mapping[str, Any],
) -> str:
    out = [
        f'<article class="op m-{_e(method)}" id="{_e(anchor)}">',
        f'<h3><span class="badge">{_e(method.upper())}</span>',
        f'<code class="path">{_e(path)}</code>',
    ]
    if op.get("summary"):
        out.append(f'<span class="sum">{_e(_text(op["summary"]))}</span>')
    if _needs_auth(document, op):
        out.append('<span class="lock" title="requires a bearer token">auth</span>')
    out.append('</h3><div class="body">')
    if op.get("description"):
        out.append(f'<p class="desc">{_e(_text(op["description"]))}</p>')
    if op.get("operationId"):
        out.append(f'<p class="meta">operationId: {_e(_text(op["operationId"]))}</p>')
    out.append(_parameters(document, item, op))
    body, _ = _deref(document, op.get("requestBody"))
    if isinstance(body, Mapping) and _map(body.get("content")):
        required = ", required" if body.get("required") else ""
        out.append(f'<h4>Request body<span class="meta">{required}</span></h4>')
        out.append(_content(document, body.get("content")))
    responses = _map(op.get("responses"))
    if responses:
        out.append("<h4>Responses</h4>")
        for code, raw in responses.items():
            response, _ = _deref(document, raw)
            response = _map(response)
            out.append(
                f'<div class="resp"><strong>{_e(code)}</strong> '
                f"{_e(_text(response.get('description', '')))}"
                f"{_content(document, response.get('content'))}</div>"
            )
    out.append("</div></article>")
    return "".join(out)


def _needs_auth(document: Mapping[str, Any], op: Mapping[str, Any]) -> bool:
    security = op.get("security", document.get("security"))
    return isinstance(security, list) and any(
        isinstance(r, Mapping) and len(r) > 0 for r in security
    )


def reference_page(document: Mapping[str, Any]) -> str:
    """A static, read-only reference of an OpenAPI document, rendered on the server. Every
    piece of document text is HTML-escaped; the page has no script at all."""
    info = _map(document.get("info"))
    title = _text(info.get("title") or "API reference")
    groups: dict[str, list[tuple[str, str, Mapping[str, Any], Mapping[str, Any]]]] = {}
    tags = document.get("tags")
    for tag in tags if isinstance(tags, list) else []:
        if isinstance(tag, Mapping) and tag.get("name"):
            groups.setdefault(_text(tag["name"]), [])
    for path, item in _map(document.get("paths")).items():
        if not isinstance(item, Mapping):
            continue
        for method in METHODS:
            op = item.get(method)
            if isinstance(op, Mapping):
                op_tags = op.get("tags")
                tag = _text(op_tags[0]) if isinstance(op_tags, list) and op_tags else "default"
                groups.setdefault(tag, []).append((method, str(path), item, op))
    used: set[str] = set()
    toc: list[str] = []
    sections: list[str] = []
    for tag, operations in groups.items():
        if not operations:
            continue
        tag_anchor = _anchor("tag-", tag, used)
        toc.append(f'<li><a href="#{_e(tag_anchor)}">{_e(tag)}</a><ul>')
        sections.append(f'<section><h2 id="{_e(tag_anchor)}">{_e(tag)}</h2>')
        for method, path, item, op in operations:
            anchor = _anchor("op-", _text(op.get("operationId") or f"{method}-{path}"), used)
            toc.append(
                f'<li class="m-{_e(method)}"><a href="#{_e(anchor)}">'
                f'<span class="badge">{_e(method.upper())}</span> <code>{_e(path)}</code> '
                f'<span class="sum">{_e(_text(op.get("summary", "")))}</span></a></li>'
            )
            sections.append(_operation(document, anchor, method, path, item, op))
        toc.append("</ul></li>")
        sections.append("</section>")
    schemas = _map(_map(document.get("components")).get("schemas"))
    if schemas:
        sections.append('<section><h2 id="schemas">Schemas</h2>')
        for name, schema in schemas.items():
            anchor = _anchor("schema-", str(name), used)
            sections.append(
                f'<h3 id="{_e(anchor)}">{_e(name)}</h3>{_schema_tree(document, schema)}'
            )
        sections.append("</section>")
    meta = []
    if info.get("version"):
        meta.append(f"Version {_text(info['version'])}")
    if document.get("openapi"):
        meta.append(f"OpenAPI {_text(document['openapi'])}")
    security_schemes = _map(_map(document.get("components")).get("securitySchemes"))
    auth = ""
    if security_schemes:
        auth = (
            '<p class="meta">Operations marked <span class="lock">auth</span> need an '
            "<code>Authorization: Bearer &lt;token&gt;</code> header.</p>"
        )
    description = info.get("description")
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_e(title)} \u00b7 API reference</title>\n"
        f'<link rel="icon" href="data:,">\n<style>{_CSS}{_REFERENCE_CSS}</style>\n</head>\n<body>\n'
        f"<header><h1>{_e(title)}</h1>"
        f'<p class="meta">{_e(" · ".join(meta))}</p>'
        + (f'<p class="desc">{_e(_text(description))}</p>' if description else "")
        + auth
        + '</header>\n<main><nav aria-label="Operations"><h2>Operations</h2>'
        f'<ul class="toc">{"".join(toc) or "<li>This document lists no operations.</li>"}</ul>'
        f"</nav>\n{''.join(sections)}\n</main>\n</body>\n</html>\n"
    )


_REFERENCE_CSS = """
.toc,.toc ul{list-style:none;padding-left:1rem;margin:.2rem 0}.toc{padding-left:0}
.toc a{color:inherit;text-decoration:none}.toc a:hover .path,.toc a:hover code{
text-decoration:underline}.toc .badge{min-width:4em;font-size:11px}
a{color:var(--ac)}
"""
