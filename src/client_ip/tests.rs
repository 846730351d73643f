use super::*;
use proptest::prelude::*;

use IpHeader::{Forwarded, XForwardedFor, XRealIp};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn resolver(trusted: &[&str], headers: &[IpHeader]) -> ClientIpResolver {
    ClientIpResolver::new(
        trusted.iter().map(|n| n.parse().unwrap()).collect(),
        headers.to_vec(),
        32,
        64,
    )
}

/// The usual setup: our proxies live in 10/8 and 2001:db8:ffff::/48; all headers, XFF first.
fn default_resolver() -> ClientIpResolver {
    resolver(
        &["10.0.0.0/8", "2001:db8:ffff::/48"],
        &[XForwardedFor, Forwarded, XRealIp],
    )
}

fn map(lines: &[(IpHeader, &[u8])]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for &(header, value) in lines {
        map.append(
            header.name().clone(),
            HeaderValue::from_bytes(value).unwrap(),
        );
    }
    map
}

fn one(header: IpHeader, value: &str) -> HeaderMap {
    map(&[(header, value.as_bytes())])
}

const PROXY: &str = "10.0.0.1";

fn from_proxy(r: &ClientIpResolver, headers: &HeaderMap) -> ResolvedClient {
    r.resolve(Some(ip(PROXY)), headers)
}

#[track_caller]
fn assert_client(got: ResolvedClient, want: &str, via: IpHeader) {
    assert_eq!(got.ip, ip(want), "{got:?}");
    assert_eq!(got.source, ClientSource::Header(via), "{got:?}");
    assert_eq!(
        got.key,
        ClientIpResolver::new(vec![], vec![], 32, 64).key_for(ip(want))
    );
    assert!(got.peer.is_some());
}

#[track_caller]
fn assert_peer(got: ResolvedClient) {
    assert_eq!(got.ip, ip(PROXY), "{got:?}");
    assert_eq!(got.source, ClientSource::Peer, "{got:?}");
    assert_eq!(got.key.to_string(), PROXY);
}

/// The client is unknown: never the proxy's address, never the proxy's key.
#[track_caller]
fn assert_unknown(got: ResolvedClient, header: IpHeader, problem: HeaderProblem) {
    assert_eq!(got.ip, ip("0.0.0.0"), "{got:?}");
    assert_eq!(
        got.source,
        ClientSource::Unknown(UnknownClient::Header { header, problem }),
        "{got:?}"
    );
    assert!(!got.is_known());
    assert!(!got.key.is_known());
    assert_eq!(got.key, ClientKey::unknown(Some(ip(PROXY))));
    assert_eq!(got.key.to_string(), "unknown@10.0.0.1");
    assert_eq!(got.peer, Some(ip(PROXY)));
}

// ---- names and config spelling -------------------------------------------------------

#[test]
fn header_spellings() {
    for h in [Forwarded, XForwardedFor, XRealIp] {
        assert_eq!(h.as_str().parse::<IpHeader>(), Ok(h));
        assert_eq!(h.as_str().to_uppercase().parse::<IpHeader>(), Ok(h));
        assert_eq!(h.as_str(), h.name().as_str());
        assert_eq!(h.to_string(), h.as_str());
    }
    assert_eq!("X-Real-Ip".parse::<IpHeader>(), Ok(XRealIp));
    assert_eq!("x_real_ip".parse::<IpHeader>(), Err(UnknownIpHeader));
    assert_eq!("".parse::<IpHeader>(), Err(UnknownIpHeader));
    assert_eq!(
        UnknownIpHeader.to_string(),
        r#"expected one of "forwarded", "x-forwarded-for", "x-real-ip""#
    );
    let _: &dyn std::error::Error = &UnknownIpHeader;
    assert_eq!(HeaderProblem::TooLong.to_string(), "hop too long");
}

// ---- spoofing ---------------------------------------------------------------------------

#[test]
fn forged_headers_from_untrusted_peer_are_ignored() {
    let r = default_resolver();
    let peer = ip("198.51.100.20");
    for headers in [
        one(XForwardedFor, "203.0.113.9"),
        one(Forwarded, "for=203.0.113.9"),
        one(XRealIp, "203.0.113.9"),
        one(XForwardedFor, "garbage\"[;,"),
    ] {
        let got = r.resolve(Some(peer), &headers);
        assert_eq!(got.ip, peer);
        assert_eq!(got.source, ClientSource::Peer);
    }
}

#[test]
fn no_trusted_proxies_means_headers_are_never_used() {
    let r = resolver(&[], &[XForwardedFor, Forwarded, XRealIp]);
    let got = r.resolve(Some(ip(PROXY)), &one(XForwardedFor, "203.0.113.9"));
    assert_peer(got);
    assert!(!r.is_trusted_proxy(ip(PROXY)));
}

#[test]
fn no_configured_headers_means_headers_are_never_used() {
    let r = resolver(&["10.0.0.0/8"], &[]);
    assert_peer(from_proxy(&r, &one(XForwardedFor, "203.0.113.9")));
}

#[test]
fn unconfigured_header_is_ignored() {
    let r = resolver(&["10.0.0.0/8"], &[Forwarded]);
    assert_peer(from_proxy(&r, &one(XForwardedFor, "203.0.113.9")));
    assert_peer(from_proxy(&r, &one(XRealIp, "203.0.113.9")));
}

// ---- the walk ---------------------------------------------------------------------------

#[test]
fn chain_through_two_trusted_proxies() {
    let r = default_resolver();
    // client -> 10.1.1.1 (in the header) -> 10.0.0.1 (the peer)
    let got = from_proxy(&r, &one(XForwardedFor, "203.0.113.9, 10.1.1.1"));
    assert_client(got, "203.0.113.9", XForwardedFor);
    assert_eq!(got.key.to_string(), "203.0.113.9");
}

#[test]
fn client_prepended_values_are_ignored() {
    let r = default_resolver();
    for value in [
        "1.1.1.1, 203.0.113.9, 10.1.1.1",
        "10.9.9.9, 203.0.113.9, 10.1.1.1", // a forged "trusted" value left of the answer
        "not-an-ip, 203.0.113.9, 10.1.1.1",
        "\"[;, , unknown, 203.0.113.9",
    ] {
        assert_client(
            from_proxy(&r, &one(XForwardedFor, value)),
            "203.0.113.9",
            XForwardedFor,
        );
    }
}

#[test]
fn all_trusted_chain_yields_leftmost() {
    let r = default_resolver();
    assert_client(
        from_proxy(&r, &one(XForwardedFor, "10.3.3.3, 10.2.2.2, 10.1.1.1")),
        "10.3.3.3",
        XForwardedFor,
    );
    assert_client(
        from_proxy(&r, &one(Forwarded, "for=10.3.3.3, for=10.2.2.2")),
        "10.3.3.3",
        Forwarded,
    );
}

#[test]
fn garbage_reached_by_the_walk_falls_back_to_peer() {
    let r = default_resolver();
    // The only non-proxy candidate is garbage: we cannot tell who the client is.
    assert_unknown(
        from_proxy(&r, &one(XForwardedFor, "nonsense, 10.1.1.1")),
        XForwardedFor,
        HeaderProblem::Syntax,
    );
    assert_unknown(
        from_proxy(&r, &one(XForwardedFor, "203.0.113.9, unknown")),
        XForwardedFor,
        HeaderProblem::NotAnAddress,
    );
    assert_unknown(
        from_proxy(&r, &one(XForwardedFor, "1.2.3")),
        XForwardedFor,
        HeaderProblem::Syntax,
    );
    assert_unknown(
        from_proxy(&r, &one(XForwardedFor, "010.0.0.1")),
        XForwardedFor,
        HeaderProblem::Syntax,
    );
}

// ---- Forwarded --------------------------------------------------------------------------

#[test]
fn forwarded_forms() {
    let r = default_resolver();
    let cases = [
        ("for=192.0.2.60", "192.0.2.60"),
        ("for=\"[2001:db8:cafe::17]:4711\"", "2001:db8:cafe::17"),
        ("for=\"[2001:db8:cafe::17]\"", "2001:db8:cafe::17"),
        ("for=\"192.0.2.43:47011\"", "192.0.2.43"),
        ("for=\"192.0.2.43:_obfport\"", "192.0.2.43"),
        ("FOR=192.0.2.60", "192.0.2.60"),
        ("For=192.0.2.60;proto=https;by=203.0.113.43", "192.0.2.60"),
        (
            "proto=https;by=\"[2001:db8::1]\";for=192.0.2.60",
            "192.0.2.60",
        ),
        ("for=192.0.2.60;;proto=http", "192.0.2.60"),
        (" for=192.0.2.60 ; proto=http ", "192.0.2.60"),
        ("for=\"\\1\\9\\2.0.2.60\"", "192.0.2.60"),
        (
            "for=\"[2001:db8:cafe::17]:4711\";host=\"a\\\"b,c;d\"",
            "2001:db8:cafe::17",
        ),
        // Unquoted though RFC 7239 wants quotes; unambiguous, so accepted.
        ("for=192.0.2.43:47011", "192.0.2.43"),
        ("for=[2001:db8::2]:80", "2001:db8::2"),
        // Multiple elements: the rightmost non-proxy wins.
        ("for=192.0.2.43, for=198.51.100.17", "198.51.100.17"),
        (
            "for=192.0.2.43, for=198.51.100.17;by=10.0.0.1, for=10.1.1.1",
            "198.51.100.17",
        ),
        // A quoted comma does not split elements.
        ("for=192.0.2.43;host=\"x,y\", for=10.1.1.1", "192.0.2.43"),
    ];
    for (value, want) in cases {
        assert_client(from_proxy(&r, &one(Forwarded, value)), want, Forwarded);
    }
}

#[test]
fn forwarded_multiple_lines_are_one_list() {
    let r = resolver(&["10.0.0.0/8"], &[Forwarded]);
    let headers = map(&[
        (Forwarded, b"for=198.51.100.1"),
        (Forwarded, b"for=203.0.113.5, for=10.2.2.2"),
        (Forwarded, b"for=10.1.1.1"),
    ]);
    assert_client(from_proxy(&r, &headers), "203.0.113.5", Forwarded);

    let headers = map(&[
        (Forwarded, b"for=198.51.100.1"),
        (Forwarded, b"for=10.1.1.1"),
    ]);
    assert_client(from_proxy(&r, &headers), "198.51.100.1", Forwarded);
}

#[test]
fn forwarded_non_addresses_reached_fall_back() {
    let r = default_resolver();
    let cases = [
        ("for=unknown", HeaderProblem::NotAnAddress),
        ("for=UNKNOWN", HeaderProblem::NotAnAddress),
        ("for=\"unknown:4711\"", HeaderProblem::NotAnAddress),
        ("for=\"_hidden\"", HeaderProblem::NotAnAddress),
        ("for=_SEVKISEK", HeaderProblem::NotAnAddress),
        ("for=_hidden, for=10.1.1.1", HeaderProblem::NotAnAddress),
        ("proto=https;by=10.0.0.1", HeaderProblem::NotAnAddress),
        ("for=192.0.2.60, ", HeaderProblem::Syntax),
        ("", HeaderProblem::Syntax),
        ("for=", HeaderProblem::Syntax),
        ("for=\"192.0.2.60", HeaderProblem::Syntax),
        ("for=\"192.0.2.60\"x", HeaderProblem::Syntax),
        ("for=192.0.2.60;for=192.0.2.61", HeaderProblem::Syntax),
        ("for=2001:db8::1", HeaderProblem::Syntax),
        ("for=\"[2001:db8::1\"", HeaderProblem::Syntax),
        ("for=\"[2001:db8::1]x\"", HeaderProblem::Syntax),
        ("for=\"[192.0.2.1]\"", HeaderProblem::Syntax),
        ("for=192.0.2.1:99999", HeaderProblem::Syntax),
        ("for=192.0.2.1:", HeaderProblem::Syntax),
        ("for=_", HeaderProblem::Syntax),
        ("for=\"_a b\"", HeaderProblem::Syntax),
        ("for", HeaderProblem::Syntax),
        ("=192.0.2.60", HeaderProblem::Syntax),
        ("f(r=192.0.2.60", HeaderProblem::Syntax),
        ("for=192.0.2.60 x", HeaderProblem::Syntax),
        ("for=\"192.0.2.60\\\"", HeaderProblem::Syntax),
    ];
    for (value, problem) in cases {
        assert_unknown(from_proxy(&r, &one(Forwarded, value)), Forwarded, problem);
    }
}

#[test]
fn forwarded_garbage_left_of_the_answer_is_ignored() {
    let r = default_resolver();
    for value in [
        "for=unknown, for=203.0.113.9",
        "for=\"_hidden\", for=203.0.113.9, for=10.1.1.1",
        "garbage;;;===, for=203.0.113.9",
        "for=\"unterminated, for=203.0.113.9",
        "\"\\\"\\, for=203.0.113.9",
        "for=1.1.1.1;for=2.2.2.2, for=\"[2001:db8:cafe::17]:4711\", for=203.0.113.9",
    ] {
        assert_client(
            from_proxy(&r, &one(Forwarded, value)),
            "203.0.113.9",
            Forwarded,
        );
    }
    // And on an earlier line.
    let headers = map(&[(Forwarded, b"for=\"oops"), (Forwarded, b"for=203.0.113.9")]);
    assert_client(from_proxy(&r, &headers), "203.0.113.9", Forwarded);
}

#[test]
fn forwarded_elements_split_from_the_right() {
    let split = |s: &str| -> Vec<String> {
        forwarded::Elements::new(s.as_bytes())
            .map(|e| String::from_utf8(e.unwrap().to_vec()).unwrap())
            .collect()
    };
    assert_eq!(split(""), [""]);
    assert_eq!(split("a,b"), ["b", "a"]);
    assert_eq!(split("a,"), ["", "a"]);
    assert_eq!(split("a=\"x,y\",b"), ["b", "a=\"x,y\""]);
    assert_eq!(split(r#"a="x\",y",b"#), ["b", r#"a="x\",y""#]);
    // An odd quote at the right end cannot be told apart from the right; it only ever
    // makes that (malformed) rightmost element larger.
    assert_eq!(split(r#"a="x\\",y""#), [r#"a="x\\",y""#]);
    // A stray quote left of a comma cannot swallow the elements to its right.
    assert_eq!(split("x\",y"), ["y", "x\""]);
}

// ---- X-Forwarded-For and X-Real-IP ------------------------------------------------------

#[test]
fn xff_forms() {
    let r = default_resolver();
    let cases = [
        ("203.0.113.9", "203.0.113.9"),
        ("  203.0.113.9  ", "203.0.113.9"),
        ("\t203.0.113.9,10.1.1.1\t", "203.0.113.9"),
        ("203.0.113.9:443", "203.0.113.9"),
        ("2001:db8::9", "2001:db8::9"),
        ("[2001:db8::9]", "2001:db8::9"),
        ("[2001:db8::9]:8080", "2001:db8::9"),
        (
            "198.51.100.1 ,203.0.113.9 , [2001:db8:ffff::1]:80",
            "203.0.113.9",
        ),
        // Empty elements left of the answer are never reached.
        (",,198.51.100.1, , 203.0.113.9", "203.0.113.9"),
        ("::ffff:203.0.113.9", "203.0.113.9"),
        ("[::ffff:203.0.113.9]:1", "203.0.113.9"),
    ];
    for (value, want) in cases {
        assert_client(
            from_proxy(&r, &one(XForwardedFor, value)),
            want,
            XForwardedFor,
        );
    }
}

#[test]
fn xff_bad_forms_reached_fall_back() {
    let r = default_resolver();
    for value in [
        "",
        "  ",
        "203.0.113.9,",
        "203.0.113.9, ,10.1.1.1",
        "203.0.113.9:",
        "203.0.113.9:http",
        "203.0.113.9:65536",
        "[203.0.113.9]",
        "[2001:db8::9",
        "[2001:db8::9]:",
        "[2001:db8::9]x",
        "2001:db8::9:80:x",
        "fe80::1%eth0",
        "\"203.0.113.9\"",
    ] {
        assert_unknown(
            from_proxy(&r, &one(XForwardedFor, value)),
            XForwardedFor,
            HeaderProblem::Syntax,
        );
    }
}

#[test]
fn xff_multiple_lines_are_one_list() {
    let r = default_resolver();
    let headers = map(&[
        (XForwardedFor, b"198.51.100.1, 203.0.113.9"),
        (XForwardedFor, b"10.2.2.2"),
        (XForwardedFor, b" 10.1.1.1 "),
    ]);
    assert_client(from_proxy(&r, &headers), "203.0.113.9", XForwardedFor);

    let headers = map(&[
        (XForwardedFor, b"198.51.100.1"),
        (XForwardedFor, b"203.0.113.9"),
    ]);
    assert_client(from_proxy(&r, &headers), "203.0.113.9", XForwardedFor);
}

#[test]
fn x_real_ip() {
    let r = resolver(&["10.0.0.0/8"], &[XRealIp]);
    for (value, want) in [
        ("203.0.113.9", "203.0.113.9"),
        (" 203.0.113.9:8080 ", "203.0.113.9"),
        ("[2001:db8::9]:8080", "2001:db8::9"),
        ("2001:db8::9", "2001:db8::9"),
        // Set by the trusted peer and the only element, so used even if it is a proxy.
        ("10.5.5.5", "10.5.5.5"),
    ] {
        assert_client(from_proxy(&r, &one(XRealIp, value)), want, XRealIp);
    }
    for value in ["203.0.113.9, 198.51.100.1", "", "nope"] {
        assert_unknown(
            from_proxy(&r, &one(XRealIp, value)),
            XRealIp,
            HeaderProblem::Syntax,
        );
    }
    assert_unknown(
        from_proxy(&r, &one(XRealIp, "unknown")),
        XRealIp,
        HeaderProblem::NotAnAddress,
    );
    // Two lines: no single value the peer set.
    let headers = map(&[(XRealIp, b"203.0.113.9"), (XRealIp, b"198.51.100.1")]);
    assert_unknown(from_proxy(&r, &headers), XRealIp, HeaderProblem::Syntax);
}

// ---- header choice ----------------------------------------------------------------------

#[test]
fn first_present_header_wins() {
    let r = resolver(&["10.0.0.0/8"], &[XRealIp, XForwardedFor]);
    let both = map(&[(XForwardedFor, b"198.51.100.1"), (XRealIp, b"203.0.113.9")]);
    assert_client(from_proxy(&r, &both), "203.0.113.9", XRealIp);

    let xff_only = one(XForwardedFor, "198.51.100.1");
    assert_client(from_proxy(&r, &xff_only), "198.51.100.1", XForwardedFor);

    // Present but unusable: no falling through to the next header.
    let bad_real_ip = map(&[(XForwardedFor, b"198.51.100.1"), (XRealIp, b"junk")]);
    assert_unknown(from_proxy(&r, &bad_real_ip), XRealIp, HeaderProblem::Syntax);

    // None present: the peer, no problem.
    assert_peer(from_proxy(&r, &one(Forwarded, "for=198.51.100.1")));

    let r = resolver(&["10.0.0.0/8"], &[XForwardedFor, XRealIp]);
    assert_client(from_proxy(&r, &both), "198.51.100.1", XForwardedFor);
}

// ---- limits -----------------------------------------------------------------------------

/// `n` distinct trusted proxies, leftmost first: 10.0.0.n, ..., 10.0.0.1.
fn trusted_hops(n: usize) -> Vec<String> {
    (1..=n)
        .rev()
        .map(|i| format!("10.0.{}.{}", i / 256, i % 256))
        .collect()
}

#[test]
fn too_many_hops_counts_only_trusted_hops_walked() {
    let r = default_resolver();
    let xff = |hops: &[String]| one(XForwardedFor, &hops.join(", "));
    let fwd = |hops: &[String]| {
        let elements: Vec<String> = hops
            .iter()
            .map(|h| format!("for={h};host=\"a,b\""))
            .collect();
        one(Forwarded, &elements.join(", "))
    };

    // 32 trusted hops and nothing left of them: the all-trusted rule, leftmost wins.
    let mut hops = trusted_hops(32);
    assert_eq!(hops[0], "10.0.0.32");
    assert_client(from_proxy(&r, &xff(&hops)), "10.0.0.32", XForwardedFor);
    assert_client(from_proxy(&r, &fwd(&hops)), "10.0.0.32", Forwarded);

    // 31 trusted hops, then the client as hop 32: still inside the limit.
    hops[0] = "203.0.113.9".into();
    assert_client(from_proxy(&r, &xff(&hops)), "203.0.113.9", XForwardedFor);
    assert_client(from_proxy(&r, &fwd(&hops)), "203.0.113.9", Forwarded);

    // 32 trusted hops with anything at all left of them: the walk would have to read hop 33.
    for left in ["10.0.0.33", "203.0.113.9", "", "garbage"] {
        let mut hops = trusted_hops(32);
        hops.insert(0, left.into());
        assert_unknown(
            from_proxy(&r, &xff(&hops)),
            XForwardedFor,
            HeaderProblem::TooManyHops,
        );
        assert_unknown(
            from_proxy(&r, &fwd(&hops)),
            Forwarded,
            HeaderProblem::TooManyHops,
        );
    }
    let mut hops = trusted_hops(32);
    hops.insert(0, "203.0.113.9".into());
    let headers = map(&[
        (XForwardedFor, &b"\xff"[..]),
        (XForwardedFor, hops.join(",").as_bytes()),
    ]);
    assert_unknown(
        from_proxy(&r, &headers),
        XForwardedFor,
        HeaderProblem::TooManyHops,
    );

    // Counted over all lines: 16 + 16 trusted is the limit, 11 + 11 + 11 is past it.
    let all = trusted_hops(33);
    let lines = [all[1..17].join(", "), all[17..].join(", ")];
    let headers = map(&[
        (XForwardedFor, lines[0].as_bytes()),
        (XForwardedFor, lines[1].as_bytes()),
    ]);
    assert_client(from_proxy(&r, &headers), "10.0.0.32", XForwardedFor);
    let lines = [
        all[..11].join(","),
        all[11..22].join(","),
        all[22..].join(","),
    ];
    let headers = map(&[
        (XForwardedFor, lines[0].as_bytes()),
        (XForwardedFor, lines[1].as_bytes()),
        (XForwardedFor, lines[2].as_bytes()),
    ]);
    assert_unknown(
        from_proxy(&r, &headers),
        XForwardedFor,
        HeaderProblem::TooManyHops,
    );
}

#[test]
fn many_hops_left_of_the_answer_are_ignored() {
    let r = default_resolver();
    for junk in ["x, ".repeat(1000), ",".repeat(40), "10.9.9.9, ".repeat(500)] {
        assert_client(
            from_proxy(
                &r,
                &one(XForwardedFor, &format!("{junk}203.0.113.9, 10.1.1.1")),
            ),
            "203.0.113.9",
            XForwardedFor,
        );
        assert_client(
            from_proxy(
                &r,
                &one(Forwarded, &format!("{junk}for=203.0.113.9, for=10.1.1.1")),
            ),
            "203.0.113.9",
            Forwarded,
        );
    }
    // Also as earlier lines of their own.
    let junk = ",".repeat(100);
    let headers = map(&[
        (XForwardedFor, junk.as_bytes()),
        (XForwardedFor, junk.as_bytes()),
        (XForwardedFor, b"203.0.113.9"),
    ]);
    assert_client(from_proxy(&r, &headers), "203.0.113.9", XForwardedFor);
    // 31 trusted proxies, the client as hop 32, then 900 more.
    let hops = trusted_hops(31).join(", ");
    let value = format!("{}198.51.100.7, {hops}", "1.1.1.1,".repeat(900));
    assert_client(
        from_proxy(&r, &one(XForwardedFor, &value)),
        "198.51.100.7",
        XForwardedFor,
    );
}

#[test]
fn padding_never_makes_the_header_unusable() {
    let r = default_resolver();
    // Far past any whole-header size: the walk reads only what it needs from the right.
    for pad in [
        " ".repeat(64 * 1024),
        "1.1.1.1, ".repeat(8 * 1024),
        "x".repeat(100_000),
    ] {
        assert_client(
            from_proxy(
                &r,
                &one(XForwardedFor, &format!("{pad}, 203.0.113.9, 10.1.1.1")),
            ),
            "203.0.113.9",
            XForwardedFor,
        );
        assert_client(
            from_proxy(&r, &one(Forwarded, &format!("{pad}, for=203.0.113.9"))),
            "203.0.113.9",
            Forwarded,
        );
        // On lines of their own, too.
        let headers = map(&[
            (Forwarded, pad.as_bytes()),
            (Forwarded, pad.as_bytes()),
            (Forwarded, b"for=203.0.113.9"),
        ]);
        assert_client(from_proxy(&r, &headers), "203.0.113.9", Forwarded);
    }
    // A long unterminated quote on the left is not scanned either.
    let value = format!("for=\"{}, for=203.0.113.9", "a".repeat(50_000));
    assert_client(
        from_proxy(&r, &one(Forwarded, &value)),
        "203.0.113.9",
        Forwarded,
    );
}

#[test]
fn a_hop_the_walk_reaches_may_not_exceed_the_limit() {
    let r = default_resolver();
    let exact = format!("{}203.0.113.9", " ".repeat(MAX_HOP_BYTES - 11));
    assert_eq!(exact.len(), MAX_HOP_BYTES);
    assert_client(
        from_proxy(&r, &one(XForwardedFor, &format!("junk,{exact}"))),
        "203.0.113.9",
        XForwardedFor,
    );
    assert_client(
        from_proxy(&r, &one(XForwardedFor, &exact)),
        "203.0.113.9",
        XForwardedFor,
    );
    let over = format!(" {exact}");
    for value in [
        over.clone(),
        format!("junk,{over}"),
        format!("{over}, 10.1.1.1"),
    ] {
        assert_unknown(
            from_proxy(&r, &one(XForwardedFor, &value)),
            XForwardedFor,
            HeaderProblem::TooLong,
        );
    }
    let element = format!("for=203.0.113.9;host=\"{}\"", "h".repeat(MAX_HOP_BYTES));
    assert_unknown(
        from_proxy(&r, &one(Forwarded, &element)),
        Forwarded,
        HeaderProblem::TooLong,
    );
    assert_unknown(
        from_proxy(&r, &one(Forwarded, &format!("x, {element}"))),
        Forwarded,
        HeaderProblem::TooLong,
    );
    let r = resolver(&["10.0.0.0/8"], &[XRealIp]);
    assert_unknown(
        from_proxy(&r, &one(XRealIp, &over)),
        XRealIp,
        HeaderProblem::TooLong,
    );
}

#[test]
fn not_utf8_in_a_hop_the_walk_reads() {
    let r = default_resolver();
    for (header, value) in [
        (XForwardedFor, &b"203.0.113.9\xff"[..]),
        (XForwardedFor, b"\xff, 10.1.1.1"),
        (XForwardedFor, b"203.0.113.9, 10.1.1.1\x80"),
        (XForwardedFor, b"203.0.113.9, 10.1\xc3\xa9.1.1"),
        (Forwarded, b"for=\"\xc3\xa9\", for=10.1.1.1"),
        (Forwarded, b"for=203.0.113.9;host=\"\xff\""),
        (Forwarded, b"for=203.0.113.9, for=10.1.1.1;by=\xfe"),
        (XRealIp, b"203.0.113.9\x80"),
        (XRealIp, b"\xff"),
    ] {
        let r2 = resolver(&["10.0.0.0/8"], &[header]);
        for r in [&r, &r2] {
            let got = from_proxy(r, &map(&[(header, value)]));
            assert_unknown(got, header, HeaderProblem::NotUtf8);
        }
    }
}

#[test]
fn bad_bytes_left_of_the_answer_are_ignored() {
    let r = default_resolver();
    for (header, value) in [
        (XForwardedFor, &b"\xff, 203.0.113.9"[..]),
        (XForwardedFor, b"\xff\xfe\x80, 203.0.113.9, 10.1.1.1"),
        (XForwardedFor, b"\xc3\xa9,203.0.113.9,10.1.1.1"),
        (XForwardedFor, b"1.1.1.1\xff\"[, 203.0.113.9"),
        (Forwarded, b"for=\"\xc3\xa9\", for=203.0.113.9"),
        (Forwarded, b"\xff, for=203.0.113.9, for=10.1.1.1"),
        // A stray quote or escape next to the bad bytes: still only the left element.
        (Forwarded, b"for=\"\xff, for=203.0.113.9"),
        (
            Forwarded,
            b"\xff\"\\, for=203.0.113.9;proto=https, for=\"[2001:db8:ffff::1]:80\"",
        ),
        (
            Forwarded,
            b"\"\xff\"\xff\", for=\"203.0.113.9:4711\", for=10.1.1.1",
        ),
    ] {
        let r2 = resolver(&["10.0.0.0/8", "2001:db8:ffff::/48"], &[header]);
        for r in [&r, &r2] {
            assert_client(
                from_proxy(r, &map(&[(header, value)])),
                "203.0.113.9",
                header,
            );
        }
    }
    // On an earlier line of its own.
    for header in [XForwardedFor, Forwarded] {
        let answer: &[u8] = match header {
            Forwarded => b"for=203.0.113.9",
            _ => b"203.0.113.9",
        };
        let headers = map(&[(header, b"\xff\"\xff"), (header, answer)]);
        assert_client(from_proxy(&r, &headers), "203.0.113.9", header);
    }
}

// ---- normalisation ----------------------------------------------------------------------

#[test]
fn ipv4_mapped_normalisation() {
    assert_eq!(normalize(ip("::ffff:10.0.0.1")), ip("10.0.0.1"));
    assert_eq!(normalize(ip("::10.0.0.1")), ip("::10.0.0.1"));
    assert_eq!(normalize(ip("2001:db8::1")), ip("2001:db8::1"));
    assert_eq!(normalize(ip("10.0.0.1")), ip("10.0.0.1"));

    let r = resolver(&["10.0.0.0/8"], &[XForwardedFor]);
    assert!(r.is_trusted_proxy(ip("::ffff:10.0.0.1")));
    let got = r.resolve(
        Some(ip("::ffff:10.0.0.1")),
        &one(XForwardedFor, "::ffff:203.0.113.9, ::ffff:10.9.9.9"),
    );
    assert_client(got, "203.0.113.9", XForwardedFor);
    assert_eq!(got.key, r.key_for(ip("203.0.113.9")));

    // An untrusted mapped peer comes back as IPv4 too.
    let got = r.resolve(Some(ip("::ffff:198.51.100.1")), &HeaderMap::new());
    assert_eq!(got.ip, ip("198.51.100.1"));
    assert_eq!(got.key.to_string(), "198.51.100.1");
}

#[test]
fn mapped_trusted_network_means_ipv4() {
    let r = resolver(&["::ffff:10.0.0.0/104"], &[XForwardedFor]);
    assert!(r.is_trusted_proxy(ip("10.1.2.3")));
    assert!(r.is_trusted_proxy(ip("::ffff:10.1.2.3")));
    assert!(!r.is_trusted_proxy(ip("11.0.0.1")));
    assert_client(
        r.resolve(Some(ip("10.0.0.1")), &one(XForwardedFor, "203.0.113.9")),
        "203.0.113.9",
        XForwardedFor,
    );
}

#[test]
fn trusted_ipv6_proxy() {
    let r = default_resolver();
    assert!(r.is_trusted_proxy(ip("2001:db8:ffff:1::1")));
    assert!(!r.is_trusted_proxy(ip("2001:db8:fffe::1")));
    let got = r.resolve(
        Some(ip("2001:db8:ffff::1")),
        &one(
            Forwarded,
            "for=\"[2001:db8:1:2::9]:1\", for=\"[2001:db8:ffff::2]\"",
        ),
    );
    assert_client(got, "2001:db8:1:2::9", Forwarded);
    assert_eq!(got.key.to_string(), "2001:db8:1:2::/64");
}

// ---- grouping ---------------------------------------------------------------------------

#[test]
fn grouping_keys() {
    let r = resolver(&[], &[]);
    let a = r.key_for(ip("2001:db8:1:2::1"));
    let b = r.key_for(ip("2001:db8:1:2:ffff::9"));
    let c = r.key_for(ip("2001:db8:1:3::1"));
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert_eq!(a.to_string(), "2001:db8:1:2::/64");
    assert_eq!(
        a.network(),
        Some("2001:db8:1:2::/64".parse::<IpNet>().unwrap())
    );
    assert_eq!(r.key_for(ip("203.0.113.7")).to_string(), "203.0.113.7");
    assert_ne!(r.key_for(ip("203.0.113.7")), r.key_for(ip("203.0.113.8")));
    assert_eq!(
        r.key_for(ip("::ffff:203.0.113.7")),
        r.key_for(ip("203.0.113.7"))
    );

    let r56 = ClientIpResolver::new(vec![], vec![], 32, 56);
    assert_eq!(
        r56.key_for(ip("2001:db8:1:2::1")),
        r56.key_for(ip("2001:db8:1:ff::1"))
    );
    assert_ne!(
        r56.key_for(ip("2001:db8:1:2::1")),
        r56.key_for(ip("2001:db8:1:100::1"))
    );
    assert_eq!(
        r56.key_for(ip("2001:db8:1:2::1")).to_string(),
        "2001:db8:1::/56"
    );

    let r24 = ClientIpResolver::new(vec![], vec![], 24, 64);
    assert_eq!(
        r24.key_for(ip("203.0.113.7")),
        r24.key_for(ip("203.0.113.200"))
    );
    assert_ne!(
        r24.key_for(ip("203.0.113.7")),
        r24.key_for(ip("203.0.114.7"))
    );
    assert_eq!(r24.key_for(ip("203.0.113.7")).to_string(), "203.0.113.0/24");

    let r128 = ClientIpResolver::new(vec![], vec![], 32, 128);
    assert_eq!(r128.key_for(ip("2001:db8::1")).to_string(), "2001:db8::1");
}

#[test]
fn keys_are_the_networks_of_every_prefix_length() {
    let v4 = [
        "203.0.113.7",
        "255.255.255.255",
        "0.0.0.0",
        "128.0.0.1",
        "::ffff:10.1.2.3",
    ];
    let v6 = [
        "2001:db8:1:2:3:4:5:6",
        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        "::",
        "8000::1",
    ];
    for p4 in 0..=40u8 {
        for p6 in [
            0u8, 1, 2, 31, 32, 33, 48, 56, 63, 64, 65, 96, 127, 128, 129, 255,
        ] {
            let r = ClientIpResolver::new(vec![], vec![], p4, p6);
            for a in v4.iter().chain(&v6) {
                let a = normalize(ip(a));
                let net = match a {
                    IpAddr::V4(a) => IpNet::V4(Ipv4Net::new(a, p4.clamp(1, 32)).unwrap().trunc()),
                    IpAddr::V6(a) => IpNet::V6(Ipv6Net::new(a, p6.clamp(1, 128)).unwrap().trunc()),
                };
                assert_eq!(r.key_for(a), ClientKey::of(net), "{a} /{p4} /{p6}");
                assert_eq!(r.key_for(a).network(), Some(net));
            }
        }
    }
}

#[test]
fn out_of_range_prefixes_are_clamped() {
    let r = ClientIpResolver::new(vec![], vec![], 0, 200);
    assert_eq!(r.key_for(ip("203.0.113.7")).to_string(), "128.0.0.0/1");
    assert_eq!(r.key_for(ip("2001:db8::1")).to_string(), "2001:db8::1");
    let r = ClientIpResolver::new(vec![], vec![], 99, 0);
    assert_eq!(r.key_for(ip("203.0.113.7")).to_string(), "203.0.113.7");
    assert_eq!(r.key_for(ip("2001:db8::1")).to_string(), "::/1");
}

#[test]
fn client_key_serializes_as_display() {
    let r = ClientIpResolver::new(vec![], vec![], 24, 64);
    let keys = [
        r.key_for(ip("203.0.113.7")),
        r.key_for(ip("2001:db8:1:2::1")),
    ];
    assert_eq!(
        serde_json::to_string(&keys).unwrap(),
        r#"["203.0.113.0/24","2001:db8:1:2::/64"]"#
    );
    let host = default_resolver().key_for(ip("203.0.113.7"));
    assert_eq!(serde_json::to_string(&host).unwrap(), r#""203.0.113.7""#);
}

// ---- missing peer -----------------------------------------------------------------------

#[test]
fn missing_peer() {
    // Even trusting every address, headers are not believed without a peer: the client is
    // unknown, with a key of its own, and the reason says what to configure.
    let r = resolver(&["0.0.0.0/0", "::/0"], &[XForwardedFor, Forwarded, XRealIp]);
    let got = r.resolve(None, &one(XForwardedFor, "203.0.113.9"));
    assert_eq!(got.ip, ip("0.0.0.0"));
    assert_eq!(got.peer, None);
    assert_eq!(
        got.source,
        ClientSource::Unknown(UnknownClient::NoPeerAddress)
    );
    assert_eq!(got.key.to_string(), "unknown@unix");
    assert_ne!(got.key, r.key_for(ip("0.0.0.0")));
    assert!(UnknownClient::NoPeerAddress
        .to_string()
        .contains("\"unix\""));

    let present = r.resolve(Some(ip("10.0.0.1")), &HeaderMap::new());
    assert_eq!(present.peer, Some(ip("10.0.0.1")));
    assert_eq!(present.source, ClientSource::Peer);
}

#[test]
fn a_trusted_unix_socket_proxy() {
    let r = resolver(&["10.0.0.0/8"], &[XForwardedFor]).trust_unix_socket(true);
    // Forwarding headers from a Unix-socket peer are read like any trusted proxy's.
    let got = r.resolve(
        None,
        &one(XForwardedFor, "198.51.100.1, 203.0.113.9, 10.1.1.1"),
    );
    assert_eq!(got.ip, ip("203.0.113.9"));
    assert_eq!(got.source, ClientSource::Header(XForwardedFor));
    assert_eq!(got.key, r.key_for(ip("203.0.113.9")));
    // Without a header, or with an unusable one, the client is unknown, never everyone's key.
    let none = r.resolve(None, &HeaderMap::new());
    assert_eq!(
        none.source,
        ClientSource::Unknown(UnknownClient::NoHeaderFromUnixProxy)
    );
    assert_eq!(none.key.to_string(), "unknown@unix");
    let bad = r.resolve(None, &one(XForwardedFor, "unknown"));
    assert_eq!(
        bad.source,
        ClientSource::Unknown(UnknownClient::Header {
            header: XForwardedFor,
            problem: HeaderProblem::NotAnAddress
        })
    );
    // IP peers are unaffected: an untrusted one is the client, headers ignored.
    let direct = r.resolve(Some(ip("198.51.100.9")), &one(XForwardedFor, "203.0.113.9"));
    assert_eq!(direct.ip, ip("198.51.100.9"));
}

#[test]
fn unknown_behind_an_ipv6_proxy_is_unspecified_v6() {
    let r = default_resolver();
    let got = r.resolve(Some(ip("2001:db8:ffff::1")), &one(XForwardedFor, "unknown"));
    assert_eq!(got.ip, ip("::"));
    assert_eq!(got.key.to_string(), "unknown@2001:db8:ffff::1");
    assert_eq!(got.key.network(), None);
}

// ---- properties -------------------------------------------------------------------------

/// Whether some substring of a line (raw, or with backslash escapes removed) parses to `ip`.
fn appears_in(ip: IpAddr, lines: &[Vec<u8>]) -> bool {
    lines.iter().any(|line| {
        let unescaped: Vec<u8> = line.iter().copied().filter(|&b| b != b'\\').collect();
        [line.as_slice(), unescaped.as_slice()].iter().any(|s| {
            (0..s.len()).any(|i| {
                (i + 1..=s.len()).any(|j| {
                    std::str::from_utf8(&s[i..j])
                        .ok()
                        .and_then(|t| t.parse::<IpAddr>().ok())
                        .is_some_and(|p| normalize(p) == ip)
                })
            })
        })
    })
}

fn check_arbitrary(
    order: &[IpHeader],
    header: IpHeader,
    lines: &[Vec<u8>],
) -> Result<(), TestCaseError> {
    let lines: Vec<Vec<u8>> = lines
        .iter()
        .filter(|l| HeaderValue::from_bytes(l).is_ok())
        .cloned()
        .collect();
    let mut headers = HeaderMap::new();
    for l in &lines {
        headers.append(header.name().clone(), HeaderValue::from_bytes(l).unwrap());
    }
    let r = resolver(&["10.0.0.0/8", "2001:db8:ffff::/48"], order);
    let peer = ip(PROXY);
    let got = r.resolve(Some(peer), &headers);
    prop_assert_eq!(got.peer, Some(peer));
    match got.source {
        ClientSource::Peer => {
            prop_assert_eq!(got.ip, peer);
            prop_assert_eq!(got.key, r.key_for(got.ip));
        }
        ClientSource::Header(via) => {
            prop_assert_eq!(via, header);
            prop_assert_eq!(got.key, r.key_for(got.ip));
            prop_assert!(appears_in(got.ip, &lines), "{:?} not in header", got.ip);
        }
        ClientSource::Unknown(UnknownClient::Header { header: h, .. }) => {
            // Never the proxy's identity.
            prop_assert_eq!(h, header);
            prop_assert_ne!(got.ip, peer);
            prop_assert_ne!(got.key, r.key_for(peer));
        }
        other => prop_assert!(false, "{:?}", other),
    }
    Ok(())
}

fn header_strategy() -> impl Strategy<Value = IpHeader> {
    prop_oneof![Just(Forwarded), Just(XForwardedFor), Just(XRealIp)]
}

fn piece() -> impl Strategy<Value = Vec<u8>> {
    let fixed: &[&str] = &[
        ",",
        ", ",
        ";",
        "\"",
        "\\",
        "[",
        "]",
        ":",
        "=",
        " ",
        "\t",
        "for=",
        "FOR=",
        "proto=https",
        "by=",
        "unknown",
        "_hidden",
        "10.1.1.1",
        "10.0.0.1",
        "203.0.113.9",
        "198.51.100.7",
        "2001:db8::1",
        "2001:db8:ffff::1",
        "::ffff:203.0.113.9",
        "::ffff:10.2.2.2",
        "4711",
        "1.2.3",
        "0",
        "\u{e9}",
    ];
    prop_oneof![
        3 => proptest::sample::select(fixed).prop_map(|s| s.as_bytes().to_vec()),
        1 => any::<u8>().prop_map(|b| vec![b]),
    ]
}

fn structured_line() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(piece(), 0..16).prop_map(|p| p.concat())
}

/// Addresses for the well-formed chains: our proxies and clients, IPv4, IPv6 and mapped.
const POOL: [&str; 6] = [
    "10.1.1.1",
    "203.0.113.9",
    "2001:db8:ffff::7",
    "2001:db8:1::9",
    "::ffff:10.2.2.2",
    "::ffff:198.51.100.7",
];

/// One well-formed hop: `POOL[i]` in spelling `style`, quoted (`Forwarded` only) if `quote`.
fn render_hop((i, style, quote): (usize, usize, bool), forwarded: bool) -> String {
    let a: IpAddr = POOL[i].parse().unwrap();
    let node = match (a, style) {
        (IpAddr::V4(v4), 1) => format!("{v4}:80"),
        (IpAddr::V6(v6), 1 | 2) => format!("[{v6}]:443"),
        (IpAddr::V6(v6), _) if forwarded => format!("[{v6}]"),
        (a, _) => a.to_string(),
    };
    if forwarded {
        let value = if quote || node.contains(':') {
            format!("\"{node}\"")
        } else {
            node
        };
        match style {
            3 => format!("proto=https;For={value};by=_x"),
            _ => format!("for={value}"),
        }
    } else {
        node
    }
}

/// The rightmost hop that is not a trusted proxy, if any.
fn reference_walk(r: &ClientIpResolver, hops: &[(usize, usize, bool)]) -> Option<IpAddr> {
    hops.iter()
        .rev()
        .map(|&(i, _, _)| normalize(POOL[i].parse().unwrap()))
        .find(|&a| !r.is_trusted_proxy(a))
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic_and_only_yield_header_addresses(
        header in header_strategy(),
        lines in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 1..4),
    ) {
        check_arbitrary(&[XForwardedFor, Forwarded, XRealIp], header, &lines)?;
    }

    #[test]
    fn structured_garbage_never_panics_and_only_yields_header_addresses(
        header in header_strategy(),
        lines in proptest::collection::vec(structured_line(), 1..4),
    ) {
        check_arbitrary(&[XRealIp, Forwarded, XForwardedFor], header, &lines)?;
    }

    /// Well-formed chains in assorted spellings always resolve like the reference walk.
    #[test]
    fn well_formed_chains_match_reference_walk(
        hops in proptest::collection::vec((0usize..6, 0usize..4, any::<bool>()), 1..12),
        forwarded in any::<bool>(),
        split in 0usize..12,
    ) {
        let rendered: Vec<String> =
            hops.iter().map(|&hop| render_hop(hop, forwarded)).collect();
        let split = split.min(rendered.len());
        let mut lines = vec![rendered[..split].join(", "), rendered[split..].join(" ,")];
        lines.retain(|l| !l.is_empty());

        let header = if forwarded { Forwarded } else { XForwardedFor };
        let r = default_resolver();
        let mut headers = HeaderMap::new();
        for l in &lines {
            headers.append(header.name().clone(), HeaderValue::from_str(l).unwrap());
        }
        let want = reference_walk(&r, &hops)
            .unwrap_or_else(|| normalize(POOL[hops[0].0].parse().unwrap()));
        let got = from_proxy(&r, &headers);
        prop_assert_eq!(got.ip, want, "{:?}", lines);
        prop_assert_eq!(got.source, ClientSource::Header(header));
    }

    /// Whatever a client puts left of a chain (bad bytes, quotes, escapes, thousands of
    /// elements) never changes the answer once the chain holds a hop that is not ours.
    #[test]
    fn left_junk_never_changes_the_answer(
        hops in proptest::collection::vec((0usize..6, 0usize..4, any::<bool>()), 1..12),
        forwarded in any::<bool>(),
        junk in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..64),
            structured_line(),
            (1usize..2000).prop_map(|n| vec![b','; n]),
        ],
        own_line in any::<bool>(),
    ) {
        let r = default_resolver();
        let want = reference_walk(&r, &hops);
        prop_assume!(want.is_some());
        // Whatever a header value can carry at all: no controls but tab, no DEL.
        let junk: Vec<u8> = junk
            .into_iter()
            .filter(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f))
            .collect();
        let chain = hops
            .iter()
            .map(|&hop| render_hop(hop, forwarded))
            .collect::<Vec<_>>()
            .join(", ");
        let lines: Vec<Vec<u8>> = if own_line {
            vec![junk, chain.into_bytes()]
        } else {
            vec![[junk.as_slice(), b", ", chain.as_bytes()].concat()]
        };

        let header = if forwarded { Forwarded } else { XForwardedFor };
        let mut headers = HeaderMap::new();
        for l in &lines {
            headers.append(header.name().clone(), HeaderValue::from_bytes(l).unwrap());
        }
        let got = from_proxy(&r, &headers);
        prop_assert_eq!(Some(got.ip), want, "{:?}", lines);
        prop_assert_eq!(got.source, ClientSource::Header(header));
    }
}

#[test]
fn client_keys_round_trip_through_their_parts() {
    let r = default_resolver();
    for key in [
        r.key_for(ip("203.0.113.7")),
        r.key_for(ip("2001:db8:1:2::9")),
        ClientKey::unknown(Some(ip("10.0.0.1"))),
        ClientKey::unknown(Some(ip("2001:db8:ffff::1"))),
        ClientKey::unknown(None),
    ] {
        let (bits, meta) = key.parts();
        assert_ne!(meta, u16::MAX);
        assert_eq!(ClientKey::from_parts(bits, meta), Some(key), "{key}");
    }
    assert_eq!(ClientKey::from_parts([0, 0], u16::MAX), None);
}

/// What the full path makes of one hop: the byte check, then the parser, then normalisation.
fn full_path(hop: &[u8]) -> Result<IpAddr, HeaderProblem> {
    walk::check_hop_bytes(hop)?;
    x_forwarded_for::parse_hop_full(hop).map(normalize)
}

#[track_caller]
fn assert_fast_agrees(hop: &[u8]) {
    if let Some(fast) = x_forwarded_for::fast_v4(hop) {
        assert_eq!(
            Ok(fast),
            full_path(hop),
            "{:?}",
            String::from_utf8_lossy(hop)
        );
    }
}

#[test]
fn the_fast_ipv4_path_reads_only_what_the_full_path_reads_the_same() {
    let fast = |s: &str| x_forwarded_for::fast_v4(s.as_bytes());
    // The common forms take it.
    for (hop, want) in [
        ("203.0.113.7", "203.0.113.7"),
        (" 203.0.113.7", "203.0.113.7"),
        ("\t203.0.113.7 \t", "203.0.113.7"),
        ("0.0.0.0", "0.0.0.0"),
        ("255.255.255.255", "255.255.255.255"),
        ("10.0.0.1", "10.0.0.1"),
        ("1.22.133.0", "1.22.133.0"),
    ] {
        assert_eq!(fast(hop), Some(ip(want)), "{hop:?}");
        assert_fast_agrees(hop.as_bytes());
    }
    // Everything else is left to the full path, whatever it makes of it.
    for hop in [
        "",
        " ",
        "256.0.0.1",
        "1.2.3.256",
        "1.2.3.999",
        "01.2.3.4",
        "1.2.3.04",
        "1.2.3.00",
        "00.0.0.0",
        "1.2.3",
        "1.2.3.4.5",
        "1.2.3.4.",
        ".1.2.3.4",
        "1..2.3",
        "1.2.3.4:80",
        "1.2.3.4 :80",
        "1.2.3.0004",
        "1.2.3.4x",
        "1.2. 3.4",
        "1.2.3.4\r",
        "1.2.3.4\x7f",
        "1.2.3.4\u{a0}",
        "[1.2.3.4]",
        "::ffff:1.2.3.4",
        "2001:db8::1",
        "unknown",
        "_hidden",
        "+1.2.3.4",
        "1.2.3.4/32",
        "1.2.3.4%eth0",
        "1000.2.3.4",
    ] {
        assert_eq!(fast(hop), None, "{hop:?}");
    }
    // Every 1-to-4-character octet spelling, in each position.
    let mut spellings: Vec<String> = (0..10_000).map(|n| n.to_string()).collect();
    for n in 0..1000 {
        spellings.push(format!("0{n}"));
        spellings.push(format!("00{n}"));
    }
    for s in &spellings {
        for hop in [
            format!("{s}.1.2.3"),
            format!("1.{s}.2.3"),
            format!("1.2.{s}.3"),
            format!("1.2.3.{s}"),
        ] {
            let got = fast(&hop);
            let std = hop.parse::<Ipv4Addr>().ok().map(IpAddr::V4);
            assert_eq!(got, std, "{hop:?}");
            assert_fast_agrees(hop.as_bytes());
        }
    }
}

proptest! {
    /// Random text over the characters an address is made of: the fast path answers only when
    /// the full path gives the same address.
    #[test]
    fn the_fast_ipv4_path_agrees_with_the_full_path(
        hop in proptest::collection::vec(
            proptest::sample::select(&b"0123456789.. \t:[]fx,%\x80\x7f"[..]),
            0..24,
        ),
    ) {
        if let Some(fast) = x_forwarded_for::fast_v4(&hop) {
            prop_assert_eq!(Ok(fast), full_path(&hop), "{:?}", String::from_utf8_lossy(&hop));
        }
    }

    /// Well-formed dotted quads always take the fast path.
    #[test]
    fn the_fast_ipv4_path_takes_every_dotted_quad(
        octets in any::<[u8; 4]>(),
        before in "[ \t]{0,3}",
        after in "[ \t]{0,3}",
    ) {
        let hop = format!("{before}{}{after}", Ipv4Addr::from(octets));
        prop_assert_eq!(
            x_forwarded_for::fast_v4(hop.as_bytes()),
            Some(IpAddr::V4(Ipv4Addr::from(octets)))
        );
    }
}

/// Every hop of one line, as the walk would read each: quick (dotted quads read while
/// splitting) or plain.
fn read_hops(line: &[u8], quick: bool) -> Vec<Result<IpAddr, HeaderProblem>> {
    let hops = if quick {
        walk::ListHops::new(line)
    } else {
        walk::ListHops::plain(line)
    };
    hops.map(|hop| match hop? {
        walk::Split::Addr(ip) => {
            assert!(quick);
            Ok(ip)
        }
        walk::Split::Text(text) => full_path(text),
    })
    .take(40)
    .collect()
}

#[test]
fn the_quick_split_reads_every_line_as_the_plain_split() {
    let long_ows = " ".repeat(MAX_HOP_BYTES - "1.2.3.4".len());
    let lines = [
        "203.0.113.7".to_string(),
        "203.0.113.7, 10.0.0.2".to_string(),
        " 203.0.113.7 ,\t10.0.0.2\t".to_string(),
        "1.2.3.4,,5.6.7.8".to_string(),
        ",1.2.3.4".to_string(),
        "1.2.3.4,".to_string(),
        "unknown, 1.2.3.4".to_string(),
        "1.2.3.4, unknown".to_string(),
        "1.2.3.4:80, [2001:db8::1]:443, 2001:db8::2".to_string(),
        "x1.2.3.4, 01.2.3.4, 1.2.3.04, 256.1.1.1, 1.2.3".to_string(),
        "1.2.3.4.5, .1.2.3.4, 1..2.3".to_string(),
        "a,1.2.3.4".to_string(),
        "1.2.3.4 x, 1.2.3.4".to_string(),
        format!("{long_ows}1.2.3.4"),
        format!(" {long_ows}1.2.3.4"),
        format!("9.9.9.9,{long_ows}1.2.3.4"),
        format!("9.9.9.9, {long_ows}1.2.3.4"),
        format!("9.9.9.9,{long_ows}1.2.3.4 "),
        format!("{}, 1.2.3.4", "x".repeat(5000)),
        format!("{}1.2.3.4", " ".repeat(5000)),
    ];
    for line in &lines {
        assert_eq!(
            read_hops(line.as_bytes(), true),
            read_hops(line.as_bytes(), false),
            "{line:?}"
        );
    }
    // The common case is read quickly.
    let mut quick = walk::ListHops::new(b"203.0.113.7, 10.0.0.2");
    assert_eq!(quick.next(), Some(Ok(walk::Split::Addr(ip("10.0.0.2")))));
    assert_eq!(quick.next(), Some(Ok(walk::Split::Addr(ip("203.0.113.7")))));
    assert_eq!(quick.next(), None);
}

proptest! {
    /// Lines made of dotted quads (some malformed), whitespace, commas and other bytes split
    /// and read the same quickly and plainly.
    #[test]
    fn the_quick_split_agrees_with_the_plain_split(
        parts in proptest::collection::vec(
            prop_oneof![
                any::<[u8; 4]>().prop_map(|o| Ipv4Addr::from(o).to_string()),
                "[0-9]{1,4}\\.[0-9]{1,4}\\.[0-9]{1,4}\\.[0-9]{1,4}",
                "[ \t]{0,3}",
                Just(",".to_string()),
                Just(", ".to_string()),
                "[0-9.:x\\[\\]a-f, \t]{0,6}",
                (1000usize..1100).prop_map(|n| " ".repeat(n)),
            ],
            0..12,
        ),
    ) {
        let line = parts.concat();
        prop_assert_eq!(
            read_hops(line.as_bytes(), true),
            read_hops(line.as_bytes(), false),
            "{:?}",
            line
        );
    }
}

/// A few trusted networks are checked as masks; the answers are the prefix table's.
#[test]
fn few_trusted_networks_match_as_the_prefix_table_does() {
    let sets: &[&[&str]] = &[
        &[],
        &["10.0.0.0/8"],
        &["10.0.0.1/32", "2001:db8::1/128"],
        &["0.0.0.0/0"],
        &["::/0"],
        &[
            "::ffff:10.0.0.0/104",
            "192.168.1.7/24",
            "2001:db8:ffff::/48",
            "fe80::/10",
        ],
        &[
            "10.0.0.0/8",
            "172.16.0.0/12",
            "192.168.0.0/16",
            "100.64.0.0/10",
            "127.0.0.0/8",
            "::1/128",
            "fc00::/7",
            "2001:db8::/32",
        ],
        &[
            "10.0.0.0/8",
            "172.16.0.0/12",
            "192.168.0.0/16",
            "100.64.0.0/10",
            "127.0.0.0/8",
            "::1/128",
            "fc00::/7",
            "2001:db8::/32",
            "203.0.113.0/24",
        ],
    ];
    let probes = [
        "10.0.0.1",
        "10.255.255.255",
        "11.0.0.0",
        "9.255.255.255",
        "172.16.5.4",
        "172.32.0.0",
        "192.168.1.1",
        "192.168.2.1",
        "100.64.0.1",
        "127.0.0.1",
        "0.0.0.0",
        "255.255.255.255",
        "203.0.113.9",
        "::1",
        "::2",
        "fc00::1",
        "fe00::1",
        "fe80::1",
        "2001:db8::1",
        "2001:db8:ffff::1",
        "2001:db9::",
        "::",
        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    ];
    for set in sets {
        let nets: Vec<IpNet> = set.iter().map(|n| n.parse().unwrap()).collect();
        let table = PrefixTable::build(nets.iter().map(|&n| (crate::net::normalize_net(n), ())));
        let trusted = Trusted::new(table.clone());
        assert_eq!(trusted.few.is_some(), set.len() <= FEW_TRUSTED);
        for p in probes {
            let a = normalize(ip(p));
            assert_eq!(trusted.contains(a), table.contains(a), "{p} in {set:?}");
        }
        let r = resolver(set, &[XForwardedFor]);
        for p in probes {
            assert_eq!(
                r.is_trusted_proxy(ip(p)),
                table.contains(normalize(ip(p))),
                "{p}"
            );
        }
    }
}

proptest! {
    #[test]
    fn few_trusted_networks_agree_with_the_prefix_table(
        nets in proptest::collection::vec((any::<u32>(), 0u8..=32, any::<u128>(), 0u8..=128, any::<bool>()), 0..9),
        probes in proptest::collection::vec((any::<u32>(), any::<u128>()), 1..16),
    ) {
        let nets: Vec<IpNet> = nets
            .iter()
            .map(|&(a4, l4, a6, l6, v6)| if v6 {
                IpNet::V6(Ipv6Net::new(Ipv6Addr::from(a6), l6).unwrap())
            } else {
                IpNet::V4(Ipv4Net::new(Ipv4Addr::from(a4), l4).unwrap())
            })
            .collect();
        let table = PrefixTable::build(nets.iter().map(|&n| (crate::net::normalize_net(n), ())));
        let trusted = Trusted::new(table.clone());
        // Probes near each network too.
        let mut addrs: Vec<IpAddr> = Vec::new();
        for &(a4, a6) in &probes {
            addrs.push(IpAddr::V4(Ipv4Addr::from(a4)));
            addrs.push(IpAddr::V6(Ipv6Addr::from(a6)));
        }
        for n in &nets {
            addrs.push(n.network());
            addrs.push(n.broadcast());
        }
        for a in addrs {
            let a = normalize(a);
            prop_assert_eq!(trusted.contains(a), table.contains(a), "{} in {:?}", a, nets);
        }
    }
}
