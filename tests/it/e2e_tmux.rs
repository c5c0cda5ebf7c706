//! End to end: the real binary's `demo` in a real terminal (tmux), driven by keys, read from the
//! screen. The simulator runs in-process on loopback; nothing leaves the machine.

use std::process::Command;
use std::time::{Duration, Instant};

/// Generous: a debug build on a busy 2-core machine. Polls return as soon as the screen matches.
const DEADLINE: Duration = Duration::from_secs(60);

struct Tmux {
    session: String,
}

impl Tmux {
    fn tmux(args: &[&str]) -> std::process::Output {
        Command::new("tmux").args(args).output().unwrap()
    }

    fn capture(&self) -> String {
        String::from_utf8_lossy(&Self::tmux(&["capture-pane", "-p", "-t", &self.session]).stdout)
            .into_owned()
    }

    fn keys(&self, keys: &str) {
        Self::tmux(&["send-keys", "-t", &self.session, keys]);
    }

    /// Wait until the screen satisfies `check`; panic with the screen when the deadline passes.
    fn wait_for(&self, what: &str, check: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let screen = self.capture();
            if check(&screen) {
                return screen;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "timed out waiting for {what}; screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        Self::tmux(&["kill-session", "-t", &self.session]);
    }
}

fn tmux_missing() -> bool {
    let missing = Command::new("tmux").arg("-V").output().is_err();
    if missing {
        eprintln!("note: tmux is not installed; skipping the end-to-end dashboard test");
    }
    missing
}

/// `omniscope demo` in a fresh 120×40 tmux session. The shell prints a marker with the exit
/// status once the dashboard ends: proof that the process ended.
fn start_demo(name: &str, config_dir: &std::path::Path) -> Tmux {
    start(name, config_dir, "demo")
}

/// `omniscope ARGS` in a fresh 120×40 tmux session, as [`start_demo`].
fn start(name: &str, config_dir: &std::path::Path, args: &str) -> Tmux {
    let binary = env!("CARGO_BIN_EXE_omniscope");
    let session = format!("omniscope-e2e-{name}-{}", std::process::id());
    let script = format!(
        "OMNISCOPE_CONFIG_DIR={dir} OMNISCOPE_DATA_DIR={dir} {binary} {args}; echo OMNISCOPE-EXITED-$?; sleep 60",
        dir = config_dir.display()
    );
    let status = Command::new("tmux")
        .args([
            "new-session",
            "-d",
            "-x",
            "120",
            "-y",
            "40",
            "-s",
            &session,
            &script,
        ])
        .status()
        .unwrap();
    assert!(status.success());
    Tmux { session }
}

#[test]
fn ctrl_c_quits_and_restores_the_terminal() {
    if tmux_missing() {
        return;
    }
    let config_dir = tempfile::tempdir().unwrap();
    let report = config_dir.path().join("report.json");
    let tmux = start(
        "ctrlc",
        config_dir.path(),
        &format!(
            "demo --providers omniscrape,alterlab --report {}",
            report.display()
        ),
    );
    tmux.wait_for("attempts", |screen| {
        screen.contains("Recent attempts") && screen.contains("✓")
    });
    tmux.keys("C-c");
    let screen = tmux.wait_for("the process to end", |screen| {
        screen.contains("OMNISCOPE-EXITED-")
    });
    assert!(screen.contains("OMNISCOPE-EXITED-0"), "{screen}");
    assert!(
        !screen.contains("Recent attempts"),
        "terminal restored:\n{screen}"
    );
    // The dashboard ends as `run` does: the summary per provider, and the report on quit.
    assert!(screen.contains("omniscope watch: started"), "{screen}");
    assert!(screen.contains("success rate"), "{screen}");
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).expect("--report written on quit"))
            .unwrap();
    assert_eq!(written["schema"], "omniscope.report.v1");
    assert!(written["providers"][0]["attempts"].as_u64().unwrap() >= 1);
    // The session was recorded: an event log under the data dir (compressed), every full line a
    // v2 record.
    let logs: Vec<_> = std::fs::read_dir(config_dir.path().join("logs"))
        .expect("the demo writes its event log under the data dir")
        .map(|entry| entry.unwrap().path())
        .collect();
    assert_eq!(logs.len(), 1, "{logs:?}");
    let text = crate::support::binary::log_text(&logs[0]);
    assert!(text.lines().count() >= 2, "{text}");
    for line in text.lines() {
        let record: serde_json::Value = serde_json::from_str(line).unwrap();
        let compact = line.starts_with(r#"{"a":"#) || line.starts_with(r#"{"p":"#);
        assert!(
            compact || record["schema"] == "omniscope.event.v2",
            "{line}"
        );
    }
    assert!(text.contains("\"type\":\"session_end\""), "{text}");
}

#[test]
fn demo_dashboard_shows_panes_and_answers_keys() {
    if tmux_missing() {
        return;
    }
    let config_dir = tempfile::tempdir().unwrap();
    let tmux = start_demo("keys", config_dir.path());

    let screen = tmux.wait_for("panes and attempts", |screen| {
        screen.contains("Recent attempts") && screen.contains("✓")
    });
    for title in [
        "Status codes",
        "Failures",
        "Rate limits",
        "Concurrency",
        "Billing & quota",
        "Latency",
    ] {
        assert!(screen.contains(title), "{title} missing:\n{screen}");
    }
    // The default demo shows four providers at once.
    for provider in ["omniscrape", "alterlab", "scrapingbee", "zenrows"] {
        assert!(screen.contains(provider), "{provider} missing:\n{screen}");
    }

    // The health line breaks failures down by fault: "✗ 3: target 2 · provider 1".
    let breakdown = |line: &str| {
        line.split_once(" · ✗ ").is_some_and(|(_, rest)| {
            let causes = rest.split_once(": ").map_or("", |(_, causes)| causes);
            causes.split(" · ").any(|part| {
                part.split_once(' ').is_some_and(|(cause, n)| {
                    [
                        "provider",
                        "target",
                        "rate_limit",
                        "concurrency",
                        "network",
                        "unreadable",
                    ]
                    .contains(&cause)
                        && n.trim().parse::<u64>().is_ok()
                })
            })
        })
    };
    tmux.wait_for("a fault breakdown on a health line", |screen| {
        screen.lines().any(&breakdown)
    });

    // The targets view: a row per target and provider, with attempts and success shares.
    tmux.keys("2");
    let screen = tmux.wait_for("a per-target row", |screen| {
        screen.contains("Targets by host")
            && screen
                .lines()
                .any(|line| line.contains("shop.example.com") && line.contains('%'))
    });
    let row = screen
        .lines()
        .find(|line| line.contains("shop.example.com") && line.contains('%'))
        .unwrap();
    let fields: Vec<&str> = row.trim_matches('│').split_whitespace().collect();
    let at = fields
        .iter()
        .position(|f| *f == "omniscrape" || *f == "alterlab")
        .unwrap();
    assert!(
        fields[at + 1].parse::<u64>().is_ok_and(|n| n >= 1),
        "attempts: {row}"
    );
    assert!(fields[at + 2].ends_with('%'), "API success: {row}");
    tmux.keys("1");
    tmux.wait_for("the dashboard again", |screen| {
        screen.contains("Recent attempts")
    });

    tmux.keys("?");
    tmux.wait_for("help", |screen| screen.contains("Help · every key"));
    tmux.keys("Escape");
    tmux.wait_for("help closed", |screen| !screen.contains("Help · every key"));

    // P acts on the provider the filter shows, and says so; again, it resumes that one.
    let header = |screen: &str| screen.lines().next().unwrap_or_default().to_owned();
    tmux.keys("f");
    tmux.keys("P");
    tmux.wait_for("omniscrape paused by P", |screen| {
        header(screen).contains("PAUSED: omniscrape") && screen.contains("omniscrape paused")
    });
    tmux.keys("P");
    tmux.wait_for("omniscrape resumed by P", |screen| {
        header(screen).contains("running") && screen.contains("omniscrape resumed")
    });
    // + and ] change the shown provider's probe rate and in-flight limit, and say so.
    tmux.keys("+");
    tmux.wait_for("the probe rate notice", |screen| {
        screen.contains("probe rate: omniscrape")
    });
    tmux.keys("]");
    tmux.wait_for("the concurrency notice", |screen| {
        screen.contains("concurrency: omniscrape 3 → 4")
    });

    tmux.keys("p");
    tmux.wait_for("paused header", |screen| {
        screen
            .lines()
            .next()
            .is_some_and(|line| line.contains("PAUSED"))
    });
    tmux.keys("p");
    tmux.wait_for("running again", |screen| {
        screen
            .lines()
            .next()
            .is_some_and(|line| line.contains("running"))
    });

    tmux.keys("q");
    let screen = tmux.wait_for("the process to end", |screen| {
        screen.contains("OMNISCOPE-EXITED-")
    });
    assert!(screen.contains("OMNISCOPE-EXITED-0"), "{screen}");
    assert!(
        !screen.contains("Recent attempts"),
        "terminal restored:\n{screen}"
    );
}

#[test]
fn demo_and_replay_honour_the_users_key_bindings() {
    if tmux_missing() {
        return;
    }
    let config_dir = tempfile::tempdir().unwrap();
    std::fs::write(
        config_dir.path().join("config.toml"),
        "[keys]\nquit = [\"x\"]\n",
    )
    .unwrap();
    let quit_with_x = |tmux: &Tmux| {
        tmux.wait_for("the dashboard", |screen| screen.contains("Recent attempts"));
        tmux.keys("x");
        let screen = tmux.wait_for("the process to end", |screen| {
            screen.contains("OMNISCOPE-EXITED-")
        });
        assert!(screen.contains("OMNISCOPE-EXITED-0"), "{screen}");
    };
    quit_with_x(&start("rebound-demo", config_dir.path(), "demo"));

    let logs: Vec<_> = std::fs::read_dir(config_dir.path().join("logs"))
        .expect("the demo writes its event log under the data dir")
        .map(|entry| entry.unwrap().path())
        .collect();
    assert_eq!(logs.len(), 1, "{logs:?}");
    let replay = format!("replay --speed max {}", logs[0].display());
    quit_with_x(&start("rebound-replay", config_dir.path(), &replay));
}
