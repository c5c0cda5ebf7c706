//! Where omniscope keeps its files (directories crate), with an environment override for tests and
//! for users who keep their config elsewhere.

use std::path::PathBuf;

use directories::ProjectDirs;

/// Overrides the config directory (profiles in `providers/`, `config.toml`).
pub const CONFIG_DIR_ENV: &str = "OMNISCOPE_CONFIG_DIR";
/// Overrides the data directory (event logs).
pub const DATA_DIR_ENV: &str = "OMNISCOPE_DATA_DIR";

fn project_dirs() -> Option<ProjectDirs> {
    ProjectDirs::from("dev", "omniscope", "omniscope")
}

/// The config directory, if one can be determined (no home directory means none).
#[must_use]
pub fn config_dir() -> Option<PathBuf> {
    std::env::var_os(CONFIG_DIR_ENV)
        .map(PathBuf::from)
        .or_else(|| project_dirs().map(|dirs| dirs.config_dir().to_owned()))
}

/// The data directory, if one can be determined.
#[must_use]
pub fn data_dir() -> Option<PathBuf> {
    std::env::var_os(DATA_DIR_ENV)
        .map(PathBuf::from)
        .or_else(|| project_dirs().map(|dirs| dirs.data_dir().to_owned()))
}

/// The folder of user provider profiles.
#[must_use]
pub fn profiles_dir() -> Option<PathBuf> {
    config_dir().map(|dir| dir.join("providers"))
}
