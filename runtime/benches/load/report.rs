//! The load bench's printed figures beyond the per-setup lines: the scale figures, and one
//! summary of everything in Markdown tables for the performance issue's closing note.

use super::scale::{Backlog, Depth, Memory, Rss};
use super::*;

/// Everything one run measured.
pub(crate) struct Report<'a> {
    pub settings: &'a Settings,
    pub results: &'a [(Setup, Figures)],
    /// The baseline's version and p50 ms per job, or why it was not measured.
    pub baseline: &'a Result<(String, f64), String>,
    pub baseline_runs: usize,
    /// Agents, jobs/s, p50 ms under load (PostgreSQL, one node).
    pub sweep: &'a [(usize, f64, f64)],
    pub agent_jobs: usize,
    pub memory: &'a [Memory],
    pub claims: &'a [Depth],
    pub window: usize,
}

/// `1234567.8` as `1,234,568`.
pub(crate) fn thousands(x: f64) -> String {
    let digits = format!("{:.0}", x.abs());
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    if x < 0.0 { format!("-{out}") } else { out }
}

/// The machine, as the kernel describes it.
fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name")?.split_once(':').map(|x| x.1))
        .map(str::trim)
        .unwrap_or("unknown CPU");
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or("? GiB".into(), |kib| {
            format!("{:.1} GiB", kib / 1024.0 / 1024.0)
        });
    format!("{cores} cores available ({model}), {memory} of memory")
}

impl Report<'_> {
    fn agents(&self) -> &str {
        self.settings
            .agents
            .as_deref()
            .unwrap_or("the default (one per core)")
    }

    /// PostgreSQL with two nodes against one, same agents per node.
    fn two_nodes(&self) -> Option<(f64, f64)> {
        let rate = |n| {
            self.results
                .iter()
                .find(|(s, _)| *s == Setup::Postgres(n))
                .map(|(_, f)| f.throughput)
        };
        Some((rate(1)?, rate(2)?))
    }

    fn two_nodes_sentence(&self) -> Option<String> {
        let (one, two) = self.two_nodes()?;
        let verdict = if two < one {
            "two PostgreSQL nodes are SLOWER than one"
        } else {
            "two PostgreSQL nodes are not slower than one"
        };
        Some(format!(
            "{verdict}: {} jobs/s with two nodes against {} with one ({:.2}x), {} agents per node, the clients spread over the nodes",
            thousands(two),
            thousands(one),
            two / one,
            self.agents()
        ))
    }

    /// The empty-queue window of `setup`, the reference of its depth ratios.
    fn empty(&self, setup: Setup) -> Option<&Depth> {
        self.claims
            .iter()
            .find(|d| d.setup == setup && d.backlog == Backlog::Empty)
    }

    /// The scale figures, in the per-setup lines' style.
    pub(crate) fn scale(&self) {
        if let Some(sentence) = self.two_nodes_sentence() {
            println!("  two nodes vs one      {sentence}");
        }
        if !self.sweep.is_empty() {
            println!(
                "  agents                PostgreSQL, 1 node: jobs/s by agents ({} jobs, {} clients, a fresh database per count)",
                self.agent_jobs, self.settings.concurrency
            );
            for (agents, rate, p50) in self.sweep {
                println!(
                    "    {agents:>2} agents           {rate:>7.0} jobs/s  (p50 {p50:.2} ms under load)"
                );
            }
        }
        for m in self.memory {
            println!(
                "  memory                {}: daemon RSS (VmRSS, peak VmHWM from /proc)",
                m.setup.label()
            );
            println!("    idle after warm-up  {}", m.idle);
            println!(
                "    {} queued {}  (filled over HTTP while drained: {} clients, by hash, {:.1} s, {:.0} jobs/s)",
                thousands(m.jobs as f64),
                m.queued,
                self.settings.concurrency,
                m.fill.as_secs_f64(),
                m.jobs as f64 / m.fill.as_secs_f64()
            );
            println!(
                "    {} completed {}  (resumed; the backlog ran in {:.1} s, {:.0} jobs/s)",
                thousands(m.jobs as f64),
                m.done,
                m.run.as_secs_f64(),
                m.jobs as f64 / m.run.as_secs_f64()
            );
        }
        if !self.claims.is_empty() {
            println!(
                "  claims by depth       the claim stage's mean over {} jobs submitted one at a time (backlog cloned with SQL in the stopped daemon's store)",
                self.window
            );
        }
        for d in self.claims {
            let ratio = self
                .empty(d.setup)
                .map(|e| format!("{:.2}x empty", d.claim_us / e.claim_us))
                .unwrap_or_default();
            let fill = if d.fill.is_zero() {
                String::new()
            } else {
                format!("; cloned in {:.1} s", d.fill.as_secs_f64())
            };
            println!(
                "    {:<20} {:<60} claim {:>9.1} µs {ratio:<11} ({:.0} claims; depth {:.0}; p50 {:.2} ms, p99 {:.2} ms; CPU {:.0} µs/job{fill})",
                d.setup.label(),
                d.backlog.label(),
                d.claim_us,
                d.claims,
                d.depth,
                d.p50_ms,
                d.p99_ms,
                d.cpu_us
            );
        }
    }

    /// Every figure of the run in Markdown, for the closing note.
    pub(crate) fn summary(&self) {
        let s = self.settings;
        println!();
        println!("---- summary (Markdown) ----");
        println!();
        println!(
            "One run of `cargo bench -p driftless-runtime --bench load` on {}; the daemons, PostgreSQL and the load generator share the machine. Agents per node: {}. Every job is durable (fsynced commit) before it is acknowledged.",
            machine(),
            self.agents()
        );
        let baseline_rate = self.baseline.as_ref().ok().map(|(_, p50)| 1e3 / p50);
        if !self.results.is_empty() {
            println!();
            println!(
                "Throughput: {} jobs by {} clients, each `POST /v1/jobs?wait=30` by component hash; low load: {} jobs one at a time.",
                s.jobs, s.concurrency, s.latency_jobs
            );
            println!();
            println!(
                "| setup | durable jobs/s | p50 under load | low-load p50 / p99 submit→complete | vs `wasmtime run` | daemon CPU per job, low load / under load |"
            );
            println!("| --- | --- | --- | --- | --- | --- |");
            for (setup, f) in self.results {
                println!(
                    "| {} | {} | {:.2} ms | {:.2} / {:.2} ms | {} | {:.0} / {:.0} µs |",
                    setup.label(),
                    thousands(f.throughput),
                    percentile(&f.loaded, 50.0),
                    percentile(&f.low, 50.0),
                    percentile(&f.low, 99.0),
                    baseline_rate.map_or("".into(), |r| format!("{:.1}×", f.throughput / r)),
                    f.low_stages.1,
                    f.loaded_stages.1
                );
            }
            for (_, f) in self.results {
                if let Some(Ok(peer)) = &f.peer {
                    println!(
                        "| graphile-worker {} on the same PostgreSQL (no-op task, `add_job` per job, concurrency {}) | {} | {:.2} ms | {:.2} / {:.2} ms | | |",
                        peer.version,
                        setting("DRIFTLESS_BENCH_PEER_CONCURRENCY", 8),
                        thousands(peer.jobs_per_s),
                        peer.loaded_p50_ms,
                        peer.low_p50_ms,
                        peer.low_p99_ms
                    );
                }
            }
            if let Ok((version, p50)) = self.baseline {
                println!(
                    "| `{version} run --allow-precompiled`, one process per job ({} runs) | {} | | p50 {p50:.2} ms | 1× | |",
                    self.baseline_runs,
                    thousands(1e3 / p50)
                );
            }
            for (_, f) in self.results {
                if let Some(Ok(peer)) = &f.peer {
                    println!();
                    println!(
                        "driftless on PostgreSQL (1 node) against graphile-worker: {:.2}× its jobs/s, {:.2}× its low-load p50.",
                        f.throughput / peer.jobs_per_s,
                        percentile(&f.low, 50.0) / peer.low_p50_ms
                    );
                }
            }
            if let Some(sentence) = self.two_nodes_sentence() {
                println!();
                println!("Scale-out: {sentence}.");
            }
            println!();
            println!(
                "Where a job's time goes: µs per pass of each stage the node times (`driftless_stage_*` in `/metrics`), at low load / under load; `queued` holds `insert`, the wake-up and `claim`."
            );
            println!();
            let header: Vec<String> = self.results.iter().map(|(s, _)| s.label()).collect();
            println!("| stage | {} |", header.join(" | "));
            println!("| --- |{}", " --- |".repeat(header.len()));
            for (i, stage) in STAGES.iter().enumerate() {
                let cells: Vec<String> = self
                    .results
                    .iter()
                    .map(|(_, f)| {
                        format!("{:.1} / {:.1}", f.low_stages.0[i].1, f.loaded_stages.0[i].1)
                    })
                    .collect();
                println!("| {stage} | {} |", cells.join(" | "));
            }
        }
        if !self.sweep.is_empty() {
            println!();
            println!(
                "Throughput against agents, PostgreSQL, 1 node ({} jobs, {} clients, a fresh database per count):",
                self.agent_jobs, s.concurrency
            );
            println!();
            println!("| agents | durable jobs/s | p50 under load |");
            println!("| --- | --- | --- |");
            for (agents, rate, p50) in self.sweep {
                println!("| {agents} | {} | {p50:.2} ms |", thousands(*rate));
            }
        }
        if !self.memory.is_empty() {
            println!();
            println!(
                "Memory: the daemon's RSS (`VmRSS`, peak `VmHWM` in parentheses, from `/proc`). The queue is filled over HTTP (`POST /v1/jobs` by component hash from {} clients) while the node is drained (`POST /v1/admin/drain`: no claims, submissions go on), then the node is resumed and runs the backlog.",
                s.concurrency
            );
            println!();
            println!(
                "| store | idle after warm-up | with N queued | after N completed | N | fill over HTTP | backlog run |"
            );
            println!("| --- | --- | --- | --- | --- | --- | --- |");
            let mb =
                |r: &Rss| format!("{:.1} MiB ({:.1})", Rss::mb(r.now_kib), Rss::mb(r.peak_kib));
            for m in self.memory {
                println!(
                    "| {} | {} | {} | {} | {} | {:.1} s ({} jobs/s) | {:.1} s ({} jobs/s) |",
                    m.setup.label(),
                    mb(&m.idle),
                    mb(&m.queued),
                    mb(&m.done),
                    thousands(m.jobs as f64),
                    m.fill.as_secs_f64(),
                    thousands(m.jobs as f64 / m.fill.as_secs_f64()),
                    m.run.as_secs_f64(),
                    thousands(m.jobs as f64 / m.run.as_secs_f64())
                );
            }
        }
        if !self.claims.is_empty() {
            println!();
            println!(
                "Claim latency against queue depth: the mean of the `claim` stage (an idle agent's claim) over {} hello jobs submitted one at a time. The backlog is one real queued job (stored through the API by a node with every kv version, while drained) whose rows in `jobs` and in every table with a `job_id` column (the queue, its events) are cloned with SQL in the stopped daemon's store, each copy with a fresh id; the window runs on a node serving kv 1.1 only. Runnable backlog: hello jobs due in a day (delayed: their queue rows wait for the timer loop, not in the claims' index). Unrunnable backlog: kv-v2 jobs, due and ahead of the window, that no live node can run (the node that admitted them is gone). A copy, read back through the API (job and events), equals the job it was copied from but for its id. The CPU column is the driftless daemon's (idle agents' polls included); on PostgreSQL the claim query runs in the server, which is not counted.",
                self.window
            );
            println!();
            println!(
                "| store | queue | depth | claim µs | vs empty | submit→complete p50 / p99 | daemon CPU per job | backlog cloned in |"
            );
            println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
            for d in self.claims {
                let ratio = self
                    .empty(d.setup)
                    .map_or("".into(), |e| format!("{:.2}×", d.claim_us / e.claim_us));
                let fill = if d.fill.is_zero() {
                    "".into()
                } else {
                    format!("{:.1} s", d.fill.as_secs_f64())
                };
                println!(
                    "| {} | {} | {} | {:.1} | {ratio} | {:.2} / {:.2} ms | {:.0} µs | {fill} |",
                    d.setup.label(),
                    d.backlog.label(),
                    thousands(d.depth),
                    d.claim_us,
                    d.p50_ms,
                    d.p99_ms,
                    d.cpu_us
                );
            }
        }
        println!();
        println!("---- end of summary ----");
    }
}
