//! Access tokens: EdDSA (Ed25519) JWTs, signed by the auth service, verified everywhere.
//!
//! The verifier knows exactly one algorithm. It never reads `alg` to choose how to verify:
//! a header naming anything but `EdDSA` is rejected before any key is touched, which closes
//! the `alg: none` and HS256-with-the-public-key attacks by construction. A dependency-free
//! implementation of this narrow profile is shorter than configuring a general JWT crate
//! down to it, and links none of the RSA/ECDSA code such a crate brings.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::Utc;
use ed25519_dalek::{
    SIGNATURE_LENGTH, Signature, Signer, SigningKey as DalekSigningKey, VerifyingKey,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    authz::{Access, Grants},
    config::{self, ConfigError, Env},
    tokens::sha256_hex,
};

/// Clock skew tolerated on `exp`, `nbf` and `iat`.
pub const LEEWAY_SECS: i64 = 5;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JwtError {
    #[error("the token is malformed")]
    Malformed,
    #[error("the token's algorithm is not accepted")]
    Algorithm,
    #[error("the token was signed by an unknown key")]
    UnknownKey,
    #[error("the token's signature is invalid")]
    Signature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token was issued for another issuer or audience")]
    WrongParty,
}

/// What an access token says about its holder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    /// The user id.
    pub sub: Uuid,
    /// The session (refresh-token family) the token was issued for.
    pub sid: Uuid,
    pub iat: i64,
    pub exp: i64,
    pub jti: Uuid,
    #[serde(default)]
    pub email_verified: bool,
    /// Effective permissions, per module (`{"articles": "vcep"}`).
    #[serde(default, skip_serializing_if = "Grants::is_empty")]
    pub perms: Grants,
    /// Names of the roles held, directly or through groups.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// Ids of the groups the user belongs to, directly (ancestors are implied).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<Uuid>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    alg: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    typ: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    crit: Option<serde_json::Value>,
}

/// A key id derived from the public key, so that a key always has the same `kid`.
fn kid_of(key: &VerifyingKey) -> String {
    sha256_hex(key.as_bytes())[..16].to_string()
}

/// The private signing key. Created from a 32-byte seed (base64 or base64url).
#[derive(Clone)]
pub struct SigningKey {
    key: DalekSigningKey,
    kid: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey(kid={})", self.kid)
    }
}

impl SigningKey {
    pub fn generate() -> Self {
        Self::from_seed(rand::random())
    }

    pub fn from_seed(seed: [u8; 32]) -> Self {
        let key = DalekSigningKey::from_bytes(&seed);
        let kid = kid_of(&key.verifying_key());
        Self { key, kid }
    }

    /// Parses the configured form: the 32-byte seed in base64 (standard or url-safe).
    pub fn from_base64(encoded: &str) -> Result<Self, String> {
        let bytes = decode_any_base64(encoded.trim()).ok_or("the signing key is not base64")?;
        let seed: [u8; 32] = bytes
            .try_into()
            .map_err(|_| "the signing key must be a 32-byte Ed25519 seed".to_string())?;
        Ok(Self::from_seed(seed))
    }

    pub fn to_base64(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.key.to_bytes())
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn public_key(&self) -> PublicKey {
        PublicKey::new(self.key.verifying_key())
    }

    /// Signs `claims` as a compact JWS.
    pub fn sign(&self, claims: &Claims) -> String {
        let header = Header {
            alg: "EdDSA".into(),
            typ: Some("JWT".into()),
            kid: Some(self.kid.clone()),
            crit: None,
        };
        let header = serde_json::to_vec(&header).expect("header serialises");
        let payload = serde_json::to_vec(claims).expect("claims serialise");
        // The token is written into one buffer of its final size: `header.payload` is signed
        // as it stands, then `.signature` is appended (no intermediate strings to grow).
        let encoded = |len: usize| base64::encoded_len(len, false).unwrap_or_default();
        let mut token = String::with_capacity(
            encoded(header.len()) + encoded(payload.len()) + encoded(SIGNATURE_LENGTH) + 2,
        );
        URL_SAFE_NO_PAD.encode_string(&header, &mut token);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&payload, &mut token);
        let signature = self.key.sign(token.as_bytes());
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(signature.to_bytes(), &mut token);
        token
    }
}

fn decode_any_base64(s: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE};
    URL_SAFE_NO_PAD
        .decode(s)
        .or_else(|_| URL_SAFE.decode(s))
        .or_else(|_| STANDARD.decode(s))
        .or_else(|_| STANDARD_NO_PAD.decode(s))
        .ok()
}

/// The comma-separated base64 public keys in the variable `name`; none when it is unset or
/// blank.
pub fn public_keys(env: &dyn Env, name: &'static str) -> Result<Vec<PublicKey>, ConfigError> {
    config::optional(env, name)
        .unwrap_or_default()
        .split(',')
        .filter(|k| !k.trim().is_empty())
        .map(|k| PublicKey::from_base64(k).map_err(|reason| ConfigError::Invalid { name, reason }))
        .collect()
}

/// A public verification key with its key id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    key: VerifyingKey,
    kid: String,
}

/// A JSON Web Key (RFC 8037 OKP form) for the JWKS endpoint.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Jwk {
    /// Always `OKP`.
    pub kty: String,
    /// Always `Ed25519`.
    pub crv: String,
    /// The public key, base64url.
    pub x: String,
    pub kid: String,
    /// Always `EdDSA`.
    pub alg: String,
    #[serde(rename = "use")]
    pub use_: String,
}

/// A JSON Web Key Set.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

impl PublicKey {
    fn new(key: VerifyingKey) -> Self {
        let kid = kid_of(&key);
        Self { key, kid }
    }

    /// Parses a raw 32-byte public key in base64 or base64url.
    pub fn from_base64(encoded: &str) -> Result<Self, String> {
        let bytes = decode_any_base64(encoded.trim()).ok_or("the public key is not base64")?;
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|_| "an Ed25519 public key is 32 bytes".to_string())?;
        let key = VerifyingKey::from_bytes(&bytes).map_err(|_| "not an Ed25519 public key")?;
        Ok(Self::new(key))
    }

    pub fn to_base64(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.key.as_bytes())
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn jwk(&self) -> Jwk {
        Jwk {
            kty: "OKP".into(),
            crv: "Ed25519".into(),
            x: self.to_base64(),
            kid: self.kid.clone(),
            alg: "EdDSA".into(),
            use_: "sig".into(),
        }
    }
}

/// Who issues tokens and for whom; shared by signer and verifier.
#[derive(Debug, Clone)]
pub struct TokenParties {
    pub issuer: String,
    pub audience: String,
}

impl TokenParties {
    /// `JWT_ISSUER` (default `lectern`) and `JWT_AUDIENCE` (default `lectern-api`).
    pub fn from_env(env: &dyn Env) -> Self {
        Self {
            issuer: config::optional(env, "JWT_ISSUER").unwrap_or_else(|| "lectern".into()),
            audience: config::optional(env, "JWT_AUDIENCE").unwrap_or_else(|| "lectern-api".into()),
        }
    }
}

/// Verifies access tokens against a set of public keys (the current one and, during a key
/// rotation, the previous ones).
#[derive(Debug, Clone)]
pub struct JwtVerifier {
    keys: HashMap<String, PublicKey>,
    parties: TokenParties,
    verified: Verified,
}

/// Tokens whose signature this process has already checked. A client presents the same access
/// token with every request of its lifetime, and an Ed25519 check costs about as much CPU as
/// the rest of a simple read. Found by the token's signature (its last 86 characters, which
/// differ between any two tokens this service signs) and then compared with the whole token,
/// so a token that differs in any byte is checked afresh; the claims' time bounds are checked
/// on every use. Only tokens that verified are stored.
#[derive(Clone, Default)]
struct Verified(Arc<Mutex<HashMap<Box<str>, Seen>>>);

/// A verified token, whole, and its claims.
struct Seen {
    token: Box<str>,
    claims: Arc<Claims>,
}

/// Enough for every token a warm instance sees within a token lifetime; when full, it starts
/// over (a cache miss only costs a signature check).
const VERIFIED_CAPACITY: usize = 4096;

impl std::fmt::Debug for Verified {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let size = self.0.lock().map(|m| m.len()).unwrap_or_default();
        write!(f, "Verified({size} tokens)")
    }
}

/// The signature segment of a compact JWS: what follows the last dot.
fn signature_of(token: &str) -> Option<&str> {
    token.rsplit_once('.').map(|(_, signature)| signature)
}

impl Verified {
    /// Shared, not copied: a request reads the claims without allocating.
    fn get(&self, token: &str) -> Option<Arc<Claims>> {
        let map = self.0.lock().ok()?;
        let seen = map.get(signature_of(token)?)?;
        (*seen.token == *token).then(|| seen.claims.clone())
    }

    fn insert(&self, token: &str, claims: &Arc<Claims>) {
        let Some(signature) = signature_of(token) else {
            return;
        };
        if let Ok(mut map) = self.0.lock() {
            if map.len() >= VERIFIED_CAPACITY {
                map.clear();
            }
            map.insert(
                signature.into(),
                Seen {
                    token: token.into(),
                    claims: claims.clone(),
                },
            );
        }
    }
}

impl JwtVerifier {
    pub fn new(keys: impl IntoIterator<Item = PublicKey>, parties: TokenParties) -> Self {
        let keys = keys.into_iter().map(|k| (k.kid.clone(), k)).collect();
        Self {
            keys,
            parties,
            verified: Verified::default(),
        }
    }

    pub fn parties(&self) -> &TokenParties {
        &self.parties
    }

    /// The verifier of a service that does not sign: `JWT_PUBLIC_KEYS` (comma-separated
    /// base64 Ed25519 public keys, the current one and any still-valid previous ones),
    /// `JWT_ISSUER` and `JWT_AUDIENCE`.
    pub fn from_env(env: &dyn Env) -> Result<Self, ConfigError> {
        let keys = public_keys(env, "JWT_PUBLIC_KEYS")?;
        if keys.is_empty() {
            return Err(ConfigError::Missing("JWT_PUBLIC_KEYS"));
        }
        Ok(Self::new(keys, TokenParties::from_env(env)))
    }

    /// Whether tokens signed by the holder of `key` verify here.
    pub fn accepts(&self, key: &PublicKey) -> bool {
        self.keys.get(&key.kid).is_some_and(|known| known == key)
    }

    pub fn jwks(&self) -> Jwks {
        let mut keys: Vec<Jwk> = self.keys.values().map(PublicKey::jwk).collect();
        keys.sort_by(|a, b| a.kid.cmp(&b.kid));
        Jwks { keys }
    }

    pub fn verify(&self, token: &str) -> Result<Arc<Claims>, JwtError> {
        self.verify_at(token, Utc::now().timestamp())
    }

    pub fn verify_at(&self, token: &str, now: i64) -> Result<Arc<Claims>, JwtError> {
        if let Some(claims) = self.verified.get(token) {
            return Self::within_time(claims, now);
        }
        let claims = Arc::new(self.verify_signature_and_parties(token)?);
        self.verified.insert(token, &claims);
        Self::within_time(claims, now)
    }

    fn within_time(claims: Arc<Claims>, now: i64) -> Result<Arc<Claims>, JwtError> {
        if claims.exp + LEEWAY_SECS <= now {
            return Err(JwtError::Expired);
        }
        if claims.iat - LEEWAY_SECS > now {
            return Err(JwtError::NotYetValid);
        }
        Ok(claims)
    }

    fn verify_signature_and_parties(&self, token: &str) -> Result<Claims, JwtError> {
        let mut parts = token.split('.');
        let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JwtError::Malformed);
        };
        let header: Header = URL_SAFE_NO_PAD
            .decode(header_b64)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or(JwtError::Malformed)?;
        if header.alg != "EdDSA" || header.crit.is_some() {
            return Err(JwtError::Algorithm);
        }
        if header
            .typ
            .as_deref()
            .is_some_and(|t| !t.eq_ignore_ascii_case("JWT"))
        {
            return Err(JwtError::Malformed);
        }
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| self.keys.get(kid))
            .ok_or(JwtError::UnknownKey)?;
        let signature: [u8; 64] = URL_SAFE_NO_PAD
            .decode(signature_b64)
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or(JwtError::Malformed)?;
        let signing_input = &token[..header_b64.len() + 1 + payload_b64.len()];
        key.key
            .verify_strict(signing_input.as_bytes(), &Signature::from_bytes(&signature))
            .map_err(|_| JwtError::Signature)?;
        let claims: Claims = URL_SAFE_NO_PAD
            .decode(payload_b64)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or(JwtError::Malformed)?;
        if claims.iss != self.parties.issuer || claims.aud != self.parties.audience {
            return Err(JwtError::WrongParty);
        }
        Ok(claims)
    }
}

/// Signs access tokens: the auth service's half.
#[derive(Debug, Clone)]
pub struct TokenIssuer {
    key: SigningKey,
    parties: TokenParties,
    ttl_secs: i64,
}

impl TokenIssuer {
    pub fn new(key: SigningKey, parties: TokenParties, ttl_secs: i64) -> Self {
        Self {
            key,
            parties,
            ttl_secs,
        }
    }

    pub fn ttl_secs(&self) -> i64 {
        self.ttl_secs
    }

    /// A verifier for the tokens this issuer signs, plus any previous keys.
    pub fn verifier(&self, previous: impl IntoIterator<Item = PublicKey>) -> JwtVerifier {
        let keys = std::iter::once(self.key.public_key()).chain(previous);
        JwtVerifier::new(keys, self.parties.clone())
    }

    pub fn issue(
        &self,
        user_id: Uuid,
        session_id: Uuid,
        email_verified: bool,
        access: &Access,
    ) -> String {
        let now = Utc::now().timestamp();
        self.sign(Claims {
            iss: self.parties.issuer.clone(),
            aud: self.parties.audience.clone(),
            sub: user_id,
            sid: session_id,
            iat: now,
            exp: now + self.ttl_secs,
            jti: Uuid::now_v7(),
            email_verified,
            perms: access.grants.clone(),
            roles: access.roles.clone(),
            groups: access.groups.clone(),
        })
    }

    pub fn sign(&self, claims: Claims) -> String {
        self.key.sign(&claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parties() -> TokenParties {
        TokenParties {
            issuer: "lectern".into(),
            audience: "lectern-api".into(),
        }
    }

    #[test]
    fn a_signed_token_verifies_and_round_trips_its_claims() {
        let issuer = TokenIssuer::new(SigningKey::generate(), parties(), 900);
        let verifier = issuer.verifier([]);
        let (user, session) = (Uuid::now_v7(), Uuid::now_v7());
        let claims = verifier
            .verify(&issuer.issue(user, session, true, &Access::default()))
            .unwrap();
        assert_eq!(
            (claims.sub, claims.sid, claims.email_verified),
            (user, session, true)
        );
    }

    #[test]
    fn a_checked_token_is_remembered_but_a_changed_byte_is_checked_again() {
        let issuer = TokenIssuer::new(SigningKey::generate(), parties(), 60);
        let verifier = issuer.verifier([]);
        let token = issuer.issue(Uuid::now_v7(), Uuid::now_v7(), false, &Access::default());
        let first = verifier.verify(&token).unwrap();
        assert_eq!(verifier.verify(&token).unwrap(), first);
        // Tamper with the payload's last character and with the signature's.
        let (head, signature) = token.rsplit_once('.').unwrap();
        let flip = |s: &str| {
            let mut chars: Vec<char> = s.chars().collect();
            let last = chars.last_mut().unwrap();
            *last = if *last == 'A' { 'B' } else { 'A' };
            chars.into_iter().collect::<String>()
        };
        assert!(
            verifier
                .verify(&format!("{}.{signature}", flip(head)))
                .is_err()
        );
        assert!(
            verifier
                .verify(&format!("{head}.{}", flip(signature)))
                .is_err()
        );
        // The tampered copies, refused, leave the real token as it was.
        assert_eq!(verifier.verify(&token).unwrap(), first);
        // Another verifier (another key set) shares nothing.
        let stranger = TokenIssuer::new(SigningKey::generate(), parties(), 60).verifier([]);
        assert_eq!(stranger.verify(&token), Err(JwtError::UnknownKey));
    }

    #[test]
    fn a_key_survives_its_base64_form() {
        let key = SigningKey::generate();
        let again = SigningKey::from_base64(&key.to_base64()).unwrap();
        assert_eq!(key.kid(), again.kid());
        let public = PublicKey::from_base64(&key.public_key().to_base64()).unwrap();
        assert_eq!(public, key.public_key());
    }

    #[test]
    fn a_verifier_accepts_exactly_its_keys_as_listed_in_the_environment() {
        let (current, previous, stranger) = (
            SigningKey::generate().public_key(),
            SigningKey::generate().public_key(),
            SigningKey::generate().public_key(),
        );
        let env = std::collections::HashMap::from([
            (
                "JWT_PUBLIC_KEYS".to_string(),
                format!(" {}, ,{}", current.to_base64(), previous.to_base64()),
            ),
            ("JWT_BROKEN".to_string(), "not-a-key".to_string()),
        ]);
        let keys = public_keys(&env, "JWT_PUBLIC_KEYS").unwrap();
        assert_eq!(keys, [current.clone(), previous.clone()]);
        assert_eq!(public_keys(&env, "JWT_UNSET").unwrap(), []);
        assert!(matches!(
            public_keys(&env, "JWT_BROKEN"),
            Err(ConfigError::Invalid {
                name: "JWT_BROKEN",
                ..
            })
        ));
        let verifier = JwtVerifier::new(keys, parties());
        assert!(verifier.accepts(&current) && verifier.accepts(&previous));
        assert!(!verifier.accepts(&stranger));
    }

    #[test]
    fn expiry_allows_only_the_leeway() {
        let issuer = TokenIssuer::new(SigningKey::generate(), parties(), 60);
        let verifier = issuer.verifier([]);
        let token = issuer.issue(Uuid::now_v7(), Uuid::now_v7(), false, &Access::default());
        let now = Utc::now().timestamp();
        assert!(
            verifier
                .verify_at(&token, now + 60 + LEEWAY_SECS - 1)
                .is_ok()
        );
        assert_eq!(
            verifier.verify_at(&token, now + 60 + LEEWAY_SECS),
            Err(JwtError::Expired)
        );
    }

    #[test]
    fn another_keys_signature_is_rejected() {
        let issuer = TokenIssuer::new(SigningKey::generate(), parties(), 60);
        let stranger = TokenIssuer::new(SigningKey::generate(), parties(), 60);
        let token = stranger.issue(Uuid::now_v7(), Uuid::now_v7(), false, &Access::default());
        assert_eq!(
            issuer.verifier([]).verify(&token),
            Err(JwtError::UnknownKey)
        );
    }
}
