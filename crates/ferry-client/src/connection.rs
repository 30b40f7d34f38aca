//! One connection to one broker: TCP or TLS, ApiVersions, SASL, pipelined requests.
//!
//! [`BrokerConnection::connect`] dials the broker (TCP, then TLS for `SSL`/`SASL_SSL`), sends
//! ApiVersions v3 as the very first request (retrying at the version the broker lists if it
//! answers UNSUPPORTED_VERSION), negotiates versions, then authenticates with SaslHandshake
//! v1 + SaslAuthenticate when SASL is configured.
//!
//! Requests are pipelined: each gets a correlation id and a oneshot in a pending map; a writer
//! task writes frames in the order they were enqueued and a reader task matches response
//! frames to waiters by correlation id. Responses are decoded by the waiter from the frame's
//! [`bytes::Bytes`], so Fetch `records` stay zero-copy slices of the frame. Many requests can
//! be in flight; the broker answers a connection's requests in order
//! (`SocketServer` mutes a channel while a request is processed).
//!
//! A request timeout or any I/O failure closes the connection and fails every waiter with a
//! typed error naming the requests in flight — a broker closes the connection without an
//! answer when it gets a version it removed (KIP-896), so that list is the diagnosis.
//! The next use through [`crate::cluster::Cluster`] reconnects.
//!
//! `throttle_time_ms` from responses delays the next request on this connection (KIP-219).
//!
//! # References
//! - KIP-511 (ApiVersions v3), KIP-152 (SaslAuthenticate), KIP-368 (session lifetime),
//!   KIP-219 (throttling), KIP-896; kafka-wire.md §5.2, §5.4, §7.3

use std::collections::HashMap;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use ferry_protocol::api::{
    self, ApiKey, ApiVersionsRetry, BrokerVersions, CORE_APIS, KafkaRequest, NegotiatedVersions,
};
use ferry_protocol::error::{ErrorCode, ProtocolError};
use ferry_protocol::frame::{self, FrameDecoder};
use kafka_protocol::messages::{
    ApiVersionsRequest, ApiVersionsResponse, SaslAuthenticateRequest, SaslHandshakeRequest,
};
use kafka_protocol::protocol::{Encodable, StrBytes};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

use crate::config::{ConnectionConfig, SaslConfig, SaslMechanism};
use crate::error::{BrokerRef, ClientError, InFlight};
use crate::scram::{ScramClient, ScramHash};
use crate::task::OwnedTask;
use crate::tls::{TlsFailure, classify_handshake_error};

/// ferry's name in ApiVersions v3 (KIP-511: `[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?`).
pub const CLIENT_SOFTWARE_NAME: &str = "ferry";
/// ferry's version in ApiVersions v3.
pub const CLIENT_SOFTWARE_VERSION: &str = env!("CARGO_PKG_VERSION");

trait Stream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Stream for T {}
type BoxStream = Box<dyn Stream>;

struct PendingRequest {
    in_flight: InFlight,
    tx: oneshot::Sender<Result<Bytes, ClientError>>,
}

#[derive(Default)]
struct SharedState {
    pending: HashMap<i32, PendingRequest>,
    closed: Option<ClientError>,
}

struct Shared {
    broker: BrokerRef,
    state: Mutex<SharedState>,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, SharedState> {
        // A poisoned lock only means a waiter panicked; the map itself is still consistent.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Marks the connection closed and fails every waiter. `make` builds the error from the
    /// list of requests in flight.
    fn fail_all(&self, make: impl Fn(Vec<InFlight>) -> ClientError) {
        let pending = {
            let mut st = self.lock();
            let pending: Vec<(i32, PendingRequest)> = st.pending.drain().collect();
            let in_flight: Vec<InFlight> = pending.iter().map(|(_, p)| p.in_flight).collect();
            if st.closed.is_none() {
                st.closed = Some(make(in_flight.clone()));
            }
            (pending, in_flight)
        };
        let (pending, in_flight) = pending;
        if !in_flight.is_empty() {
            tracing::warn!(broker = %self.broker, ?in_flight, "connection failed with requests in flight");
        }
        for (_, p) in pending {
            let _ = p.tx.send(Err(make(in_flight.clone())));
        }
    }
}

/// The I/O part of a connection: pending map, writer and reader tasks.
struct Transport {
    shared: Arc<Shared>,
    write_tx: mpsc::UnboundedSender<BytesMut>,
    next_correlation: AtomicI32,
    client_id: String,
    throttle_until: Mutex<Option<Instant>>,
    expires_at: Mutex<Option<Instant>>,
    _tasks: [OwnedTask<()>; 2],
}

impl Transport {
    fn spawn(
        stream: BoxStream,
        broker: BrokerRef,
        max_frame: usize,
        client_id: String,
        tls: bool,
    ) -> Self {
        let (rd, wr) = tokio::io::split(stream);
        let shared = Arc::new(Shared {
            broker,
            state: Mutex::new(SharedState::default()),
        });
        let (write_tx, write_rx) = mpsc::unbounded_channel();
        let reader = OwnedTask::spawn(read_loop(
            rd,
            Arc::clone(&shared),
            FrameDecoder::new(max_frame),
            tls,
        ));
        let writer = OwnedTask::spawn(write_loop(wr, write_rx, Arc::clone(&shared)));
        Self {
            shared,
            write_tx,
            next_correlation: AtomicI32::new(1),
            client_id,
            throttle_until: Mutex::new(None),
            expires_at: Mutex::new(None),
            _tasks: [reader, writer],
        }
    }

    fn broker(&self) -> &BrokerRef {
        &self.shared.broker
    }

    fn is_closed(&self) -> bool {
        if self.shared.lock().closed.is_some() {
            return true;
        }
        let expires = *self
            .expires_at
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        expires.is_some_and(|t| Instant::now() >= t)
    }

    fn close(&self, reason: &str) {
        let broker = self.broker().clone();
        self.shared
            .fail_all(|in_flight| ClientError::ConnectionClosed {
                broker: broker.clone(),
                reason: reason.to_owned(),
                in_flight,
            });
    }

    async fn wait_throttle(&self) {
        let until = *self
            .throttle_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(until) = until {
            let now = Instant::now();
            if until > now {
                tokio::time::sleep(until - now).await;
            }
        }
    }

    fn note_throttle(&self, throttle_ms: Option<i32>) {
        if let Some(ms) = throttle_ms.filter(|ms| *ms > 0) {
            let until = Instant::now() + Duration::from_millis(u64::from(ms.unsigned_abs()));
            tracing::debug!(broker = %self.broker(), ms, "broker throttled us");
            *self
                .throttle_until
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(until);
        }
    }

    /// Encodes and enqueues one request; returns the correlation id and the response channel.
    fn enqueue<R: Encodable>(
        &self,
        api_key: ApiKey,
        version: i16,
        request: &R,
    ) -> Result<(i32, oneshot::Receiver<Result<Bytes, ClientError>>), ClientError> {
        let correlation_id = self
            .next_correlation
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| {
                Some(if c == i32::MAX { 1 } else { c + 1 })
            })
            .unwrap_or(1);
        let mut buf = BytesMut::new();
        frame::encode_request(
            &mut buf,
            api_key,
            version,
            correlation_id,
            Some(&self.client_id),
            request,
        )
        .map_err(|source| ClientError::Protocol {
            broker: self.broker().clone(),
            source,
        })?;
        let (tx, rx) = oneshot::channel();
        {
            let mut st = self.shared.lock();
            if let Some(closed) = &st.closed {
                return Err(closed.clone());
            }
            st.pending.insert(
                correlation_id,
                PendingRequest {
                    in_flight: InFlight { api_key, version },
                    tx,
                },
            );
        }
        if self.write_tx.send(buf).is_err() {
            self.shared.lock().pending.remove(&correlation_id);
            return Err(ClientError::ConnectionClosed {
                broker: self.broker().clone(),
                reason: "writer stopped".to_owned(),
                in_flight: vec![InFlight { api_key, version }],
            });
        }
        Ok((correlation_id, rx))
    }
}

async fn read_loop(
    mut rd: ReadHalf<BoxStream>,
    shared: Arc<Shared>,
    decoder: FrameDecoder,
    tls: bool,
) {
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let broker = shared.broker.clone();
    let error: Box<dyn Fn(Vec<InFlight>) -> ClientError + Send> = loop {
        match decoder.decode(&mut buf) {
            Ok(Some(frame)) => {
                let Ok(correlation_id) = frame::peek_correlation_id(&frame) else {
                    let broker = broker.clone();
                    break Box::new(move |_| ClientError::Protocol {
                        broker: broker.clone(),
                        source: ProtocolError::FrameTooShort { len: frame.len() },
                    });
                };
                let waiter = shared.lock().pending.remove(&correlation_id);
                match waiter {
                    Some(p) => {
                        let _ = p.tx.send(Ok(frame));
                    }
                    None => {
                        // A response nobody waits for (its waiter timed out and closed us,
                        // or the broker is confused): the stream can no longer be trusted.
                        let broker = broker.clone();
                        break Box::new(move |in_flight| ClientError::ConnectionClosed {
                            broker: broker.clone(),
                            reason: format!(
                                "response with unknown correlation id {correlation_id}"
                            ),
                            in_flight,
                        });
                    }
                }
                continue;
            }
            Ok(None) => {}
            Err(source) => {
                let broker = broker.clone();
                // A TLS record (alert 0x15, handshake 0x16) read as a frame size: the peer
                // speaks TLS and we do not.
                let tls_peer = !tls && matches!(buf.first(), Some(0x14..=0x17));
                break Box::new(move |_| {
                    if tls_peer {
                        ClientError::Tls {
                            broker: broker.clone(),
                            failure: TlsFailure::PeerExpectsTls,
                            message:
                                "the broker answered with TLS records on a plaintext connection"
                                    .to_owned(),
                        }
                    } else {
                        ClientError::Protocol {
                            broker: broker.clone(),
                            source: source.clone(),
                        }
                    }
                });
            }
        }
        match rd.read_buf(&mut buf).await {
            Ok(0) => {
                let broker = broker.clone();
                break Box::new(move |in_flight| ClientError::ConnectionClosed {
                    broker: broker.clone(),
                    reason: "closed by the broker".to_owned(),
                    in_flight,
                });
            }
            Ok(_) => {}
            Err(e) => {
                let broker = broker.clone();
                let reason = format!("read failed: {e}");
                break Box::new(move |in_flight| ClientError::ConnectionClosed {
                    broker: broker.clone(),
                    reason: reason.clone(),
                    in_flight,
                });
            }
        }
    };
    shared.fail_all(error);
}

async fn write_loop(
    mut wr: WriteHalf<BoxStream>,
    mut rx: mpsc::UnboundedReceiver<BytesMut>,
    shared: Arc<Shared>,
) {
    while let Some(frame) = rx.recv().await {
        let result = async {
            wr.write_all(&frame).await?;
            wr.flush().await
        }
        .await;
        if let Err(e) = result {
            let broker = shared.broker.clone();
            let reason = format!("write failed: {e}");
            shared.fail_all(|in_flight| ClientError::ConnectionClosed {
                broker: broker.clone(),
                reason: reason.clone(),
                in_flight,
            });
            return;
        }
    }
    let _ = wr.shutdown().await;
}

/// A request written to the broker, waiting for its response.
///
/// Obtained from [`BrokerConnection::start`]; requests started one after another on the same
/// connection are written in that order, whatever order their responses are awaited in.
#[derive(Debug)]
pub struct PendingResponse<R: KafkaRequest> {
    conn: BrokerConnection,
    correlation_id: i32,
    version: i16,
    timeout: Duration,
    rx: oneshot::Receiver<Result<Bytes, ClientError>>,
    _request: std::marker::PhantomData<fn() -> R>,
}

impl<R: KafkaRequest> PendingResponse<R> {
    /// Waits for and decodes the response.
    pub async fn response(self) -> Result<R::Response, ClientError> {
        let frame = self
            .conn
            .wait_frame(
                R::API_KEY,
                self.version,
                self.correlation_id,
                self.timeout,
                self.rx,
            )
            .await?;
        let resp: R::Response =
            frame::decode_response(frame, R::API_KEY, self.version, self.correlation_id).map_err(
                |source| ClientError::Protocol {
                    broker: self.conn.broker().clone(),
                    source,
                },
            )?;
        self.conn
            .transport
            .note_throttle(R::throttle_time_ms(&resp));
        Ok(resp)
    }
}

/// A connected, negotiated and authenticated connection to one broker. Cheap to clone; the
/// socket closes when the last clone is dropped.
#[derive(Clone)]
pub struct BrokerConnection {
    transport: Arc<Transport>,
    versions: Arc<NegotiatedVersions>,
    request_timeout: Duration,
}

impl std::fmt::Debug for BrokerConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerConnection")
            .field("broker", self.broker())
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

/// Splits `host:port`.
pub(crate) fn split_addr(addr: &str) -> Option<(&str, u16)> {
    let (host, port) = addr.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Some((host, port.parse().ok()?))
}

impl BrokerConnection {
    /// Connects to `broker.addr` and runs the ApiVersions and SASL handshakes.
    pub async fn connect(
        config: &ConnectionConfig,
        broker: BrokerRef,
    ) -> Result<Self, ClientError> {
        let (host, port) = split_addr(&broker.addr).ok_or_else(|| ClientError::Connect {
            broker: broker.clone(),
            kind: std::io::ErrorKind::InvalidInput,
            message: "address is not host:port".to_owned(),
        })?;
        let stream =
            tokio::time::timeout(config.connect_timeout, dial(config, &broker, host, port))
                .await
                .map_err(|_| ClientError::ConnectTimeout {
                    broker: broker.clone(),
                    timeout: config.connect_timeout,
                })??;
        let transport = Arc::new(Transport::spawn(
            stream,
            broker.clone(),
            config.max_frame_size,
            config.client_id.clone(),
            config.security_protocol.uses_tls(),
        ));
        let mut conn = Self {
            transport,
            versions: Arc::new(api::negotiate(&BrokerVersions::default())),
            request_timeout: config.request_timeout,
        };
        let broker_versions = conn.api_versions().await?;
        let versions = api::negotiate(&broker_versions);
        versions
            .require(CORE_APIS)
            .map_err(|source| ClientError::UnsupportedApi {
                broker: broker.clone(),
                source,
            })?;
        conn.versions = Arc::new(versions);
        if let Some(sasl) = &config.sasl {
            conn.authenticate(sasl).await?;
        }
        tracing::debug!(%broker, "connected");
        Ok(conn)
    }

    /// ApiVersions v3 first; on UNSUPPORTED_VERSION, once more at the broker's version.
    async fn api_versions(&self) -> Result<BrokerVersions, ClientError> {
        let request = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str(CLIENT_SOFTWARE_NAME))
            .with_client_software_version(StrBytes::from_static_str(CLIENT_SOFTWARE_VERSION));
        let mut version = api::ferry_range(ApiKey::ApiVersions).map_or(3, |r| r.max);
        for _ in 0..2 {
            let (corr, rx) = self
                .transport
                .enqueue(ApiKey::ApiVersions, version, &request)?;
            let frame = self
                .wait_frame(ApiKey::ApiVersions, version, corr, self.request_timeout, rx)
                .await?;
            // On UNSUPPORTED_VERSION the body is in the v0 format whatever we sent.
            let resp = frame::decode_response::<ApiVersionsResponse>(
                frame.clone(),
                ApiKey::ApiVersions,
                version,
                corr,
            )
            .ok()
            .filter(|r| ErrorCode::from_i16(r.error_code) != ErrorCode::UnsupportedVersion);
            let resp = match resp {
                Some(r) => r,
                None => frame::decode_response::<ApiVersionsResponse>(
                    frame,
                    ApiKey::ApiVersions,
                    0,
                    corr,
                )
                .map_err(|source| self.protocol_error(source))?,
            };
            match api::api_versions_retry(&resp).map_err(|source| ClientError::UnsupportedApi {
                broker: self.broker().clone(),
                source,
            })? {
                ApiVersionsRetry::Done => {
                    ErrorCode::check(resp.error_code)
                        .map_err(|code| self.broker_error(ApiKey::ApiVersions, code, None))?;
                    return Ok(BrokerVersions::from_response(&resp));
                }
                ApiVersionsRetry::RetryAt(v) if v != version => {
                    tracing::debug!(broker = %self.broker(), from = version, to = v, "retrying ApiVersions");
                    version = v;
                }
                ApiVersionsRetry::RetryAt(_) => break,
            }
        }
        Err(self.broker_error(ApiKey::ApiVersions, ErrorCode::UnsupportedVersion, None))
    }

    async fn authenticate(&self, sasl: &SaslConfig) -> Result<(), ClientError> {
        let handshake = SaslHandshakeRequest::default()
            .with_mechanism(StrBytes::from_static_str(sasl.mechanism.as_str()));
        let resp = self.send(&handshake).await?;
        match ErrorCode::from_i16(resp.error_code) {
            ErrorCode::NoError => {}
            ErrorCode::UnsupportedSaslMechanism => {
                return Err(ClientError::UnsupportedMechanism {
                    broker: self.broker().clone(),
                    mechanism: sasl.mechanism,
                    enabled: resp.mechanisms.iter().map(ToString::to_string).collect(),
                });
            }
            code => return Err(self.broker_error(ApiKey::SaslHandshake, code, None)),
        }
        let lifetime_ms = match sasl.mechanism {
            SaslMechanism::Plain => {
                let mut token =
                    Vec::with_capacity(sasl.username.len() + sasl.password.expose().len() + 2);
                token.push(0);
                token.extend_from_slice(sasl.username.as_bytes());
                token.push(0);
                token.extend_from_slice(sasl.password.expose().as_bytes());
                self.sasl_round(sasl.mechanism, token).await?.1
            }
            SaslMechanism::ScramSha256 | SaslMechanism::ScramSha512 => {
                let hash = if sasl.mechanism == SaslMechanism::ScramSha256 {
                    ScramHash::Sha256
                } else {
                    ScramHash::Sha512
                };
                let mut scram = ScramClient::new(hash, &sasl.username, sasl.password.expose());
                let (server_first, _) = self
                    .sasl_round(sasl.mechanism, scram.client_first())
                    .await?;
                let client_final = scram
                    .handle_server_first(&server_first)
                    .map_err(|e| self.auth_failed(sasl.mechanism, Some(e.to_string())))?;
                let (server_final, lifetime) =
                    self.sasl_round(sasl.mechanism, client_final).await?;
                scram
                    .handle_server_final(&server_final)
                    .map_err(|e| self.auth_failed(sasl.mechanism, Some(e.to_string())))?;
                lifetime
            }
        };
        if lifetime_ms > 0 {
            // KIP-368: reconnect (re-authenticate) before the broker's session expires.
            let margin =
                Duration::from_millis(u64::try_from(lifetime_ms).unwrap_or(0)).mul_f64(0.85);
            *self
                .transport
                .expires_at
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Instant::now() + margin);
        }
        Ok(())
    }

    async fn sasl_round(
        &self,
        mechanism: SaslMechanism,
        token: Vec<u8>,
    ) -> Result<(Bytes, i64), ClientError> {
        let req = SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(token));
        let resp = self.send(&req).await?;
        match ErrorCode::from_i16(resp.error_code) {
            ErrorCode::NoError => Ok((resp.auth_bytes, resp.session_lifetime_ms)),
            ErrorCode::SaslAuthenticationFailed => {
                Err(self.auth_failed(mechanism, resp.error_message.map(|m| m.to_string())))
            }
            code => Err(self.broker_error(
                ApiKey::SaslAuthenticate,
                code,
                resp.error_message.map(|m| m.to_string()),
            )),
        }
    }

    fn auth_failed(&self, mechanism: SaslMechanism, message: Option<String>) -> ClientError {
        ClientError::AuthenticationFailed {
            broker: self.broker().clone(),
            mechanism,
            message,
        }
    }

    fn protocol_error(&self, source: ProtocolError) -> ClientError {
        ClientError::Protocol {
            broker: self.broker().clone(),
            source,
        }
    }

    /// A [`ClientError::Broker`] for this connection.
    pub fn broker_error(
        &self,
        api_key: ApiKey,
        code: ErrorCode,
        message: Option<String>,
    ) -> ClientError {
        ClientError::Broker {
            broker: self.broker().clone(),
            api_key,
            code,
            message,
        }
    }

    async fn wait_frame(
        &self,
        api_key: ApiKey,
        version: i16,
        correlation_id: i32,
        timeout: Duration,
        rx: oneshot::Receiver<Result<Bytes, ClientError>>,
    ) -> Result<Bytes, ClientError> {
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(ClientError::ConnectionClosed {
                broker: self.broker().clone(),
                reason: "connection dropped".to_owned(),
                in_flight: vec![InFlight { api_key, version }],
            }),
            Err(_) => {
                self.transport.shared.lock().pending.remove(&correlation_id);
                // The response may still come; the stream is closed so it cannot be mistaken
                // for another one and the next user reconnects.
                self.transport.close("request timed out");
                Err(ClientError::Timeout {
                    broker: self.broker().clone(),
                    api_key,
                    version,
                    timeout,
                })
            }
        }
    }

    /// The broker this connection talks to.
    #[must_use]
    pub fn broker(&self) -> &BrokerRef {
        self.transport.broker()
    }

    /// The versions negotiated with this broker.
    #[must_use]
    pub fn versions(&self) -> &NegotiatedVersions {
        &self.versions
    }

    /// The negotiated version of `api`, or [`ClientError::UnsupportedApi`].
    pub fn version(&self, api: ApiKey) -> Result<i16, ClientError> {
        self.versions
            .version(api)
            .map_err(|source| ClientError::UnsupportedApi {
                broker: self.broker().clone(),
                source,
            })
    }

    /// Whether the connection failed, was closed, or its SASL session is about to expire.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.transport.is_closed()
    }

    /// Closes the connection, failing requests in flight.
    pub fn close(&self) {
        self.transport.close("closed locally");
    }

    /// Sends `request` at the negotiated version and waits for the response.
    pub async fn send<R: KafkaRequest>(&self, request: &R) -> Result<R::Response, ClientError> {
        let version = self.version(R::API_KEY)?;
        self.send_at(request, version).await
    }

    /// Sends `request` at `version` and waits for the response.
    pub async fn send_at<R: KafkaRequest>(
        &self,
        request: &R,
        version: i16,
    ) -> Result<R::Response, ClientError> {
        self.start(request, version, self.request_timeout)
            .await?
            .response()
            .await
    }

    /// Writes `request` at `version` (after any throttle delay) and returns a handle to await
    /// its response within `timeout`. Requests started in sequence are written in sequence.
    pub async fn start<R: KafkaRequest>(
        &self,
        request: &R,
        version: i16,
        timeout: Duration,
    ) -> Result<PendingResponse<R>, ClientError> {
        self.transport.wait_throttle().await;
        let (correlation_id, rx) = self.transport.enqueue(R::API_KEY, version, request)?;
        Ok(PendingResponse {
            conn: self.clone(),
            correlation_id,
            version,
            timeout,
            rx,
            _request: std::marker::PhantomData,
        })
    }

    /// The configured request timeout.
    #[must_use]
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }
}

async fn dial(
    config: &ConnectionConfig,
    broker: &BrokerRef,
    host: &str,
    port: u16,
) -> Result<BoxStream, ClientError> {
    let tcp = TcpStream::connect((host, port))
        .await
        .map_err(|e| ClientError::Connect {
            broker: broker.clone(),
            kind: e.kind(),
            message: e.to_string(),
        })?;
    let _ = tcp.set_nodelay(true);
    let Some(tls) = &config.tls else {
        return Ok(Box::new(tcp));
    };
    let name = config.tls_server_name.as_deref().unwrap_or(host);
    let server_name =
        rustls_pki_types::ServerName::try_from(name.to_owned()).map_err(|e| ClientError::Tls {
            broker: broker.clone(),
            failure: TlsFailure::Other,
            message: format!("invalid server name {name:?}: {e}"),
        })?;
    let connector = tokio_rustls::TlsConnector::from(Arc::clone(tls));
    let stream = connector
        .connect(server_name, tcp)
        .await
        .map_err(|e| ClientError::Tls {
            broker: broker.clone(),
            failure: classify_handshake_error(&e),
            message: e.to_string(),
        })?;
    Ok(Box::new(stream))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_protocol::frame::FrameDecoder;
    use kafka_protocol::messages::api_versions_response::ApiVersion;
    use kafka_protocol::messages::{
        MetadataRequest, MetadataResponse, RequestHeader, ResponseHeader,
    };
    use kafka_protocol::protocol::{Decodable, Encodable};
    use tokio::net::TcpListener;

    async fn read_request(
        sock: &mut TcpStream,
        buf: &mut BytesMut,
    ) -> Option<(RequestHeader, Bytes)> {
        loop {
            if let Some(mut frame) = FrameDecoder::default().decode(buf).unwrap() {
                let key = ApiKey::try_from(i16::from_be_bytes([frame[0], frame[1]])).unwrap();
                let version = i16::from_be_bytes([frame[2], frame[3]]);
                let header =
                    RequestHeader::decode(&mut frame, key.request_header_version(version)).unwrap();
                return Some((header, frame));
            }
            if sock.read_buf(buf).await.unwrap() == 0 {
                return None;
            }
        }
    }

    async fn respond<R: Encodable + Sync>(sock: &mut TcpStream, header: &RequestHeader, body: &R) {
        let key = ApiKey::try_from(header.request_api_key).unwrap();
        let mut out = BytesMut::new();
        ResponseHeader::default()
            .with_correlation_id(header.correlation_id)
            .encode(
                &mut out,
                key.response_header_version(header.request_api_version),
            )
            .unwrap();
        body.encode(&mut out, header.request_api_version).unwrap();
        let mut framed = (out.len() as i32).to_be_bytes().to_vec();
        framed.extend_from_slice(&out);
        sock.write_all(&framed).await.unwrap();
    }

    /// A scripted broker: answers ApiVersions, then the two Metadata requests in reverse order
    /// (the first with a throttle), then closes the connection on the third request.
    async fn mock_broker(listener: TcpListener) {
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut buf = BytesMut::new();
        let (h, _) = read_request(&mut sock, &mut buf).await.unwrap();
        assert_eq!(h.request_api_key, ApiKey::ApiVersions as i16);
        assert_eq!(h.request_api_version, 3);
        let mut resp = ApiVersionsResponse::default();
        for (key, min, max) in [(ApiKey::ApiVersions, 0, 3), (ApiKey::Metadata, 0, 12)] {
            resp.api_keys.push(
                ApiVersion::default()
                    .with_api_key(key as i16)
                    .with_min_version(min)
                    .with_max_version(max),
            );
        }
        respond(&mut sock, &h, &resp).await;
        let (first, _) = read_request(&mut sock, &mut buf).await.unwrap();
        let (second, _) = read_request(&mut sock, &mut buf).await.unwrap();
        assert_eq!(first.request_api_version, 12);
        respond(
            &mut sock,
            &second,
            &MetadataResponse::default().with_cluster_id(Some(StrBytes::from_static_str("second"))),
        )
        .await;
        respond(
            &mut sock,
            &first,
            &MetadataResponse::default()
                .with_cluster_id(Some(StrBytes::from_static_str("first")))
                .with_throttle_time_ms(300),
        )
        .await;
        let _third = read_request(&mut sock, &mut buf).await.unwrap();
        drop(sock); // closes without answering, like a broker facing a removed version
    }

    #[tokio::test]
    async fn pipelining_throttle_and_close_with_requests_in_flight() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let broker = tokio::spawn(mock_broker(listener));
        let config = ConnectionConfig::builder()
            .with_bootstrap([addr.as_str()])
            .build()
            .unwrap();
        let conn = BrokerConnection::connect(&config, BrokerRef { id: Some(7), addr })
            .await
            .unwrap();
        assert_eq!(conn.version(ApiKey::Metadata).unwrap(), 12);
        assert!(matches!(
            conn.version(ApiKey::Produce),
            Err(ClientError::UnsupportedApi { .. })
        ));
        let req = MetadataRequest::default();
        let a = conn.start(&req, 12, Duration::from_secs(5)).await.unwrap();
        let b = conn.start(&req, 12, Duration::from_secs(5)).await.unwrap();
        // Answered out of order, matched by correlation id.
        let rb = b.response().await.unwrap();
        let ra = a.response().await.unwrap();
        assert_eq!(ra.cluster_id.as_deref(), Some("first"));
        assert_eq!(rb.cluster_id.as_deref(), Some("second"));
        // throttle_time_ms = 300 delays the next request.
        let t = Instant::now();
        let err = conn.send_at(&req, 12).await.unwrap_err();
        assert!(
            t.elapsed() >= Duration::from_millis(250),
            "{:?}",
            t.elapsed()
        );
        match err {
            ClientError::ConnectionClosed {
                broker, in_flight, ..
            } => {
                assert_eq!(broker.id, Some(7));
                assert_eq!(
                    in_flight,
                    vec![InFlight {
                        api_key: ApiKey::Metadata,
                        version: 12
                    }]
                );
            }
            other => panic!("expected ConnectionClosed, got {other:?}"),
        }
        assert!(conn.is_closed());
        assert!(conn.send_at(&req, 12).await.is_err());
        broker.await.unwrap();
    }

    #[tokio::test]
    async fn request_timeout_closes_the_connection() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let silent = tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut buf = BytesMut::new();
            let (h, _) = read_request(&mut sock, &mut buf).await.unwrap();
            let mut resp = ApiVersionsResponse::default();
            resp.api_keys = vec![
                ApiVersion::default()
                    .with_api_key(ApiKey::ApiVersions as i16)
                    .with_max_version(3),
                ApiVersion::default()
                    .with_api_key(ApiKey::Metadata as i16)
                    .with_max_version(12),
            ];
            respond(&mut sock, &h, &resp).await;
            // Read requests, never answer.
            while read_request(&mut sock, &mut buf).await.is_some() {}
        });
        let config = ConnectionConfig::builder()
            .with_bootstrap([addr.as_str()])
            .with_request_timeout(Duration::from_millis(200))
            .build()
            .unwrap();
        let conn = BrokerConnection::connect(&config, BrokerRef { id: None, addr })
            .await
            .unwrap();
        let err = conn.send(&MetadataRequest::default()).await.unwrap_err();
        assert!(
            matches!(
                err,
                ClientError::Timeout {
                    api_key: ApiKey::Metadata,
                    version: 12,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.is_retriable());
        assert!(conn.is_closed());
        drop(conn);
        silent.await.unwrap();
    }
}
