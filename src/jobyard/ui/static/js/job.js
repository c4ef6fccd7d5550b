// One job's page: its own event stream (log lines, state, progress, metrics), the log
// tail that follows new lines until the reader scrolls up, and the CPU/memory plot.
(() => {
  "use strict";
  const root = document.getElementById("job");
  if (!root) return;
  const id = root.dataset.jobId;
  const log = document.getElementById("log");
  const follow = document.querySelector("[data-log-follow]");
  let lastSeq = Number(log.dataset.lastSeq || 0);

  // -- the log tail --------------------------------------------------------------------
  // Lines are added once a frame, together, and the tail keeps the newest MAX_LINES: a
  // job printing thousands of lines a second laid the page out again for each one (and
  // kept every line), which froze the tab for as long as it printed.
  const MAX_LINES = 5000;
  let waiting = [];
  let shown = log.querySelectorAll(".line[data-seq]").length;
  let trimmed = null;  // the note in place of the lines let go
  // A line as a terminal leaves it, as the page's own lines are (render.terminal_text).
  const ANSI = /\x1b\[[0-?]*[ -\/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[()*+][ -~]|\x1b[@-Z\\-_]/g;
  function terminalText(text) {
    const bare = text.replace(ANSI, "").replace(/\r+$/, "");
    return bare.slice(bare.lastIndexOf("\r") + 1);
  }
  function toEnd() { log.scrollTop = log.scrollHeight; }
  function append(line) {
    if (line.seq <= lastSeq) return;  // already shown (read with the page)
    lastSeq = line.seq;
    if (waiting.push(line) === 1) requestAnimationFrame(show);
    // A hidden tab runs no frames: what waits stays bounded too.
    if (waiting.length >= 2 * MAX_LINES) waiting = waiting.slice(-MAX_LINES);
  }
  function show() {
    const batch = waiting.slice(-MAX_LINES);
    waiting = [];
    const lines = document.createDocumentFragment();
    for (const line of batch) {
      const span = document.createElement("span");
      span.className = "line " + line.stream;
      span.dataset.seq = line.seq;
      span.textContent = terminalText(line.line);
      lines.append(span);
    }
    log.append(lines);
    shown += batch.length;
    if (shown > MAX_LINES) trim(shown - MAX_LINES);
    if (follow.checked) toEnd();
  }
  function trim(extra) {
    const height = log.scrollHeight;
    let node = log.firstElementChild;
    while (node && extra > 0) {
      const next = node.nextElementSibling;
      if (node.dataset.seq) extra--, shown--;
      if (node !== trimmed) node.remove();  // a line, or the page's own note
      node = next;
    }
    if (!trimmed) {
      trimmed = document.createElement("span");
      trimmed.className = "line system";
    }
    const first = log.querySelector(".line[data-seq]");
    trimmed.textContent = `… ${Number(first.dataset.seq) - 1} earlier lines: download the full log`;
    log.prepend(trimmed);
    // A reader who scrolled up keeps the lines in view where they were.
    if (!follow.checked) log.scrollTop -= height - log.scrollHeight;
  }
  log.addEventListener("scroll", () => {
    // Scrolling up pauses the follow; back at the end, it follows again.
    const atEnd = log.scrollHeight - log.scrollTop - log.clientHeight < 8;
    if (follow.checked !== atEnd) follow.checked = atEnd;
  });
  document.querySelector("[data-log-end]").addEventListener("click", () => {
    follow.checked = true;
    toEnd();
  });
  follow.addEventListener("change", () => { if (follow.checked) toEnd(); });
  toEnd();

  // -- the live parts --------------------------------------------------------------------
  const live = document.getElementById("job-live");
  let pending = null;
  function refresh() {
    if (pending) return;
    pending = setTimeout(() => { pending = null; htmx.trigger(live, "jy-refresh"); }, 300);
  }
  function terminal() {
    const head = live.querySelector("[data-state]");
    return ["succeeded", "failed", "killed", "upstream_failed"].includes(head && head.dataset.state);
  }

  function connect() {
    const source = new EventSource(`/api/v1/jobs/${id}/events?after=${root.dataset.jobAfter}`);
    source.addEventListener("log", (message) => append(JSON.parse(message.data)));
    for (const name of ["state", "progress", "metric", "sla"]) source.addEventListener(name, refresh);
    source.addEventListener("close", () => { source.close(); refresh(); setTimeout(plot, 500); });
  }
  // Once htmx has taken in #job-live (the stream resumes from data-job-after meanwhile).
  if (root.dataset.terminal !== "true") window.jobyardReady(connect);

  // -- CPU and memory ----------------------------------------------------------------
  const box = document.getElementById("plot");
  let chart = null;
  function series(items) {
    const times = [], cpu = [], memory = [];
    items.forEach((sample, i) => {
      const at = Date.parse(sample.at) / 1000;
      const before = items[i - 1];
      let percent = null;
      if (before && before.attempt === sample.attempt) {
        const span = at - Date.parse(before.at) / 1000;
        percent = span > 0 ? 100 * (sample.cpu_seconds - before.cpu_seconds) / span : null;
      }
      times.push(at);
      cpu.push(percent);
      memory.push(sample.rss / 1e6);  // decimal MB, as sizes read everywhere
    });
    return [times, cpu, memory];
  }
  function breachLines(u) {
    const marks = (box.dataset.breaches || "").split(" ").filter(Boolean);
    const ctx = u.ctx;
    ctx.save();
    ctx.strokeStyle = "#c62828";
    ctx.lineWidth = 2;
    ctx.setLineDash([6, 4]);
    for (const mark of marks) {
      const x = u.valToPos(Date.parse(mark) / 1000, "x", true);
      ctx.beginPath();
      ctx.moveTo(x, u.bbox.top);
      ctx.lineTo(x, u.bbox.top + u.bbox.height);
      ctx.stroke();
    }
    ctx.restore();
  }
  async function plot() {
    const answer = await fetch(box.dataset.samples);
    if (!answer.ok) return;
    const items = (await answer.json()).items;
    if (!items.length) return;
    const data = series(items);
    const width = Math.max(box.clientWidth, 280);
    const fg = getComputedStyle(document.body).color;
    if (chart) {
      chart.setData(data);
    } else {
      box.textContent = "";
      chart = new uPlot({
        width, height: 220,
        series: [{}, {label: "CPU %", stroke: "#1f6feb", scale: "%"}, {label: "Memory MB", stroke: "#2e8540", scale: "mb"}],
        axes: [{stroke: fg}, {scale: "%", label: "CPU %", stroke: fg},
          {scale: "mb", side: 1, label: "MB", stroke: fg, grid: {show: false}}],
        hooks: {draw: [breachLines]},
      }, data, box);
      window.addEventListener("resize", () => chart.setSize({width: Math.max(box.clientWidth, 280), height: 220}));
    }
  }
  plot();
  setInterval(() => { if (!terminal()) plot(); }, 3000);
})();
