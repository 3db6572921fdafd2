//! Generated code only: one module per protobuf package, mirroring `proto/fupin/<ctx>/v1`.
#![allow(clippy::all, clippy::pedantic, missing_docs)]

pub mod codec;

/// Encoded `FileDescriptorSet` of every fupin package, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/fupin_descriptor.bin"));

pub mod common {
    pub mod v1 {
        tonic::include_proto!("fupin.common.v1");
    }
}
pub mod admin {
    pub mod v1 {
        tonic::include_proto!("fupin.admin.v1");
    }
}
pub mod intake {
    pub mod v1 {
        tonic::include_proto!("fupin.intake.v1");
    }
}
pub mod rating {
    pub mod v1 {
        tonic::include_proto!("fupin.rating.v1");
    }
}
pub mod risk {
    pub mod v1 {
        tonic::include_proto!("fupin.risk.v1");
    }
}
pub mod industry {
    pub mod v1 {
        tonic::include_proto!("fupin.industry.v1");
    }
}
