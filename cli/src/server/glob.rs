//! Redis glob patterns (`KEYS`, `SCAN MATCH`, `PSUBSCRIBE`): `*`, `?`,
//! `[abc]`, `[^a]`, `[a-z]` and `\` escapes, byte for byte as Redis's
//! `stringmatchlen`.

/// True if `s` matches `pattern`. Greedy with one backtrack point (the
/// last `*`), so any pattern runs in O(len(pattern) * len(s)): a hostile
/// pattern such as `*a*a*a...b` cannot stall a worker.
pub fn matches(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    loop {
        if pi < p.len() {
            if p[pi] == b'*' {
                star = Some((pi + 1, si));
                pi += 1;
                continue;
            }
            if si < s.len() {
                if let Some(next) = one(p, pi, s[si]) {
                    pi = next;
                    si += 1;
                    continue;
                }
            }
        } else if si == s.len() {
            return true;
        }
        // Mismatch: let the last `*` swallow one more byte.
        match star {
            Some((sp, ss)) if ss < s.len() => {
                star = Some((sp, ss + 1));
                pi = sp;
                si = ss + 1;
            }
            _ => return false,
        }
    }
}

/// Matches one pattern element at `p[pi]` (not `*`) against `c`; returns
/// where the pattern continues.
fn one(p: &[u8], pi: usize, c: u8) -> Option<usize> {
    match p[pi] {
        b'?' => Some(pi + 1),
        b'[' => {
            let (hit, next) = class(p, pi + 1, c);
            hit.then_some(next)
        }
        b'\\' if pi + 1 < p.len() => (p[pi + 1] == c).then_some(pi + 2),
        lit => (lit == c).then_some(pi + 1),
    }
}

/// Matches `c` against the class starting at `p[at]` (after `[`); returns
/// whether it matched and where the pattern continues (after `]`).
fn class(p: &[u8], mut at: usize, c: u8) -> (bool, usize) {
    let negate = p.get(at) == Some(&b'^');
    if negate {
        at += 1;
    }
    let mut hit = false;
    while at < p.len() && p[at] != b']' {
        if p[at] == b'\\' && at + 1 < p.len() {
            at += 1;
            hit |= p[at] == c;
        } else if at + 2 < p.len() && p[at + 1] == b'-' && p[at + 2] != b']' {
            let (lo, hi) = if p[at] <= p[at + 2] { (p[at], p[at + 2]) } else { (p[at + 2], p[at]) };
            hit |= (lo..=hi).contains(&c);
            at += 2;
        } else {
            hit |= p[at] == c;
        }
        at += 1;
    }
    // An unterminated class ends the pattern (Redis treats it the same).
    (hit != negate, (at + 1).min(p.len()))
}

/// The literal prefix every match starts with, and whether the pattern is
/// exactly that prefix followed by `*` (then matching is a prefix test).
pub fn literal_prefix(pattern: &[u8]) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut i = 0;
    while i < pattern.len() {
        match pattern[i] {
            b'*' => return (out, pattern[i..].iter().all(|&b| b == b'*')),
            b'?' | b'[' => return (out, false),
            b'\\' if i + 1 < pattern.len() => {
                out.push(pattern[i + 1]);
                i += 2;
                continue;
            }
            c => out.push(c),
        }
        i += 1;
    }
    (out, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_examples() {
        for (p, s, want) in [
            ("h?llo", "hello", true),
            ("h?llo", "hllo", false),
            ("h*llo", "hllo", true),
            ("h*llo", "heeeello", true),
            ("h[ae]llo", "hello", true),
            ("h[ae]llo", "hillo", false),
            ("h[^e]llo", "hallo", true),
            ("h[^e]llo", "hello", false),
            ("h[a-b]llo", "hbllo", true),
            ("h[b-a]llo", "hallo", true),
            ("h\\*llo", "h*llo", true),
            ("h\\*llo", "hello", false),
            ("*", "", true),
            ("a*", "abc", true),
            ("*c", "abc", true),
            ("*b*", "abc", true),
            ("", "", true),
            ("", "a", false),
            ("user:*:name", "user:42:name", true),
        ] {
            assert_eq!(matches(p.as_bytes(), s.as_bytes()), want, "{p} ~ {s}");
        }
    }

    #[test]
    fn prefixes() {
        assert_eq!(literal_prefix(b"user:*"), (b"user:".to_vec(), true));
        assert_eq!(literal_prefix(b"user:*:x"), (b"user:".to_vec(), false));
        assert_eq!(literal_prefix(b"a\\*b*"), (b"a*b".to_vec(), true));
        assert_eq!(literal_prefix(b"abc"), (b"abc".to_vec(), false));
    }

    #[test]
    fn hostile_pattern_terminates() {
        let p = "*a".repeat(50) + "b";
        assert!(!matches(p.as_bytes(), &[b'a'; 60]));
    }
}
