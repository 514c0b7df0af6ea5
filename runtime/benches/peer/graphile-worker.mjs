// The peer in the load bench: graphile-worker on the same throwaway PostgreSQL, with the
// workload driftless gets. A no-op task; each job added with `graphile_worker.add_job` in its
// own transaction; `CLIENTS` clients each add a job and wait until it has run, then add the
// next; the worker runs `CONCURRENCY` jobs at once. A job counts as done when its task function
// runs (graphile-worker commits its completion afterwards), which favours the peer: driftless's
// jobs count when their success is committed.
//
// Environment: DATABASE_URL, JOBS, CLIENTS, CONCURRENCY, LATENCY_JOBS, WARMUP_JOBS.
// Prints one JSON line: {"version", "jobs_per_s", "elapsed_s", "loaded_p50_ms",
// "loaded_p99_ms", "low_p50_ms", "low_p99_ms"}.
import { Logger, run } from "graphile-worker";
import pg from "pg";
import { createRequire } from "node:module";

const env = (name, fallback) => Number(process.env[name] ?? fallback);
const jobs = env("JOBS", 10000);
const clients = env("CLIENTS", 64);
const concurrency = env("CONCURRENCY", 8);
const latencyJobs = env("LATENCY_JOBS", 1000);
const warmupJobs = env("WARMUP_JOBS", 200);
const connectionString = process.env.DATABASE_URL;

const waiting = new Map();
let nextId = 0;
const runner = await run({
  connectionString,
  concurrency,
  noHandleSignals: true,
  pollInterval: 1000,
  // Quiet: graphile-worker logs every job by default, which would cost it throughput.
  logger: new Logger(() => () => {}),
  taskList: {
    hello: async (payload) => {
      const done = waiting.get(payload.id);
      if (done) {
        waiting.delete(payload.id);
        done();
      }
    },
  },
});

const pool = new pg.Pool({ connectionString, max: clients });

async function job() {
  const id = nextId++;
  const started = process.hrtime.bigint();
  const ran = new Promise((resolve) => waiting.set(id, resolve));
  await pool.query("SELECT graphile_worker.add_job('hello', $1::json)", [
    JSON.stringify({ id, greeting: "hello", n: 1 }),
  ]);
  await ran;
  return Number(process.hrtime.bigint() - started) / 1e6;
}

const percentile = (sorted, p) => sorted[Math.round(((sorted.length - 1) * p) / 100)];

for (let i = 0; i < warmupJobs; i++) await job();
const low = [];
for (let i = 0; i < latencyJobs; i++) low.push(await job());
low.sort((a, b) => a - b);

let issued = 0;
const loaded = [];
const start = process.hrtime.bigint();
await Promise.all(
  Array.from({ length: clients }, async () => {
    while (issued++ < jobs) loaded.push(await job());
  }),
);
const elapsed = Number(process.hrtime.bigint() - start) / 1e9;
loaded.sort((a, b) => a - b);

const version = createRequire(import.meta.url)("graphile-worker/package.json").version;
console.log(
  JSON.stringify({
    version,
    jobs_per_s: jobs / elapsed,
    elapsed_s: elapsed,
    loaded_p50_ms: percentile(loaded, 50),
    loaded_p99_ms: percentile(loaded, 99),
    low_p50_ms: percentile(low, 50),
    low_p99_ms: percentile(low, 99),
  }),
);
await runner.stop();
await pool.end();
