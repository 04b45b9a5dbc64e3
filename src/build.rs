//! With the `recorder` feature, builds the recorder BPF program (src/bpf/recorder.bpf.c) and
//! its Rust skeleton with libbpf-cargo; that needs clang with the BPF target (ci/setup.sh
//! installs it). Without it, nothing: the reader builds no C.

fn main() {
    #[cfg(feature = "recorder")]
    recorder::build();
}

#[cfg(feature = "recorder")]
mod recorder {
    use std::env;
    use std::path::PathBuf;

    use libbpf_cargo::SkeletonBuilder;

    const SRC: &str = "src/bpf/recorder.bpf.c";

    pub fn build() {
        let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
        let arch = env::var("CARGO_CFG_TARGET_ARCH").expect("cargo sets the target arch");
        // The kernel's UAPI headers for the target architecture (asm/ptrace.h), as Debian's
        // multiarch layout installs them.
        let multiarch = match arch.as_str() {
            "x86_64" => "x86_64-linux-gnu",
            "aarch64" => "aarch64-linux-gnu",
            "riscv64" => "riscv64-linux-gnu",
            "s390x" => "s390x-linux-gnu",
            "powerpc64" => "powerpc64le-linux-gnu",
            "loongarch64" => "loongarch64-linux-gnu",
            other => other,
        };
        SkeletonBuilder::new()
            .source(SRC)
            .clang_args([
                "-Wall".to_string(),
                "-O2".to_string(),
                format!("-I/usr/include/{multiarch}"),
            ])
            .build_and_generate(out.join("recorder.skel.rs"))
            .unwrap_or_else(|e| panic!("building {SRC} (is clang installed?): {e:#}"));
        println!("cargo:rerun-if-changed={SRC}");
    }
}
