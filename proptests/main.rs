//! Property tests: decoding round-trips and robustness against arbitrary input.

mod decode;
mod elf;
