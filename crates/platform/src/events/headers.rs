//! CloudEvents NATS binding headers (binary content mode).

use async_nats::HeaderMap;

pub const CE_ID: &str = "ce-id";
pub const CE_TYPE: &str = "ce-type";
pub const CE_SOURCE: &str = "ce-source";
pub const CE_SPECVERSION: &str = "ce-specversion";
pub const CE_TIME: &str = "ce-time";
pub const CE_SUBJECT: &str = "ce-subject";
/// What ARCHITECTURE.md asks for; the NATS binding's binary mode reads the media type from
/// `ce-datacontenttype` (a `content-type` of `application/cloudevents…` would mean structured
/// mode), so both are sent.
pub const CONTENT_TYPE: &str = "content-type";
pub const CE_DATACONTENTTYPE: &str = "ce-datacontenttype";
pub const TRACEPARENT: &str = "traceparent";
pub const NATS_MSG_ID: &str = "Nats-Msg-Id";
/// Added to dead-lettered messages: why the handler gave up.
pub const DLQ_ERROR: &str = "fupin-dlq-error";
pub const DLQ_ORIGINAL_SUBJECT: &str = "fupin-dlq-subject";
/// On a dead letter whose payload was left out (it would not fit with the headers added): the
/// original's size and stream sequence.
pub const DLQ_PAYLOAD_OMITTED: &str = "fupin-dlq-payload-omitted";

pub const PROTOBUF_CONTENT_TYPE: &str = "application/protobuf";

pub struct CloudEvent<'a> {
    pub id: &'a str,
    pub ce_type: &'a str,
    pub source: &'a str,
    pub time_rfc3339: &'a str,
    pub subject: Option<&'a str>,
    pub traceparent: Option<&'a str>,
}

pub fn build(ev: &CloudEvent<'_>) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(CE_SPECVERSION, "1.0");
    h.insert(CE_ID, ev.id);
    h.insert(CE_TYPE, ev.ce_type);
    h.insert(CE_SOURCE, ev.source);
    h.insert(CE_TIME, ev.time_rfc3339);
    h.insert(CONTENT_TYPE, PROTOBUF_CONTENT_TYPE);
    h.insert(CE_DATACONTENTTYPE, PROTOBUF_CONTENT_TYPE);
    h.insert(NATS_MSG_ID, ev.id);
    if let Some(s) = ev.subject {
        h.insert(CE_SUBJECT, s);
    }
    if let Some(tp) = ev.traceparent {
        h.insert(TRACEPARENT, tp);
    }
    h
}

pub fn get<'a>(h: Option<&'a HeaderMap>, name: &str) -> Option<&'a str> {
    h?.get(name).map(|v| v.as_str())
}
