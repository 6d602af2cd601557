//! Embeds libtorch's directory as an rpath so binaries, tests and examples of this crate find
//! it without LD_LIBRARY_PATH (torch-sys exports the path as DEP_TCH_LIBTORCH_LIB).
fn main() {
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    }
}
