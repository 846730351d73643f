//! Expansion and error tests that need no compiler run; `tests/ui` in the root crate checks
//! that the expansions compile against the runtime and how the errors look.
use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::LitStr;

use crate::args::{DenyFlagsArgs, HumanArgs, LowRiskArgs, RateLimitArgs};
use crate::expand::{run, Guard};

/// Expands and reprints through `syn`, so the comparison ignores token spacing.
fn expand_with<G: Guard>(args: TokenStream, item: TokenStream) -> String {
    let out = run::<G>(args, item);
    let file: syn::File = syn::parse2(out).expect("expansion is a valid file");
    normalize(quote!(#file).to_string())
}

/// rustfmt adds trailing commas inside `quote!`, which the expansion does not have.
fn normalize(tokens: String) -> String {
    tokens.replace(" ,)", ")").replace(" , >", " >")
}

fn same(expected: TokenStream) -> String {
    let file: syn::File = syn::parse2(expected).unwrap();
    normalize(quote!(#file).to_string())
}

#[test]
fn low_risk_goes_first() {
    let out = expand_with::<LowRiskArgs>(
        quote!(threshold = 70),
        quote!(
            async fn page(q: web::Query<Q>) -> String {
                q.0
            }
        ),
    );
    assert_eq!(
        out,
        same(quote!(
            async fn page(
                _bouncer_low_risk: ::actix_bouncer::guard::LowRisk<70>,
                q: web::Query<Q>,
            ) -> String {
                q.0
            }
        ))
    );
}

#[test]
fn stacked_guards_keep_their_order() {
    // The outer attribute expands first; the next one goes after its parameter.
    let item = quote!(
        #[get("/")]
        pub async fn page<T>(_bouncer_human: ::actix_bouncer::guard::Human<80>, t: T)
        where
            T: Send,
        {
        }
    );
    let out = expand_with::<DenyFlagsArgs>(quote!(tor, fake_crawler,), item);
    assert_eq!(
        out,
        same(quote!(
            #[get("/")]
            pub async fn page<T>(
                _bouncer_human: ::actix_bouncer::guard::Human<80>,
                _bouncer_deny_flags: ::actix_bouncer::guard::DenyFlags<
                    { ::actix_bouncer::Flag::Tor.bit() | ::actix_bouncer::Flag::FakeCrawler.bit() },
                >,
                t: T,
            ) where
                T: Send,
            {
            }
        ))
    );
}

#[test]
fn message_emits_a_marker_with_the_handlers_visibility() {
    let out = expand_with::<HumanArgs>(
        quote!(message = "Humans only.", crate = "bouncer"),
        quote!(
            #[cfg(feature = "x")]
            pub(crate) async fn r#match() {}
        ),
    );
    assert_eq!(
        out,
        same(quote!(
            #[cfg(feature = "x")]
            #[doc(hidden)]
            #[allow(non_camel_case_types, dead_code)]
            pub(crate) struct __actix_bouncer_msg_match_human;
            #[cfg(feature = "x")]
            impl bouncer::guard::GuardMessage for __actix_bouncer_msg_match_human {
                const MESSAGE: &'static str = "Humans only.";
            }
            #[cfg(feature = "x")]
            pub(crate) async fn r#match(
                _bouncer_human: bouncer::guard::Human<80, __actix_bouncer_msg_match_human>,
            ) {
            }
        ))
    );
}

#[test]
fn rate_limit_in_milliseconds_named_after_the_handler() {
    let out = expand_with::<RateLimitArgs>(
        quote!(hits = 5, per = "1m", ban_for = "15m", key = "user_or_ip"),
        quote!(
            async fn login() {}
        ),
    );
    assert_eq!(
        out,
        same(quote!(
            async fn login(
                _bouncer_rate_limit: ::actix_bouncer::guard::HandlerLimit<
                    5,
                    60000,
                    900000,
                    { ::actix_bouncer::guard::limit_key::USER_OR_IP },
                    {
                        ::actix_bouncer::guard::limit_id(::core::concat!(
                            ::core::module_path!(),
                            "::login"
                        ))
                    },
                >,
            ) {
            }
        ))
    );
    // No `ban_for`: 0, the runtime's "no ban". A ban as long as the window is fine.
    let out = expand_with::<RateLimitArgs>(
        quote!(per = "2s", hits = 1),
        quote!(
            async fn f() {}
        ),
    );
    assert!(out.contains("HandlerLimit < 1 , 2000 , 0 ,"), "{out}");
    let out = expand_with::<RateLimitArgs>(
        quote!(per = "1m", hits = 1, ban_for = "1m", name = "auth"),
        quote!(
            async fn r#f() {}
        ),
    );
    assert!(out.contains("HandlerLimit < 1 , 60000 , 60000 ,"), "{out}");
    assert!(out.contains("limit_id (\"auth\")"), "{out}");
}

fn error<G: Guard>(args: TokenStream, item: TokenStream) -> String {
    let out = run::<G>(args, item.clone()).to_string();
    // The original item follows the error, untouched.
    assert!(out.ends_with(&item.to_string()), "{out}");
    let start = out.find("compile_error ! {").expect("an error") + "compile_error ! {".len();
    let end = out[start..].find('}').unwrap() + start;
    syn::parse_str::<LitStr>(
        out[start..end]
            .trim()
            .trim_start_matches('(')
            .trim_end_matches(')')
            .trim(),
    )
    .unwrap()
    .value()
}

#[test]
fn errors_name_the_problem() {
    let f = quote!(
        async fn f() {}
    );
    let cases: Vec<(String, &str)> = vec![
        (
            error::<LowRiskArgs>(quote!(threshold = 70u8, threshold = 3), f.clone()),
            "duplicate key `threshold`",
        ),
        (
            error::<RateLimitArgs>(quote!(hits = 0, per = "1s"), f.clone()),
            "hits must be between 1 and 4294967295, got 0",
        ),
        (
            error::<RateLimitArgs>(quote!(hits = 4294967296, per = "1s"), f.clone()),
            "hits must be between 1 and 4294967295, got 4294967296",
        ),
        (
            error::<RateLimitArgs>(quote!(hits = 1, per = "1500us"), f.clone()),
            "`per` must be a whole number of milliseconds, got \"1500us\"",
        ),
        (
            error::<RateLimitArgs>(quote!(per = "1s"), f.clone()),
            "missing key `hits`: #[rate_limit] needs `hits` and `per`, e.g. \
             `#[rate_limit(hits = 5, per = \"1m\")]`",
        ),
        (
            error::<HumanArgs>(quote!(threshold), f.clone()),
            "`threshold` needs a value, e.g. `threshold = 80`",
        ),
        (
            error::<HumanArgs>(quote!(message = "  "), f.clone()),
            "`message` must not be empty; leave it out to keep the default message",
        ),
        (
            error::<DenyFlagsArgs>(quote!(tor, bot, tor,), f.clone()),
            "flag `tor` is listed twice",
        ),
        (
            error::<DenyFlagsArgs>(quote!(tor, mesage = "x"), f.clone()),
            "unknown key `mesage`; expected one of: `message`, `crate`",
        ),
        (
            error::<DenyFlagsArgs>(quote!("tor"), f.clone()),
            "expected a flag such as `tor`, or `message = \"...\"`",
        ),
        (
            error::<HumanArgs>(
                quote!(),
                quote!(
                    struct S;
                ),
            ),
            "#[require_human] can only be applied to async functions",
        ),
    ];
    for (got, want) in cases {
        assert_eq!(got, want);
    }
}

#[test]
fn bad_arguments_and_a_bad_item_are_both_reported() {
    let out = run::<LowRiskArgs>(
        quote!(threshold = 0),
        quote!(
            fn f(&self) {}
        ),
    )
    .to_string();
    assert_eq!(out.matches("compile_error").count(), 3, "{out}");
}

#[test]
fn seventeen_parameters_are_refused() {
    let params = (0..16).map(|i| format_ident!("p{i}"));
    let msg = error::<HumanArgs>(quote!(), quote!(async fn f(#(#params: u8),*) {}));
    assert!(msg.contains("more than the 16 parameters"), "{msg}");
}

#[test]
fn crate_may_be_a_bare_path() {
    let out = expand_with::<LowRiskArgs>(
        quote!(threshold = 5, crate = ::x::y),
        quote!(
            async fn f() {}
        ),
    );
    assert!(out.contains(":: x :: y :: guard :: LowRisk < 5 >"), "{out}");
}
