//! Turning a handler into a guarded handler: one extra extractor parameter, placed so that
//! actix-web extracts it before the handler's own parameters.

use proc_macro2::{Literal, Span, TokenStream};
use quote::{format_ident, quote};
use syn::ext::IdentExt;
use syn::parse::Parse;
use syn::{Error, FnArg, Ident, Item, ItemFn, LitStr, Pat, Path, Result};

use crate::args::{DenyFlagsArgs, HumanArgs, LowRiskArgs, RateLimitArgs};

/// actix-web implements `Handler` for functions of up to 16 parameters.
const MAX_HANDLER_PARAMS: usize = 16;

/// Prefix of every inserted parameter; also how a guard finds the guards added before it.
const PARAM_PREFIX: &str = "_bouncer_";

/// What differs between the four attributes.
pub(crate) trait Guard: Parse {
    /// The attribute's name, for messages.
    const ATTR: &'static str;
    /// Names the inserted parameter (`_bouncer_<SUFFIX>`) and the message marker.
    const SUFFIX: &'static str;

    /// The path of the runtime crate.
    fn krate(&self) -> &Path;

    /// The `message` argument, for guards that have one.
    fn message(&self) -> Option<&LitStr>;

    /// The extractor type; `marker` is the message type when [`Guard::message`] is set.
    fn extractor(&self, handler: &Ident, marker: Option<&Ident>) -> TokenStream;
}

impl Guard for LowRiskArgs {
    const ATTR: &'static str = "require_low_risk";
    const SUFFIX: &'static str = "low_risk";

    fn krate(&self) -> &Path {
        &self.krate
    }

    fn message(&self) -> Option<&LitStr> {
        self.message.as_ref()
    }

    fn extractor(&self, _: &Ident, marker: Option<&Ident>) -> TokenStream {
        let krate = &self.krate;
        let threshold = Literal::u8_unsuffixed(self.threshold);
        let marker = marker.map(|m| quote!(, #m));
        quote!(#krate::guard::LowRisk<#threshold #marker>)
    }
}

impl Guard for HumanArgs {
    const ATTR: &'static str = "require_human";
    const SUFFIX: &'static str = "human";

    fn krate(&self) -> &Path {
        &self.krate
    }

    fn message(&self) -> Option<&LitStr> {
        self.message.as_ref()
    }

    fn extractor(&self, _: &Ident, marker: Option<&Ident>) -> TokenStream {
        let krate = &self.krate;
        let threshold = Literal::u8_unsuffixed(self.threshold);
        let marker = marker.map(|m| quote!(, #m));
        quote!(#krate::guard::Human<#threshold #marker>)
    }
}

impl Guard for DenyFlagsArgs {
    const ATTR: &'static str = "deny_flags";
    const SUFFIX: &'static str = "deny_flags";

    fn krate(&self) -> &Path {
        &self.krate
    }

    fn message(&self) -> Option<&LitStr> {
        self.message.as_ref()
    }

    fn extractor(&self, _: &Ident, marker: Option<&Ident>) -> TokenStream {
        let krate = &self.krate;
        // The mask is computed by the compiler from the runtime's own `Flag::bit`, so the
        // macro does not need to know the bit layout.
        let bits = self
            .flags
            .iter()
            .map(|variant| quote!(#krate::Flag::#variant.bit()));
        let marker = marker.map(|m| quote!(, #m));
        quote!(#krate::guard::DenyFlags<{ #(#bits)|* } #marker>)
    }
}

impl Guard for RateLimitArgs {
    const ATTR: &'static str = "rate_limit";
    const SUFFIX: &'static str = "rate_limit";

    fn krate(&self) -> &Path {
        &self.krate
    }

    fn message(&self) -> Option<&LitStr> {
        None
    }

    fn extractor(&self, handler: &Ident, _: Option<&Ident>) -> TokenStream {
        let krate = &self.krate;
        let hits = Literal::u32_unsuffixed(self.hits);
        let per = Literal::u64_unsuffixed(self.per_ms);
        let ban = Literal::u64_unsuffixed(self.ban_ms);
        let key = Ident::new(self.key.constant(), Span::call_site());
        // The limit's stable name: moving the handler in its file keeps its counters (and its
        // keys in a shared store); renaming it or its module starts afresh, as `name` avoids.
        let name = match &self.name {
            Some(name) => quote!(#name),
            None => {
                let function = format!("::{}", handler.unraw());
                quote!(::core::concat!(::core::module_path!(), #function))
            }
        };
        // The user's rule length goes last, and only when given (the parameter defaults to 0).
        let user_ban = self
            .user_ban_ms
            .map(|ms| {
                let ms = Literal::u64_unsuffixed(ms);
                quote!(, #ms)
            })
            .unwrap_or_default();
        quote! {
            #krate::guard::HandlerLimit<
                #hits,
                #per,
                #ban,
                { #krate::guard::limit_key::#key },
                { #krate::guard::limit_id(#name) }
                #user_ban
            >
        }
    }
}

/// The entry point shared by the four attributes.
///
/// On error the original item is returned unchanged beside the error, so the rest of the
/// user's code still type-checks and the error is the only one they see.
pub(crate) fn run<G: Guard>(args: TokenStream, item: TokenStream) -> TokenStream {
    let args = syn::parse2::<G>(args);
    let func = handler::<G>(item.clone());
    let result = match (args, func) {
        (Ok(args), Ok(func)) => expand(&args, func),
        (Err(e), Ok(_)) | (Ok(_), Err(e)) => Err(e),
        // Both are the user's to fix, and neither causes the other: report both.
        (Err(mut e), Err(other)) => {
            e.combine(other);
            Err(e)
        }
    };
    result.unwrap_or_else(|e| {
        let mut tokens = e.to_compile_error();
        tokens.extend(item);
        tokens
    })
}

/// Parses the item and checks that it can be an actix-web handler.
fn handler<G: Guard>(item: TokenStream) -> Result<ItemFn> {
    let not_async = || format!("#[{}] can only be applied to async functions", G::ATTR);
    let func = match syn::parse2::<Item>(item)? {
        Item::Fn(func) => func,
        other => return Err(Error::new_spanned(other, not_async())),
    };
    let mut errors: Option<Error> = None;
    let mut push = |e: Error| match &mut errors {
        Some(errors) => errors.combine(e),
        None => errors = Some(e),
    };
    if func.sig.asyncness.is_none() {
        push(Error::new(func.sig.fn_token.span, not_async()));
    }
    if let Some(receiver) = func.sig.receiver() {
        push(Error::new_spanned(
            receiver,
            format!(
                "#[{}] cannot be applied to methods: actix-web handlers take no `self`",
                G::ATTR
            ),
        ));
    }
    match errors {
        Some(errors) => Err(errors),
        None => Ok(func),
    }
}

/// The name of a typed parameter bound to a plain identifier.
fn param_name(arg: &FnArg) -> Option<&Ident> {
    match arg {
        FnArg::Typed(typed) => match &*typed.pat {
            Pat::Ident(pat) => Some(&pat.ident),
            _ => None,
        },
        FnArg::Receiver(_) => None,
    }
}

fn expand<G: Guard>(args: &G, mut func: ItemFn) -> Result<TokenStream> {
    let handler = func.sig.ident.clone();
    let param = format_ident!("{}{}", PARAM_PREFIX, G::SUFFIX);

    if func
        .sig
        .inputs
        .iter()
        .any(|arg| param_name(arg) == Some(&param))
    {
        return Err(Error::new(
            Span::call_site(),
            format!(
                "#[{}] is applied more than once to `{}`; keep one",
                G::ATTR,
                handler.unraw()
            ),
        ));
    }
    if func.sig.inputs.len() >= MAX_HANDLER_PARAMS {
        return Err(Error::new(
            Span::call_site(),
            format!(
                "#[{}] adds a parameter to `{}`, which would then have more than the \
                 {MAX_HANDLER_PARAMS} parameters actix-web handlers can take",
                G::ATTR,
                handler.unraw()
            ),
        ));
    }

    // The marker type carries `message` into the type system: const generics cannot hold a
    // `&str` on stable Rust. It is emitted beside the fn, so the fn must sit where an item
    // may (module level or a block), not in an `impl`.
    let marker = args
        .message()
        .map(|_| format_ident!("__actix_bouncer_msg_{}_{}", handler.unraw(), G::SUFFIX));
    let marker_item = args
        .message()
        .zip(marker.as_ref())
        .map(|(message, marker)| {
            let krate = args.krate();
            // Same visibility as the handler, so a `pub` handler does not expose a private type;
            // same `cfg`s, so the marker disappears with the handler.
            let vis = &func.vis;
            let cfgs: Vec<_> = func
                .attrs
                .iter()
                .filter(|attr| attr.path().is_ident("cfg"))
                .collect();
            quote! {
                #(#cfgs)*
                #[doc(hidden)]
                #[allow(non_camel_case_types, dead_code)]
                #vis struct #marker;

                #(#cfgs)*
                impl #krate::guard::GuardMessage for #marker {
                    const MESSAGE: &'static str = #message;
                }
            }
        });

    let ty = args.extractor(&handler, marker.as_ref());
    // After the guards of the attributes above this one (they expanded first), before the
    // handler's own parameters: actix extracts in order, so the topmost guard runs first and
    // a refusal comes before any body extractor is polled.
    let at = func
        .sig
        .inputs
        .iter()
        .take_while(|arg| {
            param_name(arg).is_some_and(|name| name.to_string().starts_with(PARAM_PREFIX))
        })
        .count();
    func.sig.inputs.insert(at, syn::parse_quote!(#param: #ty));

    Ok(quote! {
        #marker_item
        #func
    })
}
