// agentflow playground: a chat page over the same-origin HTTP API. Plain script, no build
// step, no dependencies. Data only ever reaches the page as text (textContent, text nodes).
"use strict";

(() => {
  const TOKEN_KEY = "agentflow.playground.token";
  const RUN_KEY = "agentflow.playground.run"; // the run being streamed, kept across reloads
  const RECONNECTS = 3; // tries to follow a dropped stream from its last event id
  const RECONNECT_MS = 500;
  const HEALTH_POLL_MS = 3000;
  const HISTORY_LIMIT = 500;
  const THREAD_PAGE = 30;

  const $ = (id) => document.getElementById(id);
  const ui = {
    graphInfo: $("graph-info"),
    tokenToggle: $("token-toggle"),
    banner: $("banner"),
    bannerTitle: $("banner-title"),
    bannerDetail: $("banner-detail"),
    auth: $("auth"),
    token: $("token"),
    tokenClear: $("token-clear"),
    authNote: $("auth-note"),
    threadsToggle: $("threads-toggle"),
    threadsPanel: $("threads-panel"),
    threads: $("threads"),
    threadsNote: $("threads-note"),
    threadsMore: $("threads-more"),
    newThread: $("new-thread"),
    log: $("log"),
    empty: $("empty"),
    interrupt: $("interrupt"),
    interruptNode: $("interrupt-node"),
    interruptValue: $("interrupt-value"),
    interruptAnswer: $("interrupt-answer"),
    composer: $("composer"),
    input: $("input"),
    send: $("send"),
    stop: $("stop"),
    status: $("status"),
  };

  const state = {
    threadId: null, // the open thread; null for a new one (the server names it)
    threads: [],
    cursor: null,
    view: 0, // bumped on every thread switch; stale responses are dropped
    run: null, // {controller, threadId, runId, streamUrl, lastId} while a stream is being read
    healthTimer: null,
    broken: false,
  };

  // -- small DOM helpers ------------------------------------------------------------------

  function el(tag, className, ...children) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    for (const child of children) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  function announce(text) {
    ui.status.textContent = text;
  }

  function nearBottom() {
    const log = ui.log;
    return log.scrollHeight - log.scrollTop - log.clientHeight < 80;
  }

  function scrollDown(force) {
    if (force || nearBottom()) ui.log.scrollTop = ui.log.scrollHeight;
  }

  function append(node) {
    const stick = nearBottom();
    ui.empty.hidden = true;
    ui.log.append(node);
    scrollDown(stick);
    return node;
  }

  function clearLog() {
    ui.log.replaceChildren(ui.empty);
    ui.empty.hidden = false;
  }

  function formatMs(ms) {
    if (typeof ms !== "number" || !isFinite(ms)) return "";
    if (ms < 10) return ms.toFixed(2) + " ms";
    if (ms < 1000) return Math.round(ms) + " ms";
    return (ms / 1000).toFixed(ms < 10000 ? 2 : 1) + " s";
  }

  const relative = typeof Intl === "object" && Intl.RelativeTimeFormat
    ? new Intl.RelativeTimeFormat(undefined, { numeric: "auto" })
    : null;

  function ago(epochSeconds) {
    if (typeof epochSeconds !== "number") return "";
    const seconds = Math.round(epochSeconds - Date.now() / 1000);
    const abs = Math.abs(seconds);
    if (!relative) return new Date(epochSeconds * 1000).toLocaleString();
    if (abs < 45) return relative.format(0, "second");
    if (abs < 3600) return relative.format(Math.round(seconds / 60), "minute");
    if (abs < 86400) return relative.format(Math.round(seconds / 3600), "hour");
    return relative.format(Math.round(seconds / 86400), "day");
  }

  function textOf(content) {
    if (typeof content === "string") return content;
    if (!Array.isArray(content)) return content === null || content === undefined ? "" : String(content);
    return content
      .map((block) => {
        if (block && block.type === "text" && typeof block.text === "string") return block.text;
        return "[" + ((block && block.type) || "content") + "]";
      })
      .join("\n");
  }

  function json(value) {
    try {
      return JSON.stringify(value);
    } catch (_) {
      return String(value);
    }
  }

  // -- API ----------------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, code, message, requestId) {
      super(message);
      this.status = status;
      this.code = code;
      this.requestId = requestId || null;
    }
  }

  function getToken() {
    try {
      return sessionStorage.getItem(TOKEN_KEY) || "";
    } catch (_) {
      return "";
    }
  }

  function setToken(value) {
    try {
      if (value) sessionStorage.setItem(TOKEN_KEY, value);
      else sessionStorage.removeItem(TOKEN_KEY);
    } catch (_) {
      /* storage disabled: the token lives for this page only */
    }
  }

  // The in-flight run (thread, stream_url, last event id rendered), so that a reloaded or
  // reopened tab follows the rest of its answer. Cleared at `end` and on a switch of thread.
  function rememberRun(run) {
    try {
      const memory = { thread_id: run.threadId, run_id: run.runId, stream_url: run.streamUrl, last_id: run.lastId };
      sessionStorage.setItem(RUN_KEY, JSON.stringify(memory));
    } catch (_) {
      /* storage disabled: a reload loses the stream (the run is saved all the same) */
    }
  }

  function recalledRun() {
    try {
      const memory = JSON.parse(sessionStorage.getItem(RUN_KEY) || "null");
      const valid = memory && typeof memory.thread_id === "string" && typeof memory.run_id === "string"
        && typeof memory.stream_url === "string" && memory.stream_url.startsWith("/v1/threads/");
      return valid ? memory : null;
    } catch (_) {
      return null;
    }
  }

  function forgetRun() {
    try {
      sessionStorage.removeItem(RUN_KEY);
    } catch (_) {
      /* nothing kept */
    }
  }

  function headers(extra) {
    const result = Object.assign({ Accept: "application/json" }, extra || {});
    const token = getToken();
    if (token) result.Authorization = "Bearer " + token;
    return result;
  }

  async function errorFrom(response) {
    let body = null;
    try {
      body = await response.json();
    } catch (_) {
      body = null;
    }
    const error = (body && typeof body.error === "object" && body.error) || {};
    const err = new ApiError(
      response.status,
      error.code || "http_" + response.status,
      error.message || response.statusText || "the request failed",
      error.request_id || response.headers.get("X-Request-ID"),
    );
    if (response.status === 401) showAuth(err);
    if (response.status === 503 && (error.code === "graph_load_failed" || error.code === "config_invalid")) checkHealth();
    return err;
  }

  async function request(path, options) {
    const opts = options || {};
    const init = { method: opts.method || "GET", headers: headers(opts.headers), signal: opts.signal };
    if (opts.body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(opts.body);
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch (exc) {
      if (exc && exc.name === "AbortError") throw exc;
      throw new ApiError(0, "network_error", "the server is not reachable (" + exc.message + ")");
    }
    if (!response.ok) throw await errorFrom(response);
    return response;
  }

  async function api(path, options) {
    const response = await request(path, options);
    return response.json();
  }

  const threadPath = (id, tail) => "/v1/threads/" + encodeURIComponent(id) + (tail || "");

  function errorBlock(err, where) {
    const code = err.code || "error";
    const lines = el("div", "error-meta");
    lines.append(el("span", null, "code "), el("code", null, code));
    if (err.status) lines.append(el("span", null, " · HTTP " + err.status));
    const rid = err.requestId || err.request_id;
    if (rid) lines.append(el("span", null, " · request "), el("code", null, rid));
    const box = el("div", "error", where ? el("div", "error-where", where) : null, el("strong", null, err.message || "failed"), lines);
    box.setAttribute("role", "alert");
    return box;
  }

  // -- health: a graph that fails to import is shown until it is fixed ----------------------

  async function checkHealth() {
    clearTimeout(state.healthTimer);
    state.healthTimer = null;
    let problem = null;
    try {
      const response = await fetch("/health", { cache: "no-store", headers: { Accept: "application/json" } });
      const body = await response.json();
      const checks = (body && body.checks) || {};
      const graph = checks.graph || {};
      if (checks.config && checks.config.status === "error") {
        problem = { title: "agentflow.json is invalid", detail: checks.config.error || "" };
      } else if (graph.status === "error") {
        problem = { title: "The graph failed to load", detail: graph.error || "" };
      } else if (checks.server && checks.server.status === "draining") {
        problem = { title: "The server is shutting down", detail: "" };
      } else {
        const failed = Object.keys(checks).filter((k) => checks[k] && checks[k].status === "error");
        if (failed.length) {
          problem = {
            title: "The server is unhealthy",
            detail: failed.map((k) => k + ": " + (checks[k].error || "error")).join("\n"),
          };
        }
      }
    } catch (exc) {
      problem = { title: "The server is not reachable", detail: String((exc && exc.message) || exc) };
    }
    if (problem) {
      ui.bannerTitle.textContent = problem.title;
      ui.bannerDetail.textContent = problem.detail;
      ui.bannerDetail.hidden = !problem.detail;
      ui.banner.hidden = false;
      state.broken = true;
      state.healthTimer = setTimeout(checkHealth, HEALTH_POLL_MS);
    } else if (state.broken) {
      state.broken = false;
      ui.banner.hidden = true;
      announce("The server is healthy again.");
      loadGraphInfo();
      loadThreads();
    }
  }

  // -- auth ---------------------------------------------------------------------------------

  function showAuth(err) {
    ui.auth.hidden = false;
    ui.tokenToggle.hidden = false;
    ui.tokenToggle.setAttribute("aria-expanded", "true");
    if (err) {
      ui.authNote.textContent = "The server refused the request (" + err.code + ": " + err.message + "). Paste a bearer token; it is kept in this tab only.";
      ui.auth.classList.add("needed");
      if (document.activeElement !== ui.input) ui.token.focus();
    }
  }

  async function detectAuth() {
    if (getToken()) {
      ui.tokenToggle.hidden = false;
      ui.token.value = getToken();
      return;
    }
    try {
      const response = await fetch("/openapi.json", { headers: { Accept: "application/json" } });
      if (!response.ok) return;
      const document_ = await response.json();
      const schemes = document_ && document_.components && document_.components.securitySchemes;
      if (schemes && Object.keys(schemes).length) {
        ui.tokenToggle.hidden = false;
        if (!getToken()) showAuth(null);
      }
    } catch (_) {
      /* no document: nothing to learn */
    }
  }

  ui.tokenToggle.addEventListener("click", () => {
    const open = ui.auth.hidden;
    ui.auth.hidden = !open;
    ui.tokenToggle.setAttribute("aria-expanded", String(open));
    if (open) ui.token.focus();
  });

  ui.auth.addEventListener("submit", (event) => {
    event.preventDefault();
    setToken(ui.token.value.trim());
    ui.auth.classList.remove("needed");
    ui.authNote.textContent = getToken() ? "Token saved for this tab." : "Token cleared.";
    announce(ui.authNote.textContent);
    reloadAll();
  });

  ui.tokenClear.addEventListener("click", () => {
    ui.token.value = "";
    setToken("");
    ui.authNote.textContent = "Token cleared.";
    reloadAll();
  });

  function reloadAll() {
    loadGraphInfo();
    loadThreads();
    if (state.threadId) openThread(state.threadId);
  }

  // -- graph and threads --------------------------------------------------------------------

  async function loadGraphInfo() {
    try {
      const info = await api("/v1/graph");
      const nodes = (info.nodes || []).filter((n) => n.type === "node").map((n) => n.id);
      ui.graphInfo.textContent = (info.name || "graph") + (nodes.length ? " · " + nodes.join(" → ") : "");
      ui.graphInfo.title = "Nodes of the served graph";
    } catch (err) {
      ui.graphInfo.textContent = "";
    }
  }

  async function loadThreads(more) {
    let path = "/v1/threads?limit=" + THREAD_PAGE;
    if (more && state.cursor) path += "&cursor=" + encodeURIComponent(state.cursor);
    try {
      const page = await api(path);
      const items = Array.isArray(page.threads) ? page.threads : [];
      state.threads = more ? state.threads.concat(items) : items;
      state.cursor = page.next_cursor || null;
      ui.threadsNote.textContent = "";
    } catch (err) {
      ui.threadsNote.textContent = "Threads could not be loaded: " + err.message + " (" + err.code + ")";
    }
    renderThreads();
  }

  function renderThreads() {
    const items = state.threads.map((thread) => {
      const title = (thread.title || "").trim() || thread.thread_id;
      const meta = [ago(thread.updated_at)];
      if (typeof thread.message_count === "number") {
        meta.push(thread.message_count + (thread.message_count === 1 ? " message" : " messages"));
      }
      const button = el("button", "thread", el("span", "thread-title", title), el("span", "thread-meta", meta.join(" · ")));
      button.type = "button";
      button.title = thread.thread_id;
      button.dataset.threadId = thread.thread_id;
      if (thread.running) button.append(el("span", "badge running", "running"));
      if (thread.status === "interrupted") button.append(el("span", "badge waiting", "waiting"));
      if (thread.thread_id === state.threadId) button.setAttribute("aria-current", "true");
      button.addEventListener("click", () => selectThread(thread.thread_id));
      return el("li", null, button);
    });
    ui.threads.replaceChildren(...items);
    ui.threadsMore.hidden = !state.cursor;
    if (!items.length && !ui.threadsNote.textContent) ui.threadsNote.textContent = "No threads yet.";
    else if (items.length && ui.threadsNote.textContent === "No threads yet.") ui.threadsNote.textContent = "";
    ui.threadsToggle.textContent = ui.threadsPanel.classList.contains("open") ? "Hide" : "Show (" + items.length + ")";
  }

  ui.threadsMore.addEventListener("click", () => loadThreads(true));

  ui.threadsToggle.addEventListener("click", () => {
    const open = !ui.threadsPanel.classList.contains("open");
    ui.threadsPanel.classList.toggle("open", open);
    ui.threadsToggle.setAttribute("aria-expanded", String(open));
    renderThreads();
  });

  // -- the selected thread lives in location.hash (#thread=<id>) ----------------------------

  function hashThread() {
    const match = /^#thread=(.+)$/.exec(location.hash);
    if (!match) return null;
    try {
      return decodeURIComponent(match[1]);
    } catch (_) {
      return null;
    }
  }

  function selectThread(id) {
    if (id === state.threadId && hashThread() === id) return;
    location.hash = "thread=" + encodeURIComponent(id); // hashchange opens it
  }

  window.addEventListener("hashchange", () => {
    const id = hashThread();
    if (id && id !== state.threadId) openThread(id);
    else if (!id && state.threadId) newThread(false);
  });

  function detachRun() {
    if (state.run) {
      state.run.controller.abort(); // the run goes on server-side and is saved
      state.run = null;
      forgetRun();
      setRunning(false);
    }
  }

  function newThread(updateUrl) {
    detachRun();
    state.view += 1;
    state.threadId = null;
    if (updateUrl !== false && location.hash) history.pushState(null, "", location.pathname + location.search);
    hideInterrupt();
    clearLog();
    renderThreads();
    ui.input.focus();
  }

  ui.newThread.addEventListener("click", () => newThread(true));

  async function openThread(id, inFlight) {
    detachRun();
    const view = ++state.view;
    state.threadId = id;
    hideInterrupt();
    clearLog();
    ui.empty.hidden = true;
    renderThreads();
    const loading = append(el("p", "muted small", "Loading the thread…"));
    try {
      let page = await api(threadPath(id, "/messages?limit=" + HISTORY_LIMIT));
      let skipped = 0;
      if (page.next_offset !== null && page.next_offset !== undefined && typeof page.total === "number") {
        skipped = page.total - HISTORY_LIMIT;
        page = await api(threadPath(id, "/messages?limit=" + HISTORY_LIMIT + "&offset=" + skipped));
      }
      if (view !== state.view) return;
      loading.remove();
      if (skipped > 0) append(el("p", "muted small center", skipped + " earlier messages are not shown."));
      const past = new History();
      for (const message of page.messages || []) past.message(message);
      if (!(page.messages || []).length) ui.empty.hidden = false;
      scrollDown(true);
      const threadState = await api(threadPath(id, "/state"));
      if (view !== state.view) return;
      if (threadState.interrupt) showInterrupt(threadState.interrupt);
      if (inFlight) await resumeRun(inFlight, past, view);
    } catch (err) {
      if (view !== state.view) return;
      loading.remove();
      append(errorBlock(err, "Could not open thread " + id));
    }
  }

  // -- rendering messages -------------------------------------------------------------------

  function bubble(role, text) {
    const label = { user: "You", assistant: "Assistant", system: "System" }[role] || role;
    const body = el("div", "text");
    if (text) body.append(document.createTextNode(text));
    const node = el("div", "msg " + role, el("div", "who", label), body);
    return node;
  }

  // Tool calls and their results, matched by tool_call_id.
  class ToolRows {
    constructor() {
      this.calls = new Map();
    }

    call(container, call) {
      const args = call.arguments && typeof call.arguments === "object" ? json(call.arguments) : json(call.arguments || {});
      const head = el("div", "tool-call", el("span", "tool-label", "tool call"), el("code", "tool-name", call.name || "?"), el("code", "tool-args", args));
      const row = el("div", "tool", head);
      if (call.id) this.calls.set(call.id, row);
      container.append(row);
      return row;
    }

    result(message) {
      const meta = message.metadata || {};
      const ok = meta.status !== "error";
      const result = el(
        "div",
        "tool-result " + (ok ? "ok" : "failed"),
        el("span", "badge " + (ok ? "ok" : "failed"), ok ? "ok" : "error"),
        el("span", "tool-output", textOf(message.content)),
        meta.duration_ms !== undefined ? el("span", "time", formatMs(meta.duration_ms)) : null,
      );
      const row = message.tool_call_id ? this.calls.get(message.tool_call_id) : null;
      if (row) {
        row.append(result);
        return result;
      }
      return append(el("div", "tool", el("div", "tool-call", el("span", "tool-label", "tool result"), el("code", "tool-name", message.name || "?")), result));
    }
  }

  // A thread's stored messages. A resumed run's stream shows its messages again, in the order
  // they came with its steps: `take` removes what the stream is about to show.
  class History {
    constructor() {
      this.tools = new ToolRows();
      this.shown = new Map(); // message id -> its elements
    }

    message(message) {
      const text = textOf(message.content);
      const nodes = [];
      if (message.role === "tool") {
        nodes.push(this.tools.result(message));
        scrollDown(true);
      } else {
        if (text || !(message.tool_calls || []).length) nodes.push(append(bubble(message.role, text)));
        if ((message.tool_calls || []).length) {
          const box = append(el("div", "calls"));
          for (const call of message.tool_calls) this.tools.call(box, call);
          nodes.push(box);
        }
      }
      if (message.id) this.shown.set(message.id, nodes);
    }

    take(id) {
      const nodes = this.shown.get(id);
      if (!nodes) return;
      this.shown.delete(id);
      for (const node of nodes) node.remove();
    }
  }

  // One streamed run: node steps with timings, tool calls, streamed assistant text. A run
  // followed again after a reload replays its stream from the start over the thread's stored
  // messages (`past`), with the run's own start and end times (epoch seconds) when known.
  class RunView {
    constructor(past, times) {
      this.steps = new Map(); // node -> its latest step element
      this.bubbles = new Map(); // message id -> {node, text}
      this.tools = new ToolRows();
      this.past = past || null;
      this.times = times || null;
      this.started = performance.now();
      this.ended = false;
      this.errored = false;
    }

    elapsedMs() {
      const times = this.times;
      if (!times || typeof times.started_at !== "number") return performance.now() - this.started;
      const end = typeof times.ended_at === "number" ? times.ended_at : Date.now() / 1000;
      return Math.max(0, (end - times.started_at) * 1000);
    }

    takePast(id) {
      if (this.past && id) this.past.take(id);
    }

    handle(event, data) {
      switch (event) {
        case "metadata":
          if (!state.threadId && data.thread_id) {
            state.threadId = data.thread_id;
            state.run.threadId = data.thread_id;
            history.replaceState(null, "", "#thread=" + encodeURIComponent(data.thread_id));
          }
          break;
        case "node":
          this.node(data);
          break;
        case "delta":
          this.delta(data);
          break;
        case "message":
          this.message(data);
          break;
        case "interrupt":
          showInterrupt(data);
          append(el("p", "note", "Paused in node ", el("code", null, data.node || "?"), " — answer below to resume."));
          break;
        case "error":
          this.error(data);
          break;
        case "end":
          this.end(data);
          break;
        default:
          break; // state and future events
      }
    }

    node(data) {
      if (data.status === "start") {
        const time = el("span", "step-time", "running…");
        const step = el("div", "step running", el("span", "dot"), el("code", "step-node", data.node || "?"), time);
        step.dataset.node = data.node || "";
        this.steps.set(data.node, step);
        append(step);
      } else {
        const step = this.steps.get(data.node);
        if (!step) return;
        step.classList.remove("running");
        step.querySelector(".step-time").textContent = formatMs(data.duration_ms);
      }
    }

    bubbleFor(id) {
      let entry = this.bubbles.get(id);
      if (!entry) {
        const node = append(bubble("assistant", ""));
        node.classList.add("streaming");
        const text = document.createTextNode("");
        node.querySelector(".text").append(text);
        entry = { node, text };
        this.bubbles.set(id, entry);
      }
      return entry;
    }

    delta(data) {
      if (typeof data.delta !== "string" || !data.delta) return;
      this.takePast(data.message_id);
      const stick = nearBottom();
      this.bubbleFor(data.message_id || "_").text.appendData(data.delta);
      scrollDown(stick);
    }

    message(data) {
      const message = data.message || {};
      this.takePast(message.id);
      const stick = nearBottom();
      if (message.role === "tool") {
        this.tools.result(message);
      } else {
        const text = textOf(message.content);
        const existing = this.bubbles.get(message.id);
        if (existing) {
          existing.node.querySelector(".text").textContent = text; // the final text wins
          existing.node.classList.remove("streaming");
          if (!text) existing.node.remove();
        } else if (text) {
          append(bubble(message.role || "assistant", text));
        }
        const calls = message.tool_calls || [];
        if (calls.length) {
          const box = append(el("div", "calls"));
          for (const call of calls) this.tools.call(box, call);
        }
      }
      scrollDown(stick);
    }

    error(data) {
      this.errored = true;
      if (data.code === "run_cancelled") {
        append(el("p", "note stopped", "Stopped: " + (data.message || "the run was stopped")));
        return;
      }
      append(errorBlock({ code: data.code, message: data.message, requestId: data.request_id }, null));
    }

    end(data) {
      this.ended = true;
      for (const entry of this.bubbles.values()) entry.node.classList.remove("streaming");
      for (const step of this.steps.values()) {
        if (step.classList.contains("running")) {
          step.classList.remove("running");
          step.classList.add("unfinished");
          step.querySelector(".step-time").textContent = "not finished";
        }
      }
      const parts = [data.status || "done", formatMs(this.elapsedMs())];
      const usage = data.usage || {};
      if (usage.total_tokens) parts.push(usage.total_tokens + " tokens");
      append(el("p", "run-end status-" + (data.status || "unknown"), parts.join(" · ")));
      announce(data.status === "done" ? "The answer is complete." : "Run " + (data.status || "ended") + ".");
    }
  }

  // -- SSE over fetch -----------------------------------------------------------------------

  async function readEvents(body, onEvent) {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    const dispatch = (block) => {
      let event = "message";
      let id = null;
      const data = [];
      for (const line of block.split(/\r\n|\r|\n/)) {
        if (!line || line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        let value = colon < 0 ? "" : line.slice(colon + 1);
        if (value.startsWith(" ")) value = value.slice(1);
        if (field === "event") event = value;
        else if (field === "data") data.push(value);
        else if (field === "id") id = value;
      }
      if (!data.length) return;
      let parsed;
      try {
        parsed = JSON.parse(data.join("\n"));
      } catch (_) {
        parsed = { raw: data.join("\n") };
      }
      onEvent(event, parsed || {}, id);
    };
    for (;;) {
      const { value, done } = await reader.read();
      buffer += decoder.decode(value || new Uint8Array(), { stream: !done });
      const blocks = buffer.split(/\r\n\r\n|\n\n|\r\r/);
      buffer = blocks.pop();
      for (const block of blocks) dispatch(block);
      if (done) break;
    }
    if (buffer.trim()) dispatch(buffer);
  }

  // -- running ------------------------------------------------------------------------------

  function setRunning(running) {
    ui.send.hidden = running;
    ui.stop.hidden = !running;
    ui.stop.disabled = false;
    ui.log.setAttribute("aria-busy", String(running));
    ui.interrupt.querySelector("button").disabled = running;
  }

  function newRun(threadId) {
    return { controller: new AbortController(), threadId, runId: null, streamUrl: null, lastId: 0 };
  }

  function streamAfter(run) {
    const extra = { Accept: "text/event-stream" };
    if (run.lastId) extra["Last-Event-ID"] = String(run.lastId);
    return request(run.streamUrl, { headers: extra, signal: run.controller.signal });
  }

  function sleep(ms) {
    return new Promise((resolve) => setTimeout(resolve, ms));
  }

  // Reads a run's events into `view` until its `end`, remembering where it is (RUN_KEY). A
  // stream that drops first is followed again after its last event id. `open` answers the
  // first response, or null when there is nothing to follow.
  async function streamRun(run, view, open) {
    detachRun();
    state.run = run;
    setRunning(true);
    announce("Running…");
    const onEvent = (event, data, id) => {
      if (state.run !== run) return;
      if (event === "metadata") {
        run.runId = data.run_id || run.runId;
        run.streamUrl = data.stream_url || run.streamUrl;
      }
      view.handle(event, data);
      if (id !== null && /^\d+$/.test(id)) run.lastId = Number(id);
      if (event === "end") forgetRun();
      else if (run.runId && run.streamUrl && run.threadId) rememberRun(run);
    };
    try {
      let response = await open();
      let tries = 0;
      while (response && state.run === run) {
        const before = run.lastId;
        try {
          await readEvents(response.body, onEvent);
        } catch (err) {
          if (err && err.name === "AbortError") throw err;
          /* dropped mid-stream: followed again below */
        }
        if (state.run !== run || view.ended) break;
        tries = run.lastId > before ? 1 : tries + 1;
        if (!run.streamUrl || tries > RECONNECTS) {
          append(errorBlock({ code: "stream_closed", message: "the stream closed before the run finished; reload the page to follow it again" }, "Connection lost"));
          break;
        }
        announce("Reconnecting…");
        await sleep(RECONNECT_MS * tries);
        if (state.run !== run) break;
        response = await streamAfter(run);
      }
    } catch (err) {
      if (err && err.name === "AbortError") return; // switched away; the run goes on
      if (err && err.status === 404) forgetRun(); // the run or its events are gone
      if (state.run === run) append(errorBlock(err, "The request failed"));
      announce("The request failed.");
    } finally {
      if (state.run === run) {
        state.run = null;
        setRunning(false);
      }
      loadThreads();
    }
  }

  function runStream(body) {
    const run = newRun(state.threadId);
    const open = () => request("/v1/graph/stream", { method: "POST", body, signal: run.controller.signal });
    return streamRun(run, new RunView(), open);
  }

  // After a reload: follow the run the page was streaming, replayed from its first event over
  // the stored messages already shown (`past`). A run whose events are no longer kept has
  // ended: its messages are the stored ones.
  async function resumeRun(memory, past, view) {
    let record;
    try {
      record = await api(threadPath(memory.thread_id, "/runs/" + encodeURIComponent(memory.run_id)));
    } catch (err) {
      if (view !== state.view) return;
      if (err.status === 404) forgetRun();
      else append(errorBlock(err, "Could not follow the run"));
      return;
    }
    if (view !== state.view) return;
    const run = newRun(memory.thread_id);
    run.runId = memory.run_id;
    run.streamUrl = memory.stream_url;
    const open = async () => {
      try {
        return await streamAfter(run);
      } catch (err) {
        if (err.status !== 404) throw err;
        forgetRun();
        return null;
      }
    };
    await streamRun(run, new RunView(past, record), open);
  }

  function send() {
    const text = ui.input.value;
    if (!text.trim() || state.run) return;
    ui.input.value = "";
    hideInterrupt();
    append(bubble("user", text));
    scrollDown(true);
    const body = { messages: [{ role: "user", content: text }] };
    if (state.threadId) body.thread_id = state.threadId;
    runStream(body);
  }

  ui.composer.addEventListener("submit", (event) => {
    event.preventDefault();
    send();
  });

  ui.input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing && !event.altKey && !event.ctrlKey && !event.metaKey) {
      event.preventDefault();
      send();
    }
  });

  ui.stop.addEventListener("click", async () => {
    const run = state.run;
    if (!run) return;
    ui.input.focus(); // a disabled button drops focus; keep it in the composer
    ui.stop.disabled = true;
    if (!run.threadId) {
      run.controller.abort();
      state.run = null;
      setRunning(false);
      return;
    }
    try {
      await api("/v1/graph/stop", { method: "POST", body: { thread_id: run.threadId } });
      announce("Stopping…");
    } catch (err) {
      append(errorBlock(err, "Could not stop the run"));
      ui.stop.disabled = false;
    }
  });

  // -- interrupts ---------------------------------------------------------------------------

  function showInterrupt(data) {
    const value = data.value;
    let prompt;
    if (typeof value === "string") prompt = value;
    else if (value && typeof value === "object" && typeof value.question === "string") prompt = value.question;
    else if (value && typeof value === "object" && typeof value.message === "string") prompt = value.message;
    else if (value === null || value === undefined) prompt = "(no question: any answer resumes the run)";
    else prompt = JSON.stringify(value, null, 2);
    ui.interruptNode.textContent = data.node ? " in node " + data.node : "";
    ui.interruptValue.textContent = prompt;
    ui.interrupt.hidden = false;
    ui.interruptAnswer.value = "";
    ui.interruptAnswer.focus();
  }

  function hideInterrupt() {
    ui.interrupt.hidden = true;
  }

  ui.interrupt.addEventListener("submit", (event) => {
    event.preventDefault();
    if (state.run || !state.threadId) return;
    const answer = ui.interruptAnswer.value;
    hideInterrupt();
    append(el("p", "note", "Resumed with: ", el("code", null, answer)));
    runStream({ thread_id: state.threadId, resume: answer });
    ui.input.focus();
  });

  // -- start --------------------------------------------------------------------------------

  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible" && !state.healthTimer) checkHealth();
  });

  checkHealth();
  detectAuth();
  loadGraphInfo();
  loadThreads();
  const initial = hashThread();
  const inFlight = recalledRun();
  if (inFlight && inFlight.thread_id !== initial) forgetRun();
  if (initial) openThread(initial, inFlight && inFlight.thread_id === initial ? inFlight : null);
  else ui.input.focus();
})();
