//! `omniscope providers`: what omniscope knows about each API.

use std::fmt::Write as _;

use crate::cli::ProvidersArgs;
use crate::cmd::CliError;
use crate::provider::{Profile, Profiles};
use crate::session;

/// Entry point for `omniscope providers`.
///
/// # Errors
/// A profile in the config dir is not valid (exit 2).
pub fn main(args: &ProvidersArgs) -> Result<(), CliError> {
    let profiles = session::load_profiles()?;
    let listing = if args.json {
        let mut json = render_json(&profiles).map_err(|source| CliError::Encode {
            what: "the profiles",
            source,
        })?;
        json.push('\n');
        json
    } else {
        render_text(&profiles)
    };
    crate::stdout::print(&listing);
    Ok(())
}

/// The human-readable listing of every profile.
#[must_use]
pub fn render_text(profiles: &Profiles) -> String {
    let mut out = String::new();
    for profile in profiles.iter() {
        render_profile(&mut out, profile);
        out.push('\n');
    }
    out
}

fn yes_no(flag: bool) -> &'static str {
    if flag { "yes" } else { "no" }
}

fn render_profile(out: &mut String, profile: &Profile) {
    let endpoints = &profile.endpoints;
    let _ = writeln!(out, "{} ({})", profile.display_name, profile.name);
    let _ = writeln!(
        out,
        "  endpoint   {:<4} {}{}",
        endpoints.method.label(),
        profile.base_url,
        endpoints.scrape
    );
    if let Some(path) = &endpoints.async_submit {
        let _ = writeln!(out, "  async      POST {}{path}", profile.base_url);
    }
    if let Some(path) = &endpoints.job_poll {
        let _ = writeln!(out, "  job poll   GET  {}{path}", profile.base_url);
    }
    if let Some(path) = &endpoints.usage {
        let _ = writeln!(out, "  usage      GET  {}{path}", profile.base_url);
    }
    let _ = writeln!(out, "  auth       {}", profile.auth.describe());
    if let Some(auth) = &profile.usage_auth {
        let _ = writeln!(out, "  usage auth {}", auth.describe());
    }
    let _ = writeln!(out, "  billing    {}", profile.billing.unit.label());
    if let Some(docs) = &profile.docs_url {
        let _ = writeln!(out, "  contract   {docs}");
    }

    let _ = writeln!(out, "  HTTP statuses:");
    let _ = writeln!(
        out,
        "    {:<6} {:<12} {:<9} {:<12} meaning",
        "status", "retryable", "refunded", "fault"
    );
    for rule in &profile.statuses {
        let _ = writeln!(
            out,
            "    {:<6} {:<12} {:<9} {:<12} {}",
            rule.status,
            rule.retry.label(),
            yes_no(rule.refunded),
            rule.fault.label(),
            rule.meaning
        );
    }
    let _ = writeln!(out, "  Error codes:");
    let width = profile
        .errors
        .iter()
        .map(|rule| rule.code.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let _ = writeln!(
        out,
        "    {:<width$} {:<4} {:<12} {:<9} advice",
        "code", "HTTP", "retryable", "refunded"
    );
    for rule in &profile.errors {
        let _ = writeln!(
            out,
            "    {:<width$} {:<4} {:<12} {:<9} {}",
            rule.code,
            rule.status,
            rule.retry.label(),
            yes_no(rule.refunded),
            rule.advice
        );
    }
}

/// The profiles as a JSON array (the same data as the TOML files, merged).
///
/// # Errors
/// Only if serialization fails, which profiles cannot make happen.
pub fn render_json(profiles: &Profiles) -> serde_json::Result<String> {
    let list: Vec<&Profile> = profiles.iter().collect();
    serde_json::to_string_pretty(&list)
}
