//! A tiny fake broker that answers with scripted bad responses (reliability.md scenario 14,
//! test-pyramid level 2; the idea of object_store's `mock_server.rs`).
//!
//! It listens on a loopback port, answers `ApiVersions` honestly (ferry's own version table,
//! `ferry_protocol::api::ferry_apis`) unless the [`Misbehaviour`] concerns `ApiVersions`, and
//! answers every later request according to the misbehaviour. It counts connections and requests
//! so a test can assert that the client gives up with a typed error instead of retrying hot.
//!
//! Frames follow kafka-wire.md §2: `i32` size prefix; response header v0 (`correlation_id`) or
//! v1 (plus tagged fields) by `ApiKey::response_header_version`; ApiVersions responses always
//! use header v0 (KIP-511).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse, MetadataResponse, ResponseHeader};
use kafka_protocol::protocol::Encodable;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the fake broker does wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Misbehaviour {
    /// Answers requests after ApiVersions with another correlation id.
    WrongCorrelationId,
    /// Answers with the size prefix `0x7fffffff` and then a few bytes (the client must reject
    /// the length before allocating).
    HugeSizePrefix,
    /// A complete frame whose Metadata body stops half way.
    TruncatedBody,
    /// A flexible response whose first tagged-field count is a varint that never ends.
    BadVarint,
    /// A Metadata response whose `brokers` array claims `i32::MAX` (or `u32::MAX − 1`)
    /// entries in a 20-byte frame.
    HugeArrayCount,
    /// ApiVersions answers with an error code no Kafka release defines.
    UnknownErrorCode,
    /// ApiVersions offers only versions of Metadata and Fetch ferry does not speak.
    WrongApiVersion,
    /// Reads requests and never answers.
    Silent,
    /// A negative size prefix.
    NegativeSize,
}

impl Misbehaviour {
    /// Every misbehaviour.
    pub const ALL: [Self; 9] = [
        Self::WrongCorrelationId,
        Self::HugeSizePrefix,
        Self::TruncatedBody,
        Self::BadVarint,
        Self::HugeArrayCount,
        Self::UnknownErrorCode,
        Self::WrongApiVersion,
        Self::Silent,
        Self::NegativeSize,
    ];
}

#[derive(Debug, Default)]
struct Counters {
    connections: AtomicU64,
    requests: AtomicU64,
    bad_answers: AtomicU64,
}

/// A running fake broker. Dropping it stops it.
#[derive(Debug)]
pub struct FakeBroker {
    addr: SocketAddr,
    counters: Arc<Counters>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeBroker {
    /// Starts a fake broker on a free loopback port.
    pub fn start(misbehaviour: Misbehaviour) -> io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        std_listener.set_nonblocking(true)?;
        let listener = std_listener;
        let addr = listener.local_addr()?;
        let counters = Arc::new(Counters::default());
        let c = Arc::clone(&counters);
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("fake-broker".to_owned())
            .spawn(move || {
                runtime.block_on(async move {
                    let Ok(listener) = TcpListener::from_std(listener) else {
                        return;
                    };
                    tokio::select! {
                        () = accept(listener, misbehaviour, addr, c) => {}
                        _ = stop_rx => {}
                    }
                });
            })?;
        Ok(Self {
            addr,
            counters,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// `host:port`.
    pub fn bootstrap(&self) -> String {
        self.addr.to_string()
    }

    /// Connections accepted.
    pub fn connections(&self) -> u64 {
        self.counters.connections.load(Ordering::Relaxed)
    }

    /// Requests read (every API).
    pub fn requests(&self) -> u64 {
        self.counters.requests.load(Ordering::Relaxed)
    }

    /// Bad answers sent.
    pub fn bad_answers(&self) -> u64 {
        self.counters.bad_answers.load(Ordering::Relaxed)
    }
}

impl Drop for FakeBroker {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn accept(listener: TcpListener, m: Misbehaviour, addr: SocketAddr, c: Arc<Counters>) {
    while let Ok((s, _)) = listener.accept().await {
        c.connections.fetch_add(1, Ordering::Relaxed);
        let c = Arc::clone(&c);
        tokio::spawn(async move {
            let _ = serve(s, m, addr, &c).await;
        });
    }
}

async fn serve(
    mut s: TcpStream,
    m: Misbehaviour,
    addr: SocketAddr,
    c: &Counters,
) -> io::Result<()> {
    loop {
        let mut prefix = [0u8; 4];
        s.read_exact(&mut prefix).await?;
        let size = usize::try_from(i32::from_be_bytes(prefix))
            .ok()
            .filter(|&n| (8..=1 << 20).contains(&n))
            .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidData))?;
        let mut body = vec![0u8; size];
        s.read_exact(&mut body).await?;
        c.requests.fetch_add(1, Ordering::Relaxed);
        let api = i16::from_be_bytes([body[0], body[1]]);
        let version = i16::from_be_bytes([body[2], body[3]]);
        let corr = i32::from_be_bytes([body[4], body[5], body[6], body[7]]);
        let reply = if api == ApiKey::ApiVersions as i16 {
            api_versions(m, version, corr)
        } else {
            c.bad_answers.fetch_add(1, Ordering::Relaxed);
            match bad_answer(m, api, version, corr, addr) {
                Some(r) => r,
                None => {
                    // Silent: keep the connection open, answer nothing.
                    continue;
                }
            }
        };
        s.write_all(&reply).await?;
        if matches!(m, Misbehaviour::HugeSizePrefix | Misbehaviour::NegativeSize) {
            // Hold the connection: the client must not wait for 2 GiB.
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
    }
}

fn finish(mut out: BytesMut) -> Vec<u8> {
    let len = i32::try_from(out.len() - 4).unwrap_or(i32::MAX);
    out[..4].copy_from_slice(&len.to_be_bytes());
    out.to_vec()
}

fn api_versions(m: Misbehaviour, version: i16, corr: i32) -> Vec<u8> {
    // Answer at a version we can encode; an unsupported request version gets v0 (KIP-511).
    let version = version.clamp(0, 3);
    let mut keys: Vec<ApiVersion> = ferry_protocol::api::ferry_apis()
        .map(|(k, r)| {
            ApiVersion::default()
                .with_api_key(k as i16)
                .with_min_version(r.min)
                .with_max_version(r.max)
        })
        .collect();
    let mut error_code = 0;
    match m {
        Misbehaviour::UnknownErrorCode => error_code = 31_999,
        Misbehaviour::WrongApiVersion => {
            for k in &mut keys {
                if k.api_key == ApiKey::Metadata as i16 || k.api_key == ApiKey::Fetch as i16 {
                    k.min_version = 0;
                    k.max_version = 0;
                }
            }
        }
        _ => {}
    }
    let resp = ApiVersionsResponse::default()
        .with_error_code(error_code)
        .with_api_keys(keys);
    let mut out = BytesMut::new();
    out.put_i32(0);
    out.put_i32(corr);
    if resp.encode(&mut out, version).is_err() {
        out.truncate(8);
    }
    finish(out)
}

fn put_uvarint(out: &mut BytesMut, mut v: u64) {
    while v >= 0x80 {
        out.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    out.put_u8(v as u8);
}

fn header(out: &mut BytesMut, api: i16, version: i16, corr: i32) -> bool {
    let flexible = ApiKey::try_from(api)
        .map(|k| k.response_header_version(version) >= 1)
        .unwrap_or(false);
    out.put_i32(0);
    let _ = ResponseHeader::default()
        .with_correlation_id(corr)
        .encode(out, if flexible { 1 } else { 0 });
    flexible
}

fn bad_answer(
    m: Misbehaviour,
    api: i16,
    version: i16,
    corr: i32,
    addr: SocketAddr,
) -> Option<Vec<u8>> {
    let mut out = BytesMut::new();
    match m {
        Misbehaviour::Silent => return None,
        Misbehaviour::HugeSizePrefix => {
            out.put_i32(0x7fff_ffff);
            out.put_i32(corr);
            out.put_slice(&[0; 16]);
            return Some(out.to_vec());
        }
        Misbehaviour::NegativeSize => {
            out.put_i32(-5);
            out.put_i32(corr);
            return Some(out.to_vec());
        }
        Misbehaviour::WrongCorrelationId => {
            let flexible = header(&mut out, api, version, corr.wrapping_add(1000));
            out.put_i32(0);
            if flexible {
                out.put_u8(0);
            }
        }
        Misbehaviour::TruncatedBody => {
            let flexible = header(&mut out, api, version, corr);
            let body = if api == ApiKey::Metadata as i16 {
                let mut b = BytesMut::new();
                let resp = MetadataResponse::default().with_brokers(vec![
                    kafka_protocol::messages::metadata_response::MetadataResponseBroker::default()
                        .with_host(kafka_protocol::protocol::StrBytes::from_string(
                            addr.ip().to_string(),
                        ))
                        .with_port(i32::from(addr.port())),
                ]);
                let _ = resp.encode(&mut b, version);
                b
            } else {
                let mut b = BytesMut::new();
                b.put_slice(&[0; 24]);
                b
            };
            let _ = flexible;
            let half = body.len() / 2;
            out.put_slice(&body[..half]);
        }
        Misbehaviour::BadVarint => {
            out.put_i32(0);
            out.put_i32(corr);
            // Tagged-field count (or first field) as a varint of ten continuation bytes.
            out.put_slice(&[0xff; 10]);
        }
        Misbehaviour::HugeArrayCount => {
            let flexible = header(&mut out, api, version, corr);
            out.put_i32(0); // throttle_time_ms (Metadata v3+; harmless otherwise: more garbage)
            if flexible {
                put_uvarint(&mut out, u64::from(u32::MAX));
            } else {
                out.put_i32(i32::MAX);
            }
        }
        Misbehaviour::UnknownErrorCode | Misbehaviour::WrongApiVersion => {
            // Only reached if the client goes on after ApiVersions: answer an empty frame.
            header(&mut out, api, version, corr);
        }
    }
    Some(finish(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uvarint_encoding() {
        let mut b = BytesMut::new();
        put_uvarint(&mut b, 300);
        assert_eq!(&b[..], &[0xac, 0x02]);
        let mut b = BytesMut::new();
        put_uvarint(&mut b, u64::from(u32::MAX));
        assert_eq!(&b[..], &[0xff, 0xff, 0xff, 0xff, 0x0f]);
    }

    #[test]
    fn answers_api_versions_then_misbehaves() {
        let fake = FakeBroker::start(Misbehaviour::WrongCorrelationId).unwrap();
        let mut s = std::net::TcpStream::connect(fake.bootstrap()).unwrap();
        use std::io::{Read, Write};
        // ApiVersions v0 request: api 18, version 0, corr 5, client id null.
        let mut req = BytesMut::new();
        req.put_i32(10);
        req.put_i16(18);
        req.put_i16(0);
        req.put_i32(5);
        req.put_i16(-1);
        s.write_all(&req).unwrap();
        let mut prefix = [0u8; 4];
        s.read_exact(&mut prefix).unwrap();
        let mut body = vec![0u8; i32::from_be_bytes(prefix) as usize];
        s.read_exact(&mut body).unwrap();
        assert_eq!(&body[..4], &5i32.to_be_bytes());
        assert_eq!(&body[4..6], &0i16.to_be_bytes(), "error code 0");
        // Metadata v1: the answer carries another correlation id.
        let mut req = BytesMut::new();
        req.put_i32(14);
        req.put_i16(3);
        req.put_i16(1);
        req.put_i32(6);
        req.put_i16(-1);
        req.put_i32(-1);
        s.write_all(&req).unwrap();
        s.read_exact(&mut prefix).unwrap();
        let mut body = vec![0u8; i32::from_be_bytes(prefix) as usize];
        s.read_exact(&mut body).unwrap();
        assert_eq!(&body[..4], &1006i32.to_be_bytes());
        assert_eq!(fake.requests(), 2);
        assert_eq!(fake.bad_answers(), 1);
        assert_eq!(fake.connections(), 1);
    }
}
