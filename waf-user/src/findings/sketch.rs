//! Counting keys from requests in fixed memory: a count-min sketch (four
//! rows of 1,024 counters) and the heaviest keys it has seen (at most
//! [`CANDIDATES`]). Memory does not grow with the number of distinct keys,
//! and a flood of unique keys cannot push a heavy key out: every unique key
//! estimates near 1 once the sketch's background noise is taken off
//! (count-mean-min), so a key counted many times stays above them all.
//!
//! Sketches add and subtract exactly (wrapping counters), so a window is the
//! sum of its minutes and a minute that leaves it is taken off again.

use std::{
    collections::HashMap,
    hash::{BuildHasher, RandomState},
};

/// Rows of the sketch (independent hashes).
pub const DEPTH: usize = 4;
/// Counters per row (a power of two).
pub const WIDTH: usize = 1024;
/// Heavy keys kept per window.
pub const CANDIDATES: usize = 64;

/// The cells a key counts in: one per row. `hasher` is keyed at random
/// when the daemon starts, so nobody outside can aim keys at one cell.
pub fn cells(hasher: &RandomState, key: &str) -> [usize; DEPTH] {
    let h = hasher.hash_one(key);
    let (h1, h2) = (h as u32, ((h >> 32) as u32) | 1);
    std::array::from_fn(|i| (h1.wrapping_add((i as u32).wrapping_mul(h2)) as usize) & (WIDTH - 1))
}

/// Counters of one time span (a minute, or a window's sum of minutes).
#[derive(Clone, Debug, Default)]
pub struct Sketch {
    /// `DEPTH * WIDTH` counters, allocated at the first count.
    cells: Vec<u32>,
    /// Everything counted (wrapping, as the cells).
    total: u32,
}

impl Sketch {
    /// Counts one for the key in `at`.
    pub fn add(&mut self, at: &[usize; DEPTH]) {
        if self.cells.is_empty() {
            self.cells = vec![0; DEPTH * WIDTH];
        }
        for (row, c) in at.iter().enumerate() {
            let cell = &mut self.cells[row * WIDTH + c];
            *cell = cell.wrapping_add(1);
        }
        self.total = self.total.wrapping_add(1);
    }

    /// Takes another sketch's counts off this one (the other was added
    /// into it before).
    pub fn subtract(&mut self, other: &Sketch) {
        if other.cells.is_empty() || self.cells.is_empty() {
            return;
        }
        for (a, b) in self.cells.iter_mut().zip(&other.cells) {
            *a = a.wrapping_sub(*b);
        }
        self.total = self.total.wrapping_sub(other.total);
    }

    /// Forgets every count (keeps the memory).
    pub fn clear(&mut self) {
        self.cells.fill(0);
        self.total = 0;
    }

    /// Everything counted.
    pub fn total(&self) -> u64 {
        u64::from(self.total)
    }

    /// The estimated count of the key in `at`: the median over rows of the
    /// cell less the row's mean noise (count-mean-min), never above the
    /// smallest cell (count-min's bound) nor below zero.
    pub fn estimate(&self, at: &[usize; DEPTH]) -> u64 {
        if self.cells.is_empty() {
            return 0;
        }
        let total = f64::from(self.total);
        let mut min = u32::MAX;
        let mut corrected = [0f64; DEPTH];
        for (row, c) in at.iter().enumerate() {
            let cell = self.cells[row * WIDTH + c];
            min = min.min(cell);
            let noise = (total - f64::from(cell)) / (WIDTH as f64 - 1.0);
            corrected[row] = f64::from(cell) - noise;
        }
        corrected.sort_by(f64::total_cmp);
        let median = (corrected[DEPTH / 2 - 1] + corrected[DEPTH / 2]) / 2.0;
        (median.round().max(0.0) as u64).min(u64::from(min))
    }

    /// Whether an estimate may be off: more was counted than the sketch
    /// holds apart (past about `WIDTH / e` counts, keys share cells).
    pub fn approximate(&self) -> bool {
        self.total() as f64 * std::f64::consts::E / WIDTH as f64 >= 1.0
    }
}

/// A window's sum of minutes and the keys heaviest in it.
#[derive(Debug, Default)]
pub struct Window {
    /// The sum of the window's minutes.
    pub sketch: Sketch,
    /// Heavy keys and their estimate when last counted or refreshed.
    heavy: HashMap<Box<str>, u64>,
}

impl Window {
    /// Counts the key (its cells `at`) and keeps it among the heavy keys
    /// when its estimate beats the lightest of them.
    pub fn add(&mut self, key: &str, at: &[usize; DEPTH]) {
        self.sketch.add(at);
        let est = self.sketch.estimate(at);
        if let Some(e) = self.heavy.get_mut(key) {
            *e = est;
            return;
        }
        if self.heavy.len() < CANDIDATES {
            self.heavy.insert(key.into(), est);
            return;
        }
        let lightest = self
            .heavy
            .iter()
            .min_by_key(|(_, e)| **e)
            .map(|(k, e)| (k.clone(), *e));
        if let Some((k, e)) = lightest
            && est > e
        {
            self.heavy.remove(&k);
            self.heavy.insert(key.into(), est);
        }
    }

    /// Takes a minute off the window and estimates its heavy keys again
    /// (keys gone to zero leave).
    pub fn subtract(&mut self, minute: &Sketch, hasher: &RandomState) {
        self.sketch.subtract(minute);
        let sketch = &self.sketch;
        self.heavy.retain(|k, e| {
            *e = sketch.estimate(&cells(hasher, k));
            *e > 0
        });
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        self.sketch.clear();
        self.heavy.clear();
    }

    /// The `n` heaviest keys and their estimates, heaviest first (ties by key).
    pub fn top(&self, n: usize, hasher: &RandomState) -> Vec<(String, u64)> {
        let mut v: Vec<(String, u64)> = self
            .heavy
            .keys()
            .map(|k| (k.to_string(), self.sketch.estimate(&cells(hasher, k))))
            .filter(|(_, c)| *c > 0)
            .collect();
        v.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        v.truncate(n);
        v
    }
}
