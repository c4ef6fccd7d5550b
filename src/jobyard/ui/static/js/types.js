// The editor of job types stored through the API: the definition is JSON, sent with PUT.
(() => {
  "use strict";
  const form = document.querySelector("[data-type-editor]");
  if (!form) return;
  const errors = form.querySelector("[data-errors]");
  const token = JSON.parse(document.body.getAttribute("hx-headers:inherited") || "{}");

  function show(problems) {
    errors.textContent = "";
    for (const text of problems) {
      const item = document.createElement("li");
      item.className = "field-error";
      item.textContent = text;
      errors.append(item);
    }
  }

  async function send(method, url, body) {
    const answer = await fetch(url, {
      method, headers: {...token, "Content-Type": "application/json"}, body,
    });
    if (answer.ok) return [];
    const problem = await answer.json().catch(() => ({}));
    const fields = (problem.errors || []).map((e) => `${e.field || e.location}: ${e.message}`);
    return fields.length ? fields : [problem.detail || answer.statusText];
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const name = form.elements.name.value.trim();
    let definition;
    try {
      definition = JSON.parse(form.elements.definition.value);
    } catch (error) {
      show(["the definition is not valid JSON: " + error.message]);
      return;
    }
    const url = "/api/v1/job-types/" + encodeURIComponent(name);
    const problems = form.hasAttribute("data-create")
      ? await send("POST", "/api/v1/job-types", JSON.stringify({...definition, name}))
      : await send("PUT", url, JSON.stringify(definition));
    show(problems);
    if (!problems.length) location.assign("/types/" + encodeURIComponent(name));
  });

  const remove = form.querySelector("[data-delete]");
  if (remove) remove.addEventListener("click", async () => {
    const name = form.elements.name.value;
    if (!confirm(`Delete the job type ${name}? Its jobs keep their definition.`)) return;
    const problems = await send("DELETE", "/api/v1/job-types/" + encodeURIComponent(name));
    show(problems);
    if (!problems.length) location.assign("/types");
  });
})();
