// The job list: select jobs and kill, restart or remove them together.
(() => {
  "use strict";
  const bar = document.querySelector("[data-batch]");
  const table = document.getElementById("job-table");
  if (!bar || !table) return;
  const VERBS = {kill: "Kill", restart: "Restart", remove: "Remove"};

  function chosen() {
    return [...table.querySelectorAll('input[name="job"]:checked')].map((box) => Number(box.value));
  }

  function update() {
    const count = chosen().length;
    bar.querySelector("[data-selected]").textContent = count;
    for (const button of bar.querySelectorAll("[data-batch-action]")) button.disabled = count === 0;
  }

  table.addEventListener("change", (event) => {
    if (event.target.matches("[data-select-all]")) {
      for (const box of table.querySelectorAll('input[name="job"]')) box.checked = event.target.checked;
    }
    update();
  });
  document.addEventListener("htmx:after:swap", update);

  function headers() {
    const token = JSON.parse(document.body.getAttribute("hx-headers:inherited") || "{}");
    return {...token, "Content-Type": "application/json"};
  }

  // One request for all; each job gets the answer its own route would have given.
  async function batch(action, ids) {
    const answer = await fetch("/api/v1/jobs/actions", {
      method: "POST", headers: headers(), body: JSON.stringify({action, ids}),
    });
    const body = await answer.json().catch(() => ({}));
    if (!answer.ok) return [{why: body.detail || answer.statusText, ids}];
    // One line per reason, naming its jobs: a toast per job buried the summary.
    const reasons = new Map();
    for (const result of body.results || []) {
      if (result.ok) continue;
      const why = (result.error && result.error.detail) || String(result.status);
      if (!reasons.has(why)) reasons.set(why, []);
      reasons.get(why).push(result.id);
    }
    return [...reasons].map(([why, ids]) => ({why, ids}));
  }
  function named(ids) {
    const shown = ids.slice(0, 10).join(", ");
    return ids.length > 10 ? `${shown} and ${ids.length - 10} more` : shown;
  }

  bar.addEventListener("click", async (event) => {
    const action = event.target.dataset.batchAction;
    if (!action) return;
    const ids = chosen();
    if (!ids.length || !confirm(`${VERBS[action]} ${ids.length} job${ids.length > 1 ? "s" : ""}: ${ids.join(", ")}?`)) return;
    const problems = await batch(action, ids);
    const done = ids.length - problems.reduce((sum, problem) => sum + problem.ids.length, 0);
    window.jobyardToast(`${VERBS[action]}: ${done} of ${ids.length} done`, done ? "ok" : "error");
    for (const {why, ids: failed} of problems) {
      const jobs = failed.length > 1 ? "jobs" : "job";
      window.jobyardToast(`${why} (${jobs} ${named(failed)})`, "error");
    }
    for (const box of table.querySelectorAll('input[type="checkbox"]')) box.checked = false;
    update();
    window.jobyardRefresh(null);
  });
  update();
})();
