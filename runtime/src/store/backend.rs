//! How a backend runs the shared operations, and the store's traits implemented once on top
//! of that for every backend: a method of [`Store`](super::Store) is one shared operation
//! from `ops/` run where it belongs (a reader, the writer, a transaction), or one of the
//! backend's own named operations ([`Backend::insert`], [`Backend::claim`], ...), whose
//! defaults are the shared ones.

use super::ops::{self, jobs::Lose};
use super::sql::Sql;
use super::*;
use crate::lifecycle::attempts::LossCause;
use std::pin::Pin;

/// A boxed, sendable future: what a shared operation returns to the backend that runs it.
pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Box the shared operation `$op` (an expression using the executor `$s`) for
/// [`Backend::read`], [`Backend::write`] or [`Backend::atomic`].
macro_rules! op {
    (|$s:ident| $op:expr) => {
        move |$s| Box::pin(async move { $op.await })
    };
}
pub(crate) use op;

/// What a backend provides: an executor, three ways to run a shared operation on it, and the
/// operations it runs its own way.
pub(crate) trait Backend: Send + Sync + 'static {
    /// The backend's [`Sql`] executor.
    type Sql: Sql;

    /// Run `op` where it may only read (SQLite: a reader connection; PostgreSQL: a pooled
    /// connection).
    fn read<R: Send + 'static>(
        &self,
        op: impl for<'s> FnOnce(&'s mut Self::Sql) -> BoxFuture<'s, StoreResult<R>> + Send + 'static,
    ) -> impl Future<Output = StoreResult<R>> + Send;

    /// Run `op`, a write whose statements are each atomic on their own (SQLite: the writer,
    /// which commits it with its batch; PostgreSQL: a pooled connection, each statement
    /// committing by itself).
    fn write<R: Send + 'static>(
        &self,
        op: impl for<'s> FnOnce(&'s mut Self::Sql) -> BoxFuture<'s, StoreResult<R>> + Send + 'static,
    ) -> impl Future<Output = StoreResult<R>> + Send;

    /// Run `op` as one transaction: all of it commits, or none of it (SQLite: the writer;
    /// PostgreSQL: a transaction on a pooled connection).
    fn atomic<R: Send + 'static>(
        &self,
        op: impl for<'s> FnOnce(&'s mut Self::Sql) -> BoxFuture<'s, StoreResult<R>> + Send + 'static,
    ) -> impl Future<Output = StoreResult<R>> + Send;

    /// Run `op` as one transaction, as [`atomic`](Self::atomic), that may be acknowledged
    /// before it is durable: a crash of the machine (SQLite) or of the database server
    /// (PostgreSQL) may undo all of it, never part of it, and a later durable commit makes it
    /// durable too. Only for writes whose loss the lifecycle repairs by itself: a claim (the
    /// job is simply queued again; the lost attempt's lease token is fenced out) and a
    /// heartbeat.
    fn atomic_lazy<R: Send + 'static>(
        &self,
        op: impl for<'s> FnOnce(&'s mut Self::Sql) -> BoxFuture<'s, StoreResult<R>> + Send + 'static,
    ) -> impl Future<Output = StoreResult<R>> + Send {
        self.atomic(op)
    }

    /// Store a job (see [`JobStore::insert_job`]).
    fn insert(&self, job: NewJob) -> impl Future<Output = StoreResult<Inserted>> + Send {
        self.atomic(op!(|s| ops::jobs::insert(s, &job)))
    }

    /// The store's clock (see [`Clock::now`]): this machine's, unless the backend has a
    /// better one.
    fn now(&self) -> i64 {
        now_ms()
    }

    /// Claim an attempt (see [`AttemptStore::claim`]).
    fn claim(
        &self,
        agent: Held,
        classes: Vec<String>,
        lease_ms: i64,
        now: i64,
    ) -> impl Future<Output = StoreResult<Option<Claim>>> + Send {
        self.atomic_lazy(op!(|s| ops::jobs::claim(
            s, &agent, &classes, lease_ms, now
        )))
    }

    /// End an attempt (see [`AttemptStore::finish_attempt`]).
    fn finish(
        &self,
        token: String,
        end: AttemptEnd,
        now: i64,
    ) -> impl Future<Output = StoreResult<JobStatus>> + Send {
        async move {
            let (status, job) = self
                .atomic(op!(|s| ops::jobs::finish(s, &token, &end, now)))
                .await?;
            if status.is_terminal() {
                self.announce_finished(vec![job]);
            }
            Ok(status)
        }
    }

    /// End an attempt and claim the next (see [`AttemptStore::finish_and_claim`]).
    fn finish_then_claim(
        &self,
        (token, end): (String, AttemptEnd),
        (agent, classes, lease_ms): (Held, Vec<String>, i64),
        now: i64,
    ) -> impl Future<Output = StoreResult<(JobStatus, Option<Claim>)>> + Send {
        async move {
            let ((status, job), claim) = self
                .atomic(op!(|s| async {
                    let ended = ops::jobs::finish(s, &token, &end, now).await?;
                    Ok((
                        ended,
                        ops::jobs::claim(s, &agent, &classes, lease_ms, now).await?,
                    ))
                }))
                .await?;
            if status.is_terminal() {
                self.announce_finished(vec![job]);
            }
            Ok((status, claim))
        }
    }

    /// Jobs reached a final status (PostgreSQL tells every node, so waits for them end).
    fn announce_finished(&self, _jobs: Vec<String>) {}

    /// Jobs became ready outside an insert (PostgreSQL tells every node, so idle agents claim
    /// them without waiting for their next poll).
    fn announce_ready(&self) {}

    /// Whether the store can take writes now (see [`JobStore::writable`]).
    fn writable(&self) -> impl Future<Output = StoreResult<()>> + Send;
}

impl<B: Backend> Clock for B {
    fn now(&self) -> i64 {
        Backend::now(self)
    }
}

#[async_trait]
impl<B: Backend> BlobStore for B {
    async fn put_blob(&self, hash: &str, bytes: &[u8]) -> StoreResult<bool> {
        // Most uploads repeat a component already stored: check before sending the bytes,
        // and record the use (retention goes by it) at most once a second.
        let h = hash.to_string();
        if let Some(used) = self.read(op!(|s| ops::blobs::used(s, &h))).await? {
            let now = now_ms();
            if now - used < 1000 {
                return Ok(false);
            }
            let h = hash.to_string();
            if self.write(op!(|s| ops::blobs::touch(s, &h, now))).await? {
                return Ok(false);
            }
            // Retention deleted it meanwhile: store it again.
        }
        let (hash, bytes) = (hash.to_string(), bytes.to_vec());
        self.write(op!(|s| ops::blobs::put(s, &hash, &bytes, now_ms())))
            .await
    }

    async fn get_blob(&self, hash: &str) -> StoreResult<Option<Vec<u8>>> {
        let hash = hash.to_string();
        self.read(op!(|s| ops::blobs::get(s, &hash))).await
    }
}

#[async_trait]
impl<B: Backend> JobStore for B {
    async fn insert_job(&self, job: NewJob) -> StoreResult<Inserted> {
        self.insert(job).await
    }

    async fn get_job(&self, id: &str) -> StoreResult<Option<JobRecord>> {
        let id = id.to_string();
        self.read(op!(|s| ops::jobs::get(s, &id))).await
    }

    async fn job_by_idempotency_key(&self, key: &str) -> StoreResult<Option<(Job, String)>> {
        let key = key.to_string();
        self.read(op!(|s| ops::jobs::by_idempotency_key(s, &key)))
            .await
    }

    async fn list_jobs(
        &self,
        status: Option<JobStatus>,
        before: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<JobSummary>> {
        self.read(op!(|s| ops::jobs::list(s, status, before, limit)))
            .await
    }

    async fn list_jobs_where(
        &self,
        filter: JobFilter,
        before: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<JobSummary>> {
        self.read(op!(|s| ops::listing::list(s, &filter, before, limit)))
            .await
    }

    async fn events(
        &self,
        id: &str,
        after: Option<i64>,
        limit: u32,
    ) -> StoreResult<Option<Vec<Event>>> {
        let id = id.to_string();
        self.read(op!(|s| ops::jobs::events(s, &id, after, limit)))
            .await
    }

    async fn job_logs(&self, id: &str, limit: u32) -> StoreResult<Option<Vec<Attempt>>> {
        let id = id.to_string();
        self.read(op!(|s| ops::jobs::logs(s, &id, limit))).await
    }

    async fn cancel_job(&self, id: &str, now: i64) -> StoreResult<Job> {
        let id = id.to_string();
        let job = self.atomic(op!(|s| ops::jobs::cancel(s, &id, now))).await?;
        if job.status.is_terminal() {
            self.announce_finished(vec![job.id.clone()]);
        }
        if job.concurrency.is_some() {
            // Its slot may have gone to a parked job.
            self.announce_ready();
        }
        Ok(job)
    }

    async fn stats(&self) -> StoreResult<StoreStats> {
        self.read(op!(|s| ops::jobs::stats(s))).await
    }

    async fn activity(&self, from: i64, step: i64, count: u32) -> StoreResult<Vec<ActivityCounts>> {
        self.read(op!(|s| ops::activity::activity(s, from, step, count)))
            .await
    }

    async fn writable(&self) -> StoreResult<()> {
        Backend::writable(self).await
    }
}

#[async_trait]
impl<B: Backend> AttemptStore for B {
    async fn claim(
        &self,
        agent: &Held,
        classes: &[String],
        lease_ms: i64,
        now: i64,
    ) -> StoreResult<Option<Claim>> {
        Backend::claim(self, agent.clone(), classes.to_vec(), lease_ms, now).await
    }

    async fn heartbeat(&self, token: &str, lease_ms: i64, now: i64) -> StoreResult<bool> {
        let token = token.to_string();
        self.atomic_lazy(op!(|s| ops::jobs::heartbeat(s, &token, lease_ms, now)))
            .await
    }

    async fn set_progress(&self, token: &str, percent: u8, message: &str) -> StoreResult<()> {
        let (token, message) = (token.to_string(), message.to_string());
        self.write(op!(|s| ops::jobs::set_progress(
            s, &token, percent, &message
        )))
        .await
    }

    async fn save_checkpoint(&self, token: &str, data: &[u8]) -> StoreResult<()> {
        let (token, data) = (token.to_string(), data.to_vec());
        self.write(op!(|s| ops::jobs::save_checkpoint(s, &token, &data)))
            .await
    }

    async fn load_checkpoint(&self, job_id: &str) -> StoreResult<Option<Vec<u8>>> {
        let id = job_id.to_string();
        self.read(op!(|s| ops::jobs::load_checkpoint(s, &id))).await
    }

    async fn finish_attempt(
        &self,
        token: &str,
        end: AttemptEnd,
        now: i64,
    ) -> StoreResult<JobStatus> {
        self.finish(token.to_string(), end, now).await
    }

    async fn finish_and_claim(
        &self,
        token: &str,
        end: AttemptEnd,
        agent: &Held,
        classes: &[String],
        lease_ms: i64,
        now: i64,
    ) -> StoreResult<(JobStatus, Option<Claim>)> {
        let next = (agent.clone(), classes.to_vec(), lease_ms);
        self.finish_then_claim((token.to_string(), end), next, now)
            .await
    }

    async fn recover_agent(&self, agent: &Held, dead: Option<&str>, now: i64) -> StoreResult<u64> {
        let (agent, dead) = (agent.clone(), dead.map(str::to_string));
        let (lost, finished) = self
            .atomic(op!(|s| ops::jobs::recover_agent(
                s,
                &agent,
                dead.as_deref(),
                now
            )))
            .await?;
        self.announce_finished(finished);
        Ok(lost)
    }

    async fn promote_due(&self, now: i64, limit: u32) -> StoreResult<u64> {
        let due = self
            .atomic(op!(|s| ops::turns::promote(s, now, limit)))
            .await?;
        if due > 0 {
            self.announce_ready();
        }
        Ok(due)
    }

    async fn next_due(&self) -> StoreResult<Option<i64>> {
        self.read(op!(|s| ops::turns::next_due(s))).await
    }

    async fn reap_expired(&self, now: i64) -> StoreResult<u64> {
        let (lost, finished) = self
            .atomic(op!(|s| ops::jobs::lose(
                s,
                Lose::Expired(now),
                LossCause::LeaseExpired,
                now
            )))
            .await?;
        self.announce_finished(finished);
        Ok(lost)
    }
}

#[async_trait]
impl<B: Backend> TaskStore for B {
    async fn deploy_task(&self, version: NewTaskVersion) -> StoreResult<Moved> {
        self.atomic(op!(|s| ops::tasks::deploy(s, &version))).await
    }

    async fn rollback_task(
        &self,
        task: &str,
        to: Option<u32>,
        actor: &str,
        request_id: &str,
        now: i64,
    ) -> StoreResult<Moved> {
        let (task, who) = (
            task.to_string(),
            (actor.to_string(), request_id.to_string()),
        );
        self.atomic(op!(|s| ops::tasks::rollback(
            s,
            &task,
            to,
            (&who.0, &who.1),
            now
        )))
        .await
    }

    async fn delete_task_version(
        &self,
        task: &str,
        version: u32,
        actor: &str,
        request_id: &str,
        now: i64,
    ) -> StoreResult<DeleteOutcome> {
        let (task, who) = (
            task.to_string(),
            (actor.to_string(), request_id.to_string()),
        );
        self.atomic(op!(|s| ops::tasks::delete_version(
            s,
            &task,
            version,
            (&who.0, &who.1),
            now
        )))
        .await
    }

    async fn resolve_task(&self, task: &str, version: Option<u32>) -> StoreResult<ResolvedTask> {
        let task = task.to_string();
        self.read(op!(|s| ops::tasks::resolve(s, &task, version)))
            .await
    }

    async fn task_generation(&self) -> StoreResult<i64> {
        self.read(op!(|s| ops::tasks::generation(s))).await
    }

    async fn report_resolution(
        &self,
        node: &str,
        task: &str,
        version: u32,
        generation: i64,
        now: i64,
    ) -> StoreResult<()> {
        let (node, task) = (node.to_string(), task.to_string());
        self.write(op!(|s| ops::tasks::report_resolution(
            s, &node, &task, version, generation, now
        )))
        .await
    }

    async fn list_tasks(&self, after: Option<&str>, limit: u32) -> StoreResult<Vec<TaskSummary>> {
        let after = after.map(str::to_string);
        self.read(op!(|s| ops::tasks::list(s, after.as_deref(), limit)))
            .await
    }

    async fn get_task(&self, task: &str, limit: u32) -> StoreResult<Option<Task>> {
        let task = task.to_string();
        self.read(op!(|s| ops::tasks::get(s, &task, limit))).await
    }
}

#[async_trait]
impl<B: Backend> NodeStore for B {
    async fn requirement_classes(&self, after_seq: i64) -> StoreResult<Vec<RequirementClass>> {
        self.read(op!(|s| ops::nodes::classes_after(s, after_seq)))
            .await
    }

    async fn requirement_class(&self, class: &str) -> StoreResult<Option<String>> {
        let class = class.to_string();
        self.read(op!(|s| ops::nodes::class_spec(s, &class))).await
    }

    async fn register_node(&self, node: NodeRegistration) -> StoreResult<()> {
        self.write(op!(|s| ops::nodes::register(s, &node))).await
    }

    async fn node_heartbeat(
        &self,
        process: &str,
        draining: bool,
        inflight: u32,
        now: i64,
    ) -> StoreResult<Beat> {
        let process = process.to_string();
        self.write(op!(|s| ops::nodes::heartbeat(
            s, &process, draining, inflight, now
        )))
        .await
    }

    async fn request_drain(&self, node: &str, drain: bool) -> StoreResult<u64> {
        let node = node.to_string();
        self.write(op!(|s| ops::nodes::request_drain(s, &node, drain)))
            .await
    }

    async fn leave_node(&self, process: &str, now: i64) -> StoreResult<()> {
        let process = process.to_string();
        self.write(op!(|s| ops::nodes::leave(s, &process, now)))
            .await
    }

    async fn list_nodes(&self, gone_since_ms: i64) -> StoreResult<Vec<NodeRecord>> {
        self.read(op!(|s| ops::nodes::list(s, gone_since_ms))).await
    }

    async fn reap_gone_nodes(&self, ttl_ms: i64, now: i64) -> StoreResult<Vec<String>> {
        self.atomic(op!(|s| ops::nodes::reap_gone(s, ttl_ms, now)))
            .await
    }

    async fn identity_holder(&self, id: &str) -> StoreResult<Option<IdentityHold>> {
        let id = id.to_string();
        self.read(op!(|s| ops::nodes::identity_holder(s, &id)))
            .await
    }

    async fn take_identity(
        &self,
        id: &str,
        node: &str,
        expected: Option<&str>,
        holder: &str,
        lease_ms: i64,
        now: i64,
    ) -> StoreResult<Option<String>> {
        let (id, node, holder) = (id.to_string(), node.to_string(), holder.to_string());
        let expected = expected.map(str::to_string);
        self.atomic(op!(|s| ops::nodes::take_identity(
            s,
            (&id, &node),
            expected.as_deref(),
            &holder,
            lease_ms,
            now
        )))
        .await
    }

    async fn renew_identities(&self, holder: &str, lease_ms: i64, now: i64) -> StoreResult<u64> {
        let holder = holder.to_string();
        self.write(op!(|s| ops::nodes::renew_identities(
            s, &holder, lease_ms, now
        )))
        .await
    }

    async fn release_identities(&self, holder: &str, now: i64) -> StoreResult<u64> {
        let holder = holder.to_string();
        self.write(op!(|s| ops::nodes::release_identities(s, &holder, now)))
            .await
    }
}

#[async_trait]
impl<B: Backend> KvStore for B {
    async fn kv_read(&self, scope: &str, bucket: &str, key: &str) -> StoreResult<KvValue> {
        let (sc, b, k) = (scope.to_string(), bucket.to_string(), key.to_string());
        self.read(op!(|s| ops::kv::read(s, &sc, &b, &k))).await
    }

    async fn kv_keys(
        &self,
        scope: &str,
        bucket: &str,
        prefix: &str,
    ) -> StoreResult<Vec<(String, u64)>> {
        let (sc, b, p) = (scope.to_string(), bucket.to_string(), prefix.to_string());
        self.read(op!(|s| ops::kv::keys(s, &sc, &b, &p))).await
    }
}

#[async_trait]
impl<B: Backend> TokenStore for B {
    async fn create_token(&self, token: TokenRecord) -> StoreResult<()> {
        self.write(op!(|s| ops::tokens::create(s, &token))).await
    }

    async fn list_tokens(&self) -> StoreResult<Vec<TokenRecord>> {
        self.read(op!(|s| ops::tokens::list(s))).await
    }

    async fn revoke_token(&self, name: &str) -> StoreResult<bool> {
        let name = name.to_string();
        self.write(op!(|s| ops::tokens::revoke(s, &name))).await
    }

    async fn touch_token(&self, name: &str, now: i64) -> StoreResult<()> {
        let name = name.to_string();
        self.write(op!(|s| ops::tokens::touch(s, &name, now))).await
    }
}

#[async_trait]
impl<B: Backend> RetentionStore for B {
    async fn expire_jobs(&self, before_ms: i64, limit: u32) -> StoreResult<ExpiredJobs> {
        self.atomic(op!(|s| ops::retention::expire_jobs(s, before_ms, limit)))
            .await
    }

    async fn expire_blobs(&self, before_ms: i64, limit: u32) -> StoreResult<ExpiredBlobs> {
        self.atomic(op!(|s| ops::retention::expire_blobs(s, before_ms, limit)))
            .await
    }

    async fn reclaim_space(&self) -> StoreResult<(u64, bool)> {
        self.write(op!(|s| ops::retention::reclaim(s))).await
    }
}

#[async_trait]
impl<B: Backend> ScheduleStore for B {
    async fn put_schedule(&self, schedule: NewSchedule) -> StoreResult<bool> {
        self.atomic(op!(|s| ops::schedules::put(s, &schedule)))
            .await
    }

    async fn get_schedule(&self, name: &str) -> StoreResult<Option<Schedule>> {
        let name = name.to_string();
        self.read(op!(|s| ops::schedules::get(s, &name))).await
    }

    async fn list_schedules(&self, after: Option<&str>, limit: u32) -> StoreResult<Vec<Schedule>> {
        let after = after.map(str::to_string);
        self.read(op!(|s| ops::schedules::list(s, after.as_deref(), limit)))
            .await
    }

    async fn delete_schedule(&self, name: &str) -> StoreResult<bool> {
        let name = name.to_string();
        self.write(op!(|s| ops::schedules::delete(s, &name))).await
    }

    async fn due_schedules(&self, now: i64, limit: u32) -> StoreResult<Vec<Schedule>> {
        self.read(op!(|s| ops::schedules::due(s, now, limit))).await
    }

    async fn next_schedule_tick(&self) -> StoreResult<Option<i64>> {
        self.read(op!(|s| ops::schedules::next_tick(s))).await
    }

    async fn fire_schedule(&self, job: NewJob) -> StoreResult<Option<Inserted>> {
        let fired = self.atomic(op!(|s| ops::schedules::fire(s, &job))).await?;
        if fired.is_some() {
            // Other nodes' idle agents claim it without waiting for their next poll.
            self.announce_ready();
        }
        Ok(fired)
    }

    async fn schedule_jobs(&self, name: &str, limit: u32) -> StoreResult<Vec<ScheduledJob>> {
        let name = name.to_string();
        self.read(op!(|s| ops::schedules::jobs(s, &name, limit)))
            .await
    }
}
