//! The process's descriptor limit: every connection holds one, so the soft limit is raised to
//! the hard one at start and the connection cap is derived from what it then is.

/// The descriptor limit before and after raising it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DescriptorLimit {
    /// The soft limit the process started with.
    pub before: u64,
    /// The soft limit now.
    pub soft: u64,
    /// The hard limit (the most the soft one may be raised to without privileges).
    pub hard: u64,
}

/// Linux refuses soft limits above `fs.nr_open` (1,048,576 by default) even when the hard
/// limit is unlimited.
const MOST: u64 = 1 << 20;

/// Raise the soft `RLIMIT_NOFILE` to the hard limit (at most 2^20) and log both.
pub fn raise_descriptor_limit() -> std::io::Result<DescriptorLimit> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid rlimit for the call to fill in.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let before = limit.rlim_cur;
    let hard = limit.rlim_max;
    let wanted = hard.min(MOST);
    let mut soft = before;
    if wanted > before {
        let raised = libc::rlimit {
            rlim_cur: wanted,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: `raised` is a valid rlimit; the kernel only reads it.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            soft = wanted;
        } else {
            let e = std::io::Error::last_os_error();
            tracing::warn!(error = %e, before, hard, "could not raise the descriptor limit");
        }
    }
    tracing::info!(
        before,
        soft,
        hard,
        "descriptor limit (soft, raised to the hard one)"
    );
    Ok(DescriptorLimit { before, soft, hard })
}
