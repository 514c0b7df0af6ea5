//! The store's operations, written once against [`Sql`](super::sql::Sql) and run by both
//! backends: each reads what the [`lifecycle`](crate::lifecycle) needs, lets it decide, and
//! writes the result. A backend calls them inside its own transaction (SQLite: the writer's
//! batch or a reader; PostgreSQL: a pooled connection), so the rules and their wording exist
//! once. What a backend runs its own way (PostgreSQL's one-statement claims and finishes, for
//! speed) is a named operation in its folder, with the same meaning, held to it by the shared
//! store suite.

pub(crate) mod activity;
pub(crate) mod blobs;
pub(crate) mod jobs;
pub(crate) mod kv;
pub(crate) mod listing;
pub(crate) mod nodes;
pub(crate) mod retention;
pub(crate) mod schedules;
pub(crate) mod tasks;
pub(crate) mod tokens;
pub(crate) mod turns;
