// The console's pages. Each renders into `root` and reads the /v1 API; `ctx` (app.js) says
// what the token may do (`ctx.can(scope)`), refreshes (`ctx.every`), and asks for
// confirmation (`ctx.confirm`).

import { api, explain } from "./api.js";
import { badge, bytes, duration, fill, h, hash, json, table, when } from "./ui.js";

const TERMINAL = ["succeeded", "failed", "cancelled"];

/** A section with a heading. */
function section(title, ...children) {
  const id = `s-${title.toLowerCase().replace(/[^a-z0-9]+/g, "-")}`;
  return h("section", { "aria-labelledby": id }, h("h2", { id }, title), ...children);
}

/** A job id as a link to its page. */
function jobLink(id) {
  return h("a", { href: `#/jobs/${encodeURIComponent(id)}` }, id);
}

/** The node an agent identity (`node-a/1`) belongs to. */
function nodeOf(agent) {
  return agent ? agent.split("/")[0] : "—";
}

/** A paragraph saying what went wrong, for a part of a page. */
function problem(err) {
  const { title, detail } = explain(err);
  return h("p", { class: "error", role: "alert" }, h("strong", {}, title), " ", detail);
}

// ---------------------------------------------------------------------------------------
// Overview

/** A uPlot chart in a figure, with a caption and a text summary for readers without it. */
function chart(title, series, height = 180) {
  const id = `c-${title.toLowerCase().replace(/[^a-z0-9]+/g, "-")}`;
  const holder = h("div", { class: "chart", role: "img", "aria-labelledby": `${id}-cap ${id}-sum` });
  const summary = h("p", { id: `${id}-sum`, class: "chart-summary" });
  const figure = h("figure", { id }, h("figcaption", { id: `${id}-cap` }, title), holder, summary);
  let plot = null;
  return {
    figure,
    update(data, words) {
      summary.textContent = words;
      if (typeof uPlot === "undefined") {
        holder.textContent = "(the chart library did not load)";
        return;
      }
      if (!plot) {
        const width = Math.max(280, holder.clientWidth || 420);
        plot = new uPlot(
          {
            width,
            height,
            scales: { x: { time: true } },
            axes: [{}, { size: 50 }],
            series: [{ label: "time" }, ...series],
          },
          data,
          holder,
        );
      } else {
        plot.setData(data);
      }
    },
  };
}

export async function overview(root, ctx) {
  const charts = {
    depth: chart("Queue depth and running attempts", [
      { label: "queued", stroke: "#1f5fbf", width: 2 },
      { label: "running", stroke: "#2f8f3a", width: 2, dash: [6, 4] },
    ]),
    done: chart("Throughput: jobs succeeded per bucket", [
      { label: "succeeded", stroke: "#2f8f3a", fill: "rgba(47,143,58,0.12)", width: 2 },
    ]),
    failed: chart("Failures: jobs failed or cancelled per bucket", [
      { label: "failed", stroke: "#b3261e", width: 2 },
      { label: "cancelled", stroke: "#7a5c00", width: 2, dash: [6, 4] },
    ]),
  };
  const note = h("p", { class: "help" });
  const nodesBox = h("div");
  const failuresBox = h("div");
  fill(
    root,
    h("h1", {}, "Overview"),
    section(
      "Jobs over time",
      note,
      h("div", { class: "charts" }, charts.depth.figure, charts.done.figure, charts.failed.figure),
    ),
    section("Nodes", nodesBox),
    section("Recent failures", failuresBox),
  );
  await ctx.every(5000, async () => {
    const [activity, nodes, failed] = await Promise.all([
      api("GET", "/v1/activity?window_s=900"),
      api("GET", "/v1/nodes"),
      api("GET", "/v1/jobs?status=failed&limit=10"),
    ]);
    if (!ctx.live()) return;
    const b = activity.buckets;
    const xs = b.map((x) => x.at_ms / 1000);
    const sum = (k) => b.reduce((n, x) => n + x[k], 0);
    const last = b[b.length - 1] ?? { queued: 0, running: 0 };
    note.textContent = `The last ${Math.round((b.length * activity.step_ms) / 60000)} minutes of the whole store (every node), in buckets of ${activity.step_ms / 1000} s; refreshed every 5 s.`;
    charts.depth.update(
      [xs, b.map((x) => x.queued), b.map((x) => x.running)],
      `Now: ${last.queued} queued, ${last.running} running.`,
    );
    charts.done.update([xs, b.map((x) => x.succeeded)], `${sum("succeeded")} jobs succeeded in the window.`);
    charts.failed.update(
      [xs, b.map((x) => x.failed), b.map((x) => x.cancelled)],
      `${sum("failed")} failed and ${sum("cancelled")} cancelled in the window.`,
    );
    const count = (s) => nodes.nodes.filter((n) => n.state === s).length;
    fill(
      nodesBox,
      h(
        "p",
        { class: "counts" },
        h("span", {}, `${count("live")} live`),
        " · ",
        h("span", {}, `${count("draining")} draining`),
        " · ",
        h("span", {}, `${count("gone")} gone lately`),
        " · ",
        h("a", { href: "#/nodes" }, "the nodes and their catalogs"),
      ),
      table(
        null,
        ["Node", "State", "In flight", "Heartbeat", "Version"],
        nodes.nodes.map((n) => [
          n.node + (n.this_process ? " (this node)" : ""),
          badge(n.state),
          String(n.inflight),
          n.state === "gone" ? "—" : `${duration(n.heartbeat_age_ms)} ago`,
          n.version,
        ]),
        { id: "overview-nodes" },
      ),
    );
    fill(
      failuresBox,
      failed.jobs.length === 0
        ? h("p", {}, "No failed jobs.")
        : table(
            null,
            ["Job", "Task", "Error", "Attempts", "Finished"],
            failed.jobs.map((j) => [jobLink(j.id), j.task ?? "—", j.error ?? "—", `${j.attempts}/${j.max_attempts}`, when(j.finished_ms)]),
          ),
    );
  });
}

// ---------------------------------------------------------------------------------------
// Jobs

export async function jobs(root, ctx) {
  const status = ctx.query.get("status") ?? "";
  const task = ctx.query.get("task") ?? "";
  const before = ctx.query.get("before");
  const statusSelect = h(
    "select",
    { id: "f-status", name: "status" },
    ["", "queued", "running", "succeeded", "failed", "cancelled"].map((s) =>
      h("option", { value: s, selected: s === status }, s || "any status"),
    ),
  );
  const taskInput = h("input", { id: "f-task", name: "task", value: task, placeholder: "name or name@version" });
  const node = ctx.query.get("node") ?? "";
  const known = await api("GET", "/v1/nodes").then(
    (r) => [...new Set(r.nodes.map((n) => n.node))].sort(),
    () => [],
  );
  if (node && !known.includes(node)) known.push(node);
  const nodeSelect = h(
    "select",
    { id: "f-node", name: "node" },
    h("option", { value: "" }, "any node"),
    known.map((n) => h("option", { value: n, selected: n === node }, n)),
  );
  const form = h(
    "form",
    { class: "filters", "aria-label": "Filter jobs" },
    h("label", { for: "f-status" }, "Status"),
    statusSelect,
    h("label", { for: "f-task" }, "Task"),
    taskInput,
    h("label", { for: "f-node" }, "Node"),
    nodeSelect,
    h("button", { type: "submit" }, "Filter"),
    h("a", { href: "#/jobs" }, "Clear"),
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const q = new URLSearchParams();
    if (statusSelect.value) q.set("status", statusSelect.value);
    if (taskInput.value.trim()) q.set("task", taskInput.value.trim());
    if (nodeSelect.value) q.set("node", nodeSelect.value);
    location.hash = `#/jobs${q.size ? `?${q}` : ""}`;
  });
  const list = h("div", { id: "job-list", "aria-live": "polite", "aria-busy": "true" });
  const more = h("p");
  fill(
    root,
    h("h1", {}, "Jobs"),
    form,
    h("p", { class: "help" }, "Newest first; the list refreshes every second (polling) while this page is open. A job is on a node when one of its attempts ran there."),
    list,
    more,
  );
  const q = new URLSearchParams({ limit: "50" });
  if (status) q.set("status", status);
  if (task) q.set("task", task);
  if (node) q.set("node", node);
  if (before) q.set("before", before);
  await ctx.every(1000, async () => {
    const page = await api("GET", `/v1/jobs?${q}`);
    if (!ctx.live()) return;
    list.setAttribute("aria-busy", "false");
    fill(
      list,
      page.jobs.length === 0
        ? h("p", {}, "No jobs match.")
        : table(
            null,
            ["Job", "Status", "Task", "Attempts", "Created", "Took", "Error"],
            page.jobs.map((j) => [
              jobLink(j.id),
              badge(j.status),
              j.task ?? h("span", { class: "muted" }, "(component)"),
              `${j.attempts}/${j.max_attempts}`,
              when(j.created_ms),
              j.finished_ms ? duration(j.finished_ms - j.created_ms) : "—",
              j.error ?? "",
            ]),
            { id: "jobs-table" },
          ),
    );
    const next = new URLSearchParams(q);
    next.delete("limit");
    if (page.next !== null) next.set("before", page.next);
    fill(more, page.next !== null ? h("a", { href: `#/jobs?${next}` }, "Older jobs") : null);
  });
}

// ---------------------------------------------------------------------------------------
// One job

/** How an attempt ended, in words. */
function outcomeWords(a) {
  const o = a.outcome;
  if (!o) return a.state;
  switch (o.kind) {
    case "succeeded":
      return `succeeded (${bytes(o.output_bytes)} output)`;
    case "failed":
      return `failed: ${o.code}${o.retryable ? " (retryable)" : ""}: ${o.message}`;
    case "trapped":
      return `trapped: ${o.reason}: ${o.message}`;
    default:
      return `${o.kind}: ${o.message ?? ""}`;
  }
}

/** The attempts as a timeline: one bar per attempt on the job's time axis. */
function timeline(job) {
  const now = Date.now();
  const start = job.created_ms;
  const end = Math.max(job.finished_ms ?? now, ...job.attempt_list.map((a) => a.finished_ms ?? now), start + 1);
  const span = end - start;
  const rows = job.attempt_list.map((a) => {
    const left = ((a.started_ms - start) / span) * 100;
    const width = Math.max(0.8, (((a.finished_ms ?? now) - a.started_ms) / span) * 100);
    const bar = h(
      "div",
      { class: "track", "aria-hidden": "true" },
      h("div", { class: `bar s-${a.state}`, style: null }),
    );
    // CSP forbids inline style attributes; CSSOM properties are allowed.
    bar.firstChild.style.marginLeft = `${left}%`;
    bar.firstChild.style.width = `${Math.min(width, 100 - left)}%`;
    return [
      String(a.number),
      a.agent,
      nodeOf(a.agent),
      badge(a.state),
      outcomeWords(a),
      when(a.started_ms),
      duration((a.finished_ms ?? now) - a.started_ms) + (a.finished_ms ? "" : " so far"),
      bar,
    ];
  });
  return rows.length === 0
    ? h("p", {}, "No attempt yet.")
    : table(null, ["#", "Agent", "Node", "State", "Outcome", "Started", "Duration", "Timeline"], rows, {
        id: "attempts",
        class: "timeline",
      });
}

/** A compat report as a table: each import, its verdict, which side is ahead, what is missing.
 * Unmet imports come first; satisfied WASI imports are one row, as `driftless check` prints them. */
export function reportTable(report, id = "report") {
  const order = { rejected: 0, degraded: 1, satisfied: 2 };
  const imports = [...report.imports].sort((a, b) => order[a.status] - order[b.status]);
  const wasi = imports.filter((i) => i.status === "satisfied" && i.package.startsWith("wasi:"));
  const rows = imports
    .filter((i) => !wasi.includes(i))
    .map((i) => [
      h("code", {}, i.import),
      badge(i.status),
      i.optional ? "optional" : "required",
      i.provided.length ? i.provided.join(", ") : "none",
      i.ahead === "job" ? "the job (upgrade the runtime)" : i.ahead === "host" ? "the host (rebuild the job)" : "—",
      [
        i.missing_functions.length ? h("div", {}, "missing: ", h("code", {}, i.missing_functions.join(", "))) : null,
        ...i.retyped.map((r) => h("div", {}, `${r.function}: job ${r.job}, host ${r.host}`)),
      ],
      i.message,
    ]);
  if (wasi.length) {
    const packages = [...new Set(wasi.map((i) => i.package))].join(", ");
    rows.push([`${wasi.length} WASI imports (${packages})`, badge("satisfied"), "required", "wasmtime-wasi", "—", "", "provided by wasmtime-wasi"]);
  }
  return h(
    "div",
    { id, class: "report" },
    h("p", { class: `verdict v-${report.verdict}` }, h("strong", {}, report.verdict.toUpperCase()), ": ", report.summary),
    table(null, ["Import", "Verdict", "Need", "Host provides", "Ahead", "Missing", "Why"], rows),
    h("p", { class: "help" }, `Judged against: ${report.catalog.join(", ")}`),
  );
}

export async function job(root, ctx) {
  const id = ctx.params[0];
  const head = h("div");
  const placement = h("div");
  const attempts = h("div");
  const log = h("pre", { id: "log", class: "log", tabindex: 0, "aria-label": "Job log" }, "…");
  const events = h("div");
  const io = h("div", { class: "io" });
  const actions = h("div", { class: "actions" });
  fill(
    root,
    h("h1", {}, "Job ", h("code", {}, id)),
    head,
    actions,
    placement,
    section("Attempts", attempts),
    section("Log", h("p", { class: "help" }, "Every attempt's log (stdout, stderr and context.log), refreshed every second while the job runs: a running attempt shows what it has logged so far when it runs on this node, and its whole log once it ends."), log),
    section("Events", events),
    io,
  );
  let finalShown = false;
  let shownPlacement = null;
  let shownActions = null;
  await ctx.every(1000, async () => {
    if (finalShown) return;
    const [job, logText, history] = await Promise.all([
      api("GET", `/v1/jobs/${encodeURIComponent(id)}`),
      api("GET", `/v1/jobs/${encodeURIComponent(id)}/logs`),
      api("GET", `/v1/jobs/${encodeURIComponent(id)}/events?limit=1000`),
    ]);
    if (!ctx.live()) return;
    const terminal = TERMINAL.includes(job.status);
    fill(
      head,
      h(
        "dl",
        { class: "facts" },
        h("dt", {}, "Status"),
        h("dd", { id: "job-status" }, badge(job.status), job.cancel_requested && !terminal ? " (cancel requested)" : ""),
        h("dt", {}, "Task"),
        h("dd", {}, job.task ? h("a", { href: `#/tasks/${encodeURIComponent(job.task.split("@")[0])}` }, job.task) : "— (a component submitted directly)"),
        h("dt", {}, "Component"),
        h("dd", {}, hash(job.component)),
        h("dt", {}, "Attempts"),
        h("dd", {}, `${job.attempts} of ${job.max_attempts}`),
        h("dt", {}, "Created"),
        h("dd", {}, when(job.created_ms)),
        job.priority ? [h("dt", {}, "Priority"), h("dd", { id: "job-priority" }, String(job.priority))] : null,
        job.status === "queued" && job.run_after_ms > Date.now() ? [h("dt", {}, "Not before"), h("dd", { id: "job-not-before" }, when(job.run_after_ms))] : null,
        job.concurrency_key ? [h("dt", {}, "Concurrency key"), h("dd", { id: "job-key" }, `${job.concurrency_key} (at most ${job.concurrency_limit} of its jobs at once)`)] : null,
        job.schedule ? [h("dt", {}, "Schedule"), h("dd", { id: "job-schedule" }, `${job.schedule.name}, its tick at `, when(job.schedule.tick_ms))] : null,
        h("dt", {}, "Finished"),
        h("dd", {}, job.finished_ms ? [when(job.finished_ms), ` (after ${duration(job.finished_ms - job.created_ms)})`] : "—"),
        job.progress ? [h("dt", {}, "Progress"), h("dd", {}, `${job.progress.percent}% ${job.progress.message}`)] : null,
        job.error ? [h("dt", {}, "Error"), h("dd", { class: "error" }, `${job.error.code}: ${job.error.message}`)] : null,
        h("dt", {}, "Limits"),
        h("dd", {}, `${duration(job.limits.timeout_ms)} per attempt, ${bytes(job.limits.memory_bytes)} memory`),
      ),
    );
    // Re-drawn only when it changes, so keyboard focus on the button stays.
    const actionsNow = `${terminal}|${job.cancel_requested}`;
    if (actionsNow !== shownActions) fill(
      actions,
      !terminal && ctx.can("submit") && !job.cancel_requested
        ? h(
            "button",
            {
              type: "button",
              id: "cancel",
              class: "danger",
              onclick: async () => {
                if (!(await ctx.confirm("Cancel this job?", `Job ${id} is ${job.status}. A queued job is cancelled at once; a running attempt is stopped within milliseconds. This cannot be undone.`, "Cancel the job"))) return;
                try {
                  await api("POST", `/v1/jobs/${encodeURIComponent(id)}/cancel`);
                } catch (err) {
                  ctx.alarm(err);
                }
              },
            },
            "Cancel job",
          )
        : null,
    );
    const placementNow = JSON.stringify(job.placement ?? null);
    // Unchanged: keep it as it is on screen (and the reports the reader opened or closed).
    if (placementNow !== shownPlacement) fill(
      placement,
      job.placement
        ? section(
            "Placement",
            h("p", { id: "waiting" }, job.placement.waiting ?? `Can run now on: ${job.placement.runnable_on.join(", ") || "no node"}.`),
            table(
              "Each registered node's verdict on this job's imports",
              ["Node", "Process", "State", "Verdict", "Why"],
              job.placement.nodes.map((n) => [n.node, h("code", {}, n.process), badge(n.state), badge(n.verdict), n.summary]),
              { id: "placement" },
            ),
            h(
              "div",
              { id: "placement-reports" },
              job.placement.nodes
                .filter((n) => n.state !== "gone")
                .map((n) =>
                  h(
                    "details",
                    { open: n.verdict === "rejected" || job.placement.nodes.length === 1 },
                    h("summary", {}, `${n.node}'s report: ${n.verdict}`),
                    reportTable(n.report, `report-${n.node}`),
                  ),
                ),
            ),
          )
        : null,
    );
    shownPlacement = placementNow;
    shownActions = actionsNow;
    fill(attempts, timeline(job));
    log.textContent = typeof logText === "string" && logText.length ? logText : "(nothing logged yet)";
    fill(
      events,
      table(
        null,
        ["When", "Attempt", "Event", "Message"],
        history.events.map((e) => [when(e.at_ms), e.attempt ?? "—", e.kind, e.message]),
        { id: "events" },
      ),
    );
    fill(
      io,
      section("Input", json(job.input, "Input")),
      section(
        "Output",
        job.output !== null ? json(job.output, "Output") : job.output_text !== null ? h("pre", { class: "json" }, job.output_text) : h("p", {}, terminal ? "No output (the job did not succeed)." : "Not yet: the job has not finished."),
      ),
    );
    if (terminal) finalShown = true;
  });
}

// ---------------------------------------------------------------------------------------
// Submit

export async function submit(root, ctx) {
  fill(root, h("h1", {}, "Submit a job"));
  if (!ctx.can("submit")) {
    root.append(h("p", {}, "This token may not submit jobs (it lacks the submit scope). Sign in with a token that has it, or ask an admin: driftless tokens create NAME --scope submit --scope read."));
    return;
  }
  const file = h("input", { id: "component", name: "component", type: "file", accept: ".wasm,application/wasm", required: true, "aria-describedby": "component-help" });
  const verdict = h("div", { id: "check", "aria-live": "polite" });
  const input = h("textarea", { id: "input", name: "input", rows: 8, spellcheck: "false", "aria-describedby": "input-help input-error" }, "{}");
  const inputError = h("p", { id: "input-error", class: "error", role: "alert" });
  const attempts = h("input", { id: "max-attempts", name: "max_attempts", type: "number", min: 1, max: 100, value: 3 });
  const priority = h("input", { id: "priority", name: "priority", type: "number", step: 1, value: 0, "aria-describedby": "priority-help" });
  const delay = h("input", { id: "delay", name: "delay_s", type: "number", min: 0, step: "any", placeholder: "0", "aria-describedby": "delay-help" });
  const key = h("input", { id: "concurrency-key", name: "concurrency_key", type: "text", maxlength: 256, "aria-describedby": "key-help" });
  const limit = h("input", { id: "concurrency-limit", name: "concurrency_limit", type: "number", min: 1, max: 10000, value: 1 });
  const result = h("div", { id: "submit-result", "aria-live": "polite" });
  const button = h("button", { type: "submit", id: "submit" }, "Submit");
  const form = h(
    "form",
    { class: "submit", "aria-label": "Submit a job" },
    h("label", { for: "component" }, "Component (.wasm)"),
    file,
    h("p", { id: "component-help", class: "help" }, "A job component built for wasm32-wasip2. Choosing it runs the version check against this node's catalog (POST /v1/check); nothing is stored until you submit."),
    verdict,
    h("label", { for: "input" }, "Input (JSON)"),
    input,
    h("p", { id: "input-help", class: "help" }, "Any JSON value; the job's run() receives it."),
    inputError,
    h("label", { for: "max-attempts" }, "Attempts allowed"),
    attempts,
    h("label", { for: "priority" }, "Priority"),
    priority,
    h("p", { id: "priority-help", class: "help" }, "Higher runs first; 0 is the default, negative values run after it."),
    h("label", { for: "delay" }, "Delay (seconds)"),
    delay,
    h("p", { id: "delay-help", class: "help" }, "Run no sooner than this long after submitting (empty: at once)."),
    h("label", { for: "concurrency-key" }, "Concurrency key"),
    key,
    h("p", { id: "key-help", class: "help" }, "Jobs sharing a key (a customer id, say) run at most the limit below at once, across the cluster. Empty: no key."),
    h("label", { for: "concurrency-limit" }, "Concurrency limit"),
    limit,
    h("div", { class: "actions" }, button),
    result,
  );
  root.append(form);

  file.addEventListener("change", async () => {
    fill(result);
    const chosen = file.files[0];
    if (!chosen) return fill(verdict);
    fill(verdict, h("p", {}, `Checking ${chosen.name}…`));
    try {
      const check = await api("POST", "/v1/check", { body: chosen, type: "application/wasm" });
      if (!ctx.live()) return;
      fill(
        verdict,
        h("h2", {}, "Version check on this node"),
        reportTable(check.report, "check-report"),
        check.accepted ? null : h("p", {}, "This node cannot run it. Submitting asks the whole cluster: another node's catalog may fit (the job then runs there); if none does, it is refused and nothing is stored."),
      );
    } catch (err) {
      fill(verdict, problem(err));
    }
  });
  input.addEventListener("input", () => {
    try {
      JSON.parse(input.value);
      inputError.textContent = "";
      input.removeAttribute("aria-invalid");
    } catch (e) {
      inputError.textContent = `Not JSON yet: ${e.message}`;
      input.setAttribute("aria-invalid", "true");
    }
  });
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    fill(result);
    const chosen = file.files[0];
    if (!chosen) {
      fill(result, h("p", { class: "error" }, "Choose a .wasm component first."));
      return file.focus();
    }
    let value;
    try {
      value = JSON.parse(input.value);
    } catch (err) {
      inputError.textContent = `The input is not JSON: ${err.message}. Fix it, then submit again.`;
      return input.focus();
    }
    const spec = { input: value };
    if (attempts.value) spec.max_attempts = Number(attempts.value);
    if (priority.value && Number(priority.value) !== 0) spec.priority = Number(priority.value);
    if (delay.value && Number(delay.value) > 0) spec.delay_ms = Math.round(Number(delay.value) * 1000);
    if (key.value.trim()) {
      spec.concurrency_key = key.value.trim();
      spec.concurrency_limit = Number(limit.value || 1);
    }
    const body = new FormData();
    body.append("component", chosen, chosen.name);
    body.append("spec", new Blob([JSON.stringify(spec)], { type: "application/json" }));
    button.disabled = true;
    fill(result, h("p", {}, "Submitting…"));
    try {
      const answer = await api("POST", "/v1/jobs", { body });
      location.hash = `#/jobs/${encodeURIComponent(answer.job.id)}`;
    } catch (err) {
      fill(result, problem(err), err.body?.report ? reportTable(err.body.report, "refusal-report") : null);
    } finally {
      button.disabled = false;
    }
  });
}

// ---------------------------------------------------------------------------------------
// Tasks

export async function tasks(root, ctx) {
  const list = h("div", { id: "task-list" });
  fill(root, h("h1", {}, "Tasks"), h("p", { class: "help" }, "Deployed task versions. Deploy with driftless deploy NAME FILE.wasm (PUT /v1/tasks/NAME)."), list);
  await ctx.every(5000, async () => {
    const page = await api("GET", "/v1/tasks?limit=1000");
    if (!ctx.live()) return;
    fill(
      list,
      page.tasks.length === 0
        ? h("p", {}, "No task is deployed yet.")
        : table(
            null,
            ["Task", "Current version", "Registered versions", "Last change"],
            page.tasks.map((t) => [h("a", { href: `#/tasks/${encodeURIComponent(t.name)}` }, t.name), String(t.current), String(t.versions), when(t.updated_ms)]),
            { id: "tasks-table" },
          ),
    );
  });
}

export async function task(root, ctx) {
  const name = ctx.params[0];
  const body = h("div");
  fill(root, h("h1", {}, "Task ", h("code", {}, name)), body);
  const act = async (title, text, ok, method, path, payload) => {
    if (!(await ctx.confirm(title, text, ok))) return;
    try {
      await api(method, path, payload ? { body: JSON.stringify(payload), type: "application/json" } : {});
      await refresh();
    } catch (err) {
      ctx.alarm(err);
    }
  };
  const refresh = async () => {
    const t = await api("GET", `/v1/tasks/${encodeURIComponent(name)}`);
    if (!ctx.live()) return;
    const pins = (v) => v.jobs.queued + v.jobs.running + v.jobs.succeeded + v.jobs.failed + v.jobs.cancelled;
    const rows = [...t.versions].reverse().map((v) => {
      const current = v.version === t.current;
      const gone = v.deleted_ms !== null && v.deleted_ms !== undefined;
      const buttons = [];
      if (!current && !gone && ctx.can("deploy")) {
        buttons.push(
          h("button", {
            type: "button",
            "data-version": v.version,
            class: "rollback",
            onclick: () => act(`Make version ${v.version} current?`, `New jobs submitted to ${name} will run version ${v.version} (component ${v.component.slice(0, 12)}…) instead of version ${t.current}. Jobs already submitted keep the version they were pinned to.`, `Make v${v.version} current`, "POST", `/v1/tasks/${encodeURIComponent(name)}/rollback`, { to: v.version }),
          }, `Make v${v.version} current`),
          " ",
          h("button", {
            type: "button",
            "data-version": v.version,
            class: "undeploy danger",
            onclick: () => act(`Undeploy version ${v.version}?`, `Version ${v.version} of ${name} will be unregistered: no new job can pin it. It is refused while queued or running jobs pin it (${v.jobs.queued + v.jobs.running} now). Its number is never reused.`, `Undeploy v${v.version}`, "DELETE", `/v1/tasks/${encodeURIComponent(name)}/versions/${v.version}`),
          }, `Undeploy v${v.version}`),
        );
      }
      return [
        h("span", {}, `v${v.version}`),
        current ? h("strong", { class: "current" }, "current") : gone ? badge("unregistered") : "registered",
        hash(v.component),
        h("span", { title: `queued ${v.jobs.queued}, running ${v.jobs.running}, succeeded ${v.jobs.succeeded}, failed ${v.jobs.failed}, cancelled ${v.jobs.cancelled}` }, `${pins(v)} (${v.jobs.queued + v.jobs.running} active)`),
        [when(v.created_ms), ` by ${v.deployed_by}`],
        v.imports.join("; ") || "—",
        buttons,
      ];
    });
    fill(
      body,
      h("p", { id: "task-current" }, `Current version: ${t.current}. Generation ${t.generation}.`),
      section("Versions", table(null, ["Version", "State", "Component", "Jobs pinned", "Deployed", "Imports at deploy", "Actions"], rows, { id: "versions" })),
      section(
        "What each node resolves current to",
        table(
          null,
          ["Node", "Resolves current to", "At generation", "Reported"],
          [
            [`${t.this_node.node} (this node, now)`, t.this_node.resolves_current_to === null ? "not resolved yet" : `v${t.this_node.resolves_current_to}`, String(t.this_node.generation), "now"],
            ...t.nodes.map((n) => [n.node, `v${n.version}`, String(n.generation), when(n.at_ms)]),
          ],
          { id: "resolutions" },
        ),
      ),
      section(
        "Audit",
        table(
          null,
          ["When", "Action", "Who", "From", "To", "Request"],
          [...t.audit].reverse().map((a) => [when(a.at_ms), a.action, a.actor, a.old_version ?? "—", a.new_version ?? "—", h("code", {}, a.request_id)]),
          { id: "audit" },
        ),
      ),
    );
  };
  await ctx.every(5000, refresh);
}

// ---------------------------------------------------------------------------------------
// Nodes and drift

export async function nodes(root, ctx) {
  const matrix = h("div");
  const list = h("div");
  const self = h("div");
  fill(
    root,
    h("h1", {}, "Nodes and drift"),
    section("Module versions by node", h("p", { class: "help" }, "Which host module versions each node process provides: the cluster's drift at a glance. A job runs only on nodes whose catalog satisfies its imports."), matrix),
    section("Node processes", list),
    section("This node", self),
  );
  const refresh = async () => {
    const [registry, inflight] = await Promise.all([
      api("GET", "/v1/nodes"),
      ctx.can("admin") ? api("GET", "/v1/admin/inflight") : Promise.resolve(null),
    ]);
    if (!ctx.live()) return;
    // This process's own state is known now; the registry has it as of its last heartbeat.
    for (const n of registry.nodes) {
      if (n.this_process && inflight && n.state !== "gone") n.state = inflight.draining ? "draining" : "live";
    }
    const shown = registry.nodes.filter((n) => n.state !== "gone" || registry.nodes.every((m) => m.node !== n.node || m.state === "gone"));
    const modules = [...new Set(shown.flatMap((n) => n.catalog))].filter((m) => !m.startsWith("wasi:")).sort();
    const wasi = [...new Set(shown.flatMap((n) => n.catalog))].filter((m) => m.startsWith("wasi:"));
    fill(
      matrix,
      h(
        "table",
        { id: "drift", class: "matrix" },
        h("caption", {}, "Rows: module versions. Columns: node processes. ✓ provided, ✗ not provided."),
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Module"), shown.map((n) => h("th", { scope: "col", "data-node": n.node }, n.node, h("br"), badge(n.state))))),
        h(
          "tbody",
          {},
          modules.map((m) =>
            h(
              "tr",
              {},
              h("th", { scope: "row" }, h("code", {}, m)),
              shown.map((n) =>
                n.catalog.includes(m)
                  ? h("td", { class: "yes" }, "✓ provided")
                  : h("td", { class: "no" }, "✗ not provided"),
              ),
            ),
          ),
        ),
      ),
      wasi.length ? h("p", { class: "help" }, `WASI: ${wasi.length} packages (${[...new Set(wasi.map((w) => w.split("@")[1]))].join(", ")}), from wasmtime-wasi.`) : null,
    );
    fill(
      list,
      table(
        null,
        ["Node", "Process", "State", "Address", "Version", "Identities", "In flight", "Heartbeat", "Drain"],
        registry.nodes.map((n) => [
          n.node + (n.this_process ? " (this node)" : ""),
          h("code", {}, n.process),
          badge(n.state),
          n.address,
          n.version,
          n.identities.join(", ") || "—",
          String(n.inflight),
          n.state === "gone" ? `gone ${when(n.gone_ms).textContent}` : `${duration(n.heartbeat_age_ms)} ago`,
          n.state === "gone" || !ctx.can("admin")
            ? "—"
            : n.state === "draining"
              ? h("button", { type: "button", "data-resume": n.node, onclick: () => ask(n.node, "resume") }, `Resume ${n.node}`)
              : h("button", { type: "button", class: "danger", "data-drain": n.node, onclick: () => ask(n.node, "drain") }, `Drain ${n.node}`),
        ]),
        { id: "node-list" },
      ),
    );
    const me = registry.nodes.find((n) => n.this_process);
    const draining = inflight ? inflight.draining : me?.draining;
    fill(
      self,
      h("p", { id: "self-state" }, `${me?.node ?? "This node"} is `, badge(draining ? "draining" : "live"), draining ? ": it claims nothing new and fails /readyz; running attempts finish." : ": it claims jobs."),
      ctx.can("admin")
        ? h(
            "div",
            { class: "actions" },
            draining
              ? h("button", { type: "button", id: "resume", onclick: () => change("resume") }, "Resume this node")
              : h("button", { type: "button", id: "drain", class: "danger", onclick: () => change("drain") }, "Drain this node"),
          )
        : h("p", { class: "help" }, "Draining and resuming need a token with the admin scope."),
      inflight
        ? table(
            `Attempts running on this node (${inflight.count})`,
            ["Job", "Agent", "Attempt", "Running for"],
            inflight.attempts.map((a) => [jobLink(a.job), a.agent, String(a.attempt), duration(a.running_ms)]),
            { id: "inflight" },
          )
        : null,
      h("p", { class: "help" }, "The buttons here act on this node at once. The Drain column asks any node of the cluster through the registry (POST /v1/nodes/NODE/drain): it acts at its next heartbeat, within a second."),
    );
  };
  const ask = async (node, what) => {
    if (what === "drain" && !(await ctx.confirm(`Drain ${node}?`, `${node} stops claiming new attempts at its next heartbeat and fails /readyz (load balancers take it out); reads and submissions go on, and running attempts finish. Resume undoes it.`, "Drain"))) return;
    try {
      await api("POST", `/v1/nodes/${encodeURIComponent(node)}/${what}`);
      await refresh();
    } catch (err) {
      ctx.alarm(err);
    }
  };
  const change = async (what) => {
    if (what === "drain" && !(await ctx.confirm("Drain this node?", "It stops claiming new attempts and fails /readyz (load balancers take it out); reads and submissions go on, and running attempts finish. Resume undoes it.", "Drain"))) return;
    try {
      await api("POST", `/v1/admin/${what}`);
      await refresh();
    } catch (err) {
      ctx.alarm(err);
    }
  };
  await ctx.every(2000, refresh);
}
