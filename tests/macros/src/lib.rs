//! `#[kernel_test]`: the attribute of every test that needs root (it loads XDP into the kernel,
//! creates network namespaces or mounts a bpffs). The test runs as root; elsewhere it is skipped
//! with a loud notice, and in CI (`CI=true`, where tests run as root) a skip is a failure (see
//! `integration_tests::require_root`). A test without parameters also gets `#[test]`; one with
//! parameters is left to the `#[test_case]` attributes below this one, which generate its cases
//! (put `#[kernel_test]` first, so that the cases do not copy it).

use proc_macro::TokenStream;
use quote::quote;
use syn::{ItemFn, parse_macro_input};

#[proc_macro_attribute]
pub fn kernel_test(_attr: TokenStream, item: TokenStream) -> TokenStream {
    let ItemFn { attrs, vis, sig, block } = parse_macro_input!(item as ItemFn);
    let name = sig.ident.to_string();
    let test = if sig.inputs.is_empty() { quote!(#[test]) } else { quote!() };
    quote! {
        #test
        #(#attrs)*
        #vis #sig {
            if !::integration_tests::require_root(#name) {
                return;
            }
            #block
        }
    }
    .into()
}
