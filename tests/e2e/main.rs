//! End-to-end: the real `fupin-intake` binary against real PostgreSQL and NATS JetStream.

mod intake_binary;
mod restarts;
