//! Helpers shared by the engine test binaries.

/// xorshift64: deterministic, seeded, no crates.
pub struct Rng(u64);

#[allow(dead_code)] // each test binary uses its own subset
impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
    pub fn pick<'a, T>(&mut self, s: &'a [T]) -> &'a T {
        &s[self.below(s.len())]
    }
}

/// Every file of a simulated directory and its bytes (the directory as a
/// process would see it), for copying a fixture or comparing before/after.
#[allow(dead_code)]
pub fn sim_image(sim: &dbkv::persistence::vfs::SimVfs, dir: &std::path::Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    use dbkv::persistence::vfs::Vfs;
    let names = sim.list(dir).unwrap_or_default();
    names.into_iter().filter_map(|n| sim.read(&dir.join(&n)).ok().map(|b| (n, b))).collect()
}

/// A fresh simulated disk holding exactly `img` in `dir`, durably.
#[allow(dead_code)]
pub fn sim_with(img: &std::collections::BTreeMap<String, Vec<u8>>, dir: &std::path::Path) -> dbkv::persistence::vfs::SimVfs {
    use dbkv::persistence::vfs::Vfs;
    let sim = dbkv::persistence::vfs::SimVfs::new();
    if let Some(parent) = dir.parent() {
        sim.create_dir(parent).unwrap();
    }
    sim.create_dir(dir).unwrap();
    for (name, bytes) in img {
        let mut f = sim.create(&dir.join(name)).unwrap();
        f.write_all(bytes).unwrap();
        f.sync().unwrap();
    }
    sim.sync_dir(dir).unwrap();
    sim
}
