//! Reading one setting: the environment (`GROUPBUY_<NAME>`) wins over the file.

use super::ConfigError;
use std::collections::HashMap;

/// Where settings come from: the environment (`GROUPBUY_<NAME>`) wins over the file.
pub(super) struct Sources<'a> {
    pub(super) env: &'a HashMap<String, String>,
}

/// The error naming a setting by both of its names.
pub(super) fn invalid(name: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        name,
        env: env_name(name),
        reason: reason.into(),
    }
}

fn env_name(name: &str) -> String {
    format!("GROUPBUY_{}", name.to_ascii_uppercase())
}

impl Sources<'_> {
    /// A text setting; empty counts as unset.
    pub(super) fn pick(&self, name: &'static str, file_value: Option<String>) -> Option<String> {
        self.env
            .get(&env_name(name))
            .cloned()
            .or(file_value)
            .filter(|v| !v.trim().is_empty())
    }

    /// A whole-number setting.
    pub(super) fn int(
        &self,
        name: &'static str,
        file_value: Option<i64>,
    ) -> Result<Option<i64>, ConfigError> {
        match self.env.get(&env_name(name)) {
            Some(v) => v
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| invalid(name, format!("{v:?} is not a whole number"))),
            None => Ok(file_value),
        }
    }

    /// A whole number from `min` to `max` (`default` when unset), in the type it is used as.
    pub(super) fn bounded<T: TryFrom<i64>>(
        &self,
        name: &'static str,
        file_value: Option<i64>,
        default: impl Into<i64>,
        min: i64,
        max: i64,
    ) -> Result<T, ConfigError> {
        let v = self.int(name, file_value)?.unwrap_or(default.into());
        let range = if max == i64::MAX {
            format!("at least {min}")
        } else {
            format!("between {min} and {max}")
        };
        Some(v)
            .filter(|v| (min..=max).contains(v))
            .and_then(|v| T::try_from(v).ok())
            .ok_or_else(|| invalid(name, format!("it must be {range}")))
    }

    /// A true/false setting.
    pub(super) fn flag(
        &self,
        name: &'static str,
        file_value: Option<bool>,
    ) -> Result<bool, ConfigError> {
        match self.env.get(&env_name(name)) {
            Some(v) => match v.trim() {
                "true" | "1" => Ok(true),
                "false" | "0" | "" => Ok(false),
                _ => Err(invalid(name, "use true or false")),
            },
            None => Ok(file_value.unwrap_or(false)),
        }
    }
}
