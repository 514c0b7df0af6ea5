//! kv-adaptive: the same counter as kv-counter, but it uses kv 1.1's atomic `increment` and
//! `get-many` when the host has them, and falls back to kv 1.0's `get` + `set` when it does not.
//! It declares kv 1.1 optional, so a kv 1.0 host accepts it, and says in its output which path
//! it took.
use driftless_sdk::{Error, kv, versioning};
use serde::{Deserialize, Serialize};

driftless_sdk::optional_imports!("driftless:kv/store@1.1.0");

#[derive(Deserialize)]
struct Input {
    key: String,
    /// Call kv 1.1's `increment` without asking first: shows what a job that forgets to
    /// check gets on an older host (a trap naming the missing function).
    #[serde(default)]
    skip_check: bool,
}

#[derive(Serialize, Debug, PartialEq)]
struct Output {
    key: String,
    count: i64,
    /// `kv-1.1` (increment) or `kv-1.0` (get + set).
    path: &'static str,
    /// The kv versions the host said it provides.
    host_kv: Vec<String>,
}

fn bump(input: Input) -> Result<Output, Error> {
    let host_kv: Vec<String> = versioning::provided("driftless:kv")
        .iter()
        .map(|v| v.to_string())
        .collect();
    if !input.skip_check && !versioning::supports("driftless:kv", "^1") {
        return Err(Error::fatal(
            "kv-unavailable",
            format!(
                "this job needs driftless:kv 1.x; this host provides kv {host_kv:?}: run it on a node that provides kv 1.x"
            ),
        ));
    }
    if input.skip_check || versioning::supports("driftless:kv", "^1.1") {
        let count = kv::v1::increment(&input.key, 1)?;
        // get-many reads back the counter together with a key that is never set.
        let read = kv::v1::get_many(&[&input.key, "kv-adaptive/unset"]);
        if read[0].as_deref() != Some(count.to_string().as_str()) || read[1].is_some() {
            return Err(Error::fatal(
                "inconsistent",
                format!("get-many returned {read:?} after increment to {count}"),
            ));
        }
        return Ok(Output {
            key: input.key,
            count,
            path: "kv-1.1",
            host_kv,
        });
    }
    let count = match kv::v1::get(&input.key) {
        None => 0,
        Some(v) => v
            .parse::<i64>()
            .map_err(|_| Error::fatal("corrupt-counter", format!("`{}` holds {v:?}", input.key)))?,
    } + 1;
    kv::v1::set(&input.key, &count.to_string())?;
    Ok(Output {
        key: input.key,
        count,
        path: "kv-1.0",
        host_kv,
    })
}

driftless_sdk::export_task!(bump);

#[cfg(test)]
mod tests {
    use driftless_sdk::testing::Host;
    use serde_json::json;

    #[test]
    fn takes_the_increment_path_on_a_kv_1_1_host() {
        let host = Host::new();
        let out = host.run_json(super::bump, json!({"key": "k"})).unwrap();
        assert_eq!(out["path"], "kv-1.1");
        assert_eq!(out["count"], 1);
    }

    #[test]
    fn refuses_cleanly_without_any_kv_1() {
        let host = Host::new().provide("driftless:kv", "2.0.0");
        let err = host.run_json(super::bump, json!({"key": "k"})).unwrap_err();
        assert_eq!(err.code, "kv-unavailable");
    }

    #[test]
    fn falls_back_to_get_and_set_on_a_kv_1_0_host() {
        let host = Host::new()
            .provide("driftless:kv", "1.0.0")
            .with_kv("", "k", b"41");
        let out = host.run_json(super::bump, json!({"key": "k"})).unwrap();
        assert_eq!(out["path"], "kv-1.0");
        assert_eq!(out["count"], 42);
        assert_eq!(host.kv_get("", "k").as_deref(), Some(&b"42"[..]));
    }
}
