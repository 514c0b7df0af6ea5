//! A small fuzz harness that runs on the stable toolchain under `cargo test`: seeds (a corpus
//! checked in under `tests/fuzz/corpus/<target>/`, plus seeds a target makes itself), a seeded
//! RNG, byte-level mutations (bit flips, interesting values, truncation, splicing, duplicated
//! and deleted chunks) and structure-aware ones a target adds (wasm sections, multipart parts,
//! JSON specs). Every case runs on a worker thread under a time bound; a case that panics,
//! hangs or breaks the target's property is written out (the path is printed) so it can be
//! added to the corpus.
//!
//! `DRIFTLESS_FUZZ_CASES=N` runs N cases per target (the defaults keep `cargo test` to a few
//! seconds); `DRIFTLESS_FUZZ_SEED=S` changes the seed (the default is fixed, so runs are
//! deterministic).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The seed when `DRIFTLESS_FUZZ_SEED` is not set.
pub const DEFAULT_SEED: u64 = 0x5eed_d21f_71e5;

/// A small, fast, seeded generator (SplitMix64): the same seed gives the same cases.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    /// True one time in `n`.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    /// One of `items`.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// `n` random bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

/// What a target makes of one input: `Ok` when it ended in a verdict or a classified error,
/// `Err` with what broke the property otherwise.
pub type Check = Arc<dyn Fn(&[u8]) -> Result<(), String> + Send + Sync>;

/// Makes one case from the seeds (structure-aware where the target knows its format).
pub type Mutate = fn(&mut Rng, &[Vec<u8>]) -> Vec<u8>;

/// One fuzz target.
pub struct Target {
    /// Its name: the corpus folder `tests/fuzz/corpus/<name>/`.
    pub name: &'static str,
    /// Seeds the target makes itself (added to the checked-in corpus).
    pub seeds: Vec<Vec<u8>>,
    /// Cases per run unless `DRIFTLESS_FUZZ_CASES` says otherwise.
    pub cases: usize,
    /// Makes a case.
    pub mutate: Mutate,
    /// Runs a case.
    pub check: Check,
    /// How long one case may take before it counts as a hang.
    pub time_bound: Duration,
}

/// What a run did.
#[derive(Debug)]
pub struct Summary {
    /// Cases run (the seeds themselves included).
    pub cases: usize,
    /// How long it took.
    pub elapsed: Duration,
}

/// The checked-in corpus of `target`, files sorted by name.
pub fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = corpus_dir(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    files
        .iter()
        .filter(|p| p.is_file())
        .map(|p| std::fs::read(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display())))
        .collect()
}

/// `tests/fuzz/corpus/<target>`.
pub fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target)
}

fn env_number(name: &str) -> Option<u64> {
    let text = std::env::var(name).ok()?;
    let text = text.trim();
    let parsed = match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    };
    Some(parsed.unwrap_or_else(|_| panic!("{name}={text} is not a number")))
}

/// Run `target`: every seed as it is, then its case count of mutated cases. Panics with the
/// path of the written-out case at the first case that panics, hangs or breaks the property.
pub fn run(target: Target, failures: &Path) -> Summary {
    let started = Instant::now();
    let seed = env_number("DRIFTLESS_FUZZ_SEED").unwrap_or(DEFAULT_SEED);
    let cases = env_number("DRIFTLESS_FUZZ_CASES").map_or(target.cases, |n| n as usize);
    let mut seeds = corpus(target.name);
    seeds.extend(target.seeds);
    assert!(!seeds.is_empty(), "target {} has no seeds", target.name);
    let (work, todo) = mpsc::channel::<Vec<u8>>();
    let (answer, done) = mpsc::channel::<Result<(), String>>();
    let check = target.check.clone();
    std::thread::Builder::new()
        .name(format!("fuzz-{}", target.name))
        .spawn(move || {
            for input in todo {
                let outcome = catch_unwind(AssertUnwindSafe(|| check(&input)))
                    .unwrap_or_else(|p| Err(format!("panicked: {}", panic_text(&p))));
                if answer.send(outcome).is_err() {
                    return;
                }
            }
        })
        .expect("a fuzz worker");
    let total = seeds.len() + cases;
    for i in 0..total {
        let input = match seeds.get(i) {
            Some(s) => s.clone(),
            None => {
                let mut rng = Rng::new(seed ^ (i as u64).wrapping_mul(0x2545_f491_4f6c_dd1d));
                (target.mutate)(&mut rng, &seeds)
            }
        };
        work.send(input.clone()).expect("the worker runs");
        let broke = match done.recv_timeout(target.time_bound) {
            Ok(Ok(())) => continue,
            Ok(Err(what)) => what,
            Err(_) => format!(
                "no verdict within {:?} (a hang, or far too slow)",
                target.time_bound
            ),
        };
        let path = write_out(failures, target.name, &input);
        panic!(
            "fuzz target `{}`, case {i} (DRIFTLESS_FUZZ_SEED={seed:#x}): {broke}\nthe input is in {}; add it to {} once fixed",
            target.name,
            path.display(),
            corpus_dir(target.name).display()
        );
    }
    Summary {
        cases: total,
        elapsed: started.elapsed(),
    }
}

fn panic_text(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "a panic without a message".into())
}

/// Write a failing case to `dir/<target>/<hash>.bin`; its path.
fn write_out(dir: &Path, target: &str, input: &[u8]) -> PathBuf {
    let dir = dir.join(target);
    std::fs::create_dir_all(&dir).expect("the failures folder");
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in input {
        h = (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
    }
    let path = dir.join(format!("{h:016x}.bin"));
    std::fs::write(&path, input).expect("write the failing case");
    path
}

/// Values that break parsers more often than random ones.
const INTERESTING: &[u8] = &[
    0, 1, 0x7f, 0x80, 0xff, b'"', b'{', b'}', b'\\', b'-', b'\r', b'\n',
];

/// One byte-level mutation of `input` (splicing with `others`).
pub fn mutate_bytes(rng: &mut Rng, input: &mut Vec<u8>, others: &[Vec<u8>]) {
    if input.is_empty() {
        let n = 1 + rng.below(16);
        input.extend(rng.bytes(n));
        return;
    }
    let at = rng.below(input.len());
    match rng.below(9) {
        0 => input[at] ^= 1 << rng.below(8),
        1 => input[at] = *rng.pick(INTERESTING),
        2 => input.truncate(at),
        3 => {
            let other = rng.pick(others);
            let from = rng.below(other.len().max(1));
            input.truncate(at);
            input.extend_from_slice(other.get(from..).unwrap_or_default());
        }
        4 => {
            let len = rng.below((input.len() - at).min(256)) + 1;
            let chunk = input[at..at + len].to_vec();
            let to = rng.below(input.len() + 1);
            input.splice(to..to, chunk);
        }
        5 => {
            let len = rng.below((input.len() - at).min(256)) + 1;
            input.drain(at..at + len);
        }
        6 => {
            let n = 1 + rng.below(8);
            let bytes = rng.bytes(n);
            input.splice(at..at, bytes);
        }
        // The largest u32 as LEB128, where a length or count may sit.
        7 => {
            input.splice(at..at, [0xff, 0xff, 0xff, 0xff, 0x0f]);
        }
        _ => {
            let end = (at + 4).min(input.len());
            for b in &mut input[at..end] {
                *b = b.wrapping_add(rng.below(3) as u8).wrapping_sub(1);
            }
        }
    }
}

/// `n` (1 to 4) stacked byte-level mutations of one seed.
pub fn mutate_seed(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut input = rng.pick(seeds).clone();
    for _ in 0..1 + rng.below(4) {
        mutate_bytes(rng, &mut input, seeds);
    }
    input
}

/// A top-level section of a wasm binary: its id and payload.
pub type Section = (u8, Vec<u8>);

/// A wasm binary's top-level sections, after the 8-byte preamble; `None` when it does not
/// split cleanly.
pub fn wasm_sections(bytes: &[u8]) -> Option<(Vec<u8>, Vec<Section>)> {
    let preamble = bytes.get(..8)?.to_vec();
    let mut rest = &bytes[8..];
    let mut sections = Vec::new();
    while !rest.is_empty() {
        let id = rest[0];
        let (size, used) = read_leb(&rest[1..])?;
        let start = 1 + used;
        let payload = rest.get(start..start + size as usize)?;
        sections.push((id, payload.to_vec()));
        rest = &rest[start + size as usize..];
    }
    Some((preamble, sections))
}

/// The binary of a preamble and sections.
pub fn wasm_join(preamble: &[u8], sections: &[Section]) -> Vec<u8> {
    let mut out = preamble.to_vec();
    for (id, payload) in sections {
        out.push(*id);
        write_leb(&mut out, payload.len() as u32);
        out.extend_from_slice(payload);
    }
    out
}

fn read_leb(bytes: &[u8]) -> Option<(u32, usize)> {
    let mut value: u64 = 0;
    for (i, b) in bytes.iter().take(5).enumerate() {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return u32::try_from(value).ok().map(|v| (v, i + 1));
        }
    }
    None
}

fn write_leb(out: &mut Vec<u8>, mut value: u32) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// A structure-aware mutation of a component: drop, duplicate, swap or reorder top-level
/// sections, mutate inside a small section (its size stays right), rewrite the digits of a
/// version in a name (`@0.2.12` → `@7.2.19`), or corrupt a section's size; byte-level
/// mutations when the seed does not split into sections.
pub fn mutate_wasm(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let seed = rng.pick(seeds);
    let Some((preamble, mut sections)) = wasm_sections(seed).filter(|(_, s)| !s.is_empty()) else {
        return mutate_seed(rng, seeds);
    };
    for _ in 0..1 + rng.below(3) {
        let n = sections.len();
        if n == 0 {
            break;
        }
        let at = rng.below(n);
        match rng.below(7) {
            0 => {
                sections.remove(at);
            }
            1 => {
                let copy = sections[at].clone();
                sections.insert(rng.below(n + 1), copy);
            }
            2 => sections.swap(at, rng.below(n)),
            3 => {
                // Inside a small section: import, export, type and alias names live there.
                let small: Vec<usize> = (0..n).filter(|i| sections[*i].1.len() < 4096).collect();
                if let Some(i) = small.get(rng.below(small.len().max(1))) {
                    mutate_bytes(rng, &mut sections[*i].1, seeds);
                }
            }
            4 => rewrite_version(rng, &mut sections[at].1),
            5 => {
                // A section from another seed (splicing at the section level).
                let donor: &Vec<u8> = rng.pick(seeds);
                if let Some((_, other)) = wasm_sections(donor)
                    && !other.is_empty()
                {
                    let s = other[rng.below(other.len())].clone();
                    sections.insert(rng.below(n + 1), s);
                }
            }
            _ => {
                let mut out = wasm_join(&preamble, &sections);
                // Corrupt the size of a section (its LEB starts after the id byte).
                let offset = 8
                    + sections[..at]
                        .iter()
                        .map(|(_, p)| 1 + leb_len(p.len() as u32) + p.len())
                        .sum::<usize>()
                    + 1;
                if offset < out.len() {
                    out[offset] = *rng.pick(&[0x00, 0x7f, 0xff, 0x80]);
                }
                return out;
            }
        }
    }
    wasm_join(&preamble, &sections)
}

fn leb_len(value: u32) -> usize {
    let mut out = Vec::new();
    write_leb(&mut out, value);
    out.len()
}

/// Rewrite the digits after an `@` (a version in an import or export name), same length.
fn rewrite_version(rng: &mut Rng, payload: &mut [u8]) {
    let ats: Vec<usize> = payload
        .iter()
        .enumerate()
        .filter(|(i, b)| **b == b'@' && payload.get(i + 1).is_some_and(u8::is_ascii_digit))
        .map(|(i, _)| i)
        .collect();
    let Some(&at) = ats.get(rng.below(ats.len().max(1))) else {
        return;
    };
    for b in payload[at + 1..].iter_mut().take(12) {
        if b.is_ascii_digit() {
            *b = b'0' + rng.below(10) as u8;
        } else if !matches!(*b, b'.' | b'-') && !b.is_ascii_alphanumeric() {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_split_and_join_back() {
        let wasm = wat::parse_str("(component (core module) (core module (func)))").unwrap();
        let (pre, sections) = wasm_sections(&wasm).unwrap();
        assert_eq!(sections.len(), 2);
        assert_eq!(wasm_join(&pre, &sections), wasm);
    }

    #[test]
    fn the_same_seed_makes_the_same_cases() {
        let seeds = vec![b"{\"input\": 1}".to_vec()];
        let make = |s| {
            let mut rng = Rng::new(s);
            (0..20)
                .map(|_| mutate_seed(&mut rng, &seeds))
                .collect::<Vec<_>>()
        };
        assert_eq!(make(7), make(7));
        assert_ne!(make(7), make(8));
    }
}
