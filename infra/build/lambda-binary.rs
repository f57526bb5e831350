//! The build script of every package with a Lambda binary (`build = ".../lambda-binary.rs"`
//! in its Cargo.toml): on glibc Linux its binaries link as position-dependent executables
//! (`-no-pie`), as Go links its binaries by default.
//!
//! A position-independent executable is relocated by the dynamic loader before `main`: every
//! pointer in its static data (vtables, `&'static str` in tables, tracing call sites) is
//! rewritten, 24 000 of them in users, 29 000 in auth and 36 000 in content. The loader reads
//! the relocation table and copies each page it writes. That was most of what a function's
//! init cost beyond a hello world's (BENCHMARKS.md, "Init without relocations"). A
//! position-dependent executable has no such relocations. Its own code and data sit at a
//! fixed address; its libraries, heap and stacks are still placed at random. `LECTERN_PIE=1`
//! at build time links PIE again.

fn main() {
    println!("cargo:rerun-if-env-changed=LECTERN_PIE");
    let target = |key: &str| std::env::var(key).unwrap_or_default();
    // glibc Linux: what Lambda's `provided.al2023` runs and what `cargo lambda build` makes,
    // locally through gcc and for arm64 through zig. musl builds stay static-pie.
    let glibc_linux =
        target("CARGO_CFG_TARGET_OS") == "linux" && target("CARGO_CFG_TARGET_ENV") == "gnu";
    let pie = std::env::var("LECTERN_PIE").is_ok_and(|v| v == "1");
    if glibc_linux && !pie {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}
