// A workflow run's page: node states from the global event stream colour the graph
// and the node table at once; a restarted node points at its new job.
(() => {
  "use strict";
  const root = document.getElementById("run");
  if (!root) return;
  const run = Number(root.dataset.runId);

  function show(name, state, job) {
    const node = document.querySelector(`#graph .node[data-node="${CSS.escape(name)}"]`);
    if (node) {
      node.dataset.state = state;
      let link = node.querySelector("a");
      if (!link && job) {  // a node that had no job yet: link it now
        link = document.createElementNS("http://www.w3.org/2000/svg", "a");
        while (node.firstChild) link.append(node.firstChild);
        node.append(link);
      }
      if (link && job) link.setAttribute("href", "/jobs/" + job);
      // What a screen reader says of the node, as graph.html writes it.
      if (link) link.setAttribute("aria-label", `${name}: ${state}`);
      const title = node.querySelector("title");
      if (title) title.textContent = `${name} · job ${job} · ${state}`;
    }
    const row = document.querySelector(`#nodes tr[data-node="${CSS.escape(name)}"]`);
    if (row) {
      row.children[1].innerHTML = `<a href="/jobs/${job}">#${job}</a>`;
      row.querySelector("[data-node-state]").innerHTML =
        `<span class="state state-${state}">${state.replace("_", " ")}</span>`;
    }
  }

  // The run's own header and buttons, read again (at most every REFRESH ms) when one of
  // its nodes ends: a stop made elsewhere tells nothing of the run itself, only its
  // nodes' ends (the run's end and reopening refresh it through data-refresh-on).
  const live = document.getElementById("run-live");
  const REFRESH = 600;
  let pending = null;
  function reread() {
    if (!live || pending) return;
    pending = setTimeout(() => { pending = null; htmx.trigger(live, "jy-refresh"); }, REFRESH);
  }
  const ENDED = new Set(["succeeded", "failed", "killed", "upstream_failed"]);

  // job_created: a node's new job (a resumed run's, a restarted node's), shown at once.
  for (const name of ["job_created", "workflow_node_state", "job_terminated"]) {
    document.body.addEventListener("jy:" + name, (event) => {
      const data = event.detail;
      if (data.workflow_run === run && data.node && data.state) {
        show(data.node, data.state, data.job_id);
        if (ENDED.has(data.state)) reread();
      }
    });
  }
})();
