//! The `bouncer` command-line tool, run as a process against a store it shares with the
//! library: what one writes, the other reads.
#![cfg(feature = "cli")]

mod common;

use std::ffi::OsStr;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

use actix_bouncer::access_log::{AccessRecord, AccessSink, SqlAccessLog, Subject};
use actix_bouncer::rules::{
    ListQuery, NewRule, Rule, RuleSource, RuleStore, RuleTarget, SqlRuleStore,
};
use serde_json::Value;

const DAY: Duration = Duration::from_secs(86_400);

/// A SQLite store in a directory of its own.
struct Store {
    _dir: tempfile::TempDir,
    path: PathBuf,
    url: String,
}

impl Store {
    fn new() -> Store {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rules.db");
        let url = format!("sqlite://{}", path.display());
        Store {
            _dir: dir,
            path,
            url,
        }
    }

    /// Runs `bouncer --store <url> args…`.
    fn run(&self, args: &[&str]) -> Run {
        run_with_store(&self.url, args)
    }

    /// Runs `f` on the store, opened by the library.
    fn library<T>(&self, f: impl AsyncFnOnce(&SqlRuleStore) -> T) -> T {
        library(&self.url, f)
    }
}

/// Runs `f` on the store at `url`, opened by the library on a runtime of its own.
fn library<T>(url: &str, f: impl AsyncFnOnce(&SqlRuleStore) -> T) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let store = SqlRuleStore::connect(url).await.unwrap();
            let out = f(&store).await;
            store.close().await;
            out
        })
}

/// A finished `bouncer` process.
struct Run {
    args: Vec<String>,
    output: Output,
}

impl Run {
    fn code(&self) -> i32 {
        self.output.status.code().expect("bouncer was killed")
    }
    fn stdout(&self) -> String {
        String::from_utf8(self.output.stdout.clone()).unwrap()
    }
    fn stderr(&self) -> String {
        String::from_utf8(self.output.stderr.clone()).unwrap()
    }
    /// Asserts success; returns stdout.
    fn ok(&self) -> String {
        assert_eq!(self.code(), 0, "{:?} failed: {}", self.args, self.stderr());
        assert!(
            self.stderr().is_empty(),
            "{:?}: {}",
            self.args,
            self.stderr()
        );
        self.stdout()
    }
    /// Asserts the exit code; returns stderr.
    fn fails(&self, code: i32) -> String {
        assert_eq!(
            self.code(),
            code,
            "{:?}: stdout {} stderr {}",
            self.args,
            self.stdout(),
            self.stderr()
        );
        self.stderr()
    }
    fn json(&self) -> Value {
        serde_json::from_str(&self.ok()).unwrap()
    }
}

fn bouncer<S: AsRef<OsStr>>(args: impl IntoIterator<Item = S>) -> Run {
    let args: Vec<_> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
    let output = Command::new(env!("CARGO_BIN_EXE_bouncer"))
        .args(&args)
        .env_remove("BOUNCER_STORE")
        .output()
        .unwrap();
    Run {
        args: args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect(),
        output,
    }
}

fn run_with_store(url: &str, args: &[&str]) -> Run {
    bouncer(["--store", url].iter().chain(args))
}

/// The ids of a JSON page.
fn ids(page: &Value) -> Vec<u64> {
    page["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_u64().unwrap())
        .collect()
}

/// The ids in a table's first column (header and footer left out).
fn table_ids(table: &str) -> Vec<u64> {
    table
        .lines()
        .filter_map(|line| line.split_whitespace().next()?.parse().ok())
        .collect()
}

fn target(s: &str) -> RuleTarget {
    s.parse().unwrap()
}

/// Every rule in the store, as the library reads it.
async fn all_rules(store: &SqlRuleStore) -> Vec<Rule> {
    store
        .list(ListQuery::first(1000), SystemTime::now())
        .await
        .unwrap()
        .rules
}

#[test]
fn add_list_remove_round_trip() {
    let store = Store::new();
    let added = store.run(&[
        "rules",
        "add",
        "203.0.113.7",
        "--for",
        "1h",
        "--comment",
        "scraper",
    ]);
    let table = added.ok();
    assert_eq!(table.lines().count(), 2, "{table}");
    assert!(table.starts_with("ID  TARGET"), "{table}");
    assert!(table.contains("203.0.113.7  block   manual"), "{table}");
    assert!(table.contains("scraper"), "{table}");
    let id = table_ids(&table)[0];

    let listed = store.run(&["rules", "list"]).ok();
    assert_eq!(table_ids(&listed), [id]);
    assert!(listed.contains("scraper"), "{listed}");

    let page = store.run(&["rules", "list", "--json"]).json();
    assert_eq!(ids(&page), [id]);
    assert_eq!(page["next"], Value::Null);
    let rule = &page["rules"][0];
    assert_eq!(rule["target"], "203.0.113.7");
    assert_eq!(rule["action"], "block");
    assert_eq!(rule["source"], "manual");
    assert_eq!(rule["comment"], "scraper");
    // The expiry is an hour after creation.
    let time = |v: &Value| {
        time::OffsetDateTime::parse(
            v.as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap()
    };
    assert_eq!(
        time(&rule["expires"]) - time(&rule["created"]),
        time::Duration::hours(1)
    );

    // The library reads what the tool wrote.
    let seen = store.library(async |s| all_rules(s).await);
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].id.0, id);
    assert_eq!(seen[0].target, target("203.0.113.7"));
    assert_eq!(seen[0].comment.as_deref(), Some("scraper"));

    let removed = store.run(&["rules", "remove", &id.to_string()]).ok();
    assert_eq!(table_ids(&removed), [id]);
    assert_eq!(store.run(&["rules", "list"]).ok(), "no rules\n");
    assert_eq!(
        ids(&store.run(&["--json", "rules", "list"]).json()),
        [0u64; 0]
    );
    assert!(store.library(async |s| all_rules(s).await).is_empty());
}

#[test]
fn the_tool_lists_what_the_library_wrote() {
    let store = Store::new();
    let rule = store.library(async |s| {
        let draft = NewRule::block(target("198.51.100.0/24"))
            .source(RuleSource::Auto)
            .expires_after(DAY)
            .comment("banned: 50 requests in 10s")
            .draft(SystemTime::now());
        s.insert(vec![draft]).await.unwrap().remove(0)
    });
    let page = store.run(&["rules", "list", "--json"]).json();
    assert_eq!(ids(&page), [rule.id.0]);
    assert_eq!(page["rules"][0]["target"], "198.51.100.0/24");
    assert_eq!(page["rules"][0]["source"], "auto");
    // The same JSON as the library's own serialization.
    assert_eq!(page["rules"][0], serde_json::to_value(&rule).unwrap());
}

#[test]
fn added_rules_take_every_option() {
    let store = Store::new();
    let rule = store
        .run(&[
            "--json",
            "rules",
            "add",
            "user:alice",
            "--action",
            "allow",
            "--expires",
            "2030-01-01T00:00:00Z",
        ])
        .json();
    assert_eq!(rule["target"], "user:alice");
    assert_eq!(rule["action"], "allow");
    assert_eq!(rule["expires"], "2030-01-01T00:00:00Z");
    assert_eq!(rule["comment"], Value::Null);
    let table = store.run(&["rules", "add", "2001:db8::/32"]).ok();
    assert!(
        table.contains("2001:db8::/32  block   manual  never"),
        "{table}"
    );
}

#[test]
fn filters_narrow_the_list() {
    let store = Store::new();
    let now = SystemTime::now();
    let [block, allow, user, expired, auto] = store.library(async |s| {
        let rules = s
            .insert(vec![
                NewRule::block(target("203.0.113.7")).draft(now),
                NewRule::allow(target("10.0.0.0/8")).draft(now),
                NewRule::block(target("user:alice")).draft(now),
                NewRule::block(target("203.0.113.8"))
                    .expires_at(now - DAY)
                    .draft(now - 2 * DAY),
                NewRule::block(target("203.0.113.9"))
                    .source(RuleSource::Auto)
                    .expires_after(DAY)
                    .draft(now),
            ])
            .await
            .unwrap();
        let ids: Vec<u64> = rules.iter().map(|r| r.id.0).collect();
        <[u64; 5]>::try_from(ids).unwrap()
    });
    let list = |args: &[&str]| {
        let mut all = vec!["--json", "rules", "list"];
        all.extend_from_slice(args);
        ids(&store.run(&all).json())
    };
    assert_eq!(list(&[]), [block, allow, user, expired, auto]);
    assert_eq!(list(&["--action", "allow"]), [allow]);
    assert_eq!(list(&["--action", "block"]), [block, user, expired, auto]);
    assert_eq!(list(&["--source", "auto"]), [auto]);
    assert_eq!(list(&["--source", "config"]), [0u64; 0]);
    assert_eq!(list(&["--state", "expired"]), [expired]);
    assert_eq!(list(&["--state", "active"]), [block, allow, user, auto]);
    assert_eq!(list(&["--target", "user:alice"]), [user]);
    // Exactly the target: a network around an address is not it.
    assert_eq!(list(&["--target", "10.0.0.1"]), [0u64; 0]);
    assert_eq!(list(&["--target", "10.0.0.0/8"]), [allow]);
    assert_eq!(
        list(&["--action", "block", "--state", "active", "--source", "manual"]),
        [block, user]
    );
    assert_eq!(list(&["--after", &user.to_string()]), [expired, auto]);
    assert_eq!(list(&["--after", &format!("#{user}")]), [expired, auto]);
    // The table shows "never" for rules that do not expire.
    let table = store.run(&["rules", "list", "--target", "user:alice"]).ok();
    assert!(
        table.contains("user:alice  block   manual  never"),
        "{table}"
    );
}

#[test]
fn all_walks_every_page() {
    let store = Store::new();
    let now = SystemTime::now();
    let inserted: Vec<u64> = store.library(async |s| {
        let drafts = (0..250u32)
            .map(|i| {
                let ip = std::net::Ipv4Addr::from(0xC633_6400 + i); // 198.51.100.0 onwards
                NewRule::block(RuleTarget::ip(ip.into())).draft(now)
            })
            .collect();
        s.insert(drafts)
            .await
            .unwrap()
            .iter()
            .map(|r| r.id.0)
            .collect()
    });
    assert_eq!(inserted.len(), 250);

    // One page by default, with the cursor of the next.
    let first = store.run(&["--json", "rules", "list"]).json();
    assert_eq!(ids(&first), inserted[..100]);
    assert_eq!(first["next"], inserted[99]);
    let table = store.run(&["rules", "list"]).ok();
    assert_eq!(table_ids(&table), inserted[..100]);
    assert!(
        table.ends_with(&format!(
            "more rules follow: --after {} for the next page, --all for every page\n",
            inserted[99]
        )),
        "{table}"
    );
    let last = store
        .run(&[
            "--json",
            "rules",
            "list",
            "--after",
            &inserted[199].to_string(),
        ])
        .json();
    assert_eq!(ids(&last), inserted[200..]);
    assert_eq!(last["next"], Value::Null);

    // Every page, whatever their size, and the same rules as a table.
    for limit in ["100", "7", "1000"] {
        let all = store
            .run(&["--json", "rules", "list", "--all", "--limit", limit])
            .json();
        assert_eq!(ids(&all), inserted, "--limit {limit}");
        assert_eq!(all["next"], Value::Null);
    }
    let table = store.run(&["rules", "list", "--all"]).ok();
    assert_eq!(table_ids(&table), inserted);
    assert!(!table.contains("more rules follow"), "{table}");
    // --all with a filter and a starting point.
    let tail = store
        .run(&[
            "--json",
            "rules",
            "list",
            "--all",
            "--after",
            &inserted[149].to_string(),
        ])
        .json();
    assert_eq!(ids(&tail), inserted[150..]);
}

#[test]
fn trim_removes_exactly_the_old_expired_rules() {
    let store = Store::new();
    let now = SystemTime::now();
    let ago = |days: u32| now - days * DAY;
    let [_created_20_expired_10, created_20_expired_2, created_12_expired_10, active, forever] =
        store.library(async |s| {
            let rule = |ip: &str| NewRule::block(target(ip));
            let rules = s
                .insert(vec![
                    rule("192.0.2.1").expires_at(ago(10)).draft(ago(20)),
                    rule("192.0.2.2").expires_at(ago(2)).draft(ago(20)),
                    rule("192.0.2.3").expires_at(ago(10)).draft(ago(12)),
                    rule("192.0.2.4").expires_after(60 * DAY).draft(ago(30)),
                    rule("192.0.2.5").draft(ago(30)),
                ])
                .await
                .unwrap();
            let ids: Vec<u64> = rules.iter().map(|r| r.id.0).collect();
            <[u64; 5]>::try_from(ids).unwrap()
        });
    let remaining = || ids(&store.run(&["--json", "rules", "list"]).json());

    assert_eq!(
        store.run(&["rules", "trim", "-c", "15", "-e", "7"]).ok(),
        "removed 1 expired rule\n"
    );
    assert_eq!(
        remaining(),
        [created_20_expired_2, created_12_expired_10, active, forever]
    );
    assert_eq!(
        store.run(&["rules", "trim", "--expired-days", "7"]).ok(),
        "removed 1 expired rule\n"
    );
    assert_eq!(remaining(), [created_20_expired_2, active, forever]);
    assert_eq!(
        store.run(&["rules", "trim", "-e", "3"]).ok(),
        "removed 0 expired rules\n"
    );
    assert_eq!(
        store.run(&["--json", "rules", "trim"]).json(),
        serde_json::json!({ "removed": 1 })
    );
    // Active rules and rules that never expire are never trimmed.
    assert_eq!(remaining(), [active, forever]);
    assert_eq!(
        store.run(&["rules", "trim"]).ok(),
        "removed 0 expired rules\n"
    );
}

#[test]
fn removing_an_absent_rule_fails_and_names_it() {
    let store = Store::new();
    let id = store.library(async |s| {
        let draft = NewRule::block(target("203.0.113.7")).draft(SystemTime::now());
        s.insert(vec![draft]).await.unwrap()[0].id.0
    });
    let absent = (id + 100).to_string();
    let run = store.run(&["rules", "remove", &absent]);
    assert_eq!(run.fails(1), format!("bouncer: no rule has id {absent}\n"));
    assert!(run.stdout().is_empty());

    // The present one is removed all the same; the absent one fails the command.
    let run = store.run(&[
        "--json",
        "rules",
        "remove",
        &id.to_string(),
        &absent,
        &absent,
    ]);
    assert_eq!(run.fails(1), format!("bouncer: no rule has id {absent}\n"));
    let report: Value = serde_json::from_str(&run.stdout()).unwrap();
    assert_eq!(
        ids(&serde_json::json!({ "rules": report["removed"] })),
        [id]
    );
    assert_eq!(report["missing"], serde_json::json!([id + 100]));
    assert!(store.library(async |s| all_rules(s).await).is_empty());
}

#[test]
fn comments_are_escaped_for_the_terminal() {
    let store = Store::new();
    let comment = "GET /\u{1b}[31mred\nline\u{9b}\u{202e}";
    store
        .run(&["rules", "add", "203.0.113.7", "--comment", comment])
        .ok();
    let table = store.run(&["rules", "list"]).ok();
    assert_eq!(table.lines().count(), 2, "{table}");
    assert!(
        table.contains(r"GET /\x1b[31mred\nline\x9b\u{202e}"),
        "{table}"
    );
    for raw in ['\u{1b}', '\u{9b}', '\u{202e}'] {
        assert!(!table.contains(raw), "{table:?}");
    }
    // JSON keeps the comment whole, and escaped too.
    let json = store.run(&["--json", "rules", "list"]);
    let text = json.ok();
    for raw in ['\u{1b}', '\u{9b}', '\u{202e}', '\n'] {
        assert!(!text.trim_end().contains(raw), "{text:?}");
    }
    assert_eq!(json.json()["rules"][0]["comment"], comment);
    // Long comments are cut in the table only.
    let long = "x".repeat(200);
    store
        .run(&["rules", "add", "203.0.113.8", "--comment", &long])
        .ok();
    let table = store.run(&["rules", "list"]).ok();
    assert!(table.contains(&format!("{}…", "x".repeat(39))), "{table}");
    assert!(!table.contains(&"x".repeat(41)), "{table}");
    let page = store.run(&["--json", "rules", "list"]).json();
    assert_eq!(page["rules"][1]["comment"], long.as_str());
}

#[test]
fn bad_input_fails_without_touching_the_store() {
    let store = Store::new();
    for (args, says) in [
        (&["rules", "add", "10.1.2.3/8"][..], "host bits"),
        (
            &["rules", "add", "not-an-address"],
            "expected an IP address",
        ),
        (&["rules", "add", "user:"], "needs an id"),
        (
            &["rules", "add", "1.2.3.4", "--for", "0s"],
            "longer than zero",
        ),
        (&["rules", "add", "1.2.3.4", "--for", "soon"], "duration"),
        (
            &["rules", "add", "1.2.3.4", "--expires", "tomorrow"],
            "RFC 3339",
        ),
        (
            &[
                "rules",
                "add",
                "1.2.3.4",
                "--expires",
                "2020-01-01T00:00:00Z",
            ],
            "already past",
        ),
        (
            &[
                "rules",
                "add",
                "1.2.3.4",
                "--expires",
                "0001-01-01T00:00:00Z",
            ],
            "already past",
        ),
        (
            &[
                "rules",
                "add",
                "1.2.3.4",
                "--for",
                "1h",
                "--expires",
                "2030-01-01T00:00:00Z",
            ],
            "cannot be used with",
        ),
        (
            &["rules", "add", "1.2.3.4", "--action", "ban"],
            "invalid value",
        ),
        (&["rules", "list", "--limit", "0"], "1 to 1000"),
        (&["rules", "list", "--limit", "1001"], "1 to 1000"),
        (
            &["rules", "list", "--limit", "99999999999999999999999"],
            "1 to 1000",
        ),
        (&["rules", "list", "--after", "0"], "rule id"),
        (&["rules", "list", "--after", "x"], "rule id"),
        (&["rules", "list", "--state", "gone"], "invalid value"),
        (&["rules", "remove"], "required"),
        (&["rules", "remove", "-1"], "unexpected argument"),
        (&["rules", "trim", "-e", "-1"], "unexpected argument"),
        (&["rules", "trim", "-c", "4294967296"], "invalid value"),
        (&["rules"], "Usage"),
        (&["nothing"], "unrecognized subcommand"),
    ] {
        let stderr = store.run(args).fails(2);
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    // Nothing was opened, so nothing was created.
    assert!(!store.path.exists());
}

#[cfg(unix)]
#[test]
fn hostile_arguments_never_panic() {
    use std::ffi::OsString;
    use std::os::unix::ffi::OsStringExt;

    let store = Store::new();
    let not_utf8 = OsString::from_vec(vec![0xff, 0xfe, b'x']);
    let escape = OsString::from("\u{1b}]0;owned\u{7}\u{1b}[2J");
    for arg in [not_utf8, escape] {
        for args in [
            vec![OsString::from("rules"), "add".into(), arg.clone()],
            vec![
                "rules".into(),
                "list".into(),
                "--target".into(),
                arg.clone(),
            ],
            vec!["rules".into(), "remove".into(), arg.clone()],
            vec![arg.clone()],
        ] {
            let mut all = vec![OsString::from("--store"), OsString::from(&store.url)];
            all.extend(args);
            let run = bouncer(&all);
            let stderr = run.fails(2);
            assert!(!stderr.contains('\u{1b}'), "{stderr:?}");
            assert!(!stderr.contains("panicked"), "{stderr}");
        }
    }
    // A hostile store URL is escaped in the message too.
    let run = run_with_store("sqlite:///nonexistent/\u{1b}[2J/x.db", &["rules", "list"]);
    let stderr = run.fails(1);
    assert!(stderr.contains(r"\x1b[2J"), "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "{stderr:?}");
}

#[test]
fn an_unreachable_store_fails_without_showing_its_password() {
    let run = run_with_store("sqlite:///nonexistent/dir/x.db", &["rules", "list"]);
    let stderr = run.fails(1);
    assert!(
        stderr
            .starts_with("bouncer: cannot open the rule store at sqlite:///nonexistent/dir/x.db: "),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");

    // Port 1 refuses connections (or, without the postgres feature, the scheme is refused);
    // the store gives up after its connection timeout.
    for (url, shown) in [
        (
            "postgres://bouncer:s3cr3t-pw@127.0.0.1:1/rules",
            "postgres://bouncer:***@127.0.0.1:1/rules: ",
        ),
        (
            "postgres://127.0.0.1:1/rules?user=bouncer&password=s3cr3t-pw",
            "postgres://127.0.0.1:1/rules?user=bouncer&password=***: ",
        ),
    ] {
        let stderr = run_with_store(url, &["rules", "list"]).fails(1);
        assert!(!stderr.contains("s3cr3t-pw"), "{stderr}");
        assert!(
            stderr.starts_with(&format!("bouncer: cannot open the rule store at {shown}")),
            "{stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
    let stderr = run_with_store("mysql://u:s3cr3t-pw@h/db", &["rules", "list"]).fails(1);
    assert!(!stderr.contains("s3cr3t-pw"), "{stderr}");
}

#[test]
fn the_store_comes_from_the_flag_or_the_environment() {
    // Neither: a usage error that says how to give one.
    let stderr = bouncer(["rules", "list"]).fails(2);
    assert!(stderr.contains("--store"), "{stderr}");
    assert!(stderr.contains("BOUNCER_STORE"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");

    let store = Store::new();
    let with_env = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_bouncer"))
            .args(args)
            .env("BOUNCER_STORE", &store.url)
            .output()
            .unwrap()
    };
    let added = with_env(&["rules", "add", "203.0.113.7"]);
    assert!(added.status.success(), "{added:?}");
    let listed = with_env(&["rules", "list"]);
    assert!(String::from_utf8_lossy(&listed.stdout).contains("203.0.113.7"));
    assert!(store.path.exists());

    // The help shows neither the variable's value nor its password.
    let help = Command::new(env!("CARGO_BIN_EXE_bouncer"))
        .arg("--help")
        .env("BOUNCER_STORE", "postgres://u:s3cr3t-pw@h/db")
        .output()
        .unwrap();
    assert!(help.status.success());
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("BOUNCER_STORE"), "{help}");
    assert!(!help.contains("s3cr3t-pw"), "{help}");
}

/// The tool and the library share a PostgreSQL store (feature `postgres`,
/// `BOUNCER_TEST_POSTGRES` set).
#[cfg(feature = "postgres")]
#[test]
fn postgres_round_trip() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let Some(db) = runtime.block_on(common::postgres::TestDatabase::create(
        "cli_postgres_round_trip",
    )) else {
        return;
    };
    let added = run_with_store(
        &db.url,
        &[
            "--json",
            "rules",
            "add",
            "203.0.113.0/24",
            "--for",
            "1h",
            "--comment",
            "from the cli",
        ],
    )
    .json();
    let from_library = library(&db.url, async |s| {
        let seen = all_rules(s).await;
        let draft = NewRule::allow(target("user:bob")).draft(SystemTime::now());
        (seen, s.insert(vec![draft]).await.unwrap().remove(0))
    });
    let (seen, inserted) = from_library;
    assert_eq!(seen.len(), 1);
    assert_eq!(serde_json::to_value(&seen[0]).unwrap(), added);

    let page = run_with_store(&db.url, &["--json", "rules", "list", "--all"]).json();
    assert_eq!(ids(&page), [seen[0].id.0, inserted.id.0]);
    assert_eq!(page["rules"][1], serde_json::to_value(&inserted).unwrap());

    // `#12`, as the tables show ids, is accepted.
    run_with_store(&db.url, &["rules", "remove", &inserted.id.to_string()]).ok();
    let page = run_with_store(&db.url, &["--json", "rules", "list"]).json();
    assert_eq!(ids(&page), [seen[0].id.0]);
    assert_eq!(
        run_with_store(&db.url, &["rules", "trim"]).ok(),
        "removed 0 expired rules\n"
    );
    drop(runtime);
}

/// Runs `f` on the access log at `url`, opened by the library on a runtime of its own.
fn access_log<T>(url: &str, f: impl AsyncFnOnce(&SqlAccessLog) -> T) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let log = SqlAccessLog::connect(url).await.unwrap();
            let out = f(&log).await;
            log.close().await;
            out
        })
}

/// Writes one record a path for each age, from 192.0.2.1; returns when "now" was.
fn write_aged(url: &str, ages: &[(&str, Duration)]) -> SystemTime {
    let now = SystemTime::now();
    let records: Vec<AccessRecord> = ages
        .iter()
        .map(|(path, age)| {
            AccessRecord::new(now - *age, "192.0.2.1".parse().unwrap(), "GET", *path)
        })
        .collect();
    access_log(url, async |log| log.write(&records).await.unwrap());
    now
}

/// The paths left in the access log, oldest first.
fn logged_paths(url: &str) -> Vec<String> {
    access_log(url, async |log| {
        let mut records = log
            .activity(&Subject::Ip("192.0.2.1".parse().unwrap()), 1000)
            .await
            .unwrap();
        records.reverse();
        records.into_iter().map(|r| r.path).collect()
    })
}

#[test]
fn logs_trim_removes_exactly_the_old_records() {
    let store = Store::new();
    // The rule store shares the file; trimming the log leaves the rules alone.
    let rule = store.library(async |s| {
        s.insert(vec![
            NewRule::block(target("203.0.113.9")).draft(SystemTime::now())
        ])
        .await
        .unwrap()
        .remove(0)
    });
    let hour = Duration::from_secs(3600);
    write_aged(
        &store.url,
        &[
            ("/30-days", 30 * DAY),
            ("/8-days", 8 * DAY),
            ("/7-days-and-a-bit", 7 * DAY + hour),
            ("/7-days-less-a-bit", 7 * DAY - hour),
            ("/2-days", 2 * DAY),
            ("/a-bit", hour),
            ("/now", Duration::ZERO),
        ],
    );

    let out = store.run(&["logs", "trim", "--days", "7"]).ok();
    assert!(
        out.starts_with("removed 3 access log records from before "),
        "{out}"
    );
    assert_eq!(
        logged_paths(&store.url),
        ["/7-days-less-a-bit", "/2-days", "/a-bit", "/now"]
    );
    // Again: nothing more to do.
    assert!(store
        .run(&["logs", "trim", "--days", "7"])
        .ok()
        .starts_with("removed 0 access log records"));

    let json = store.run(&["--json", "logs", "trim", "--days", "1"]).json();
    assert_eq!(json["removed"], 2, "{json}");
    assert!(json["before"].as_str().unwrap().ends_with('Z'), "{json}");
    assert_eq!(logged_paths(&store.url), ["/a-bit", "/now"]);
    let out = store.run(&["logs", "trim", "--days", "1"]).ok();
    assert_eq!(out.lines().count(), 1, "{out}");

    // The rule is still there.
    let page = store.run(&["--json", "rules", "list"]).json();
    assert_eq!(ids(&page), [rule.id.0]);
}

#[test]
fn logs_trim_keeps_a_week_by_default() {
    let store = Store::new();
    write_aged(&store.url, &[("/8-days", 8 * DAY), ("/6-days", 6 * DAY)]);
    let out = store.run(&["logs", "trim"]).ok();
    assert!(
        out.starts_with("removed 1 access log record from before "),
        "{out}"
    );
    assert_eq!(logged_paths(&store.url), ["/6-days"]);
    // From the environment too.
    let out = bouncer_env(&["logs", "trim", "--days", "5"], &store.url);
    assert!(out.starts_with("removed 1 access log record "), "{out}");
    assert!(logged_paths(&store.url).is_empty());
}

/// Runs `bouncer args…` with `BOUNCER_STORE` set to `url`; asserts success, returns stdout.
fn bouncer_env(args: &[&str], url: &str) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_bouncer"))
        .args(args)
        .env("BOUNCER_STORE", url)
        .output()
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(0), "{args:?}: {stderr}");
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn logs_trim_refuses_bad_input_without_touching_the_store() {
    let store = Store::new();
    for (args, says) in [
        (&["logs", "trim", "--days", "0"][..], "from 1 to 36500"),
        (&["logs", "trim", "--days", "36501"], "from 1 to 36500"),
        (&["logs", "trim", "--days", "-1"], "unexpected argument"),
        (&["logs", "trim", "--days", "a week"], "from 1 to 36500"),
        (
            &["logs", "trim", "--days", "99999999999999999999"],
            "from 1 to 36500",
        ),
        (&["logs", "trim", "--days"], "a value is required"),
        (&["logs", "trim", "7"], "unexpected argument"),
        (
            &["logs", "trim", "--older-than", "7"],
            "unexpected argument",
        ),
        (&["logs"], "Usage"),
        (&["logs", "purge"], "unrecognized subcommand"),
    ] {
        let stderr = store.run(args).fails(2);
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    let stderr = bouncer(["logs", "trim"]).fails(2);
    assert!(
        stderr.contains("--store") && stderr.contains("BOUNCER_STORE"),
        "{stderr}"
    );
    assert!(!store.path.exists());
}

#[test]
fn logs_trim_on_an_unreachable_store_fails_without_showing_its_password() {
    let stderr = run_with_store("sqlite:///nonexistent/dir/x.db", &["logs", "trim"]).fails(1);
    assert!(
        stderr
            .starts_with("bouncer: cannot open the access log at sqlite:///nonexistent/dir/x.db: "),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    for (url, shown) in [
        (
            "postgres://bouncer:s3cr3t-pw@127.0.0.1:1/logs",
            "postgres://bouncer:***@127.0.0.1:1/logs: ",
        ),
        (
            "postgres://127.0.0.1:1/logs?user=bouncer&password=s3cr3t-pw",
            "postgres://127.0.0.1:1/logs?user=bouncer&password=***: ",
        ),
    ] {
        let stderr = run_with_store(url, &["logs", "trim", "--days", "3"]).fails(1);
        assert!(!stderr.contains("s3cr3t-pw"), "{stderr}");
        assert!(
            stderr.starts_with(&format!("bouncer: cannot open the access log at {shown}")),
            "{stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
}

#[cfg(feature = "postgres")]
#[test]
fn postgres_logs_trim() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let Some(db) = runtime.block_on(common::postgres::TestDatabase::create(
        "cli_postgres_logs_trim",
    )) else {
        return;
    };
    write_aged(&db.url, &[("/9-days", 9 * DAY), ("/1-day", DAY / 2)]);
    let json = run_with_store(&db.url, &["--json", "logs", "trim", "--days", "7"]).json();
    assert_eq!(json["removed"], 1, "{json}");
    assert_eq!(logged_paths(&db.url), ["/1-day"]);
    drop(runtime);
}
