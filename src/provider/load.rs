//! Loading profiles: the embedded ones, then the user's files merged over them.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use super::Profile;
use super::check::KeyPath;
pub use super::locate::Place;
use super::locate::{Layer, key_path, locate};

/// The profiles shipped in the binary, as (file name, TOML text).
const BUILTIN: &[(&str, &str)] = &[
    (
        "omniscrape.toml",
        include_str!("../../assets/providers/omniscrape.toml"),
    ),
    (
        "alterlab.toml",
        include_str!("../../assets/providers/alterlab.toml"),
    ),
    (
        "scraperapi.toml",
        include_str!("../../assets/providers/scraperapi.toml"),
    ),
    (
        "scrapingbee.toml",
        include_str!("../../assets/providers/scrapingbee.toml"),
    ),
    (
        "zenrows.toml",
        include_str!("../../assets/providers/zenrows.toml"),
    ),
    (
        "scrapfly.toml",
        include_str!("../../assets/providers/scrapfly.toml"),
    ),
    (
        "zyte.toml",
        include_str!("../../assets/providers/zyte.toml"),
    ),
    (
        "crawlbase.toml",
        include_str!("../../assets/providers/crawlbase.toml"),
    ),
    (
        "brightdata.toml",
        include_str!("../../assets/providers/brightdata.toml"),
    ),
];

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("cannot read provider profile {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Not TOML, or a profile with a key it does not have, a value of the wrong type, a key
    /// missing. `origin` is the file (and line) that wrote the value at fault.
    #[error("provider profile {origin} is not valid: {message}")]
    Invalid { origin: Place, message: String },
    /// A complete profile that breaks a rule, named at the file and line that broke it.
    #[error("provider profile {origin} is not valid: {source}")]
    Rule {
        origin: Place,
        source: Box<RuleError>,
    },
}

/// A profile that parses but breaks a rule the code relies on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("name {0:?} must be non-empty and use only letters, digits, '-' and '_'")]
    Name(String),
    #[error("base_url {0:?} must start with http:// or https://")]
    BaseUrl(String),
    #[error("endpoints.{field} = {path:?} must start with '/'")]
    EndpointPath { field: &'static str, path: String },
    #[error("auth.name is required for header and query auth")]
    AuthName,
    #[error("status {0} is listed twice")]
    DuplicateStatus(u16),
    #[error("code {code} is listed twice under status {status}")]
    DuplicateCode { code: String, status: u16 },
    #[error("an escalation needs a status or a code to match")]
    EscalationMatch,
    #[error("an escalation needs at least one step")]
    EscalationSteps,
    #[error("plan {0}")]
    PlanConcurrency(#[from] crate::config::ConcurrencyError),
    #[error("plan requests_per_minute must be at least 1 (leave it out for no published rate)")]
    PlanRate,
    #[error(transparent)]
    Shape(#[from] super::check::ShapeError),
    #[error("request.escalation_mode {mode:?} is not one of request.modes {modes:?}")]
    EscalationMode { mode: String, modes: Vec<String> },
}

impl RuleError {
    /// The keys the error is about, most telling first (see [`locate`]).
    fn at(&self) -> Vec<KeyPath> {
        let one = |path: &[&str]| vec![path.iter().map(|key| (*key).to_owned()).collect()];
        match self {
            Self::Name(_) => one(&["name"]),
            Self::BaseUrl(_) => one(&["base_url"]),
            Self::EndpointPath { field, .. } => one(&["endpoints", field]),
            Self::AuthName => one(&["auth"]),
            Self::DuplicateStatus(_) => one(&["statuses"]),
            Self::DuplicateCode { .. } => one(&["errors"]),
            Self::EscalationMatch | Self::EscalationSteps => one(&["escalations"]),
            Self::PlanConcurrency(_) => one(&["plan", "concurrency"]),
            Self::PlanRate => one(&["plan", "requests_per_minute"]),
            Self::Shape(shape) => shape.at(),
            Self::EscalationMode { .. } => one(&["request", "escalation_mode"]),
        }
    }
}

/// All loaded profiles, in a stable order (built-ins first, then added ones by name).
#[derive(Debug, Clone)]
pub struct Profiles {
    profiles: Vec<Profile>,
}

impl Profiles {
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&Profile> {
        self.profiles.iter().find(|profile| profile.name == name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Profile> {
        self.profiles.iter()
    }

    #[must_use]
    pub fn names(&self) -> Vec<&str> {
        self.profiles
            .iter()
            .map(|profile| profile.name.as_str())
            .collect()
    }
}

/// The embedded profiles alone. They are checked by tests, so failing here is a build defect.
///
/// # Panics
/// Never for a released binary: `builtin_profiles_parse` in the tests covers every embedded file.
#[must_use]
pub fn builtin_profiles() -> Profiles {
    // Parsed once: the text never changes, and parsing nine TOML files costs milliseconds that
    // every classification in a test (and every command's start-up) would otherwise pay again.
    static PARSED: LazyLock<Profiles> = LazyLock::new(|| {
        match load_from(
            BUILTIN
                .iter()
                .map(|(name, text)| ((*name).to_owned(), (*text).to_owned())),
            None,
        ) {
            Ok(profiles) => profiles,
            Err(error) => panic!("embedded provider profile is broken: {error}"),
        }
    });
    PARSED.clone()
}

/// The embedded profiles with every `*.toml` in `dir` merged over them (same `name`, or same file
/// name, overrides; anything else adds a provider). A missing directory is not an error.
///
/// # Errors
/// A file that cannot be read, is not TOML, or does not describe a complete profile.
pub fn load_profiles(dir: Option<&Path>) -> Result<Profiles, ProfileError> {
    let builtin = BUILTIN
        .iter()
        .map(|(name, text)| ((*name).to_owned(), (*text).to_owned()));
    load_from(builtin, dir)
}

fn load_from(
    builtin: impl Iterator<Item = (String, String)>,
    dir: Option<&Path>,
) -> Result<Profiles, ProfileError> {
    // (file name, merged table, the files merged into it in order)
    let mut tables: Vec<(String, toml::Table, Vec<Layer>)> = Vec::new();
    for (file, text) in builtin {
        let origin = format!("(built-in) {file}");
        let table = parse_table(&origin, &text)?;
        tables.push((file, table, vec![Layer { origin, text }]));
    }

    if let Some(dir) = dir {
        for path in user_files(dir)? {
            let origin = path.display().to_string();
            let text = fs::read_to_string(&path).map_err(|source| ProfileError::Read {
                path: path.clone(),
                source,
            })?;
            let overlay = parse_table(&origin, &text)?;
            let file = path
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_default();
            let overlay_name = overlay.get("name").and_then(toml::Value::as_str);
            let existing = tables.iter_mut().find(|(existing_file, table, _)| {
                *existing_file == file
                    || (overlay_name.is_some()
                        && table.get("name").and_then(toml::Value::as_str) == overlay_name)
            });
            let layer = Layer { origin, text };
            match existing {
                Some((_, base, layers)) => {
                    merge(base, overlay);
                    layers.push(layer);
                }
                None => tables.push((file, overlay, vec![layer])),
            }
        }
    }

    let mut profiles = Vec::with_capacity(tables.len());
    for (_, table, layers) in tables {
        let profile = profile_of(table, &layers)?;
        if profiles
            .iter()
            .any(|other: &Profile| other.name == profile.name)
        {
            return Err(ProfileError::Invalid {
                origin: locate(&layers, &[vec!["name".to_owned()]]),
                message: format!("a second profile is named {:?}", profile.name),
            });
        }
        profiles.push(profile);
    }
    Ok(Profiles { profiles })
}

/// The merged `table` as a profile that keeps every rule, or an error at the file and line of
/// `layers` that wrote the value at fault.
fn profile_of(table: toml::Table, layers: &[Layer]) -> Result<Profile, ProfileError> {
    let profile: Profile =
        serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|error| {
            let at = key_path(error.path());
            let message = if at.is_empty() {
                error.inner().message().to_owned()
            } else {
                format!("{}: {}", at.join("."), error.inner().message())
            };
            ProfileError::Invalid {
                origin: locate(layers, &[at]),
                message,
            }
        })?;
    validate(&profile).map_err(|source| ProfileError::Rule {
        origin: locate(layers, &source.at()),
        source: Box::new(source),
    })?;
    Ok(profile)
}

fn user_files(dir: &Path) -> Result<Vec<PathBuf>, ProfileError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(ProfileError::Read {
                path: dir.to_owned(),
                source,
            });
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    files.sort();
    Ok(files)
}

fn parse_table(origin: &str, text: &str) -> Result<toml::Table, ProfileError> {
    // toml's message carries the line, column and a caret under the problem.
    text.parse::<toml::Table>()
        .map_err(|error| ProfileError::Invalid {
            origin: Place {
                file: origin.to_owned(),
                line: None,
            },
            message: error.to_string(),
        })
}

/// Tables merge key by key; any other value (arrays included) replaces.
fn merge(base: &mut toml::Table, overlay: toml::Table) {
    for (key, value) in overlay {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(base_table)), toml::Value::Table(overlay_table)) => {
                merge(base_table, overlay_table);
            }
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

fn validate(profile: &Profile) -> Result<(), RuleError> {
    if profile.name.is_empty()
        || !profile
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(RuleError::Name(profile.name.clone()));
    }
    if !(profile.base_url.starts_with("http://") || profile.base_url.starts_with("https://")) {
        return Err(RuleError::BaseUrl(profile.base_url.clone()));
    }
    for (field, path) in [
        ("scrape", Some(&profile.endpoints.scrape)),
        ("async_submit", profile.endpoints.async_submit.as_ref()),
        ("job_poll", profile.endpoints.job_poll.as_ref()),
        ("usage", profile.endpoints.usage.as_ref()),
    ] {
        if let Some(path) = path.filter(|path| !path.starts_with('/')) {
            return Err(RuleError::EndpointPath {
                field,
                path: path.clone(),
            });
        }
    }
    if matches!(
        profile.auth.style,
        super::AuthStyle::Header | super::AuthStyle::Query
    ) && profile.auth.name.as_deref().is_none_or(str::is_empty)
    {
        return Err(RuleError::AuthName);
    }
    let request = &profile.request;
    if let Some(mode) = &request.escalation_mode
        && !request.modes.is_empty()
        && !request.modes.contains(mode)
    {
        return Err(RuleError::EscalationMode {
            mode: mode.clone(),
            modes: request.modes.clone(),
        });
    }
    let mut seen_status = std::collections::HashSet::new();
    for rule in &profile.statuses {
        if !seen_status.insert(rule.status) {
            return Err(RuleError::DuplicateStatus(rule.status));
        }
    }
    let mut seen_code = std::collections::HashSet::new();
    for rule in &profile.errors {
        if !seen_code.insert((rule.code.as_str(), rule.status)) {
            return Err(RuleError::DuplicateCode {
                code: rule.code.clone(),
                status: rule.status,
            });
        }
    }
    if let Some(plan) = profile.plan {
        if let Some(concurrency) = plan.concurrency {
            crate::config::check_concurrency(concurrency)?;
        }
        if plan.requests_per_minute == Some(0) {
            return Err(RuleError::PlanRate);
        }
    }
    for rule in &profile.escalations {
        if rule.status.is_none() && rule.code.is_none() {
            return Err(RuleError::EscalationMatch);
        }
        if rule.steps.is_empty() {
            return Err(RuleError::EscalationSteps);
        }
    }
    super::check::readable(profile)?;
    super::check::sendable(profile)?;
    super::check::header_names(profile)?;
    super::check::distinct_places(profile)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_profiles_parse() {
        let profiles = load_profiles(None).expect("built-in profiles load");
        assert_eq!(
            profiles.names(),
            [
                "omniscrape",
                "alterlab",
                "scraperapi",
                "scrapingbee",
                "zenrows",
                "scrapfly",
                "zyte",
                "crawlbase",
                "brightdata"
            ]
        );
    }

    #[test]
    fn user_file_overrides_one_field_and_keeps_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join("omniscrape.toml"),
            "base_url = \"http://127.0.0.1:9\"\n[request]\nproxy_country = \"geo\"\n",
        )
        .unwrap();
        let profiles = load_profiles(Some(dir.path())).unwrap();
        let omni = profiles.get("omniscrape").unwrap();
        assert_eq!(omni.base_url, "http://127.0.0.1:9");
        assert_eq!(omni.request.proxy_country.as_deref(), Some("geo"));
        assert_eq!(
            omni.request.url, "url",
            "unmentioned fields keep their built-in value"
        );
        assert_eq!(omni.errors.len(), 3);
    }

    #[test]
    fn user_file_adds_a_provider_with_query_auth() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join("myapi.toml"),
            r#"
name = "myapi"
display_name = "My API"
base_url = "https://api.myapi.example"
[endpoints]
scrape = "/"
usage = "/account"
[auth]
style = "query"
name = "api_key"
[request]
url = "url"
[response]
target_status = ["status"]
[billing]
unit = "credits"
[usage]
balance = ["json:/credits_left"]
balance_unit = "credits"
"#,
        )
        .unwrap();
        let profiles = load_profiles(Some(dir.path())).unwrap();
        let added = profiles.get("myapi").unwrap();
        assert_eq!(added.auth.describe(), "query parameter api_key");
        assert_eq!(profiles.names().len(), builtin_profiles().names().len() + 1);
    }

    #[test]
    fn a_bad_user_profile_names_the_file_and_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broken.toml");
        fs::write(&path, "name = \"x\"\nbase_url = \"ftp://nope\"\n").unwrap();
        let error = load_profiles(Some(dir.path())).unwrap_err().to_string();
        assert!(error.contains("broken.toml"), "{error}");

        fs::write(&path, "this is = = not toml").unwrap();
        let error = load_profiles(Some(dir.path())).unwrap_err().to_string();
        assert!(error.contains("broken.toml"), "{error}");
    }

    #[test]
    fn a_field_the_profile_cannot_read_names_the_file_and_the_field() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join("zenrows.toml"),
            "[usage]\nquota_used = [\"header:X-Used\"]\n",
        )
        .unwrap();
        let error = load_profiles(Some(dir.path())).unwrap_err().to_string();
        assert!(error.contains("zenrows.toml"), "{error}");
        assert!(error.contains("usage.quota_used"), "{error}");
    }

    #[test]
    fn an_unknown_field_source_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join("alterlab.toml"),
            "[response]\ntarget_status = [\"body:/x\"]\n",
        )
        .unwrap();
        let error = load_profiles(Some(dir.path())).unwrap_err().to_string();
        assert!(error.contains("body:/x"), "{error}");
    }

    /// The issue's case: an override with a wrong type or an unknown key named the built-in
    /// `omniscrape.toml`. The user's file and line are named now, for each kind of problem.
    #[test]
    fn a_problem_in_a_users_override_names_their_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("omniscrape.toml");
        let expect = |text: &str, line: usize, about: &str| {
            fs::write(&path, text).unwrap();
            let error = load_profiles(Some(dir.path())).unwrap_err();
            let shown = error.to_string();
            let origin = match &error {
                ProfileError::Invalid { origin, .. } | ProfileError::Rule { origin, .. } => origin,
                ProfileError::Read { .. } => panic!("{shown}"),
            };
            assert_eq!(
                origin,
                &Place {
                    file: path.display().to_string(),
                    line: Some(line)
                },
                "{text}: {shown}"
            );
            assert!(shown.contains(about), "{text}: {shown}");
        };
        expect(
            "# mine\n[request]\nmode = 5\n",
            3,
            "request.mode: invalid type",
        );
        expect("[request]\n\nmodee = \"m\"\n", 3, "unknown field `modee`");
        expect("[auth]\nname = \"X API Key\"\n", 2, "auth.name");
        expect("[request]\nmode = \"url\"\n", 2, "request.mode = \"url\"");
        expect(
            "[[statuses]]\nstatus = 200\nmeaning = \"ok\"\nretry = \"no\"\nfault = \"none\"\n\n[[statuses]]\nstatus = 200\nmeaning = \"ok\"\nretry = \"sometimes\"\nfault = \"none\"\n",
            10,
            "statuses.1.retry",
        );
        expect("[endpoints]\njob_poll = \"/v1/jobs/\"\n", 2, "{job_id}");
    }

    /// A collision is named at the key the user wrote, not at the built-in one it meets; a key no
    /// user file sets is named in the built-in file.
    #[test]
    fn a_collision_names_the_users_key_and_a_key_nobody_overrode_the_built_in_file() {
        let dir = tempfile::tempdir().unwrap();
        // The user's new mode collides with the built-in target field.
        fs::write(
            dir.path().join("mine.toml"),
            "name = \"omniscrape\"\n[request]\nproxy_country = \"mode\"\n",
        )
        .unwrap();
        let error = load_profiles(Some(dir.path())).unwrap_err().to_string();
        assert!(error.contains("mine.toml, line 3"), "{error}");

        let layers = [Layer {
            origin: "(built-in) x.toml".to_owned(),
            text: "[request]\nurl = \"u\"\n".to_owned(),
        }];
        let at = locate(&layers, &[vec!["request".into(), "url".into()]]);
        assert_eq!(at.to_string(), "(built-in) x.toml, line 2");
    }
}
