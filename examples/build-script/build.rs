//! Validates `cluster.toml` (a mistake fails the build, naming file and line), writes its
//! bundle into OUT_DIR and generates the constants `src/main.rs` includes.

fn main() {
    cpgen::build::Build::new("cluster.toml").run_or_exit();
}
