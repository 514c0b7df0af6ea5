//! How every list route bounds its answer: a page size with a default and a maximum (larger
//! values are capped, not refused), and the `next` cursor when more follow.

/// The page size rule of one list route.
#[derive(Debug, Clone, Copy)]
pub(super) struct Bound {
    /// Without `?limit`.
    pub default: u32,
    /// The most one answer holds.
    pub max: u32,
}

/// `GET /v1/jobs`: job summaries.
pub(super) const JOBS: Bound = Bound {
    default: 50,
    max: 500,
};
/// `GET /v1/jobs/{id}/events`.
pub(super) const EVENTS: Bound = Bound {
    default: 200,
    max: 1000,
};
/// `GET /v1/jobs/{id}/logs`: attempts, the newest (each log is capped per attempt).
pub(super) const LOGS: Bound = Bound {
    default: 10,
    max: 100,
};
/// `GET /v1/tasks`.
pub(super) const TASKS: Bound = Bound {
    default: 100,
    max: 1000,
};
/// `GET /v1/tasks/{name}`: versions and audit entries, the newest.
pub(super) const TASK_VERSIONS: Bound = Bound {
    default: 100,
    max: 1000,
};
/// `GET /v1/schedules`.
pub(super) const SCHEDULES: Bound = Bound {
    default: 100,
    max: 1000,
};
/// `GET /v1/schedules/{name}`: the jobs it made, the newest.
pub(super) const SCHEDULE_JOBS: Bound = Bound {
    default: 10,
    max: 100,
};
/// `GET /v1/nodes`: node processes.
pub(super) const NODES: Bound = Bound {
    default: 100,
    max: 1000,
};

impl Bound {
    /// The page size for `?limit`: the default without it, capped at the maximum, at least 1.
    pub fn size(self, limit: Option<u32>) -> u32 {
        limit.unwrap_or(self.default).clamp(1, self.max)
    }
}

/// One page from `rows` read with a limit of `size + 1`: the first `size` rows, and the cursor
/// of the last one shown when more follow.
pub(super) fn page<T, C>(
    mut rows: Vec<T>,
    size: u32,
    cursor: impl Fn(&T) -> C,
) -> (Vec<T>, Option<C>) {
    if rows.len() > size as usize {
        rows.truncate(size as usize);
        let next = rows.last().map(cursor);
        (rows, next)
    } else {
        (rows, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_default_and_cap() {
        assert_eq!(JOBS.size(None), 50);
        assert_eq!(JOBS.size(Some(10_000)), 500);
        assert_eq!(JOBS.size(Some(0)), 1);
    }

    #[test]
    fn a_page_names_its_cursor_only_when_more_follow() {
        assert_eq!(page(vec![1, 2, 3], 2, |x| *x), (vec![1, 2], Some(2)));
        assert_eq!(page(vec![1, 2], 2, |x| *x), (vec![1, 2], None));
    }
}
