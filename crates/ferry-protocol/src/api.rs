//! API keys, ferry's supported version ranges and version negotiation.
//!
//! ferry speaks each API in a range `[floor, max]`: the floor is the oldest version whose
//! semantics ferry relies on and that every broker from 2.1 to 4.x accepts; the max is the
//! newest version `kafka-protocol` 0.18 can encode (sometimes capped lower, see
//! [`ferry_range`]). [`negotiate`] intersects that with a broker's ApiVersions reply.
//!
//! The broker's advertised *minimum* for Produce is not trusted: 4.x advertises 0 but
//! closes the connection on Produce v0-2 (KAFKA-18659). Because ferry's floor is above
//! every removed version, the chosen version is always `min(broker max, ferry max)` and
//! it is rejected when that falls below ferry's floor.
//!
//! [`KafkaRequest`] ties a kafka-protocol request struct to its [`ApiKey`] and response type,
//! so the client can offer one generic `send` for every API (kafka-protocol only provides
//! that mapping with its `broker` feature, which ferry does not enable).
//!
//! # References
//! - <https://kafka.apache.org/protocol#api_versions>
//! - KIP-511 (ApiVersions v3 client software name), KIP-896 (removed versions in 4.0),
//!   KIP-584 (finalized features), kafka-wire.md §5.4

use std::collections::BTreeMap;
use std::fmt;

pub use kafka_protocol::messages::ApiKey;
use kafka_protocol::messages::ApiVersionsResponse;
use kafka_protocol::protocol::{Decodable, Encodable};

use crate::error::{BrokerRange, ErrorCode, ProtocolError};

/// An inclusive range of API versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VersionRange {
    /// Lowest version, inclusive.
    pub min: i16,
    /// Highest version, inclusive.
    pub max: i16,
}

impl VersionRange {
    /// Builds `[min, max]`.
    #[must_use]
    pub const fn new(min: i16, max: i16) -> Self {
        Self { min, max }
    }

    /// Whether `version` is inside the range.
    #[must_use]
    pub const fn contains(self, version: i16) -> bool {
        version >= self.min && version <= self.max
    }
}

impl fmt::Display for VersionRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..={}", self.min, self.max)
    }
}

/// ferry's own floor and cap per API: `(api, floor, cap)`. The effective maximum is
/// `min(cap, kafka-protocol's max)`.
///
/// Floors follow kafka-wire.md §5.4: Produce ≥ 3 (≥ 7 for zstd; the producer checks that
/// separately), Fetch ≥ 4, ListOffsets ≥ 1, OffsetCommit ≥ 2, OffsetFetch ≥ 1,
/// CreateTopics ≥ 2, DescribeConfigs ≥ 1, the ACL APIs ≥ 1. SaslHandshake starts at 1 because
/// v0 sends raw tokens outside Kafka framing (KIP-152). AddPartitionsToTxn is capped at 3
/// (v4+ are broker-only, KIP-890); ApiVersions at 3 (what kafka-wire.md §5.4 prescribes).
const FERRY_TABLE: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, i16::MAX),
    (ApiKey::Fetch, 4, i16::MAX),
    (ApiKey::ListOffsets, 1, i16::MAX),
    (ApiKey::Metadata, 1, i16::MAX),
    (ApiKey::OffsetCommit, 2, i16::MAX),
    (ApiKey::OffsetFetch, 1, i16::MAX),
    (ApiKey::FindCoordinator, 0, i16::MAX),
    (ApiKey::JoinGroup, 0, i16::MAX),
    (ApiKey::Heartbeat, 0, i16::MAX),
    (ApiKey::LeaveGroup, 0, i16::MAX),
    (ApiKey::SyncGroup, 0, i16::MAX),
    (ApiKey::DescribeGroups, 0, i16::MAX),
    (ApiKey::ListGroups, 0, i16::MAX),
    (ApiKey::SaslHandshake, 1, i16::MAX),
    (ApiKey::ApiVersions, 0, 3),
    (ApiKey::CreateTopics, 2, i16::MAX),
    (ApiKey::DeleteTopics, 1, i16::MAX),
    (ApiKey::DeleteRecords, 0, i16::MAX),
    (ApiKey::InitProducerId, 0, i16::MAX),
    (ApiKey::OffsetForLeaderEpoch, 2, i16::MAX),
    (ApiKey::AddPartitionsToTxn, 0, 3),
    (ApiKey::AddOffsetsToTxn, 0, i16::MAX),
    (ApiKey::EndTxn, 0, i16::MAX),
    (ApiKey::TxnOffsetCommit, 0, i16::MAX),
    (ApiKey::DescribeAcls, 1, i16::MAX),
    (ApiKey::CreateAcls, 1, i16::MAX),
    (ApiKey::DeleteAcls, 1, i16::MAX),
    (ApiKey::DescribeConfigs, 1, i16::MAX),
    (ApiKey::AlterConfigs, 0, i16::MAX),
    (ApiKey::SaslAuthenticate, 0, i16::MAX),
    (ApiKey::CreatePartitions, 0, i16::MAX),
    (ApiKey::DeleteGroups, 0, i16::MAX),
    (ApiKey::IncrementalAlterConfigs, 0, i16::MAX),
    (ApiKey::OffsetDelete, 0, i16::MAX),
    (ApiKey::DescribeCluster, 0, i16::MAX),
    (ApiKey::DescribeProducers, 0, i16::MAX),
    (ApiKey::DescribeTransactions, 0, i16::MAX),
    (ApiKey::ListTransactions, 0, i16::MAX),
];

/// The version range ferry speaks for `api`, or `None` if ferry does not use the API.
#[must_use]
pub fn ferry_range(api: ApiKey) -> Option<VersionRange> {
    let (_, floor, cap) = FERRY_TABLE.iter().find(|(k, _, _)| *k == api)?;
    let lib = api.valid_versions();
    // `ApiKey::valid_versions` can run ahead of what the generated message structs encode
    // (kafka-protocol 0.18 lists OffsetFetch/OffsetCommit v10 and InitProducerId v6 but encodes
    // only up to v9/v9/v5), so the request and response structs' own ranges cap it too.
    let encodable = message_max(api).unwrap_or(lib.max);
    let max = (*cap).min(lib.max).min(encodable);
    let min = (*floor).max(lib.min);
    (min <= max).then_some(VersionRange::new(min, max))
}

/// Every API ferry uses, with its range.
pub fn ferry_apis() -> impl Iterator<Item = (ApiKey, VersionRange)> {
    FERRY_TABLE
        .iter()
        .filter_map(|(k, _, _)| ferry_range(*k).map(|r| (*k, r)))
}

/// The APIs every ferry connection needs, whatever it is used for.
pub const CORE_APIS: &[ApiKey] = &[ApiKey::ApiVersions, ApiKey::Metadata];

/// A broker's ApiVersions reply, reduced to what negotiation needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BrokerVersions {
    ranges: BTreeMap<i16, VersionRange>,
    finalized_features: BTreeMap<String, i16>,
}

impl BrokerVersions {
    /// Builds from `(api_key, min, max)` triples (tests, tools).
    #[must_use]
    pub fn from_ranges(ranges: &[(i16, i16, i16)]) -> Self {
        Self {
            ranges: ranges
                .iter()
                .map(|&(k, min, max)| (k, VersionRange::new(min, max)))
                .collect(),
            finalized_features: BTreeMap::new(),
        }
    }

    /// Reads an ApiVersions response. Its `error_code` is not checked here.
    #[must_use]
    pub fn from_response(resp: &ApiVersionsResponse) -> Self {
        Self {
            ranges: resp
                .api_keys
                .iter()
                .map(|a| (a.api_key, VersionRange::new(a.min_version, a.max_version)))
                .collect(),
            finalized_features: resp
                .finalized_features
                .iter()
                .map(|f| (f.name.to_string(), f.max_version_level))
                .collect(),
        }
    }

    /// The broker's advertised range for a raw API key.
    #[must_use]
    pub fn range(&self, api_key: i16) -> Option<VersionRange> {
        self.ranges.get(&api_key).copied()
    }

    /// The finalized level of a cluster feature (KIP-584), e.g. `transaction.version`.
    #[must_use]
    pub fn finalized_feature(&self, name: &str) -> Option<i16> {
        self.finalized_features.get(name).copied()
    }
}

/// The version chosen per API for one broker connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiatedVersions {
    chosen: BTreeMap<i16, i16>,
    broker: BrokerVersions,
}

/// Picks a version per API ferry uses; see the module docs for the rule.
///
/// Never fails: APIs the broker lacks (or offers only outside ferry's range) are simply
/// absent, and [`NegotiatedVersions::version`] reports them as a typed error naming the API.
/// Use [`NegotiatedVersions::require`] to fail early on a set of needed APIs.
#[must_use]
pub fn negotiate(broker: &BrokerVersions) -> NegotiatedVersions {
    let mut chosen = BTreeMap::new();
    for (api, ferry) in ferry_apis() {
        let Some(b) = broker.range(api as i16) else {
            continue;
        };
        let version = b.max.min(ferry.max);
        // Produce: the broker's min is not trusted (KAFKA-18659), ferry's floor decides.
        let broker_min = if api == ApiKey::Produce { 0 } else { b.min };
        if version >= ferry.min && version >= broker_min {
            chosen.insert(api as i16, version);
        }
    }
    NegotiatedVersions {
        chosen,
        broker: broker.clone(),
    }
}

impl NegotiatedVersions {
    /// The version to use for `api`, or [`ProtocolError::UnsupportedApi`] naming the API, the
    /// broker's range and ferry's range.
    pub fn version(&self, api: ApiKey) -> Result<i16, ProtocolError> {
        self.chosen
            .get(&(api as i16))
            .copied()
            .ok_or_else(|| self.unsupported(api))
    }

    /// Fails with the first API of `apis` that cannot be used.
    pub fn require(&self, apis: &[ApiKey]) -> Result<(), ProtocolError> {
        apis.iter().try_for_each(|api| self.version(*api).map(drop))
    }

    /// The broker's reply the versions were chosen from.
    #[must_use]
    pub fn broker(&self) -> &BrokerVersions {
        &self.broker
    }

    fn unsupported(&self, api: ApiKey) -> ProtocolError {
        ProtocolError::UnsupportedApi {
            api_key: api,
            broker: self
                .broker
                .range(api as i16)
                .map_or(BrokerRange::Missing, BrokerRange::Range),
            ferry: ferry_range(api).unwrap_or(VersionRange::new(0, -1)),
        }
    }
}

/// Outcome of a first ApiVersions exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiVersionsRetry {
    /// The reply is usable.
    Done,
    /// The broker answered UNSUPPORTED_VERSION; retry ApiVersions at this version (the
    /// highest it listed, capped to ferry's range).
    RetryAt(i16),
}

/// Decides what to do after an ApiVersions reply (KIP-511: on UNSUPPORTED_VERSION the broker
/// answers in the v0 format and lists its own ApiVersions range).
pub fn api_versions_retry(resp: &ApiVersionsResponse) -> Result<ApiVersionsRetry, ProtocolError> {
    match ErrorCode::from_i16(resp.error_code) {
        ErrorCode::NoError => Ok(ApiVersionsRetry::Done),
        ErrorCode::UnsupportedVersion => {
            let ferry = ferry_range(ApiKey::ApiVersions).unwrap_or(VersionRange::new(0, 0));
            let broker = resp
                .api_keys
                .iter()
                .find(|a| a.api_key == ApiKey::ApiVersions as i16)
                .map(|a| VersionRange::new(a.min_version, a.max_version));
            match broker {
                Some(b) if b.max.min(ferry.max) >= b.min.max(ferry.min) => {
                    Ok(ApiVersionsRetry::RetryAt(b.max.min(ferry.max)))
                }
                other => Err(ProtocolError::UnsupportedApi {
                    api_key: ApiKey::ApiVersions,
                    broker: other.map_or(BrokerRange::Missing, BrokerRange::Range),
                    ferry,
                }),
            }
        }
        _ => Ok(ApiVersionsRetry::Done),
    }
}

/// A kafka-protocol request struct with its API key and response type.
///
/// Implemented for every request ferry sends; the client's generic `send` is written against
/// this trait.
pub trait KafkaRequest: Encodable + fmt::Debug + Send + Sync {
    /// The API key.
    const API_KEY: ApiKey;
    /// The response struct.
    type Response: Decodable + fmt::Debug + Send + 'static;
    /// The response's `throttle_time_ms`, if this response type has one (KIP-219).
    fn throttle_time_ms(response: &Self::Response) -> Option<i32>;
}

macro_rules! kafka_requests {
    ( $( $req:ident => $resp:ident, $key:ident, $throttle:tt; )* ) => {
        /// The highest version both the request and the response struct of `api` can encode
        /// and decode, for the APIs ferry sends.
        fn message_max(api: ApiKey) -> Option<i16> {
            use kafka_protocol::protocol::Message;
            match api {
                $(
                    ApiKey::$key => Some(
                        <kafka_protocol::messages::$req as Message>::VERSIONS
                            .max
                            .min(<kafka_protocol::messages::$resp as Message>::VERSIONS.max),
                    ),
                )*
                _ => None,
            }
        }
        $(
            impl KafkaRequest for kafka_protocol::messages::$req {
                const API_KEY: ApiKey = ApiKey::$key;
                type Response = kafka_protocol::messages::$resp;
                kafka_requests!(@throttle $resp, $throttle);
            }
        )*
    };
    (@throttle $resp:ident, yes) => {
        fn throttle_time_ms(response: &Self::Response) -> Option<i32> {
            Some(response.throttle_time_ms)
        }
    };
    (@throttle $resp:ident, no) => {
        fn throttle_time_ms(_response: &Self::Response) -> Option<i32> {
            None
        }
    };
}

kafka_requests! {
    ProduceRequest => ProduceResponse, Produce, yes;
    FetchRequest => FetchResponse, Fetch, yes;
    ListOffsetsRequest => ListOffsetsResponse, ListOffsets, yes;
    MetadataRequest => MetadataResponse, Metadata, yes;
    OffsetCommitRequest => OffsetCommitResponse, OffsetCommit, yes;
    OffsetFetchRequest => OffsetFetchResponse, OffsetFetch, yes;
    FindCoordinatorRequest => FindCoordinatorResponse, FindCoordinator, yes;
    JoinGroupRequest => JoinGroupResponse, JoinGroup, yes;
    HeartbeatRequest => HeartbeatResponse, Heartbeat, yes;
    LeaveGroupRequest => LeaveGroupResponse, LeaveGroup, yes;
    SyncGroupRequest => SyncGroupResponse, SyncGroup, yes;
    DescribeGroupsRequest => DescribeGroupsResponse, DescribeGroups, yes;
    ListGroupsRequest => ListGroupsResponse, ListGroups, yes;
    SaslHandshakeRequest => SaslHandshakeResponse, SaslHandshake, no;
    ApiVersionsRequest => ApiVersionsResponse, ApiVersions, yes;
    CreateTopicsRequest => CreateTopicsResponse, CreateTopics, yes;
    DeleteTopicsRequest => DeleteTopicsResponse, DeleteTopics, yes;
    DeleteRecordsRequest => DeleteRecordsResponse, DeleteRecords, yes;
    InitProducerIdRequest => InitProducerIdResponse, InitProducerId, yes;
    OffsetForLeaderEpochRequest => OffsetForLeaderEpochResponse, OffsetForLeaderEpoch, yes;
    AddPartitionsToTxnRequest => AddPartitionsToTxnResponse, AddPartitionsToTxn, yes;
    AddOffsetsToTxnRequest => AddOffsetsToTxnResponse, AddOffsetsToTxn, yes;
    EndTxnRequest => EndTxnResponse, EndTxn, yes;
    TxnOffsetCommitRequest => TxnOffsetCommitResponse, TxnOffsetCommit, yes;
    DescribeAclsRequest => DescribeAclsResponse, DescribeAcls, yes;
    CreateAclsRequest => CreateAclsResponse, CreateAcls, yes;
    DeleteAclsRequest => DeleteAclsResponse, DeleteAcls, yes;
    DescribeConfigsRequest => DescribeConfigsResponse, DescribeConfigs, yes;
    AlterConfigsRequest => AlterConfigsResponse, AlterConfigs, yes;
    SaslAuthenticateRequest => SaslAuthenticateResponse, SaslAuthenticate, no;
    CreatePartitionsRequest => CreatePartitionsResponse, CreatePartitions, yes;
    DeleteGroupsRequest => DeleteGroupsResponse, DeleteGroups, yes;
    IncrementalAlterConfigsRequest => IncrementalAlterConfigsResponse, IncrementalAlterConfigs, yes;
    OffsetDeleteRequest => OffsetDeleteResponse, OffsetDelete, yes;
    DescribeClusterRequest => DescribeClusterResponse, DescribeCluster, yes;
    DescribeProducersRequest => DescribeProducersResponse, DescribeProducers, yes;
    DescribeTransactionsRequest => DescribeTransactionsResponse, DescribeTransactions, yes;
    ListTransactionsRequest => ListTransactionsResponse, ListTransactions, yes;
}

#[cfg(test)]
mod tests {

    /// kafka-protocol 0.18 advertises versions its structs cannot encode; ferry must not pick
    /// them (found against 4.3.1: "specified version not supported by this message type").
    #[test]
    fn ranges_never_exceed_what_the_message_structs_encode() {
        for (api, range) in ferry_apis() {
            if let Some(max) = message_max(api) {
                assert!(
                    range.max <= max,
                    "{api:?}: {range} exceeds encodable v{max}"
                );
            }
        }
        assert!(ferry_range(ApiKey::OffsetFetch).unwrap().max <= 9);
        assert!(ferry_range(ApiKey::OffsetCommit).unwrap().max <= 9);
        assert!(ferry_range(ApiKey::InitProducerId).unwrap().max <= 5);
    }
    use super::*;

    const P: i16 = ApiKey::Produce as i16;
    const F: i16 = ApiKey::Fetch as i16;
    const LO: i16 = ApiKey::ListOffsets as i16;
    const MD: i16 = ApiKey::Metadata as i16;
    const AV: i16 = ApiKey::ApiVersions as i16;
    const IPI: i16 = ApiKey::InitProducerId as i16;
    const SH: i16 = ApiKey::SaslHandshake as i16;
    const SA: i16 = ApiKey::SaslAuthenticate as i16;
    const CT: i16 = ApiKey::CreateTopics as i16;

    /// Shaped after a 2.1 broker's ApiVersions reply (kafka-wire.md §5.3).
    fn kafka_2_1() -> BrokerVersions {
        BrokerVersions::from_ranges(&[
            (P, 0, 7),
            (F, 0, 10),
            (LO, 0, 4),
            (MD, 0, 7),
            (AV, 0, 2),
            (IPI, 0, 1),
            (SH, 0, 1),
            (SA, 0, 0),
            (CT, 0, 3),
        ])
    }

    fn kafka_3_9() -> BrokerVersions {
        BrokerVersions::from_ranges(&[
            (P, 0, 11),
            (F, 0, 17),
            (LO, 0, 9),
            (MD, 0, 12),
            (AV, 0, 4),
            (IPI, 0, 5),
            (SH, 0, 1),
            (SA, 0, 2),
            (CT, 0, 7),
        ])
    }

    /// 4.0 advertises Produce min 0 although it rejects v0-2 (KAFKA-18659).
    fn kafka_4_0() -> BrokerVersions {
        BrokerVersions::from_ranges(&[
            (P, 0, 12),
            (F, 4, 17),
            (LO, 1, 10),
            (MD, 0, 13),
            (AV, 0, 4),
            (IPI, 0, 5),
            (SH, 0, 1),
            (SA, 0, 2),
            (CT, 2, 7),
        ])
    }

    fn kafka_4_4() -> BrokerVersions {
        BrokerVersions::from_ranges(&[
            (P, 0, 13),
            (F, 4, 18),
            (LO, 1, 11),
            (MD, 0, 13),
            (AV, 0, 4),
            (IPI, 0, 6),
            (SH, 0, 1),
            (SA, 0, 2),
            (CT, 2, 7),
        ])
    }

    #[test]
    fn kafka_2_1_shape() {
        let v = negotiate(&kafka_2_1());
        assert_eq!(v.version(ApiKey::Produce), Ok(7));
        assert_eq!(v.version(ApiKey::Fetch), Ok(10));
        assert_eq!(v.version(ApiKey::ListOffsets), Ok(4));
        assert_eq!(v.version(ApiKey::Metadata), Ok(7));
        assert_eq!(v.version(ApiKey::ApiVersions), Ok(2));
        assert_eq!(v.version(ApiKey::InitProducerId), Ok(1));
        assert_eq!(v.version(ApiKey::CreateTopics), Ok(3));
        v.require(CORE_APIS).unwrap();
        // Not offered at all by this shape: a typed error naming the API.
        let err = v.version(ApiKey::DescribeCluster).unwrap_err();
        assert!(matches!(
            err,
            ProtocolError::UnsupportedApi {
                api_key: ApiKey::DescribeCluster,
                broker: BrokerRange::Missing,
                ..
            }
        ));
    }

    #[test]
    fn kafka_3_9_shape() {
        let v = negotiate(&kafka_3_9());
        assert_eq!(v.version(ApiKey::Produce), Ok(11));
        assert_eq!(v.version(ApiKey::Fetch), Ok(17));
        assert_eq!(v.version(ApiKey::ApiVersions), Ok(3));
        assert_eq!(v.version(ApiKey::InitProducerId), Ok(5));
    }

    #[test]
    fn kafka_4_0_shape_ignores_produce_min() {
        let v = negotiate(&kafka_4_0());
        assert_eq!(v.version(ApiKey::Produce), Ok(12));
        assert_eq!(v.version(ApiKey::Fetch), Ok(17));
        assert_eq!(v.version(ApiKey::ListOffsets), Ok(10));
        assert_eq!(v.version(ApiKey::CreateTopics), Ok(7));
    }

    #[test]
    fn kafka_4_4_shape_capped_at_library_max() {
        let v = negotiate(&kafka_4_4());
        let lib = ApiKey::Produce.valid_versions().max;
        assert_eq!(v.version(ApiKey::Produce), Ok(13.min(lib)));
        assert_eq!(
            v.version(ApiKey::Fetch),
            Ok(18.min(ApiKey::Fetch.valid_versions().max))
        );
        // Broker offers ListOffsets 11, kafka-protocol 0.18 only 10.
        assert_eq!(v.version(ApiKey::ListOffsets), Ok(10));
        assert_eq!(v.version(ApiKey::ApiVersions), Ok(3));
        assert!(ferry_range(ApiKey::Produce).unwrap().min >= 3);
    }

    #[test]
    fn below_floor_is_unsupported() {
        // A 0.11-like broker: Produce max 3 is fine, Fetch max 5 fine, ListOffsets max 0 not.
        let b = BrokerVersions::from_ranges(&[(P, 0, 2), (F, 0, 3), (LO, 0, 0)]);
        let v = negotiate(&b);
        for api in [ApiKey::Produce, ApiKey::Fetch, ApiKey::ListOffsets] {
            match v.version(api).unwrap_err() {
                ProtocolError::UnsupportedApi {
                    api_key,
                    broker: BrokerRange::Range(_),
                    ferry,
                } => {
                    assert_eq!(api_key, api);
                    assert!(ferry.min > 0);
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert!(v.require(&[ApiKey::Produce]).is_err());
    }

    #[test]
    fn broker_min_above_choice_is_unsupported() {
        // A hypothetical broker whose ApiVersions min is above ferry's cap.
        let cap = ferry_range(ApiKey::ApiVersions).unwrap().max;
        let b = BrokerVersions::from_ranges(&[(AV, cap + 1, cap + 2)]);
        assert!(negotiate(&b).version(ApiKey::ApiVersions).is_err());
        let ok = BrokerVersions::from_ranges(&[(AV, cap, cap + 2)]);
        assert_eq!(negotiate(&ok).version(ApiKey::ApiVersions), Ok(cap));
    }

    #[test]
    fn every_ferry_api_has_a_request_impl_range_inside_library() {
        for (api, r) in ferry_apis() {
            let lib = api.valid_versions();
            assert!(r.min >= lib.min && r.max <= lib.max, "{api:?} {r}");
        }
    }

    #[test]
    fn api_versions_retry_reads_v0_reply() {
        use kafka_protocol::messages::api_versions_response::ApiVersion;
        let mut resp = ApiVersionsResponse::default();
        resp.error_code = ErrorCode::UnsupportedVersion.as_i16();
        let mut av = ApiVersion::default();
        av.api_key = AV;
        av.min_version = 0;
        av.max_version = 2;
        resp.api_keys.push(av);
        assert_eq!(api_versions_retry(&resp), Ok(ApiVersionsRetry::RetryAt(2)));
        resp.error_code = 0;
        assert_eq!(api_versions_retry(&resp), Ok(ApiVersionsRetry::Done));
        resp.error_code = ErrorCode::UnsupportedVersion.as_i16();
        resp.api_keys.clear();
        assert!(api_versions_retry(&resp).is_err());
    }
}
