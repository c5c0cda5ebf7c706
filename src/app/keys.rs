//! Key bindings: one list of keys per action, with defaults, overridable from the config file's
//! `[keys]` table, with a check that no key is bound to two actions.
//!
//! ```toml
//! [keys]
//! quit = ["q"]
//! pause_provider = "P"
//! down = ["j", "down", "ctrl-n"]
//! ```
//!
//! Ctrl-C always quits, whatever the bindings say: a user must never be locked in.

use std::collections::BTreeMap;
use std::fmt;

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use strum::IntoEnumIterator;

/// Everything a key can do. Its snake-case name is its name in the config's `[keys]` table.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    strum::EnumIter,
    strum::EnumString,
    strum::IntoStaticStr,
)]
#[strum(serialize_all = "snake_case")]
pub enum Action {
    Quit,
    PauseAll,
    PauseProvider,
    Retry,
    RetryEscalated,
    RetryAllFailed,
    FocusNext,
    FocusPrev,
    Down,
    Up,
    Open,
    Close,
    CycleFilter,
    RateUp,
    RateDown,
    ConcurrencyUp,
    ConcurrencyDown,
    ResetCounters,
    ViewNext,
    ViewDashboard,
    ViewTargets,
    ViewCompare,
    ViewRates,
    GroupTargets,
    Help,
}

impl Action {
    /// Every action, in the order the help lists them.
    pub fn all() -> impl Iterator<Item = Self> {
        Self::iter()
    }

    /// The name used in the config file's `[keys]` table.
    #[must_use]
    pub fn config_name(self) -> &'static str {
        self.into()
    }

    /// What the help overlay says the action does.
    #[must_use]
    pub fn description(self) -> &'static str {
        match self {
            Self::Quit => "quit (Ctrl-C always quits too)",
            Self::PauseAll => "pause / resume all providers",
            Self::PauseProvider => "pause / resume the selected provider",
            Self::Retry => "retry the selected attempt as it was",
            Self::RetryEscalated => {
                "retry it escalated (JS rendering, next proxy country, higher tier: costs more)"
            }
            Self::RetryAllFailed => "retry every failed retryable attempt",
            Self::FocusNext => "focus the next pane",
            Self::FocusPrev => "focus the previous pane",
            Self::Down => "select the next row",
            Self::Up => "select the previous row",
            Self::Open => "open the selected attempt's detail",
            Self::Close => "close the detail or this help",
            Self::CycleFilter => "cycle the provider filter",
            Self::RateUp => "raise the probe rate (a replay: play faster)",
            Self::RateDown => "lower the probe rate (a replay: play slower)",
            Self::ConcurrencyUp => "allow one more request in flight",
            Self::ConcurrencyDown => "allow one request fewer in flight",
            Self::ResetCounters => "reset the counters",
            Self::ViewNext => "next view (dashboard, targets, compare, rates)",
            Self::ViewDashboard => "dashboard view: every pane",
            Self::ViewTargets => "targets view: each target × provider",
            Self::ViewCompare => "compare view: provider against provider",
            Self::ViewRates => "rates view: success, error and 429 rates over time",
            Self::GroupTargets => "group targets by host or by URL",
            Self::Help => "show / hide this help",
        }
    }

    /// What the action does to a replayed log, as the help overlay says it; `None` for the keys
    /// that would send something (retries, concurrency) or act on one provider's probing: a replay
    /// sends nothing and its pause is the whole playback's, so the help must not offer them.
    #[must_use]
    pub fn replay_description(self) -> Option<&'static str> {
        match self {
            Self::PauseProvider
            | Self::Retry
            | Self::RetryEscalated
            | Self::RetryAllFailed
            | Self::ConcurrencyUp
            | Self::ConcurrencyDown => None,
            Self::PauseAll => Some("pause / resume the replay"),
            Self::RateUp => Some("play faster"),
            Self::RateDown => Some("play slower"),
            _ => Some(self.description()),
        }
    }

    fn from_config_name(name: &str) -> Option<Self> {
        name.parse().ok()
    }
}

/// One key with its modifiers. Character keys ignore Shift (the character already says it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyBinding {
    code: KeyCodeKey,
    ctrl: bool,
    alt: bool,
}

/// The parts of crossterm's `KeyCode` a binding can name (ordered, for stable error messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum KeyCodeKey {
    Char(char),
    Enter,
    Esc,
    Tab,
    BackTab,
    Up,
    Down,
    Left,
    Right,
    PageUp,
    PageDown,
    Home,
    End,
    Backspace,
    Delete,
    F(u8),
}

impl KeyBinding {
    /// The binding a key event matches, if it is a press of a key a binding can name.
    #[must_use]
    pub fn from_event(event: &KeyEvent) -> Option<Self> {
        if event.kind == KeyEventKind::Release {
            return None;
        }
        let code = match event.code {
            KeyCode::Char(c) => KeyCodeKey::Char(c),
            KeyCode::Enter => KeyCodeKey::Enter,
            KeyCode::Esc => KeyCodeKey::Esc,
            KeyCode::Tab if event.modifiers.contains(KeyModifiers::SHIFT) => KeyCodeKey::BackTab,
            KeyCode::Tab => KeyCodeKey::Tab,
            KeyCode::BackTab => KeyCodeKey::BackTab,
            KeyCode::Up => KeyCodeKey::Up,
            KeyCode::Down => KeyCodeKey::Down,
            KeyCode::Left => KeyCodeKey::Left,
            KeyCode::Right => KeyCodeKey::Right,
            KeyCode::PageUp => KeyCodeKey::PageUp,
            KeyCode::PageDown => KeyCodeKey::PageDown,
            KeyCode::Home => KeyCodeKey::Home,
            KeyCode::End => KeyCodeKey::End,
            KeyCode::Backspace => KeyCodeKey::Backspace,
            KeyCode::Delete => KeyCodeKey::Delete,
            KeyCode::F(n) => KeyCodeKey::F(n),
            _ => return None,
        };
        Some(Self {
            code,
            ctrl: event.modifiers.contains(KeyModifiers::CONTROL),
            alt: event.modifiers.contains(KeyModifiers::ALT),
        })
    }

    /// Ctrl-C: always quits.
    #[must_use]
    pub fn is_ctrl_c(self) -> bool {
        self.ctrl && matches!(self.code, KeyCodeKey::Char('c' | 'C'))
    }

    /// Parse `"q"`, `"P"`, `"ctrl-n"`, `"alt-x"`, `"tab"`, `"shift-tab"`, `"enter"`, `"esc"`,
    /// `"up"`, `"pagedown"`, `"f5"`, `"+"`, `"space"`.
    ///
    /// # Errors
    /// A text naming no key.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let mut ctrl = false;
        let mut alt = false;
        let mut rest = text;
        loop {
            let lower = rest.to_ascii_lowercase();
            if rest.len() > 1 && lower.starts_with("ctrl-") {
                ctrl = true;
                rest = &rest[5..];
            } else if rest.len() > 1 && lower.starts_with("alt-") {
                alt = true;
                rest = &rest[4..];
            } else {
                break;
            }
        }
        let mut chars = rest.chars();
        let code = match (chars.next(), chars.next()) {
            (Some(c), None) => KeyCodeKey::Char(c),
            _ => match rest.to_ascii_lowercase().as_str() {
                "enter" | "return" => KeyCodeKey::Enter,
                "esc" | "escape" => KeyCodeKey::Esc,
                "tab" => KeyCodeKey::Tab,
                "shift-tab" | "backtab" => KeyCodeKey::BackTab,
                "up" => KeyCodeKey::Up,
                "down" => KeyCodeKey::Down,
                "left" => KeyCodeKey::Left,
                "right" => KeyCodeKey::Right,
                "pageup" => KeyCodeKey::PageUp,
                "pagedown" => KeyCodeKey::PageDown,
                "home" => KeyCodeKey::Home,
                "end" => KeyCodeKey::End,
                "backspace" => KeyCodeKey::Backspace,
                "delete" | "del" => KeyCodeKey::Delete,
                "space" => KeyCodeKey::Char(' '),
                other => match other.strip_prefix('f').and_then(|n| n.parse::<u8>().ok()) {
                    Some(n) if (1..=24).contains(&n) => KeyCodeKey::F(n),
                    _ => return Err(KeyError::Unknown(text.to_owned())),
                },
            },
        };
        if ctrl && matches!(code, KeyCodeKey::Char('c' | 'C')) {
            return Err(KeyError::CtrlC(text.to_owned()));
        }
        Ok(Self { code, ctrl, alt })
    }
}

impl fmt::Display for KeyBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.ctrl {
            f.write_str("Ctrl-")?;
        }
        if self.alt {
            f.write_str("Alt-")?;
        }
        match self.code {
            KeyCodeKey::Char(' ') => f.write_str("Space"),
            KeyCodeKey::Char(c) => write!(f, "{c}"),
            KeyCodeKey::Enter => f.write_str("Enter"),
            KeyCodeKey::Esc => f.write_str("Esc"),
            KeyCodeKey::Tab => f.write_str("Tab"),
            KeyCodeKey::BackTab => f.write_str("Shift-Tab"),
            KeyCodeKey::Up => f.write_str("↑"),
            KeyCodeKey::Down => f.write_str("↓"),
            KeyCodeKey::Left => f.write_str("←"),
            KeyCodeKey::Right => f.write_str("→"),
            KeyCodeKey::PageUp => f.write_str("PgUp"),
            KeyCodeKey::PageDown => f.write_str("PgDn"),
            KeyCodeKey::Home => f.write_str("Home"),
            KeyCodeKey::End => f.write_str("End"),
            KeyCodeKey::Backspace => f.write_str("Backspace"),
            KeyCodeKey::Delete => f.write_str("Del"),
            KeyCodeKey::F(n) => write!(f, "F{n}"),
        }
    }
}

/// A text that names no key a binding can use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("unknown key {0:?}")]
    Unknown(String),
    #[error("{0:?}: Ctrl-C always quits and cannot be rebound")]
    CtrlC(String),
}

/// A problem in the `[keys]` table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BindingError {
    #[error("[keys]: unknown action {0:?} (known: {known})", known = known_actions())]
    UnknownAction(String),
    #[error("[keys].{action}: {message}")]
    BadKey { action: String, message: String },
    #[error("[keys]: {key} is bound to both {first} and {second}; give each key one action")]
    Duplicate {
        key: String,
        first: &'static str,
        second: &'static str,
    },
}

fn known_actions() -> String {
    Action::all()
        .map(Action::config_name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The keys of every action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyBindings {
    keys: BTreeMap<Action, Vec<KeyBinding>>,
}

fn keys(texts: &[&str]) -> Vec<KeyBinding> {
    texts
        .iter()
        .filter_map(|text| KeyBinding::parse(text).ok())
        .collect()
}

impl Default for KeyBindings {
    fn default() -> Self {
        let keys = Action::all()
            .map(|action| {
                let texts: &[&str] = match action {
                    Action::Quit => &["q"],
                    Action::PauseAll => &["p"],
                    Action::PauseProvider => &["P"],
                    Action::Retry => &["r"],
                    Action::RetryEscalated => &["e"],
                    Action::RetryAllFailed => &["R"],
                    Action::FocusNext => &["tab"],
                    Action::FocusPrev => &["shift-tab"],
                    Action::Down => &["j", "down"],
                    Action::Up => &["k", "up"],
                    Action::Open => &["enter"],
                    Action::Close => &["esc"],
                    Action::CycleFilter => &["f"],
                    Action::RateUp => &["+", "="],
                    Action::RateDown => &["-", "_"],
                    Action::ConcurrencyUp => &["]"],
                    Action::ConcurrencyDown => &["["],
                    Action::ResetCounters => &["c"],
                    Action::ViewNext => &["v"],
                    Action::ViewDashboard => &["1"],
                    Action::ViewTargets => &["2"],
                    Action::ViewCompare => &["3"],
                    Action::ViewRates => &["4"],
                    Action::GroupTargets => &["g"],
                    Action::Help => &["?"],
                };
                (action, keys(texts))
            })
            .collect();
        Self { keys }
    }
}

impl KeyBindings {
    /// The defaults with the `[keys]` table's entries replacing theirs. Each entry is a key or a
    /// list of keys.
    ///
    /// # Errors
    /// An unknown action or key, or a key bound to two actions.
    pub fn with_overrides(table: &toml::Table) -> Result<Self, BindingError> {
        let mut bindings = Self::default();
        for (name, value) in table {
            let action = Action::from_config_name(name)
                .ok_or_else(|| BindingError::UnknownAction(name.clone()))?;
            let texts: Vec<&str> = match value {
                toml::Value::String(text) => vec![text.as_str()],
                toml::Value::Array(items) => items
                    .iter()
                    .map(|item| {
                        item.as_str().ok_or_else(|| BindingError::BadKey {
                            action: name.clone(),
                            message: format!("expected a key name, found {item}"),
                        })
                    })
                    .collect::<Result<_, _>>()?,
                other => {
                    return Err(BindingError::BadKey {
                        action: name.clone(),
                        message: format!("expected a key or a list of keys, found {other}"),
                    });
                }
            };
            let parsed = texts
                .into_iter()
                .map(KeyBinding::parse)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|error| BindingError::BadKey {
                    action: name.clone(),
                    message: error.to_string(),
                })?;
            bindings.keys.insert(action, parsed);
        }
        bindings.check_duplicates()?;
        Ok(bindings)
    }

    fn check_duplicates(&self) -> Result<(), BindingError> {
        let mut seen: BTreeMap<KeyBinding, Action> = BTreeMap::new();
        for (action, keys) in &self.keys {
            for key in keys {
                if let Some(first) = seen.insert(*key, *action)
                    && first != *action
                {
                    return Err(BindingError::Duplicate {
                        key: key.to_string(),
                        first: first.config_name(),
                        second: action.config_name(),
                    });
                }
            }
        }
        Ok(())
    }

    /// The action a key event asks for. Ctrl-C is always [`Action::Quit`].
    #[must_use]
    pub fn action_for(&self, event: &KeyEvent) -> Option<Action> {
        let key = KeyBinding::from_event(event)?;
        if key.is_ctrl_c() {
            return Some(Action::Quit);
        }
        self.keys
            .iter()
            .find(|(_, keys)| keys.contains(&key))
            .map(|(action, _)| *action)
    }

    /// The keys of an action, for the help overlay and the footer ("j/↓").
    #[must_use]
    pub fn label(&self, action: Action) -> String {
        self.keys.get(&action).map_or_else(String::new, |keys| {
            keys.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("/")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn press(code: KeyCode, modifiers: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, modifiers)
    }

    #[test]
    fn config_names_are_the_documented_ones_in_help_order() {
        // The `[keys]` table's names are a user interface: derived by strum, pinned here.
        let names: Vec<&str> = Action::all().map(Action::config_name).collect();
        assert_eq!(
            names,
            [
                "quit",
                "pause_all",
                "pause_provider",
                "retry",
                "retry_escalated",
                "retry_all_failed",
                "focus_next",
                "focus_prev",
                "down",
                "up",
                "open",
                "close",
                "cycle_filter",
                "rate_up",
                "rate_down",
                "concurrency_up",
                "concurrency_down",
                "reset_counters",
                "view_next",
                "view_dashboard",
                "view_targets",
                "view_compare",
                "view_rates",
                "group_targets",
                "help",
            ]
        );
        for action in Action::all() {
            assert_eq!(Action::from_config_name(action.config_name()), Some(action));
        }
        assert_eq!(Action::from_config_name("Quit"), None);
    }

    #[test]
    fn defaults_cover_every_action_without_duplicates() {
        let bindings = KeyBindings::default();
        bindings.check_duplicates().unwrap();
        for action in Action::all() {
            assert!(!bindings.label(action).is_empty(), "{action:?} has no key");
        }
        let cases = [
            (KeyCode::Char('q'), KeyModifiers::NONE, Action::Quit),
            (
                KeyCode::Char('P'),
                KeyModifiers::SHIFT,
                Action::PauseProvider,
            ),
            (KeyCode::Char('p'), KeyModifiers::NONE, Action::PauseAll),
            (KeyCode::BackTab, KeyModifiers::SHIFT, Action::FocusPrev),
            (KeyCode::Tab, KeyModifiers::SHIFT, Action::FocusPrev),
            (KeyCode::Down, KeyModifiers::NONE, Action::Down),
            (KeyCode::Char('c'), KeyModifiers::CONTROL, Action::Quit),
            (
                KeyCode::Char('c'),
                KeyModifiers::NONE,
                Action::ResetCounters,
            ),
        ];
        for (code, modifiers, action) in cases {
            assert_eq!(
                bindings.action_for(&press(code, modifiers)),
                Some(action),
                "{code:?} {modifiers:?}"
            );
        }
    }

    #[test]
    fn overrides_replace_an_action_and_duplicates_are_refused() {
        let table: toml::Table = toml::from_str(r#"quit = ["x", "ctrl-q"]"#).unwrap();
        let bindings = KeyBindings::with_overrides(&table).unwrap();
        assert_eq!(
            bindings.action_for(&press(KeyCode::Char('x'), KeyModifiers::NONE)),
            Some(Action::Quit)
        );
        assert_eq!(
            bindings.action_for(&press(KeyCode::Char('q'), KeyModifiers::CONTROL)),
            Some(Action::Quit)
        );
        assert_eq!(
            bindings.action_for(&press(KeyCode::Char('q'), KeyModifiers::NONE)),
            None
        );

        let table: toml::Table = toml::from_str(r#"help = "p""#).unwrap();
        let error = KeyBindings::with_overrides(&table).unwrap_err();
        assert!(
            matches!(error, BindingError::Duplicate { ref key, .. } if key == "p"),
            "{error}"
        );
        assert!(error.to_string().contains("pause_all"), "{error}");
    }

    #[test]
    fn bad_tables_get_clear_errors() {
        for (text, expected) in [
            (r#"fly = "x""#, "unknown action"),
            (r#"quit = "hyper-x""#, "unknown key"),
            (r#"quit = 3"#, "expected a key"),
            (r#"quit = "ctrl-c""#, "cannot be rebound"),
        ] {
            let table: toml::Table = toml::from_str(text).unwrap();
            let error = KeyBindings::with_overrides(&table).unwrap_err().to_string();
            assert!(error.contains(expected), "{text}: {error}");
        }
    }
}
