//! Property tests: decoding round-trips and robustness against arbitrary input.

mod arches;
mod decode;
mod elf;
mod regressions;
