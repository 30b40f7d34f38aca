//! Response decoding of every API ferry sends, through ferry-protocol's entry point
//! (`frame::decode_response`: header, correlation id, body, no trailing bytes), at every
//! version ferry may negotiate. The first input byte picks the API, the second the version
//! within ferry's range; the rest is the response frame after its size prefix.
//!
//! A decode must end in `Ok` or `Err`: no panic, and no allocation beyond what the bytes can
//! hold (kafka-protocol 0.18 presized arrays from the wire count: fixed in vendor/, see fuzz/README.md).
#![no_main]

use bytes::Bytes;
use ferry_protocol::api::{KafkaRequest, ferry_range};
use ferry_protocol::frame::{decode_response, peek_correlation_id};
use kafka_protocol::messages as m;
use libfuzzer_sys::fuzz_target;

fn decode<R: KafkaRequest>(pick: u8, frame: &[u8]) {
    let Some(range) = ferry_range(R::API_KEY) else {
        return;
    };
    let span = i16::from(pick) % (range.max - range.min + 1);
    let version = range.min + span;
    let Ok(correlation_id) = peek_correlation_id(frame) else {
        return;
    };
    let frame = Bytes::copy_from_slice(frame);
    let _ = decode_response::<R::Response>(frame, R::API_KEY, version, correlation_id);
}

macro_rules! apis {
    ($api:expr, $pick:expr, $frame:expr; $($req:ident),* $(,)?) => {{
        const ALL: &[fn(u8, &[u8])] = &[$(decode::<m::$req>),*];
        if let Some(f) = ALL.get(usize::from($api) % ALL.len()) {
            f($pick, $frame);
        }
    }};
}

fuzz_target!(|data: &[u8]| {
    let [api, pick, frame @ ..] = data else {
        return;
    };
    apis!(*api, *pick, frame;
        FetchRequest, MetadataRequest, ProduceRequest, ListOffsetsRequest, OffsetFetchRequest,
        DescribeConfigsRequest, ApiVersionsRequest, FindCoordinatorRequest, InitProducerIdRequest,
        OffsetCommitRequest, CreateTopicsRequest, CreatePartitionsRequest,
        IncrementalAlterConfigsRequest, DescribeAclsRequest, CreateAclsRequest,
        DeleteAclsRequest, ListGroupsRequest, DescribeGroupsRequest, DeleteRecordsRequest,
        DescribeClusterRequest, SaslHandshakeRequest, SaslAuthenticateRequest,
        AddPartitionsToTxnRequest, AddOffsetsToTxnRequest, EndTxnRequest,
        TxnOffsetCommitRequest, JoinGroupRequest, SyncGroupRequest, HeartbeatRequest,
        LeaveGroupRequest, OffsetForLeaderEpochRequest, DeleteTopicsRequest,
    );
});
