// The live parts every page shares: one connection to the global event stream
// (from the moment the page was rendered on), toasts for failures, breaches and
// finished workflow runs, refreshes of the parts marked with data-refresh-on,
// ticking runtimes, and what follows a change posted with htmx.
(() => {
  "use strict";
  const body = document.body;
  const NAMES = ["job_created", "job_state", "job_terminated", "workflow_started",
    "workflow_node_state", "workflow_finished", "workflow_reopened", "sla_breach", "notification"];

  // -- toasts -------------------------------------------------------------------
  function toast(text, kind = "info", href = null) {
    const box = document.getElementById("toasts");
    if (!box) return;
    const item = document.createElement("div");
    item.className = "toast toast-" + kind;
    const words = document.createElement(href ? "a" : "span");
    words.textContent = text;
    if (href) words.href = href;
    const close = document.createElement("button");
    close.type = "button";
    close.className = "close";
    close.setAttribute("aria-label", "Dismiss");
    close.textContent = "×";
    close.addEventListener("click", () => item.remove());
    item.append(words, close);
    box.append(item);
    setTimeout(() => item.remove(), kind === "error" ? 15000 : 8000);
  }
  window.jobyardToast = toast;

  function announce(name, data) {
    // A workflow node's job tells its states as workflow_node_state, its failure too.
    if ((name === "job_terminated" || name === "workflow_node_state") && data.state === "failed") {
      const why = data.error || data.reason || (data.exit_code != null ? "exit code " + data.exit_code : "");
      const what = data.node ? `${data.type}, node ${data.node} of run ${data.workflow_run}` : data.type;
      toast(`Job ${data.job_id} (${what}) failed${why ? ": " + why : ""}`, "error", `/jobs/${data.job_id}`);
    } else if (name === "sla_breach") {
      toast(`Job ${data.job_id} (${data.type}) went over its ${data.budget} budget`, "warn", `/jobs/${data.job_id}`);
    } else if (name === "workflow_finished") {
      const kind = data.state === "succeeded" ? "ok" : "error";
      toast(`Workflow ${data.workflow}, run ${data.run_id}: ${data.state}`, kind, `/runs/${data.run_id}`);
    }
  }

  // -- refreshes of live parts ----------------------------------------------------
  // At most one refresh per part every REFRESH ms, however many events arrive.
  const REFRESH = 600;
  function refresh(name) {
    for (const part of document.querySelectorAll("[data-refresh-on]")) {
      if (name && !part.dataset.refreshOn.split(" ").includes(name)) continue;
      if (part.jyPending) continue;
      part.jyPending = setTimeout(() => {
        part.jyPending = null;
        htmx.trigger(part, "jy-refresh");
      }, REFRESH);
    }
  }
  window.jobyardRefresh = refresh;

  // Once the page is whole: its own scripts (run.js, jobs.js…) listen for jy:* by then,
  // and htmx has taken in the parts to refresh (its DOMContentLoaded listener came first).
  // A stream opened before either lost what it told meanwhile; opened later, it loses
  // nothing, for it starts after the page's newest event (data-events-after).
  function whenReady(then) {
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", then);
    else setTimeout(then);
  }
  window.jobyardReady = whenReady;

  function connect() {
    const after = body.dataset.eventsAfter;
    if (after === undefined) return;
    // A page that shows running jobs' progress (data-live-progress) asks for it too, and
    // refreshes when a job it shows reports some (at most once per REFRESH, as above).
    const progress = document.querySelector("[data-live-progress]") !== null;
    const source = new EventSource("/api/v1/events?after=" + encodeURIComponent(after)
      + (progress ? "&progress=true" : ""));
    if (progress) {
      source.addEventListener("progress", (message) => {
        const id = Number(JSON.parse(message.data).job_id);
        if (document.querySelector(`[data-progress-of="${id}"]`)) refresh("progress");
      });
    }
    for (const name of NAMES) {
      source.addEventListener(name, (message) => {
        const data = JSON.parse(message.data);
        announce(name, data);
        refresh(name);
        body.dispatchEvent(new CustomEvent("jy:" + name, {detail: data}));
      });
    }
  }

  // -- ticking runtimes -----------------------------------------------------------
  // A span of time by the rules of the server's jobyard.units.duration (rounded half up,
  // the form chosen by the rounded figure): "850 ms", "4.2 s", "3 min 05 s", "2 h 10 min",
  // "3 d 4 h"; coarse, for times ago: "4 s", "3 min". The UI tests hold the two together.
  function duration(seconds, coarse) {
    if (seconds < 0) return "-" + duration(-seconds, coarse);
    const round = (value) => Math.floor(value + 0.5), pad = (n) => String(n).padStart(2, "0");
    const millis = round(seconds * 1000), tenths = round(seconds * 10), whole = round(seconds);
    const minutes = round(seconds / 60);
    if (!coarse && millis < 1000) return millis + " ms";
    if (coarse && whole < 60) return whole + " s";
    if (!coarse && tenths < 600) return `${Math.floor(tenths / 10)}.${tenths % 10} s`;
    if (coarse && minutes < 60) return minutes + " min";
    if (!coarse && whole < 3600) return `${Math.floor(whole / 60)} min ${pad(whole % 60)} s`;
    if (minutes < 48 * 60) return `${Math.floor(minutes / 60)} h ${pad(minutes % 60)} min`;
    const hours = round(seconds / 3600);
    return `${Math.floor(hours / 24)} d ${hours % 24} h`;
  }
  window.jobyardDuration = duration;

  function tick() {
    const now = performance.now();
    for (const clock of document.querySelectorAll("[data-runtime]")) {
      if (clock.jyBase !== clock.dataset.runtime) {  // new or re-rendered
        clock.jyBase = clock.dataset.runtime;
        clock.jyFrom = now;
      }
      clock.textContent = duration(parseFloat(clock.jyBase) + (now - clock.jyFrom) / 1000);
    }
    // "3 min ago" as the server wrote it, counted on from when the page got it.
    for (const time of document.querySelectorAll("time[data-ago]")) {
      if (time.jyBase !== time.dataset.ago) {
        time.jyBase = time.dataset.ago;
        time.jyFrom = now;
      }
      const seconds = parseFloat(time.jyBase) + (now - time.jyFrom) / 1000;
      const text = seconds >= 0 ? duration(seconds, true) + " ago" : "in " + duration(-seconds, true);
      if (time.textContent !== text) time.textContent = text;
    }
  }

  // -- after a change posted with htmx ------------------------------------------------
  // data-then: "refresh" (the live parts), "job" (open the job in the answer), or a path.
  function problem(text) {
    try {
      const body = JSON.parse(text);
      return body.detail || body.title || text;
    } catch (error) {
      return text || "the request failed";
    }
  }

  document.addEventListener("htmx:after:request", (event) => {
    const ctx = event.detail.ctx;
    const source = ctx.sourceElement;
    const status = ctx.response ? ctx.response.status : 0;
    if (status >= 400) {
      if (!source.hasAttribute("data-keep-errors")) toast(problem(ctx.text), "error");
      return;
    }
    const then = source.dataset.then;
    if (!then) return;
    if (then === "refresh") {
      refresh(null);
    } else if (then === "job") {
      location.assign("/jobs/" + JSON.parse(ctx.text).id);
    } else if (then === "run") {
      location.assign("/runs/" + JSON.parse(ctx.text).id);
    } else {
      location.assign(then);
    }
  });
  document.addEventListener("htmx:error", (event) => {
    const error = event.detail.error;
    if (error) toast("The server did not answer: " + error, "error");
  });

  whenReady(connect);
  tick();
  setInterval(tick, 1000);
})();
