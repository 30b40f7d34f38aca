//! Config-provider placeholders: `${env:VAR}`, `${file:path:key}`, `${directory:dir:file}`.
//!
//! A placeholder is `${provider:path:key}` or `${provider:key}`, parsed as Kafka's
//! `ConfigTransformer` does: the provider runs to the first `:`, the path to the next `:`
//! (optional), the key to the closing `}`. ferry resolves placeholders once, when the file is
//! loaded (MM2 since 3.5 passes them to Connect, which resolves them lazily, KAFKA-14653).
//!
//! Providers: the built-in names `env`, `file` and `directory`, plus any alias declared with
//! `config.providers=<alias>` and `config.providers.<alias>.class=<Kafka provider class>`.
//! Kafka resolves only declared providers and leaves other placeholders as text; ferry also
//! resolves the three built-in names when undeclared (and says so in a notice), and refuses an
//! unresolvable placeholder instead of passing `${...}` on as a password.
//!
//! - `env` (`EnvVarConfigProvider`, KIP-887): `${env:VAR}`; a path is an error.
//! - `file` (`FileConfigProvider`, KIP-297): `${file:/etc/mm2/secrets.properties:password}`;
//!   the file is itself a properties file. Relative paths are relative to the working
//!   directory, as in Java, unless [`LoadOptions::with_base_dir`](super::LoadOptions::with_base_dir)
//!   says otherwise.
//! - `directory` (`DirectoryConfigProvider`, KIP-632): `${directory:/run/secrets:db-password}`;
//!   the value is the whole content of the file `db-password` in that directory.
//!
//! A missing variable, file or key is an error naming the referencing key; the resolved value
//! never appears in an error or a notice, and values resolved from a placeholder are treated
//! as secret from then on.
//!
//! # References
//! - KIP-297 (externalizing secrets), KIP-421 (variables in connector configs),
//!   KIP-632 (`DirectoryConfigProvider`), KIP-887 (`EnvVarConfigProvider`, 3.5)
//! - `clients/src/main/java/org/apache/kafka/common/config/ConfigTransformer.java`
//! - `clients/src/main/java/org/apache/kafka/common/config/provider/`

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use super::properties::Properties;

/// Kafka's provider classes and what ferry does for each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProviderKind {
    Env,
    File,
    Directory,
}

const FILE_PROVIDER_CLASS: &str = "org.apache.kafka.common.config.provider.FileConfigProvider";
const ENV_PROVIDER_CLASS: &str = "org.apache.kafka.common.config.provider.EnvVarConfigProvider";
const DIRECTORY_PROVIDER_CLASS: &str =
    "org.apache.kafka.common.config.provider.DirectoryConfigProvider";

impl ProviderKind {
    pub(crate) fn from_class(class: &str) -> Option<Self> {
        match class.trim() {
            FILE_PROVIDER_CLASS | "FileConfigProvider" => Some(Self::File),
            ENV_PROVIDER_CLASS | "EnvVarConfigProvider" => Some(Self::Env),
            DIRECTORY_PROVIDER_CLASS | "DirectoryConfigProvider" => Some(Self::Directory),
            _ => None,
        }
    }

    pub(crate) fn builtin(name: &str) -> Option<Self> {
        match name {
            "env" => Some(Self::Env),
            "file" => Some(Self::File),
            "directory" => Some(Self::Directory),
            _ => None,
        }
    }
}

/// Why a placeholder could not be resolved. Never carries the resolved value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlaceholderError {
    /// `${env:VAR}` with `VAR` unset (or not valid Unicode).
    #[error(
        "environment variable `{variable}` is not set (referenced as `${{{provider}:{variable}}}`)"
    )]
    MissingEnvVar {
        /// The provider alias used.
        provider: String,
        /// The variable.
        variable: String,
    },
    /// `${env:path:VAR}`: the environment provider takes no path.
    #[error("the environment provider `{provider}` takes no path, found `{path}`")]
    EnvPath {
        /// The provider alias used.
        provider: String,
        /// The path given.
        path: String,
    },
    /// The file of a `${file:...}` or `${directory:...}` placeholder cannot be read.
    #[error("cannot read `{}` (referenced through provider `{provider}`): {kind}", path.display())]
    Unreadable {
        /// The provider alias used.
        provider: String,
        /// The file.
        path: PathBuf,
        /// The I/O error kind.
        kind: std::io::ErrorKind,
    },
    /// The referenced properties file is malformed.
    #[error("`{}` (referenced through provider `{provider}`) is not a valid properties file: line {line}", path.display())]
    FileSyntax {
        /// The provider alias used.
        provider: String,
        /// The file.
        path: PathBuf,
        /// The line at fault.
        line: usize,
    },
    /// The referenced properties file has no such key.
    #[error("`{}` has no key `{key}` (referenced through provider `{provider}`)", path.display())]
    MissingFileKey {
        /// The provider alias used.
        provider: String,
        /// The file.
        path: PathBuf,
        /// The missing key.
        key: String,
    },
    /// `${file:key}` or `${directory:file}` without a path.
    #[error("provider `{provider}` needs a path: `${{{provider}:<path>:{key}}}`")]
    MissingPath {
        /// The provider alias used.
        provider: String,
        /// The key given.
        key: String,
    },
    /// The provider alias is neither declared in `config.providers` nor built in.
    #[error(
        "unknown config provider `{provider}`: declare it with `config.providers` and `config.providers.{provider}.class`, or use `env`, `file` or `directory`"
    )]
    UnknownProvider {
        /// The alias used.
        provider: String,
    },
    /// The provider is declared with a class ferry does not implement.
    #[error(
        "config provider `{provider}` has class `{class}`, which ferry does not implement (supported: FileConfigProvider, EnvVarConfigProvider, DirectoryConfigProvider)"
    )]
    UnsupportedProvider {
        /// The alias used.
        provider: String,
        /// The declared class.
        class: String,
    },
}

impl PlaceholderError {
    /// Whether the environment (a variable, a file) rather than the text is at fault.
    pub fn is_environment(&self) -> bool {
        matches!(
            self,
            Self::MissingEnvVar { .. }
                | Self::Unreadable { .. }
                | Self::FileSyntax { .. }
                | Self::MissingFileKey { .. }
        )
    }
}

/// Where environment variables come from. `Debug` lists variable names only.
#[derive(Clone, Default)]
pub(crate) enum EnvSource {
    /// The process environment.
    #[default]
    Process,
    /// A fixed map (tests, embedding applications).
    Map(BTreeMap<String, String>),
}

impl std::fmt::Debug for EnvSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Process => f.write_str("Process"),
            Self::Map(map) => f
                .debug_tuple("Map")
                .field(&map.keys().collect::<Vec<_>>())
                .finish(),
        }
    }
}

impl EnvSource {
    fn get(&self, name: &str) -> Option<String> {
        match self {
            Self::Process => std::env::var(name).ok(),
            Self::Map(map) => map.get(name).cloned(),
        }
    }
}

/// One parsed `${provider:path:key}`.
#[derive(Debug, PartialEq, Eq)]
struct Placeholder<'a> {
    provider: &'a str,
    path: Option<&'a str>,
    key: &'a str,
}

/// Finds the placeholders in a value: `(start, end, placeholder)` byte ranges.
fn find_placeholders(value: &str) -> Vec<(usize, usize, Placeholder<'_>)> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(rel) = value.get(from..).and_then(|s| s.find("${")) {
        let start = from + rel;
        let inner_start = start + 2;
        let Some(close_rel) = value.get(inner_start..).and_then(|s| s.find('}')) else {
            break;
        };
        let inner_end = inner_start + close_rel;
        let inner = value.get(inner_start..inner_end).unwrap_or_default();
        if let Some((provider, rest)) = inner.split_once(':') {
            let (path, key) = match rest.split_once(':') {
                Some((path, key)) => (Some(path), key),
                None => (None, rest),
            };
            found.push((
                start,
                inner_end + 1,
                Placeholder {
                    provider,
                    path,
                    key,
                },
            ));
            from = inner_end + 1;
        } else {
            // `${x}` without a colon is not a placeholder (Kafka's pattern needs one).
            from = inner_start;
        }
    }
    found
}

/// Resolves placeholders for one load.
#[derive(Debug)]
pub(crate) struct Resolver {
    declared: HashMap<String, Result<ProviderKind, String>>,
    env: EnvSource,
    base_dir: Option<PathBuf>,
    files: HashMap<PathBuf, Result<Properties, PlaceholderError>>,
    /// Built-in provider names used without being declared (for a notice).
    pub(crate) undeclared_used: Vec<String>,
}

impl Resolver {
    /// `declared` maps each alias of `config.providers` to its class (`Err(class)` when ferry
    /// does not implement it).
    pub(crate) fn new(
        declared: HashMap<String, Result<ProviderKind, String>>,
        env: EnvSource,
        base_dir: Option<PathBuf>,
    ) -> Self {
        Self {
            declared,
            env,
            base_dir,
            files: HashMap::new(),
            undeclared_used: Vec::new(),
        }
    }

    /// Resolves every placeholder in `value`. Returns `None` when the value holds none.
    pub(crate) fn resolve(&mut self, value: &str) -> Result<Option<String>, PlaceholderError> {
        let found = find_placeholders(value);
        if found.is_empty() {
            return Ok(None);
        }
        let mut out = String::with_capacity(value.len());
        let mut last = 0;
        for (start, end, placeholder) in found {
            out.push_str(value.get(last..start).unwrap_or_default());
            out.push_str(&self.lookup(&placeholder)?);
            last = end;
        }
        out.push_str(value.get(last..).unwrap_or_default());
        Ok(Some(out))
    }

    fn lookup(&mut self, p: &Placeholder<'_>) -> Result<String, PlaceholderError> {
        let provider = p.provider.to_owned();
        let kind = match self.declared.get(p.provider) {
            Some(Ok(kind)) => *kind,
            Some(Err(class)) => {
                return Err(PlaceholderError::UnsupportedProvider {
                    provider,
                    class: class.clone(),
                });
            }
            None => match ProviderKind::builtin(p.provider) {
                Some(kind) => {
                    if !self.undeclared_used.contains(&provider) {
                        self.undeclared_used.push(provider.clone());
                    }
                    kind
                }
                None => return Err(PlaceholderError::UnknownProvider { provider }),
            },
        };
        match kind {
            ProviderKind::Env => {
                if let Some(path) = p.path.filter(|path| !path.is_empty()) {
                    return Err(PlaceholderError::EnvPath {
                        provider,
                        path: path.to_owned(),
                    });
                }
                self.env
                    .get(p.key)
                    .ok_or_else(|| PlaceholderError::MissingEnvVar {
                        provider,
                        variable: p.key.to_owned(),
                    })
            }
            ProviderKind::File => {
                let Some(path) = p.path else {
                    return Err(PlaceholderError::MissingPath {
                        provider,
                        key: p.key.to_owned(),
                    });
                };
                let path = self.full_path(Path::new(path));
                let props = self.load_file(&provider, &path)?;
                props
                    .get(p.key)
                    .map(|prop| prop.value.clone())
                    .ok_or_else(|| PlaceholderError::MissingFileKey {
                        provider,
                        path: path.clone(),
                        key: p.key.to_owned(),
                    })
            }
            ProviderKind::Directory => {
                let Some(dir) = p.path else {
                    return Err(PlaceholderError::MissingPath {
                        provider,
                        key: p.key.to_owned(),
                    });
                };
                let path = self.full_path(&Path::new(dir).join(p.key));
                std::fs::read_to_string(&path).map_err(|e| PlaceholderError::Unreadable {
                    provider,
                    path,
                    kind: e.kind(),
                })
            }
        }
    }

    fn full_path(&self, path: &Path) -> PathBuf {
        match &self.base_dir {
            Some(base) if path.is_relative() => base.join(path),
            _ => path.to_owned(),
        }
    }

    fn load_file(&mut self, provider: &str, path: &Path) -> Result<&Properties, PlaceholderError> {
        let entry = self.files.entry(path.to_owned()).or_insert_with(|| {
            let text = std::fs::read(path).map_err(|e| PlaceholderError::Unreadable {
                provider: provider.to_owned(),
                path: path.to_owned(),
                kind: e.kind(),
            })?;
            let text = super::decode_text(&text).0;
            Properties::parse(&text).map_err(|e| PlaceholderError::FileSyntax {
                provider: provider.to_owned(),
                path: path.to_owned(),
                line: e.line().unwrap_or(0),
            })
        });
        entry.as_ref().map_err(Clone::clone)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolver(env: &[(&str, &str)]) -> Resolver {
        Resolver::new(
            HashMap::new(),
            EnvSource::Map(
                env.iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            ),
            None,
        )
    }

    #[test]
    fn parses_like_config_transformer() {
        let found =
            find_placeholders("a ${env:X} b ${file:/p/q.properties:k:with:colons} ${nope} ${x:}");
        let ps: Vec<_> = found.into_iter().map(|(_, _, p)| p).collect();
        assert_eq!(
            ps,
            vec![
                Placeholder {
                    provider: "env",
                    path: None,
                    key: "X"
                },
                Placeholder {
                    provider: "file",
                    path: Some("/p/q.properties"),
                    key: "k:with:colons"
                },
                Placeholder {
                    provider: "x",
                    path: None,
                    key: ""
                },
            ]
        );
        assert!(find_placeholders("plain $HOME {x} ${unclosed").is_empty());
    }

    #[test]
    fn env_resolution() {
        let mut r = resolver(&[("HOSTS", "h1:9092,h2:9092")]);
        assert_eq!(
            r.resolve("${env:HOSTS}").unwrap().as_deref(),
            Some("h1:9092,h2:9092")
        );
        assert_eq!(
            r.resolve("pre-${env:HOSTS}-post").unwrap().as_deref(),
            Some("pre-h1:9092,h2:9092-post")
        );
        assert_eq!(
            r.resolve("${env::HOSTS}").unwrap().as_deref(),
            Some("h1:9092,h2:9092"),
            "empty path allowed"
        );
        assert_eq!(r.resolve("no placeholder").unwrap(), None);
        assert_eq!(r.undeclared_used, vec!["env"]);
        let err = r.resolve("${env:MISSING}").unwrap_err();
        assert_eq!(
            err,
            PlaceholderError::MissingEnvVar {
                provider: "env".into(),
                variable: "MISSING".into()
            }
        );
        assert!(err.is_environment());
        assert!(matches!(
            r.resolve("${env:/x:HOSTS}"),
            Err(PlaceholderError::EnvPath { .. })
        ));
        assert!(matches!(
            r.resolve("${vault:/x:y}"),
            Err(PlaceholderError::UnknownProvider { .. })
        ));
    }

    #[test]
    fn file_and_directory_resolution() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secrets.properties");
        std::fs::write(&file, "password = s3cr=t\nuser: mirror\n").unwrap();
        std::fs::write(dir.path().join("token"), "abc\n").unwrap();
        let mut r = resolver(&[]);
        let v = r
            .resolve(&format!(
                "u=${{file:{p}:user}} p=${{file:{p}:password}}",
                p = file.display()
            ))
            .unwrap();
        assert_eq!(v.as_deref(), Some("u=mirror p=s3cr=t"));
        let v = r
            .resolve(&format!("${{directory:{}:token}}", dir.path().display()))
            .unwrap();
        assert_eq!(
            v.as_deref(),
            Some("abc\n"),
            "the directory provider returns the whole file"
        );
        let err = r
            .resolve(&format!("${{file:{}:nope}}", file.display()))
            .unwrap_err();
        assert!(matches!(err, PlaceholderError::MissingFileKey { ref key, .. } if key == "nope"));
        let err = r
            .resolve("${file:/definitely/not/here.properties:k}")
            .unwrap_err();
        assert!(matches!(
            err,
            PlaceholderError::Unreadable {
                kind: std::io::ErrorKind::NotFound,
                ..
            }
        ));
        assert!(matches!(
            r.resolve("${file:k}"),
            Err(PlaceholderError::MissingPath { .. })
        ));

        // Relative paths against a base directory.
        let mut r = Resolver::new(
            HashMap::new(),
            EnvSource::Map(BTreeMap::new()),
            Some(dir.path().to_owned()),
        );
        assert_eq!(
            r.resolve("${file:secrets.properties:user}")
                .unwrap()
                .as_deref(),
            Some("mirror")
        );
    }

    #[test]
    fn declared_aliases() {
        let mut declared = HashMap::new();
        declared.insert("secrets".to_owned(), Ok(ProviderKind::Env));
        declared.insert(
            "vault".to_owned(),
            Err("com.example.VaultConfigProvider".to_owned()),
        );
        let mut r = Resolver::new(
            declared,
            EnvSource::Map([("A".to_owned(), "1".to_owned())].into()),
            None,
        );
        assert_eq!(r.resolve("${secrets:A}").unwrap().as_deref(), Some("1"));
        assert!(r.undeclared_used.is_empty());
        let err = r.resolve("${vault:/a:b}").unwrap_err();
        assert!(matches!(err, PlaceholderError::UnsupportedProvider { .. }));
        assert!(err.to_string().contains("com.example.VaultConfigProvider"));
    }
}
