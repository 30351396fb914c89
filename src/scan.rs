//! `latchkey scan`: finds this deployment's keys in files (logs, dumps, a checkout) or stdin.
//!
//! A key is reported only when its check tag is valid under a live secret, so random strings
//! of the same shape (thumbprints, digests) are not; the report shows a key's `start`, never
//! the key.

use std::io::{self, BufRead};
use std::path::Path;

use crate::domain::key::KeyHasher;

/// A key found on one line of one input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// 1-based line number.
    pub line: usize,
    /// The key's prefix and first secret characters, as the dashboard shows it.
    pub start: String,
}

/// Every key in `input`, line by line; bytes that are not UTF-8 are skipped over.
pub fn scan(hasher: &KeyHasher, mut input: impl BufRead) -> io::Result<Vec<Finding>> {
    let mut findings = Vec::new();
    let mut buf = Vec::new();
    let mut line = 0;
    while {
        buf.clear();
        input.read_until(b'\n', &mut buf)? > 0
    } {
        line += 1;
        let text = String::from_utf8_lossy(&buf);
        findings.extend(hasher.find_in(&text).iter().map(|key| Finding {
            line,
            start: key.start(),
        }));
    }
    Ok(findings)
}

/// [`scan`] over a file, or stdin for `-`.
pub fn scan_path(hasher: &KeyHasher, path: &Path) -> io::Result<Vec<Finding>> {
    if path == Path::new("-") {
        scan(hasher, io::stdin().lock())
    } else {
        scan(hasher, io::BufReader::new(std::fs::File::open(path)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::key::KeyPrefix;
    use crate::domain::secrets::MasterKey;

    #[test]
    fn reports_the_line_and_start_of_each_key() {
        let hasher = KeyHasher::new(&MasterKey::from_bytes(vec![3; 32]).unwrap().derive(), &[]);
        let key = hasher.generate(&KeyPrefix::parse("acme_live").unwrap());
        let key = key.key.expose_secret();
        let mut input = b"first line\n\xff\xfe not utf-8\n".to_vec();
        input.extend_from_slice(format!("{{\"leaked\":\"{key}\"}}\nlast").as_bytes());
        let findings = scan(&hasher, &input[..]).unwrap();
        assert_eq!(
            findings,
            [Finding {
                line: 3,
                start: key[.."acme_live_".len() + 4].to_owned()
            }]
        );
    }
}
