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

  function headers(json) {
    const token = JSON.parse(document.body.getAttribute("hx-headers:inherited") || "{}");
    return json ? {...token, "Content-Type": "application/json"} : token;
  }

  // One request for all when the server has the batch endpoint; one per job otherwise.
  async function batch(action, ids) {
    const answer = await fetch("/api/v1/jobs/actions", {
      method: "POST", headers: headers(true), body: JSON.stringify({action, ids}),
    });
    if (answer.status !== 404 && answer.status !== 405) {
      const body = await answer.json().catch(() => ({}));
      if (!answer.ok) return [body.detail || answer.statusText];
      return (body.results || []).filter((result) => !result.ok)
        .map((result) => `job ${result.id}: ${(result.error && result.error.detail) || result.status}`);
    }
    const problems = [];
    for (const id of ids) {
      const [method, url] = action === "remove" ? ["DELETE", `/api/v1/jobs/${id}`]
        : ["POST", `/api/v1/jobs/${id}/${action}`];
      const one = await fetch(url, {method, headers: headers(false)});
      if (!one.ok) {
        const body = await one.json().catch(() => ({}));
        problems.push(`job ${id}: ${body.detail || one.statusText}`);
      }
    }
    return problems;
  }

  bar.addEventListener("click", async (event) => {
    const action = event.target.dataset.batchAction;
    if (!action) return;
    const ids = chosen();
    if (!ids.length || !confirm(`${VERBS[action]} ${ids.length} job${ids.length > 1 ? "s" : ""}: ${ids.join(", ")}?`)) return;
    const problems = await batch(action, ids);
    const done = ids.length - problems.length;
    if (done) window.jobyardToast(`${VERBS[action]}: ${done} of ${ids.length} done`, "ok");
    for (const problem of problems) window.jobyardToast(problem, "error");
    for (const box of table.querySelectorAll('input[type="checkbox"]')) box.checked = false;
    update();
    window.jobyardRefresh(null);
  });
  update();
})();
