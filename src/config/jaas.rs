//! `sasl.jaas.config`: Kafka's one-line JAAS syntax.
//!
//! ```text
//! <LoginModuleClass> <controlFlag> (<option>=<value>)* ;
//! ```
//!
//! Tokenized as Java's `StreamTokenizer` does in Kafka's `JaasConfig`: bytes 0–32 are
//! whitespace; `"` and `'` quote values (Java escapes inside quotes; a quoted string also ends
//! at a line break); `;` and `=` are tokens of their own; **`/` starts a comment** (`//` and
//! `/* */` too), so an unquoted value containing `/` is cut short; a token starting with a
//! digit is a number, which Kafka refuses as an option value. A client value must hold exactly
//! one login module, terminated by `;`.
//!
//! ferry supports `PlainLoginModule` (SASL/PLAIN) and `ScramLoginModule` (SCRAM-SHA-256/512,
//! with `tokenauth=true` for delegation tokens). OAUTHBEARER and GSSAPI (Kerberos) are refused
//! with a clear error. Option values can be secrets: no error message includes one.
//!
//! # References
//! - `clients/src/main/java/org/apache/kafka/common/security/JaasConfig.java`
//! - `clients/src/main/java/org/apache/kafka/common/security/JaasContext.java` (`load`)
//! - `java.io.StreamTokenizer` (Java SE 17); KIP-84 (SCRAM), KIP-48 (delegation tokens),
//!   KIP-85 (`sasl.jaas.config`)

use std::fmt;

use super::secret::Secret;

/// Kafka's PLAIN login module.
pub const PLAIN_LOGIN_MODULE: &str = "org.apache.kafka.common.security.plain.PlainLoginModule";
/// Kafka's SCRAM login module.
pub const SCRAM_LOGIN_MODULE: &str = "org.apache.kafka.common.security.scram.ScramLoginModule";

/// What is wrong with a `sasl.jaas.config` value. Never carries option values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JaasError {
    /// The value holds no login module.
    #[error(
        "JAAS config holds no login module; expected `<LoginModule> required username=\"..\" password=\"..\";`"
    )]
    NoLoginModule,
    /// More than one login module (a client needs exactly one).
    #[error("JAAS config contains {count} login modules, should be 1 module")]
    TooManyLoginModules {
        /// How many were found.
        count: usize,
    },
    /// An entry without a closing `;`.
    #[error(
        "JAAS config entry not terminated by semi-colon (note: an unquoted `/` starts a comment, so quote values containing `/`)"
    )]
    MissingSemicolon,
    /// An entry that does not start with a login module class.
    #[error("JAAS config: login module not specified")]
    LoginModuleNotSpecified,
    /// A control flag other than `required`, `requisite`, `sufficient`, `optional`.
    #[error(
        "invalid login module control flag `{flag}` (expected required, requisite, sufficient or optional)"
    )]
    InvalidControlFlag {
        /// The flag as written.
        flag: String,
    },
    /// `option=` without a value, or an option without `=`.
    #[error("JAAS config: value not specified for option `{option}`")]
    ValueNotSpecified {
        /// The option name.
        option: String,
    },
    /// An unquoted value starting with a digit, which Kafka's tokenizer reads as a number.
    #[error(
        "JAAS config: the value of `{option}` starts with a digit and must be quoted (`{option}=\"...\"`)"
    )]
    NumericValue {
        /// The option name.
        option: String,
    },
    /// Something other than an option name where one was expected.
    #[error("JAAS config: unexpected {found} where an option name or `;` was expected")]
    UnexpectedToken {
        /// A description of the token (never its text).
        found: &'static str,
    },
    /// A `/*` comment without `*/`.
    #[error("JAAS config: unterminated `/*` comment")]
    UnterminatedComment,
    /// A login module ferry knows but does not implement.
    #[error("login module `{module}` is not supported: {reason}")]
    UnsupportedModule {
        /// The module class.
        module: String,
        /// Why, and what to use instead.
        reason: &'static str,
    },
    /// A login module ferry does not know.
    #[error(
        "unknown login module `{module}`: ferry supports {PLAIN_LOGIN_MODULE} and {SCRAM_LOGIN_MODULE}"
    )]
    UnknownModule {
        /// The module class.
        module: String,
    },
    /// A required option (`username`, `password`) is missing.
    #[error("login module `{module}` needs option `{option}`")]
    MissingOption {
        /// The module class.
        module: String,
        /// The missing option.
        option: &'static str,
    },
    /// `tokenauth` is neither `true` nor `false`.
    #[error("option `tokenauth` must be true or false")]
    InvalidTokenAuth,
}

impl JaasError {
    /// Whether the module is real but not implemented by ferry (OAUTHBEARER, GSSAPI).
    pub fn is_unsupported(&self) -> bool {
        matches!(self, Self::UnsupportedModule { .. })
    }
}

/// The login from a client `sasl.jaas.config`.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum JaasLogin {
    /// `PlainLoginModule`.
    Plain {
        /// `username`.
        username: String,
        /// `password`.
        password: Secret,
    },
    /// `ScramLoginModule`.
    Scram {
        /// `username` (the token id when `token_auth`).
        username: String,
        /// `password` (the token HMAC when `token_auth`).
        password: Secret,
        /// `tokenauth=true`: authenticate with a delegation token (KIP-48).
        token_auth: bool,
    },
}

impl fmt::Debug for JaasLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Plain { username, password } => f
                .debug_struct("Plain")
                .field("username", username)
                .field("password", password)
                .finish(),
            Self::Scram {
                username,
                password,
                token_auth,
            } => f
                .debug_struct("Scram")
                .field("username", username)
                .field("password", password)
                .field("token_auth", token_auth)
                .finish(),
        }
    }
}

impl JaasLogin {
    /// The user name.
    pub fn username(&self) -> &str {
        match self {
            Self::Plain { username, .. } | Self::Scram { username, .. } => username,
        }
    }

    /// The password.
    pub fn password(&self) -> &Secret {
        match self {
            Self::Plain { password, .. } | Self::Scram { password, .. } => password,
        }
    }
}

/// A parsed client JAAS value: the login and the options ferry does not use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParsedJaas {
    pub(crate) login: JaasLogin,
    pub(crate) module: String,
    pub(crate) ignored_options: Vec<String>,
}

#[derive(Debug, PartialEq, Eq)]
enum Token {
    Word(String),
    Quoted(String),
    Number,
    Char(char),
}

impl Token {
    fn describe(&self) -> &'static str {
        match self {
            Self::Word(_) => "a word",
            Self::Quoted(_) => "a quoted string",
            Self::Number => "a number",
            Self::Char(';') => "`;`",
            Self::Char('=') => "`=`",
            Self::Char(_) => "a punctuation character",
        }
    }
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '$') || c as u32 >= 0xA0
}

fn tokenize(text: &str) -> Result<Vec<Token>, JaasError> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        if (c as u32) <= 32 {
            i += 1;
            continue;
        }
        match c {
            '/' => {
                if chars.get(i + 1) == Some(&'*') {
                    i += 2;
                    loop {
                        match (chars.get(i), chars.get(i + 1)) {
                            (Some('*'), Some('/')) => {
                                i += 2;
                                break;
                            }
                            (Some(_), _) => i += 1,
                            (None, _) => return Err(JaasError::UnterminatedComment),
                        }
                    }
                } else {
                    while chars.get(i).is_some_and(|&c| c != '\n' && c != '\r') {
                        i += 1;
                    }
                }
            }
            '"' | '\'' => {
                let quote = c;
                i += 1;
                let mut s = String::new();
                while let Some(&q) = chars.get(i) {
                    if q == quote {
                        i += 1;
                        break;
                    }
                    if q == '\n' || q == '\r' {
                        break;
                    }
                    i += 1;
                    if q != '\\' {
                        s.push(q);
                        continue;
                    }
                    let Some(&e) = chars.get(i) else { break };
                    i += 1;
                    match e {
                        'a' => s.push('\u{07}'),
                        'b' => s.push('\u{08}'),
                        'f' => s.push('\u{0C}'),
                        'n' => s.push('\n'),
                        'r' => s.push('\r'),
                        't' => s.push('\t'),
                        'v' => s.push('\u{0B}'),
                        '0'..='7' => {
                            // Up to three octal digits; three only when the first is 0-3.
                            let mut value = e.to_digit(8).unwrap_or(0);
                            let max = if e <= '3' { 2 } else { 1 };
                            for _ in 0..max {
                                match chars.get(i).and_then(|d| d.to_digit(8)) {
                                    Some(d) => {
                                        value = value * 8 + d;
                                        i += 1;
                                    }
                                    None => break,
                                }
                            }
                            s.push(char::from_u32(value).unwrap_or('\u{FFFD}'));
                        }
                        other => s.push(other),
                    }
                }
                tokens.push(Token::Quoted(s));
            }
            c if c.is_ascii_digit()
                || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
                || (c == '-'
                    && chars
                        .get(i + 1)
                        .is_some_and(|n| n.is_ascii_digit() || *n == '.')) =>
            {
                i += 1;
                while chars
                    .get(i)
                    .is_some_and(|d| d.is_ascii_digit() || *d == '.')
                {
                    i += 1;
                }
                tokens.push(Token::Number);
            }
            c if is_word_char(c) && c != '-' => {
                let mut s = String::new();
                while let Some(&w) = chars.get(i).filter(|w| is_word_char(**w)) {
                    s.push(w);
                    i += 1;
                }
                tokens.push(Token::Word(s));
            }
            other => {
                tokens.push(Token::Char(other));
                i += 1;
            }
        }
    }
    Ok(tokens)
}

struct Entry {
    module: String,
    options: Vec<(String, String)>,
}

fn parse_entries(text: &str) -> Result<Vec<Entry>, JaasError> {
    let tokens = tokenize(text)?;
    let mut it = tokens.into_iter().peekable();
    let mut entries = Vec::new();
    while let Some(tok) = it.next() {
        let Token::Word(module) = tok else {
            return Err(JaasError::LoginModuleNotSpecified);
        };
        match it.next() {
            Some(Token::Word(flag)) => {
                if !["required", "requisite", "sufficient", "optional"]
                    .iter()
                    .any(|f| f.eq_ignore_ascii_case(&flag))
                {
                    return Err(JaasError::InvalidControlFlag { flag });
                }
            }
            Some(Token::Char(';')) | None => return Err(JaasError::MissingSemicolon),
            Some(_) => {
                return Err(JaasError::InvalidControlFlag {
                    flag: String::new(),
                });
            }
        }
        let mut options = Vec::new();
        loop {
            match it.next() {
                None => return Err(JaasError::MissingSemicolon),
                Some(Token::Char(';')) => break,
                Some(Token::Word(option)) => {
                    if it.next() != Some(Token::Char('=')) {
                        return Err(JaasError::ValueNotSpecified { option });
                    }
                    match it.next() {
                        Some(Token::Word(v) | Token::Quoted(v)) => options.push((option, v)),
                        Some(Token::Number) => return Err(JaasError::NumericValue { option }),
                        _ => return Err(JaasError::ValueNotSpecified { option }),
                    }
                }
                Some(other) => {
                    return Err(JaasError::UnexpectedToken {
                        found: other.describe(),
                    });
                }
            }
        }
        entries.push(Entry { module, options });
    }
    Ok(entries)
}

fn simple_name(module: &str) -> &str {
    module.rsplit('.').next().unwrap_or(module)
}

/// Parses a client `sasl.jaas.config` value.
pub(crate) fn parse_client_jaas(text: &str) -> Result<ParsedJaas, JaasError> {
    let mut entries = parse_entries(text)?;
    let entry = match entries.len() {
        0 => return Err(JaasError::NoLoginModule),
        1 => entries.remove(0),
        count => return Err(JaasError::TooManyLoginModules { count }),
    };
    let module = entry.module;
    let is_plain = module == PLAIN_LOGIN_MODULE || simple_name(&module) == "PlainLoginModule";
    let is_scram = module == SCRAM_LOGIN_MODULE || simple_name(&module) == "ScramLoginModule";
    if !is_plain && !is_scram {
        return Err(match simple_name(&module) {
            "OAuthBearerLoginModule" => JaasError::UnsupportedModule {
                module,
                reason: "SASL/OAUTHBEARER is not implemented by ferry; use SCRAM-SHA-512 or PLAIN",
            },
            "Krb5LoginModule" => JaasError::UnsupportedModule {
                module,
                reason: "GSSAPI (Kerberos) is not implemented by ferry; use SCRAM-SHA-512 or PLAIN",
            },
            _ => JaasError::UnknownModule { module },
        });
    }
    let mut username = None;
    let mut password = None;
    let mut token_auth = false;
    let mut ignored_options = Vec::new();
    for (name, value) in entry.options {
        match name.as_str() {
            "username" => username = Some(value),
            "password" => password = Some(Secret::new(value)),
            "tokenauth" if is_scram => {
                token_auth = if value.eq_ignore_ascii_case("true") {
                    true
                } else if value.eq_ignore_ascii_case("false") {
                    false
                } else {
                    return Err(JaasError::InvalidTokenAuth);
                };
            }
            _ => ignored_options.push(name),
        }
    }
    let username = username.ok_or_else(|| JaasError::MissingOption {
        module: module.clone(),
        option: "username",
    })?;
    let password = password.ok_or_else(|| JaasError::MissingOption {
        module: module.clone(),
        option: "password",
    })?;
    let login = if is_plain {
        JaasLogin::Plain { username, password }
    } else {
        JaasLogin::Scram {
            username,
            password,
            token_auth,
        }
    };
    Ok(ParsedJaas {
        login,
        module,
        ignored_options,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn login(text: &str) -> JaasLogin {
        parse_client_jaas(text).unwrap().login
    }

    #[test]
    fn scram_and_plain() {
        let l = login(
            r#"org.apache.kafka.common.security.scram.ScramLoginModule required username="mirror" password="s3cret";"#,
        );
        assert_eq!(
            l,
            JaasLogin::Scram {
                username: "mirror".into(),
                password: Secret::new("s3cret"),
                token_auth: false
            }
        );
        let l = login(
            "org.apache.kafka.common.security.plain.PlainLoginModule REQUIRED username=alice password='p w';",
        );
        assert_eq!(
            l,
            JaasLogin::Plain {
                username: "alice".into(),
                password: Secret::new("p w")
            }
        );
        let l = login(
            "org.apache.kafka.common.security.scram.ScramLoginModule required\n  username=\"tok\"\n  password=\"hmac\"\n  tokenauth=\"true\";",
        );
        assert!(matches!(
            l,
            JaasLogin::Scram {
                token_auth: true,
                ..
            }
        ));
    }

    #[test]
    fn debug_hides_the_password() {
        let l = login(
            r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="u" password="topsecret";"#,
        );
        let dbg = format!("{l:?}");
        assert!(!dbg.contains("topsecret"), "{dbg}");
        assert!(dbg.contains("***"));
    }

    #[test]
    fn quoted_escapes_and_comments() {
        let l = login(
            r#"org.apache.kafka.common.security.plain.PlainLoginModule /* a comment */ required username="a\"b" password="x\ty\101"; // trailing"#,
        );
        assert_eq!(l.username(), "a\"b");
        assert_eq!(l.password().expose(), "x\tyA");
    }

    #[test]
    fn slash_cuts_unquoted_values() {
        // `pass/word;` — the `/` starts a comment that swallows the `;`.
        let err = parse_client_jaas("org.apache.kafka.common.security.plain.PlainLoginModule required username=u password=pass/word;").unwrap_err();
        assert_eq!(err, JaasError::MissingSemicolon);
        assert!(err.to_string().contains("quote values containing `/`"));
    }

    #[test]
    fn structural_errors() {
        assert_eq!(parse_client_jaas("").unwrap_err(), JaasError::NoLoginModule);
        assert_eq!(
            parse_client_jaas("  /* only */ ").unwrap_err(),
            JaasError::NoLoginModule
        );
        let two = format!(
            "{PLAIN_LOGIN_MODULE} required username=a password=b; {PLAIN_LOGIN_MODULE} required username=c password=d;"
        );
        assert_eq!(
            parse_client_jaas(&two).unwrap_err(),
            JaasError::TooManyLoginModules { count: 2 }
        );
        assert_eq!(
            parse_client_jaas(&format!(
                "{PLAIN_LOGIN_MODULE} required username=a password=b"
            ))
            .unwrap_err(),
            JaasError::MissingSemicolon
        );
        assert!(matches!(
            parse_client_jaas(&format!("{PLAIN_LOGIN_MODULE} mandatory username=a;")).unwrap_err(),
            JaasError::InvalidControlFlag { .. }
        ));
        assert_eq!(
            parse_client_jaas(&format!(
                "{PLAIN_LOGIN_MODULE} required username password=b;"
            ))
            .unwrap_err(),
            JaasError::ValueNotSpecified {
                option: "username".into()
            }
        );
        assert_eq!(
            parse_client_jaas(&format!(
                "{PLAIN_LOGIN_MODULE} required username=a password=123abc;"
            ))
            .unwrap_err(),
            JaasError::NumericValue {
                option: "password".into()
            }
        );
        assert_eq!(
            parse_client_jaas(&format!("{PLAIN_LOGIN_MODULE} required username=a /* x"))
                .unwrap_err(),
            JaasError::UnterminatedComment
        );
        assert_eq!(
            parse_client_jaas(&format!("{PLAIN_LOGIN_MODULE} required username=a;")).unwrap_err(),
            JaasError::MissingOption {
                module: PLAIN_LOGIN_MODULE.into(),
                option: "password"
            }
        );
        assert!(matches!(
            parse_client_jaas(&format!("{PLAIN_LOGIN_MODULE} required \"x\"=1;")).unwrap_err(),
            JaasError::UnexpectedToken {
                found: "a quoted string"
            }
        ));
    }

    #[test]
    fn unsupported_and_unknown_modules() {
        let err = parse_client_jaas(
            "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required;",
        )
        .unwrap_err();
        assert!(err.is_unsupported());
        assert!(err.to_string().contains("OAUTHBEARER"));
        let err = parse_client_jaas("com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true keyTab=\"/k\" principal=\"p\";").unwrap_err();
        assert!(err.to_string().contains("GSSAPI"));
        let err = parse_client_jaas("com.example.MyLoginModule required;").unwrap_err();
        assert!(matches!(err, JaasError::UnknownModule { .. }));
        assert!(!err.is_unsupported());
    }

    #[test]
    fn ignored_options_are_reported_by_name() {
        let p = parse_client_jaas(&format!(
            "{SCRAM_LOGIN_MODULE} required username=a password=b serviceName=kafka;"
        ))
        .unwrap();
        assert_eq!(p.ignored_options, vec!["serviceName"]);
        assert_eq!(p.module, SCRAM_LOGIN_MODULE);
    }

    #[test]
    fn errors_never_show_values() {
        let cases = [
            format!("{PLAIN_LOGIN_MODULE} required username=a password=\"hunter2\""),
            format!("{PLAIN_LOGIN_MODULE} required username=a password=\"hunter2\"; x"),
        ];
        for c in cases {
            let err = parse_client_jaas(&c).unwrap_err();
            assert!(!err.to_string().contains("hunter2"), "{err}");
        }
    }
}
