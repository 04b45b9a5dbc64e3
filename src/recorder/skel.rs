//! The recorder's generated skeleton (built by build.rs from src/bpf/recorder.bpf.c).
#![allow(
    missing_docs,
    clippy::all,
    clippy::undocumented_unsafe_blocks,
    unsafe_code
)]
include!(concat!(env!("OUT_DIR"), "/recorder.skel.rs"));
