//! wordcount: counts words and lines of `{"text": "..."}` and reports the most frequent words.
use driftless_sdk::Error;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Deserialize)]
struct Input {
    text: String,
    #[serde(default = "default_top")]
    top: usize,
}

fn default_top() -> usize {
    3
}

#[derive(Serialize)]
struct Output {
    words: usize,
    lines: usize,
    top: Vec<(String, usize)>,
}

fn count(input: Input) -> Result<Output, Error> {
    let mut freq: BTreeMap<String, usize> = BTreeMap::new();
    let mut words = 0;
    for word in input
        .text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        words += 1;
        *freq.entry(word.to_lowercase()).or_default() += 1;
    }
    let mut top: Vec<(String, usize)> = freq.into_iter().collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    top.truncate(input.top);
    Ok(Output {
        words,
        lines: input.text.lines().count(),
        top,
    })
}

driftless_sdk::export_task!(count);

#[cfg(test)]
mod tests {
    use driftless_sdk::testing::Host;
    use serde_json::json;

    #[test]
    fn counts_words_lines_and_top() {
        let out = Host::new()
            .run_json(super::count, json!({"text": "a b a\nc a b", "top": 2}))
            .unwrap();
        assert_eq!(
            out,
            json!({"words": 6, "lines": 2, "top": [["a", 3], ["b", 2]]})
        );
    }

    #[test]
    fn bad_input_is_a_fatal_error() {
        let err = Host::new()
            .run_json(super::count, json!({"txt": 1}))
            .unwrap_err();
        assert_eq!(err.code, "bad-input");
        assert!(!err.retryable);
    }
}
