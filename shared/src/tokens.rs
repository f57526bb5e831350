//! Random secrets handed to clients (refresh, reset, verification tokens) and their hashes.
//!
//! A token is 32 random bytes, base64url without padding; only its SHA-256 is stored, so a
//! database dump gives nobody a usable token.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};

/// A fresh 256-bit token as the client sees it.
pub fn generate() -> String {
    encode(&rand::random())
}

pub fn encode(bytes: &[u8; 32]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The 32 bytes behind a token string, if it is one.
pub fn decode(token: &str) -> Option<[u8; 32]> {
    URL_SAFE_NO_PAD.decode(token).ok()?.try_into().ok()
}

/// The SHA-256 of a token, as stored.
pub fn hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Whether a string has the shape of a token we issued (cheap check before any query).
pub fn looks_valid(token: &str) -> bool {
    token.len() == 43
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

pub fn sha256_hex(input: &[u8]) -> String {
    Sha256::digest(input)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn tokens_are_unique_and_well_formed() {
        let (a, b) = (super::generate(), super::generate());
        assert_ne!(a, b);
        assert!(super::looks_valid(&a));
        assert!(!super::looks_valid("short"));
        assert_eq!(super::hash(&a).len(), 32);
    }
}
