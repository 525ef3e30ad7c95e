//! Helpers shared by the benchmark binaries.

/// `DBKV_BENCH_QUICK=1` shrinks every size for a smoke run.
pub fn quick() -> bool {
    std::env::var_os("DBKV_BENCH_QUICK").is_some()
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// xorshift64*: deterministic keys and orders without a crate.
pub struct Rng(pub u64);

#[allow(dead_code)] // each bench uses its own subset
impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}
