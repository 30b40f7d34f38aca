//! SCRAM-SHA-256 / SCRAM-SHA-512 client (RFC 5802, RFC 7677), sans-I/O.
//!
//! The connection drives [`ScramClient`]: [`ScramClient::client_first`] →
//! [`ScramClient::handle_server_first`] (returns the client-final message) →
//! [`ScramClient::handle_server_final`] (verifies the server signature). No channel binding
//! (`n,,` GS2 header), as Kafka uses it (KIP-84).
//!
//! Limits: the iteration count from the server is bounded to [`MAX_ITERATIONS`] so a hostile
//! server cannot make us spin; user names are escaped (`=` → `=3D`, `,` → `=2C`) but not
//! SASLprep-normalised (ASCII names are unaffected).
//!
//! # References
//! - RFC 5802 (SCRAM), RFC 7677 (SCRAM-SHA-256 and its test vector), KIP-84

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};

/// Upper bound on the server's iteration count (Kafka allows 4096..=16384).
pub const MAX_ITERATIONS: u32 = 65_536;
/// Lower bound on the server's iteration count (RFC 7677 recommends at least 4096).
pub const MIN_ITERATIONS: u32 = 4_096;

/// The hash function of a SCRAM mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScramHash {
    /// SHA-256.
    Sha256,
    /// SHA-512.
    Sha512,
}

/// Failures of the SCRAM exchange. The server's `e=` attribute is passed through.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScramError {
    /// The server message is not valid SCRAM (peer fault).
    #[error("malformed SCRAM server message: {0}")]
    Malformed(&'static str),
    /// The server nonce does not extend ours (peer fault or attack).
    #[error("server nonce does not start with the client nonce")]
    NonceMismatch,
    /// The iteration count is outside [`MIN_ITERATIONS`]..=[`MAX_ITERATIONS`].
    #[error("iteration count {0} out of bounds")]
    Iterations(u32),
    /// The server reported an error (`e=`).
    #[error("server error: {0}")]
    Server(String),
    /// The server's signature is wrong: it does not know our password (possible attack).
    #[error("server signature verification failed")]
    BadServerSignature,
    /// Messages came in the wrong order (caller fault).
    #[error("SCRAM step called out of order")]
    OutOfOrder,
}

#[derive(Debug)]
enum State {
    Initial,
    SentFirst,
    SentFinal { server_signature: Vec<u8> },
    Done,
}

/// A SCRAM client conversation.
pub struct ScramClient {
    hash: ScramHash,
    username: String,
    password: String,
    client_nonce: String,
    client_first_bare: String,
    state: State,
}

impl std::fmt::Debug for ScramClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramClient")
            .field("hash", &self.hash)
            .field("username", &self.username)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

fn escape_username(name: &str) -> String {
    name.replace('=', "=3D").replace(',', "=2C")
}

fn hmac(hash: ScramHash, key: &[u8], data: &[u8]) -> Vec<u8> {
    match hash {
        ScramHash::Sha256 => match Hmac::<Sha256>::new_from_slice(key) {
            Ok(mut m) => {
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
            Err(_) => Vec::new(), // HMAC accepts any key length.
        },
        ScramHash::Sha512 => match Hmac::<Sha512>::new_from_slice(key) {
            Ok(mut m) => {
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
            Err(_) => Vec::new(),
        },
    }
}

fn digest(hash: ScramHash, data: &[u8]) -> Vec<u8> {
    match hash {
        ScramHash::Sha256 => Sha256::digest(data).to_vec(),
        ScramHash::Sha512 => Sha512::digest(data).to_vec(),
    }
}

fn salted_password(hash: ScramHash, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
    match hash {
        ScramHash::Sha256 => {
            pbkdf2::pbkdf2_hmac_array::<Sha256, 32>(password, salt, iterations).to_vec()
        }
        ScramHash::Sha512 => {
            pbkdf2::pbkdf2_hmac_array::<Sha512, 64>(password, salt, iterations).to_vec()
        }
    }
}

fn attr(msg: &str, key: char) -> Option<&str> {
    msg.split(',').find_map(|part| {
        let mut chars = part.chars();
        (chars.next() == Some(key) && chars.next() == Some('='))
            .then(|| part.get(2..).unwrap_or(""))
    })
}

impl ScramClient {
    /// Starts a conversation with a fresh random nonce.
    #[must_use]
    pub fn new(hash: ScramHash, username: &str, password: &str) -> Self {
        let nonce_bytes: [u8; 24] = rand::random();
        Self::with_nonce(hash, username, password, &B64.encode(nonce_bytes))
    }

    /// Starts a conversation with a given nonce (tests with RFC vectors).
    #[must_use]
    pub fn with_nonce(hash: ScramHash, username: &str, password: &str, nonce: &str) -> Self {
        Self {
            hash,
            username: username.to_owned(),
            password: password.to_owned(),
            client_nonce: nonce.to_owned(),
            client_first_bare: String::new(),
            state: State::Initial,
        }
    }

    /// The client-first message (`n,,n=user,r=nonce`).
    pub fn client_first(&mut self) -> Vec<u8> {
        self.client_first_bare = format!(
            "n={},r={}",
            escape_username(&self.username),
            self.client_nonce
        );
        self.state = State::SentFirst;
        format!("n,,{}", self.client_first_bare).into_bytes()
    }

    /// Reads server-first and returns client-final.
    pub fn handle_server_first(&mut self, msg: &[u8]) -> Result<Vec<u8>, ScramError> {
        if !matches!(self.state, State::SentFirst) {
            return Err(ScramError::OutOfOrder);
        }
        let msg = std::str::from_utf8(msg).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        if let Some(e) = attr(msg, 'e') {
            return Err(ScramError::Server(e.to_owned()));
        }
        if msg.starts_with("m=") {
            return Err(ScramError::Malformed("unsupported mandatory extension"));
        }
        let nonce = attr(msg, 'r').ok_or(ScramError::Malformed("missing nonce"))?;
        let salt = attr(msg, 's').ok_or(ScramError::Malformed("missing salt"))?;
        let iterations = attr(msg, 'i').ok_or(ScramError::Malformed("missing iteration count"))?;
        if !nonce.starts_with(&self.client_nonce) || nonce.len() <= self.client_nonce.len() {
            return Err(ScramError::NonceMismatch);
        }
        let salt = B64
            .decode(salt)
            .map_err(|_| ScramError::Malformed("salt is not base64"))?;
        let iterations: u32 = iterations
            .parse()
            .map_err(|_| ScramError::Malformed("iteration count is not a number"))?;
        if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&iterations) {
            return Err(ScramError::Iterations(iterations));
        }
        let salted = salted_password(self.hash, self.password.as_bytes(), &salt, iterations);
        let client_key = hmac(self.hash, &salted, b"Client Key");
        let stored_key = digest(self.hash, &client_key);
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{msg},{without_proof}", self.client_first_bare);
        let client_signature = hmac(self.hash, &stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&client_signature)
            .map(|(a, b)| a ^ b)
            .collect();
        let server_key = hmac(self.hash, &salted, b"Server Key");
        let server_signature = hmac(self.hash, &server_key, auth_message.as_bytes());
        self.state = State::SentFinal { server_signature };
        Ok(format!("{without_proof},p={}", B64.encode(proof)).into_bytes())
    }

    /// Verifies server-final (`v=...`), or surfaces its `e=...`.
    pub fn handle_server_final(&mut self, msg: &[u8]) -> Result<(), ScramError> {
        let State::SentFinal { server_signature } = &self.state else {
            return Err(ScramError::OutOfOrder);
        };
        let msg = std::str::from_utf8(msg).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        if let Some(e) = attr(msg, 'e') {
            return Err(ScramError::Server(e.to_owned()));
        }
        let v = attr(msg, 'v').ok_or(ScramError::Malformed("missing verifier"))?;
        let v = B64
            .decode(v)
            .map_err(|_| ScramError::Malformed("verifier is not base64"))?;
        if &v != server_signature {
            return Err(ScramError::BadServerSignature);
        }
        self.state = State::Done;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677 §3 test vector (user "user", password "pencil").
    #[test]
    fn rfc7677_sha256_vector() {
        let mut c =
            ScramClient::with_nonce(ScramHash::Sha256, "user", "pencil", "rOprNGfwEbeRWgbNEkqO");
        assert_eq!(c.client_first(), b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let server_first =
            b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let client_final = c.handle_server_first(server_first).unwrap();
        assert_eq!(
            std::str::from_utf8(&client_final).unwrap(),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        c.handle_server_final(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .unwrap();
    }

    /// A minimal SCRAM server (RFC 5802 §3) to check SHA-512 end to end.
    fn server_verify(
        hash: ScramHash,
        password: &str,
        client_first_bare: &str,
        server_first: &str,
        client_final: &str,
        salt: &[u8],
        iters: u32,
    ) -> String {
        let salted = salted_password(hash, password.as_bytes(), salt, iters);
        let client_key = hmac(hash, &salted, b"Client Key");
        let stored_key = digest(hash, &client_key);
        let (without_proof, proof) = client_final.rsplit_once(",p=").unwrap();
        let auth = format!("{client_first_bare},{server_first},{without_proof}");
        let sig = hmac(hash, &stored_key, auth.as_bytes());
        let proof = B64.decode(proof).unwrap();
        let recovered: Vec<u8> = proof.iter().zip(&sig).map(|(a, b)| a ^ b).collect();
        assert_eq!(
            digest(hash, &recovered),
            stored_key,
            "client proof must verify"
        );
        let server_key = hmac(hash, &salted, b"Server Key");
        format!("v={}", B64.encode(hmac(hash, &server_key, auth.as_bytes())))
    }

    #[test]
    fn sha512_against_reference_server() {
        let mut c = ScramClient::new(ScramHash::Sha512, "ali=ce,x", "s3cret");
        let first = String::from_utf8(c.client_first()).unwrap();
        assert!(first.starts_with("n,,n=ali=3Dce=2Cx,r="));
        let bare = first.strip_prefix("n,,").unwrap().to_owned();
        let cnonce = attr(&bare, 'r').unwrap().to_owned();
        let salt = b"0123456789abcdef";
        let server_first = format!("r={cnonce}SERVERPART,s={},i=4096", B64.encode(salt));
        let fin =
            String::from_utf8(c.handle_server_first(server_first.as_bytes()).unwrap()).unwrap();
        let v = server_verify(
            ScramHash::Sha512,
            "s3cret",
            &bare,
            &server_first,
            &fin,
            salt,
            4096,
        );
        c.handle_server_final(v.as_bytes()).unwrap();
    }

    #[test]
    fn hostile_server_messages() {
        let mut c = ScramClient::with_nonce(ScramHash::Sha256, "u", "p", "abc");
        c.client_first();
        assert_eq!(
            c.handle_server_first(b"r=xyz1,s=AAAA,i=4096"),
            Err(ScramError::NonceMismatch)
        );
        assert_eq!(
            c.handle_server_first(b"r=abcd,s=AAAA,i=99999999"),
            Err(ScramError::Iterations(99_999_999))
        );
        assert_eq!(
            c.handle_server_first(b"r=abcd,s=AAAA,i=1"),
            Err(ScramError::Iterations(1))
        );
        assert!(matches!(
            c.handle_server_first(b"r=abcd,i=4096"),
            Err(ScramError::Malformed(_))
        ));
        assert!(matches!(
            c.handle_server_first(b"e=invalid-proof"),
            Err(ScramError::Server(_))
        ));
        assert!(matches!(
            c.handle_server_first(&[0xff, 0xfe]),
            Err(ScramError::Malformed(_))
        ));
        c.handle_server_first(b"r=abcd,s=AAAA,i=4096").unwrap();
        assert_eq!(
            c.handle_server_final(b"v=AAAA"),
            Err(ScramError::BadServerSignature)
        );
        let mut fresh = ScramClient::with_nonce(ScramHash::Sha256, "u", "p", "abc");
        assert_eq!(
            fresh.handle_server_final(b"v=AAAA"),
            Err(ScramError::OutOfOrder)
        );
    }
}
