//! Compiles every `.proto` under `<workspace>/proto` with protox (pure Rust, no system protoc)
//! and writes the encoded descriptor set for gRPC server reflection.

use std::path::{Path, PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Read when the script runs, not baked in when it was compiled: a build script compiled
    // for a checkout elsewhere (another worktree sharing the target directory) would read that
    // checkout's protos, or fail once it is gone.
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let mut files = Vec::new();
    collect_protos(&root, &mut files)?;
    files.sort();
    println!("cargo:rerun-if-changed={}", root.display());
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
    }

    let fds = protox::compile(&files, [&root])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out.join("fupin_descriptor.bin"),
        prost::Message::encode_to_vec(&fds),
    )?;
    // `prost::Name` on every message: the event type name (`ce-type`) and NATS subject derive
    // from the protobuf full name, so they can never drift from the contract.
    let mut config = tonic_prost_build::Config::new();
    config.enable_type_names();
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // A request that does not decode is bad input (INVALID_ARGUMENT), see src/codec.rs.
        .codec_path("crate::codec::FupinCodec")
        .compile_fds_with_config(fds, config)?;
    Ok(())
}

fn collect_protos(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_protos(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "proto") {
            out.push(path);
        }
    }
    Ok(())
}
