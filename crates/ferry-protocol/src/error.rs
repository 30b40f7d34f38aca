//! The single Kafka error-code enum and protocol-layer errors.
//!
//! [`ErrorCode`] lists every code of the protocol guide's error table, with an
//! [`ErrorCode::Unknown`] fallback for codes added by brokers newer than this crate.
//! [`ErrorCode::is_retriable`] follows the table's *Retriable* column. No other code in
//! ferry compares raw `i16` error codes: decode them with [`ErrorCode::from_i16`] and branch on
//! the variant or on a classifier ([`ErrorCode::is_routing`], [`ErrorCode::is_auth`], ...).
//!
//! [`ProtocolError`] is the error type of the sans-I/O layer: frames, headers, request
//! encoding, response decoding and version negotiation.
//!
//! # References
//! - <https://kafka.apache.org/protocol#protocol_error_codes>
//! - `clients/src/main/java/org/apache/kafka/common/protocol/Errors.java` (apache/kafka)

use std::fmt;

use crate::api::{ApiKey, VersionRange};

macro_rules! error_codes {
    ( $( $(#[$doc:meta])* $variant:ident = $code:literal, $retriable:literal, $name:literal; )* ) => {
        /// A Kafka protocol error code (the `error_code` field of responses).
        ///
        /// `Copy`, cheap to compare, and total: codes this crate does not know decode to
        /// [`ErrorCode::Unknown`] and encode back to the same number.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ErrorCode {
            $( $(#[$doc])* $variant, )*
            /// A code not in this crate's table (a newer broker); the raw value is kept.
            Unknown(i16),
        }

        impl ErrorCode {
            /// Every known code, in table order (for tests and tools).
            pub const ALL: &'static [Self] = &[ $( Self::$variant, )* ];

            /// Decodes a wire error code. Never fails: unknown codes become [`Self::Unknown`].
            #[must_use]
            pub const fn from_i16(code: i16) -> Self {
                match code {
                    $( $code => Self::$variant, )*
                    other => Self::Unknown(other),
                }
            }

            /// The wire value of this code.
            #[must_use]
            pub const fn as_i16(self) -> i16 {
                match self {
                    $( Self::$variant => $code, )*
                    Self::Unknown(code) => code,
                }
            }

            /// Whether the protocol guide marks this error as retriable: the same request may
            /// succeed later. Unknown codes are not retriable.
            #[must_use]
            pub const fn is_retriable(self) -> bool {
                match self {
                    $( Self::$variant => $retriable, )*
                    Self::Unknown(_) => false,
                }
            }

            /// The protocol guide's name of the code, e.g. `NOT_LEADER_OR_FOLLOWER`.
            #[must_use]
            pub const fn name(self) -> &'static str {
                match self {
                    $( Self::$variant => $name, )*
                    Self::Unknown(_) => "UNKNOWN",
                }
            }
        }
    };
}

error_codes! {
    /// UNKNOWN_SERVER_ERROR (-1): unexpected server error.
    UnknownServerError = -1, false, "UNKNOWN_SERVER_ERROR";
    /// NONE (0): no error.
    NoError = 0, false, "NONE";
    /// OFFSET_OUT_OF_RANGE (1): the offset is outside the partition's log.
    OffsetOutOfRange = 1, false, "OFFSET_OUT_OF_RANGE";
    /// CORRUPT_MESSAGE (2): CRC mismatch, bad size or otherwise corrupt batch.
    CorruptMessage = 2, true, "CORRUPT_MESSAGE";
    /// UNKNOWN_TOPIC_OR_PARTITION (3): this broker does not host the partition.
    UnknownTopicOrPartition = 3, true, "UNKNOWN_TOPIC_OR_PARTITION";
    /// INVALID_FETCH_SIZE (4).
    InvalidFetchSize = 4, false, "INVALID_FETCH_SIZE";
    /// LEADER_NOT_AVAILABLE (5): leader election in progress.
    LeaderNotAvailable = 5, true, "LEADER_NOT_AVAILABLE";
    /// NOT_LEADER_OR_FOLLOWER (6): the broker is not the leader (or not a replica).
    NotLeaderOrFollower = 6, true, "NOT_LEADER_OR_FOLLOWER";
    /// REQUEST_TIMED_OUT (7).
    RequestTimedOut = 7, true, "REQUEST_TIMED_OUT";
    /// BROKER_NOT_AVAILABLE (8).
    BrokerNotAvailable = 8, false, "BROKER_NOT_AVAILABLE";
    /// REPLICA_NOT_AVAILABLE (9).
    ReplicaNotAvailable = 9, true, "REPLICA_NOT_AVAILABLE";
    /// MESSAGE_TOO_LARGE (10): batch larger than `max.message.bytes`.
    MessageTooLarge = 10, false, "MESSAGE_TOO_LARGE";
    /// STALE_CONTROLLER_EPOCH (11).
    StaleControllerEpoch = 11, false, "STALE_CONTROLLER_EPOCH";
    /// OFFSET_METADATA_TOO_LARGE (12).
    OffsetMetadataTooLarge = 12, false, "OFFSET_METADATA_TOO_LARGE";
    /// NETWORK_EXCEPTION (13).
    NetworkException = 13, true, "NETWORK_EXCEPTION";
    /// COORDINATOR_LOAD_IN_PROGRESS (14).
    CoordinatorLoadInProgress = 14, true, "COORDINATOR_LOAD_IN_PROGRESS";
    /// COORDINATOR_NOT_AVAILABLE (15).
    CoordinatorNotAvailable = 15, true, "COORDINATOR_NOT_AVAILABLE";
    /// NOT_COORDINATOR (16).
    NotCoordinator = 16, true, "NOT_COORDINATOR";
    /// INVALID_TOPIC_EXCEPTION (17).
    InvalidTopicException = 17, false, "INVALID_TOPIC_EXCEPTION";
    /// RECORD_LIST_TOO_LARGE (18): batch larger than `segment.bytes`.
    RecordListTooLarge = 18, false, "RECORD_LIST_TOO_LARGE";
    /// NOT_ENOUGH_REPLICAS (19).
    NotEnoughReplicas = 19, true, "NOT_ENOUGH_REPLICAS";
    /// NOT_ENOUGH_REPLICAS_AFTER_APPEND (20): written, but to too few replicas.
    NotEnoughReplicasAfterAppend = 20, true, "NOT_ENOUGH_REPLICAS_AFTER_APPEND";
    /// INVALID_REQUIRED_ACKS (21).
    InvalidRequiredAcks = 21, false, "INVALID_REQUIRED_ACKS";
    /// ILLEGAL_GENERATION (22).
    IllegalGeneration = 22, false, "ILLEGAL_GENERATION";
    /// INCONSISTENT_GROUP_PROTOCOL (23).
    InconsistentGroupProtocol = 23, false, "INCONSISTENT_GROUP_PROTOCOL";
    /// INVALID_GROUP_ID (24).
    InvalidGroupId = 24, false, "INVALID_GROUP_ID";
    /// UNKNOWN_MEMBER_ID (25).
    UnknownMemberId = 25, false, "UNKNOWN_MEMBER_ID";
    /// INVALID_SESSION_TIMEOUT (26).
    InvalidSessionTimeout = 26, false, "INVALID_SESSION_TIMEOUT";
    /// REBALANCE_IN_PROGRESS (27).
    RebalanceInProgress = 27, false, "REBALANCE_IN_PROGRESS";
    /// INVALID_COMMIT_OFFSET_SIZE (28).
    InvalidCommitOffsetSize = 28, false, "INVALID_COMMIT_OFFSET_SIZE";
    /// TOPIC_AUTHORIZATION_FAILED (29).
    TopicAuthorizationFailed = 29, false, "TOPIC_AUTHORIZATION_FAILED";
    /// GROUP_AUTHORIZATION_FAILED (30).
    GroupAuthorizationFailed = 30, false, "GROUP_AUTHORIZATION_FAILED";
    /// CLUSTER_AUTHORIZATION_FAILED (31).
    ClusterAuthorizationFailed = 31, false, "CLUSTER_AUTHORIZATION_FAILED";
    /// INVALID_TIMESTAMP (32): record timestamp outside the topic's limits.
    InvalidTimestamp = 32, false, "INVALID_TIMESTAMP";
    /// UNSUPPORTED_SASL_MECHANISM (33).
    UnsupportedSaslMechanism = 33, false, "UNSUPPORTED_SASL_MECHANISM";
    /// ILLEGAL_SASL_STATE (34).
    IllegalSaslState = 34, false, "ILLEGAL_SASL_STATE";
    /// UNSUPPORTED_VERSION (35).
    UnsupportedVersion = 35, false, "UNSUPPORTED_VERSION";
    /// TOPIC_ALREADY_EXISTS (36).
    TopicAlreadyExists = 36, false, "TOPIC_ALREADY_EXISTS";
    /// INVALID_PARTITIONS (37).
    InvalidPartitions = 37, false, "INVALID_PARTITIONS";
    /// INVALID_REPLICATION_FACTOR (38).
    InvalidReplicationFactor = 38, false, "INVALID_REPLICATION_FACTOR";
    /// INVALID_REPLICA_ASSIGNMENT (39).
    InvalidReplicaAssignment = 39, false, "INVALID_REPLICA_ASSIGNMENT";
    /// INVALID_CONFIG (40).
    InvalidConfig = 40, false, "INVALID_CONFIG";
    /// NOT_CONTROLLER (41).
    NotController = 41, true, "NOT_CONTROLLER";
    /// INVALID_REQUEST (42): malformed request or incompatible broker.
    InvalidRequest = 42, false, "INVALID_REQUEST";
    /// UNSUPPORTED_FOR_MESSAGE_FORMAT (43).
    UnsupportedForMessageFormat = 43, false, "UNSUPPORTED_FOR_MESSAGE_FORMAT";
    /// POLICY_VIOLATION (44).
    PolicyViolation = 44, false, "POLICY_VIOLATION";
    /// OUT_OF_ORDER_SEQUENCE_NUMBER (45).
    OutOfOrderSequenceNumber = 45, false, "OUT_OF_ORDER_SEQUENCE_NUMBER";
    /// DUPLICATE_SEQUENCE_NUMBER (46): 0.11 brokers only; later ones answer success.
    DuplicateSequenceNumber = 46, false, "DUPLICATE_SEQUENCE_NUMBER";
    /// INVALID_PRODUCER_EPOCH (47): fenced by a newer epoch.
    InvalidProducerEpoch = 47, false, "INVALID_PRODUCER_EPOCH";
    /// INVALID_TXN_STATE (48).
    InvalidTxnState = 48, false, "INVALID_TXN_STATE";
    /// INVALID_PRODUCER_ID_MAPPING (49).
    InvalidProducerIdMapping = 49, false, "INVALID_PRODUCER_ID_MAPPING";
    /// INVALID_TRANSACTION_TIMEOUT (50).
    InvalidTransactionTimeout = 50, false, "INVALID_TRANSACTION_TIMEOUT";
    /// CONCURRENT_TRANSACTIONS (51).
    ConcurrentTransactions = 51, false, "CONCURRENT_TRANSACTIONS";
    /// TRANSACTION_COORDINATOR_FENCED (52).
    TransactionCoordinatorFenced = 52, false, "TRANSACTION_COORDINATOR_FENCED";
    /// TRANSACTIONAL_ID_AUTHORIZATION_FAILED (53).
    TransactionalIdAuthorizationFailed = 53, false, "TRANSACTIONAL_ID_AUTHORIZATION_FAILED";
    /// SECURITY_DISABLED (54).
    SecurityDisabled = 54, false, "SECURITY_DISABLED";
    /// OPERATION_NOT_ATTEMPTED (55).
    OperationNotAttempted = 55, false, "OPERATION_NOT_ATTEMPTED";
    /// KAFKA_STORAGE_ERROR (56).
    KafkaStorageError = 56, true, "KAFKA_STORAGE_ERROR";
    /// LOG_DIR_NOT_FOUND (57).
    LogDirNotFound = 57, false, "LOG_DIR_NOT_FOUND";
    /// SASL_AUTHENTICATION_FAILED (58).
    SaslAuthenticationFailed = 58, false, "SASL_AUTHENTICATION_FAILED";
    /// UNKNOWN_PRODUCER_ID (59): returned on Produce by 1.0-2.4 brokers.
    UnknownProducerId = 59, false, "UNKNOWN_PRODUCER_ID";
    /// REASSIGNMENT_IN_PROGRESS (60).
    ReassignmentInProgress = 60, false, "REASSIGNMENT_IN_PROGRESS";
    /// DELEGATION_TOKEN_AUTH_DISABLED (61).
    DelegationTokenAuthDisabled = 61, false, "DELEGATION_TOKEN_AUTH_DISABLED";
    /// DELEGATION_TOKEN_NOT_FOUND (62).
    DelegationTokenNotFound = 62, false, "DELEGATION_TOKEN_NOT_FOUND";
    /// DELEGATION_TOKEN_OWNER_MISMATCH (63).
    DelegationTokenOwnerMismatch = 63, false, "DELEGATION_TOKEN_OWNER_MISMATCH";
    /// DELEGATION_TOKEN_REQUEST_NOT_ALLOWED (64).
    DelegationTokenRequestNotAllowed = 64, false, "DELEGATION_TOKEN_REQUEST_NOT_ALLOWED";
    /// DELEGATION_TOKEN_AUTHORIZATION_FAILED (65).
    DelegationTokenAuthorizationFailed = 65, false, "DELEGATION_TOKEN_AUTHORIZATION_FAILED";
    /// DELEGATION_TOKEN_EXPIRED (66).
    DelegationTokenExpired = 66, false, "DELEGATION_TOKEN_EXPIRED";
    /// INVALID_PRINCIPAL_TYPE (67).
    InvalidPrincipalType = 67, false, "INVALID_PRINCIPAL_TYPE";
    /// NON_EMPTY_GROUP (68).
    NonEmptyGroup = 68, false, "NON_EMPTY_GROUP";
    /// GROUP_ID_NOT_FOUND (69).
    GroupIdNotFound = 69, false, "GROUP_ID_NOT_FOUND";
    /// FETCH_SESSION_ID_NOT_FOUND (70): start again with a full fetch.
    FetchSessionIdNotFound = 70, true, "FETCH_SESSION_ID_NOT_FOUND";
    /// INVALID_FETCH_SESSION_EPOCH (71): start again with a full fetch.
    InvalidFetchSessionEpoch = 71, true, "INVALID_FETCH_SESSION_EPOCH";
    /// LISTENER_NOT_FOUND (72).
    ListenerNotFound = 72, true, "LISTENER_NOT_FOUND";
    /// TOPIC_DELETION_DISABLED (73).
    TopicDeletionDisabled = 73, false, "TOPIC_DELETION_DISABLED";
    /// FENCED_LEADER_EPOCH (74): our leader epoch is older than the broker's.
    FencedLeaderEpoch = 74, true, "FENCED_LEADER_EPOCH";
    /// UNKNOWN_LEADER_EPOCH (75): our leader epoch is newer than the broker's.
    UnknownLeaderEpoch = 75, true, "UNKNOWN_LEADER_EPOCH";
    /// UNSUPPORTED_COMPRESSION_TYPE (76).
    UnsupportedCompressionType = 76, false, "UNSUPPORTED_COMPRESSION_TYPE";
    /// STALE_BROKER_EPOCH (77).
    StaleBrokerEpoch = 77, false, "STALE_BROKER_EPOCH";
    /// OFFSET_NOT_AVAILABLE (78).
    OffsetNotAvailable = 78, true, "OFFSET_NOT_AVAILABLE";
    /// MEMBER_ID_REQUIRED (79).
    MemberIdRequired = 79, false, "MEMBER_ID_REQUIRED";
    /// PREFERRED_LEADER_NOT_AVAILABLE (80).
    PreferredLeaderNotAvailable = 80, true, "PREFERRED_LEADER_NOT_AVAILABLE";
    /// GROUP_MAX_SIZE_REACHED (81).
    GroupMaxSizeReached = 81, false, "GROUP_MAX_SIZE_REACHED";
    /// FENCED_INSTANCE_ID (82).
    FencedInstanceId = 82, false, "FENCED_INSTANCE_ID";
    /// ELIGIBLE_LEADERS_NOT_AVAILABLE (83).
    EligibleLeadersNotAvailable = 83, true, "ELIGIBLE_LEADERS_NOT_AVAILABLE";
    /// ELECTION_NOT_NEEDED (84).
    ElectionNotNeeded = 84, true, "ELECTION_NOT_NEEDED";
    /// NO_REASSIGNMENT_IN_PROGRESS (85).
    NoReassignmentInProgress = 85, false, "NO_REASSIGNMENT_IN_PROGRESS";
    /// GROUP_SUBSCRIBED_TO_TOPIC (86).
    GroupSubscribedToTopic = 86, false, "GROUP_SUBSCRIBED_TO_TOPIC";
    /// INVALID_RECORD (87): a record failed broker validation (see `record_errors`).
    InvalidRecord = 87, false, "INVALID_RECORD";
    /// UNSTABLE_OFFSET_COMMIT (88).
    UnstableOffsetCommit = 88, true, "UNSTABLE_OFFSET_COMMIT";
    /// THROTTLING_QUOTA_EXCEEDED (89).
    ThrottlingQuotaExceeded = 89, true, "THROTTLING_QUOTA_EXCEEDED";
    /// PRODUCER_FENCED (90).
    ProducerFenced = 90, false, "PRODUCER_FENCED";
    /// RESOURCE_NOT_FOUND (91).
    ResourceNotFound = 91, false, "RESOURCE_NOT_FOUND";
    /// DUPLICATE_RESOURCE (92).
    DuplicateResource = 92, false, "DUPLICATE_RESOURCE";
    /// UNACCEPTABLE_CREDENTIAL (93).
    UnacceptableCredential = 93, false, "UNACCEPTABLE_CREDENTIAL";
    /// INCONSISTENT_VOTER_SET (94).
    InconsistentVoterSet = 94, false, "INCONSISTENT_VOTER_SET";
    /// INVALID_UPDATE_VERSION (95).
    InvalidUpdateVersion = 95, false, "INVALID_UPDATE_VERSION";
    /// FEATURE_UPDATE_FAILED (96).
    FeatureUpdateFailed = 96, false, "FEATURE_UPDATE_FAILED";
    /// PRINCIPAL_DESERIALIZATION_FAILURE (97).
    PrincipalDeserializationFailure = 97, false, "PRINCIPAL_DESERIALIZATION_FAILURE";
    /// SNAPSHOT_NOT_FOUND (98).
    SnapshotNotFound = 98, false, "SNAPSHOT_NOT_FOUND";
    /// POSITION_OUT_OF_RANGE (99).
    PositionOutOfRange = 99, false, "POSITION_OUT_OF_RANGE";
    /// UNKNOWN_TOPIC_ID (100): this broker does not host the topic id.
    UnknownTopicId = 100, true, "UNKNOWN_TOPIC_ID";
    /// DUPLICATE_BROKER_REGISTRATION (101).
    DuplicateBrokerRegistration = 101, false, "DUPLICATE_BROKER_REGISTRATION";
    /// BROKER_ID_NOT_REGISTERED (102).
    BrokerIdNotRegistered = 102, false, "BROKER_ID_NOT_REGISTERED";
    /// INCONSISTENT_TOPIC_ID (103).
    InconsistentTopicId = 103, true, "INCONSISTENT_TOPIC_ID";
    /// INCONSISTENT_CLUSTER_ID (104).
    InconsistentClusterId = 104, false, "INCONSISTENT_CLUSTER_ID";
    /// TRANSACTIONAL_ID_NOT_FOUND (105).
    TransactionalIdNotFound = 105, false, "TRANSACTIONAL_ID_NOT_FOUND";
    /// FETCH_SESSION_TOPIC_ID_ERROR (106).
    FetchSessionTopicIdError = 106, true, "FETCH_SESSION_TOPIC_ID_ERROR";
    /// INELIGIBLE_REPLICA (107).
    IneligibleReplica = 107, false, "INELIGIBLE_REPLICA";
    /// NEW_LEADER_ELECTED (108).
    NewLeaderElected = 108, false, "NEW_LEADER_ELECTED";
    /// OFFSET_MOVED_TO_TIERED_STORAGE (109).
    OffsetMovedToTieredStorage = 109, false, "OFFSET_MOVED_TO_TIERED_STORAGE";
    /// FENCED_MEMBER_EPOCH (110).
    FencedMemberEpoch = 110, false, "FENCED_MEMBER_EPOCH";
    /// UNRELEASED_INSTANCE_ID (111).
    UnreleasedInstanceId = 111, false, "UNRELEASED_INSTANCE_ID";
    /// UNSUPPORTED_ASSIGNOR (112).
    UnsupportedAssignor = 112, false, "UNSUPPORTED_ASSIGNOR";
    /// STALE_MEMBER_EPOCH (113).
    StaleMemberEpoch = 113, false, "STALE_MEMBER_EPOCH";
    /// MISMATCHED_ENDPOINT_TYPE (114).
    MismatchedEndpointType = 114, false, "MISMATCHED_ENDPOINT_TYPE";
    /// UNSUPPORTED_ENDPOINT_TYPE (115).
    UnsupportedEndpointType = 115, false, "UNSUPPORTED_ENDPOINT_TYPE";
    /// UNKNOWN_CONTROLLER_ID (116).
    UnknownControllerId = 116, false, "UNKNOWN_CONTROLLER_ID";
    /// UNKNOWN_SUBSCRIPTION_ID (117).
    UnknownSubscriptionId = 117, false, "UNKNOWN_SUBSCRIPTION_ID";
    /// TELEMETRY_TOO_LARGE (118).
    TelemetryTooLarge = 118, false, "TELEMETRY_TOO_LARGE";
    /// INVALID_REGISTRATION (119).
    InvalidRegistration = 119, false, "INVALID_REGISTRATION";
    /// TRANSACTION_ABORTABLE (120): abort the transaction and retry it (KIP-890).
    TransactionAbortable = 120, false, "TRANSACTION_ABORTABLE";
    /// INVALID_RECORD_STATE (121).
    InvalidRecordState = 121, false, "INVALID_RECORD_STATE";
    /// SHARE_SESSION_NOT_FOUND (122).
    ShareSessionNotFound = 122, true, "SHARE_SESSION_NOT_FOUND";
    /// INVALID_SHARE_SESSION_EPOCH (123).
    InvalidShareSessionEpoch = 123, true, "INVALID_SHARE_SESSION_EPOCH";
    /// FENCED_STATE_EPOCH (124).
    FencedStateEpoch = 124, false, "FENCED_STATE_EPOCH";
    /// INVALID_VOTER_KEY (125).
    InvalidVoterKey = 125, false, "INVALID_VOTER_KEY";
    /// DUPLICATE_VOTER (126).
    DuplicateVoter = 126, false, "DUPLICATE_VOTER";
    /// VOTER_NOT_FOUND (127).
    VoterNotFound = 127, false, "VOTER_NOT_FOUND";
    /// INVALID_REGULAR_EXPRESSION (128).
    InvalidRegularExpression = 128, false, "INVALID_REGULAR_EXPRESSION";
    /// REBOOTSTRAP_REQUIRED (129).
    RebootstrapRequired = 129, false, "REBOOTSTRAP_REQUIRED";
    /// STREAMS_INVALID_TOPOLOGY (130).
    StreamsInvalidTopology = 130, false, "STREAMS_INVALID_TOPOLOGY";
    /// STREAMS_INVALID_TOPOLOGY_EPOCH (131).
    StreamsInvalidTopologyEpoch = 131, false, "STREAMS_INVALID_TOPOLOGY_EPOCH";
    /// STREAMS_TOPOLOGY_FENCED (132).
    StreamsTopologyFenced = 132, false, "STREAMS_TOPOLOGY_FENCED";
    /// SHARE_SESSION_LIMIT_REACHED (133).
    ShareSessionLimitReached = 133, true, "SHARE_SESSION_LIMIT_REACHED";
}

impl ErrorCode {
    /// `true` for [`ErrorCode::NoError`].
    #[must_use]
    pub const fn is_ok(self) -> bool {
        matches!(self, Self::NoError)
    }

    /// Turns a wire code into `Ok(())` for NONE and `Err(code)` otherwise.
    pub const fn check(code: i16) -> Result<(), Self> {
        match Self::from_i16(code) {
            Self::NoError => Ok(()),
            other => Err(other),
        }
    }

    /// Errors meaning our view of partition leadership is stale: refresh metadata, then retry
    /// against the (possibly new) leader.
    #[must_use]
    pub const fn is_routing(self) -> bool {
        matches!(
            self,
            Self::NotLeaderOrFollower
                | Self::FencedLeaderEpoch
                | Self::UnknownLeaderEpoch
                | Self::UnknownTopicOrPartition
                | Self::LeaderNotAvailable
                | Self::ReplicaNotAvailable
                | Self::UnknownTopicId
                | Self::InconsistentTopicId
                | Self::KafkaStorageError
                | Self::NotController
                | Self::ListenerNotFound
        )
    }

    /// Errors meaning the group or transaction coordinator moved or is not ready: look it
    /// up again (FindCoordinator) and retry.
    #[must_use]
    pub const fn is_coordinator(self) -> bool {
        matches!(
            self,
            Self::NotCoordinator | Self::CoordinatorNotAvailable | Self::CoordinatorLoadInProgress
        )
    }

    /// Authentication and authorisation failures: retrying without a configuration change
    /// will not help.
    #[must_use]
    pub const fn is_auth(self) -> bool {
        matches!(
            self,
            Self::SaslAuthenticationFailed
                | Self::UnsupportedSaslMechanism
                | Self::IllegalSaslState
                | Self::TopicAuthorizationFailed
                | Self::GroupAuthorizationFailed
                | Self::ClusterAuthorizationFailed
                | Self::TransactionalIdAuthorizationFailed
                | Self::DelegationTokenAuthorizationFailed
        )
    }

    /// Idempotence errors after which the producer must bump its epoch and restart sequences
    /// (KIP-360).
    #[must_use]
    pub const fn is_sequence(self) -> bool {
        matches!(
            self,
            Self::OutOfOrderSequenceNumber | Self::UnknownProducerId | Self::InvalidProducerEpoch
        )
    }

    /// Fetch-session errors (KIP-227): drop the session and send a full fetch.
    #[must_use]
    pub const fn is_fetch_session(self) -> bool {
        matches!(
            self,
            Self::FetchSessionIdNotFound
                | Self::InvalidFetchSessionEpoch
                | Self::FetchSessionTopicIdError
        )
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.as_i16())
    }
}

impl From<i16> for ErrorCode {
    fn from(code: i16) -> Self {
        Self::from_i16(code)
    }
}

impl From<ErrorCode> for i16 {
    fn from(code: ErrorCode) -> Self {
        code.as_i16()
    }
}

/// Errors of the sans-I/O protocol layer.
///
/// Each variant says whose fault it is: a *peer* fault means the broker sent bytes we cannot
/// accept; a *caller* fault means ferry asked for something impossible.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A frame's size prefix exceeds the configured maximum (peer fault, or a non-Kafka peer
    /// such as a TLS server answering a plaintext client).
    #[error("frame of {size} bytes exceeds the maximum of {max} bytes")]
    FrameTooLarge {
        /// The declared frame size.
        size: u64,
        /// The configured maximum.
        max: usize,
    },
    /// A frame's size prefix is negative (peer fault).
    #[error("negative frame size {size}")]
    NegativeFrameSize {
        /// The declared frame size.
        size: i32,
    },
    /// A frame is shorter than the header it must hold (peer fault).
    #[error("frame of {len} bytes is too short for a response header")]
    FrameTooShort {
        /// The frame length.
        len: usize,
    },
    /// Encoding a request failed (caller fault: usually a field not valid at this version).
    #[error("cannot encode {api_key:?} v{version} request: {message}")]
    Encode {
        /// The API being encoded.
        api_key: ApiKey,
        /// The version it was encoded at.
        version: i16,
        /// kafka-protocol's explanation.
        message: String,
    },
    /// Decoding a response failed (peer fault, or a version mismatch).
    #[error("cannot decode {api_key:?} v{version} response: {message}")]
    Decode {
        /// The API being decoded.
        api_key: ApiKey,
        /// The version it was decoded at.
        version: i16,
        /// kafka-protocol's explanation.
        message: String,
    },
    /// A response decoded fine but left bytes behind (peer fault or a version mismatch).
    #[error("{api_key:?} v{version} response has {remaining} trailing bytes")]
    TrailingBytes {
        /// The API being decoded.
        api_key: ApiKey,
        /// The version it was decoded at.
        version: i16,
        /// Bytes left after the message.
        remaining: usize,
    },
    /// The response's correlation id does not match the request's (peer fault).
    #[error("correlation id mismatch: expected {expected}, got {actual}")]
    CorrelationMismatch {
        /// The id we sent.
        expected: i32,
        /// The id we received.
        actual: i32,
    },
    /// The broker does not offer an API ferry needs, or offers no version ferry can speak.
    #[error(
        "broker does not support {api_key:?} at a version ferry can use: broker {broker}, ferry {ferry}"
    )]
    UnsupportedApi {
        /// The API.
        api_key: ApiKey,
        /// The broker's advertised range, if it advertises the API at all.
        broker: BrokerRange,
        /// ferry's supported range.
        ferry: VersionRange,
    },
    /// A version outside kafka-protocol's and ferry's range was requested (caller fault).
    #[error("{api_key:?} v{version} is outside ferry's range {ferry}")]
    VersionOutOfRange {
        /// The API.
        api_key: ApiKey,
        /// The version asked for.
        version: i16,
        /// ferry's supported range.
        ferry: VersionRange,
    },
}

/// A broker's advertised version range for an API, or its absence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerRange {
    /// The broker does not list the API in its ApiVersions reply.
    Missing,
    /// The broker's `[min, max]`.
    Range(VersionRange),
}

impl fmt::Display for BrokerRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing => f.write_str("not offered"),
            Self::Range(r) => write!(f, "{r}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips() {
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::from_i16(code.as_i16()), *code);
        }
        for raw in -200i16..=300 {
            assert_eq!(ErrorCode::from_i16(raw).as_i16(), raw);
        }
    }

    #[test]
    fn table_is_contiguous_and_complete() {
        // The protocol guide's table runs from -1 to the newest code without gaps.
        let codes: Vec<i16> = ErrorCode::ALL.iter().map(|c| c.as_i16()).collect();
        let expected: Vec<i16> = (-1..=133).collect();
        assert_eq!(codes, expected);
        assert!(matches!(ErrorCode::from_i16(134), ErrorCode::Unknown(134)));
        assert!(matches!(ErrorCode::from_i16(-2), ErrorCode::Unknown(-2)));
    }

    #[test]
    fn retriable_column() {
        assert!(ErrorCode::NotLeaderOrFollower.is_retriable());
        assert!(ErrorCode::CorruptMessage.is_retriable());
        assert!(ErrorCode::RequestTimedOut.is_retriable());
        assert!(ErrorCode::NotEnoughReplicasAfterAppend.is_retriable());
        assert!(ErrorCode::FetchSessionIdNotFound.is_retriable());
        assert!(!ErrorCode::OffsetOutOfRange.is_retriable());
        assert!(!ErrorCode::OutOfOrderSequenceNumber.is_retriable());
        assert!(!ErrorCode::SaslAuthenticationFailed.is_retriable());
        assert!(!ErrorCode::Unknown(999).is_retriable());
        assert!(!ErrorCode::NoError.is_retriable());
    }

    #[test]
    fn classifiers() {
        assert!(ErrorCode::NotLeaderOrFollower.is_routing());
        assert!(ErrorCode::FencedLeaderEpoch.is_routing());
        assert!(ErrorCode::UnknownTopicOrPartition.is_routing());
        assert!(ErrorCode::LeaderNotAvailable.is_routing());
        assert!(!ErrorCode::OffsetOutOfRange.is_routing());
        assert!(ErrorCode::SaslAuthenticationFailed.is_auth());
        assert!(ErrorCode::OutOfOrderSequenceNumber.is_sequence());
        assert!(ErrorCode::InvalidFetchSessionEpoch.is_fetch_session());
        assert_eq!(ErrorCode::check(0), Ok(()));
        assert_eq!(ErrorCode::check(6), Err(ErrorCode::NotLeaderOrFollower));
        assert_eq!(
            ErrorCode::NotLeaderOrFollower.to_string(),
            "NOT_LEADER_OR_FOLLOWER (6)"
        );
    }
}
