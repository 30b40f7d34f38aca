//! Topic and group filters with MirrorMaker 2's list semantics, and a lint for filters that
//! cannot do what they were written to do.
//!
//! A filter is an *include* list and an *exclude* list of Java regular expressions. A name is
//! accepted when the include list matches it and the exclude list does not. Each list follows
//! MM2 exactly:
//!
//! - the config value is trimmed; an empty value is an **empty list**, otherwise it is split on
//!   `\s*,\s*`, keeping empty elements (`a,,b,` gives `["a", "", "b", ""]`);
//! - the entries are joined with `|` **without grouping** and compiled once;
//! - a name matches when the whole name matches (Java's `Matcher.matches()`);
//! - an **empty list matches nothing**: `topics=` replicates no topic, `topics.exclude=` excludes
//!   nothing.
//!
//! Java regular expressions are compiled with [`fancy_regex`] (look-around, back-references,
//! atomic groups and possessive quantifiers all appear in real configs). Java constructs that
//! `fancy-regex` lacks or reads differently are translated first: `\Q...\E` becomes an escaped
//! literal; `\w`, `\d`, `\s` (and their negations) become their ASCII classes, as in Java without
//! `UNICODE_CHARACTER_CLASS`; `\h`, `\v` become Java's horizontal/vertical whitespace classes
//! (Oniguruma reads `\h` as a hex digit); the POSIX classes `\p{Lower}` ... `\p{ASCII}` become
//! their ASCII brackets; `\0nn` octal escapes become `\x{..}`. Java-only classes such as
//! `\p{javaLowerCase}` are refused with an error naming the key and the pattern.
//!
//! # References
//! - KIP-382 (MirrorMaker 2): `topics`, `topics.exclude`, `groups`, `groups.exclude`
//! - KIP-629: the `*.exclude` spellings (`*.blacklist` removed in 4.0, KAFKA-17529)
//! - `connect/mirror/src/main/java/org/apache/kafka/connect/mirror/MirrorUtils.java`
//!   (`compilePatternList`), `DefaultTopicFilter.java`, `DefaultGroupFilter.java`
//! - `clients/src/main/java/org/apache/kafka/common/config/ConfigDef.java` (`parseType`, LIST)
//! - `java.util.regex.Pattern` (Java SE 17) for the translated constructs

use std::fmt;

use fancy_regex::Regex;

/// MM2's default topic include list (`MirrorSourceConfig.TOPICS_DEFAULT`).
pub const DEFAULT_TOPICS: &str = ".*";
/// MM2's default topic exclude list (`MirrorSourceConfig.TOPICS_EXCLUDE_DEFAULT`).
pub const DEFAULT_TOPICS_EXCLUDE: &str = r".*[\-\.]internal, .*\.replica, __.*";
/// MM2's default group include list (`MirrorCheckpointConfig.GROUPS_DEFAULT`).
pub const DEFAULT_GROUPS: &str = ".*";
/// MM2's default group exclude list (`MirrorCheckpointConfig.GROUPS_EXCLUDE_DEFAULT`).
pub const DEFAULT_GROUPS_EXCLUDE: &str = "console-consumer-.*, connect-.*, __.*";
/// MM2's default list of topic config keys never synced (`config.properties.exclude`).
pub const DEFAULT_CONFIG_PROPERTIES_EXCLUDE: &str = r"follower\.replication\.throttled\.replicas, leader\.replication\.throttled\.replicas, message\.timestamp\.difference\.max\.ms, message\.timestamp\.type, unclean\.leader\.election\.enable, min\.insync\.replicas";

/// The name of MM2's heartbeats topic (`ReplicationPolicy.heartbeatsTopic()`).
const HEARTBEATS: &str = "heartbeats";

/// Upper bound on the backtracking steps of one match. Names are at most 249 characters (topics)
/// or short strings (groups), so a legitimate filter never comes near it.
const BACKTRACK_LIMIT: usize = 1_000_000;

/// A filter pattern that could not be compiled.
///
/// Raised while loading a configuration; the user's pattern is at fault. The key and the
/// pattern are carried so the message points at the line to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FilterError {
    /// The joined pattern is not a valid regular expression.
    #[error("`{key}`: pattern `{pattern}` does not compile: {reason}")]
    InvalidPattern {
        /// The config key holding the list (`topics`, `groups.exclude`, ...).
        key: String,
        /// The pattern as the user wrote it (entries joined with `|`).
        pattern: String,
        /// What the regex compiler reported.
        reason: String,
    },
    /// The pattern uses a Java-only construct ferry cannot translate.
    #[error("`{key}`: pattern `{pattern}` uses `{construct}`, which only Java supports: {hint}")]
    UnsupportedJavaSyntax {
        /// The config key holding the list.
        key: String,
        /// The pattern as the user wrote it.
        pattern: String,
        /// The offending construct, e.g. `\p{javaLowerCase}`.
        construct: String,
        /// How to write it portably.
        hint: String,
    },
}

impl FilterError {
    /// The config key holding the faulty list.
    pub fn key(&self) -> &str {
        match self {
            Self::InvalidPattern { key, .. } | Self::UnsupportedJavaSyntax { key, .. } => key,
        }
    }

    /// The faulty pattern, as written.
    pub fn pattern(&self) -> &str {
        match self {
            Self::InvalidPattern { pattern, .. } | Self::UnsupportedJavaSyntax { pattern, .. } => {
                pattern
            }
        }
    }
}

/// Splits a config LIST value the way Kafka's `ConfigDef.parseType` does: the value is trimmed,
/// an empty value gives an empty list, otherwise it is split on `\s*,\s*` keeping empty
/// elements (including trailing ones).
pub fn split_list(value: &str) -> Vec<String> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Vec::new();
    }
    // Java's `trim()` removes chars <= U+0020, and the split regex's `\s` is ASCII whitespace;
    // both agree on the characters a properties file can hold around a comma.
    trimmed
        .split(',')
        .map(|part| part.trim_matches(is_java_space).to_owned())
        .collect()
}

fn is_java_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\u{0B}' | '\u{0C}' | '\r')
}

/// One MM2 pattern list: entries joined with `|`, matched against whole names.
#[derive(Clone)]
pub struct PatternList {
    entries: Vec<String>,
    compiled: Option<Compiled>,
}

#[derive(Clone)]
struct Compiled {
    /// The entries joined with `|`, as Java would compile them.
    joined: String,
    /// The translated pattern anchored at both ends.
    regex: Regex,
}

impl fmt::Debug for PatternList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PatternList")
            .field("entries", &self.entries)
            .finish()
    }
}

impl PartialEq for PatternList {
    fn eq(&self, other: &Self) -> bool {
        self.entries == other.entries
    }
}

impl PatternList {
    /// An empty list: matches nothing.
    pub fn empty() -> Self {
        Self {
            entries: Vec::new(),
            compiled: None,
        }
    }

    /// Parses a LIST value (see [`split_list`]) and compiles it. `key` names the config key in
    /// errors.
    pub fn parse(key: &str, value: &str) -> Result<Self, FilterError> {
        Self::from_entries(key, split_list(value))
    }

    /// Compiles already split entries.
    pub fn from_entries<I, S>(key: &str, entries: I) -> Result<Self, FilterError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let entries: Vec<String> = entries.into_iter().map(Into::into).collect();
        if entries.is_empty() {
            return Ok(Self::empty());
        }
        let joined = entries.join("|");
        let translated = translate_java_regex(&joined).map_err(|(construct, hint)| {
            FilterError::UnsupportedJavaSyntax {
                key: key.to_owned(),
                pattern: joined.clone(),
                construct,
                hint,
            }
        })?;
        let invalid = |e: fancy_regex::Error| FilterError::InvalidPattern {
            key: key.to_owned(),
            pattern: joined.clone(),
            reason: e.to_string(),
        };
        // Compile the joined pattern on its own first: Java compiles exactly this text, so
        // an unbalanced `a)|(b` must fail here rather than be rescued by our anchoring group.
        compile(&translated).map_err(invalid)?;
        let regex = compile(&format!(r"\A(?:{translated})\z")).map_err(invalid)?;
        Ok(Self {
            entries,
            compiled: Some(Compiled { joined, regex }),
        })
    }

    /// The entries as split from the config value.
    pub fn entries(&self) -> &[String] {
        &self.entries
    }

    /// The joined Java pattern (`None` for an empty list).
    pub fn pattern(&self) -> Option<&str> {
        self.compiled.as_ref().map(|c| c.joined.as_str())
    }

    /// `true` for an empty list, which matches nothing.
    pub fn is_empty(&self) -> bool {
        self.compiled.is_none()
    }

    /// Whether the whole of `name` matches. A match that exceeds the backtracking limit counts
    /// as no match; use [`PatternList::matches_or`] to choose otherwise.
    pub fn matches(&self, name: &str) -> bool {
        self.matches_or(name, false)
    }

    /// Whether the whole of `name` matches, with `on_limit` returned when the regex engine
    /// gives up (backtracking limit). Exclude lists pass `true` so an undecidable name is kept
    /// out rather than let through.
    pub fn matches_or(&self, name: &str, on_limit: bool) -> bool {
        match &self.compiled {
            None => false,
            Some(c) => c.regex.is_match(name).unwrap_or(on_limit),
        }
    }
}

fn compile(pattern: &str) -> Result<Regex, fancy_regex::Error> {
    fancy_regex::RegexBuilder::new(pattern)
        .backtrack_limit(BACKTRACK_LIMIT)
        .build()
}

/// Java's `\s` (without `UNICODE_CHARACTER_CLASS`), as class content.
const JAVA_SPACE: &str = r" \t\n\x0B\f\r";
/// Java's `\h`, as class content.
const JAVA_HSPACE: &str = r" \t\xA0\x{1680}\x{180E}\x{2000}-\x{200A}\x{202F}\x{205F}\x{3000}";
/// Java's `\v`, as class content.
const JAVA_VSPACE: &str = r"\n\x0B\f\r\x{85}\x{2028}\x{2029}";

/// Translates a Java pattern into `fancy-regex` syntax. On a construct that cannot be
/// translated, returns `(construct, hint)`.
fn translate_java_regex(pattern: &str) -> Result<String, (String, String)> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut class_depth = 0usize;
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        match c {
            '\\' => {
                let Some(&next) = chars.get(i + 1) else {
                    // A trailing backslash: let the compiler report it.
                    out.push('\\');
                    i += 1;
                    continue;
                };
                i += 2;
                let in_class = class_depth > 0;
                let class = |content: &str, negated: bool| -> String {
                    match (in_class, negated) {
                        (true, false) => content.to_owned(),
                        (_, true) => format!("[^{content}]"),
                        (false, false) => format!("[{content}]"),
                    }
                };
                match next {
                    'Q' => {
                        // Quote up to `\E` or the end of the pattern.
                        let mut literal = String::new();
                        while let Some(&q) = chars.get(i) {
                            if q == '\\' && chars.get(i + 1) == Some(&'E') {
                                i += 2;
                                break;
                            }
                            literal.push(q);
                            i += 1;
                        }
                        push_escaped(&mut out, &literal);
                    }
                    'w' => out.push_str(&class("0-9A-Za-z_", false)),
                    'W' => out.push_str(&class("0-9A-Za-z_", true)),
                    'd' => out.push_str(&class("0-9", false)),
                    'D' => out.push_str(&class("0-9", true)),
                    's' => out.push_str(&class(JAVA_SPACE, false)),
                    'S' => out.push_str(&class(JAVA_SPACE, true)),
                    'h' => out.push_str(&class(JAVA_HSPACE, false)),
                    'H' => out.push_str(&class(JAVA_HSPACE, true)),
                    'v' => out.push_str(&class(JAVA_VSPACE, false)),
                    'V' => out.push_str(&class(JAVA_VSPACE, true)),
                    '0' => {
                        // Java octal: \0n, \0nn, \0mnn (m <= 3).
                        let mut value = 0u32;
                        let mut digits = 0;
                        while let Some(d) = chars.get(i).and_then(|d| d.to_digit(8)) {
                            let next_value = value * 8 + d;
                            if digits == 3 || next_value > 0o377 {
                                break;
                            }
                            value = next_value;
                            digits += 1;
                            i += 1;
                        }
                        if digits == 0 {
                            return Err((
                                "\\0".to_owned(),
                                "an octal escape needs at least one digit, e.g. `\\011`".to_owned(),
                            ));
                        }
                        out.push_str(&format!("\\x{{{value:X}}}"));
                    }
                    'p' | 'P' if chars.get(i) == Some(&'{') => {
                        let close = chars[i..].iter().position(|&x| x == '}');
                        let Some(close) = close else {
                            // Unclosed: let the compiler report it.
                            out.push('\\');
                            out.push(next);
                            continue;
                        };
                        let name: String = chars[i + 1..i + close].iter().collect();
                        i += close + 1;
                        let negated = next == 'P';
                        if let Some(posix) = posix_class(&name) {
                            let inner = if negated {
                                format!("[:^{posix}:]")
                            } else {
                                format!("[:{posix}:]")
                            };
                            if in_class {
                                out.push_str(&inner);
                            } else {
                                out.push('[');
                                out.push_str(&inner);
                                out.push(']');
                            }
                        } else if name.starts_with("java") {
                            return Err((
                                format!("\\{next}{{{name}}}"),
                                "use a Unicode property such as `\\p{Ll}` or an explicit class \
                                 such as `[a-z]`"
                                    .to_owned(),
                            ));
                        } else {
                            out.push('\\');
                            out.push(next);
                            out.push('{');
                            out.push_str(&name);
                            out.push('}');
                        }
                    }
                    other => {
                        out.push('\\');
                        out.push(other);
                    }
                }
            }
            '[' => {
                class_depth += 1;
                out.push('[');
                i += 1;
                // A `^` right after `[` negates; keep it with the bracket.
                if chars.get(i) == Some(&'^') {
                    out.push('^');
                    i += 1;
                }
            }
            ']' => {
                class_depth = class_depth.saturating_sub(1);
                out.push(']');
                i += 1;
            }
            other => {
                out.push(other);
                i += 1;
            }
        }
    }
    Ok(out)
}

/// Java's POSIX character classes (US-ASCII only) mapped to regex-syntax's ASCII class names.
fn posix_class(name: &str) -> Option<&'static str> {
    Some(match name {
        "Lower" => "lower",
        "Upper" => "upper",
        "ASCII" => "ascii",
        "Alpha" => "alpha",
        "Digit" => "digit",
        "Alnum" => "alnum",
        "Punct" => "punct",
        "Graph" => "graph",
        "Print" => "print",
        "Blank" => "blank",
        "Cntrl" => "cntrl",
        "XDigit" => "xdigit",
        "Space" => "space",
        _ => return None,
    })
}

fn push_escaped(out: &mut String, literal: &str) {
    for c in literal.chars() {
        match c {
            '\n' => out.push_str(r"\n"),
            '\r' => out.push_str(r"\r"),
            '\t' => out.push_str(r"\t"),
            c if c.is_ascii_punctuation() || c == ' ' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
}

/// Which kind of names a filter selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FilterKind {
    /// Topic names (`topics`, `topics.exclude`).
    Topic,
    /// Consumer group ids (`groups`, `groups.exclude`).
    Group,
}

impl FilterKind {
    fn include_key(self) -> &'static str {
        match self {
            Self::Topic => "topics",
            Self::Group => "groups",
        }
    }

    fn exclude_key(self) -> &'static str {
        match self {
            Self::Topic => "topics.exclude",
            Self::Group => "groups.exclude",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
struct IncludeExclude {
    include: PatternList,
    exclude: PatternList,
}

impl IncludeExclude {
    fn accepts(&self, name: &str) -> bool {
        self.include.matches(name) && !self.exclude.matches_or(name, true)
    }
}

/// MM2's `DefaultTopicFilter`: a topic is accepted when `topics` matches it and
/// `topics.exclude` does not. Heartbeats topics bypass this filter in MM2's selection rule;
/// see [`crate::policy::should_replicate_topic`].
#[derive(Debug, Clone, PartialEq)]
pub struct TopicFilter(IncludeExclude);

impl TopicFilter {
    /// A filter from compiled lists.
    pub fn new(include: PatternList, exclude: PatternList) -> Self {
        Self(IncludeExclude { include, exclude })
    }

    /// Compiles `topics` and `topics.exclude` values; `None` takes MM2's default.
    pub fn from_config(topics: Option<&str>, exclude: Option<&str>) -> Result<Self, FilterError> {
        Ok(Self::new(
            PatternList::parse("topics", topics.unwrap_or(DEFAULT_TOPICS))?,
            PatternList::parse("topics.exclude", exclude.unwrap_or(DEFAULT_TOPICS_EXCLUDE))?,
        ))
    }

    /// Whether the topic passes the include and exclude lists.
    pub fn accepts(&self, topic: &str) -> bool {
        self.0.accepts(topic)
    }

    /// The include list (`topics`).
    pub fn include(&self) -> &PatternList {
        &self.0.include
    }

    /// The exclude list (`topics.exclude`).
    pub fn exclude(&self) -> &PatternList {
        &self.0.exclude
    }

    /// Checks the filter for mistakes seen in real configs. `heartbeat_topics` are the names
    /// heartbeats topics take in this flow (`heartbeats`, `A.heartbeats`, ...).
    pub fn lint(&self, heartbeat_topics: &[String]) -> Vec<FilterLint> {
        lint(FilterKind::Topic, &self.0, heartbeat_topics)
    }
}

impl Default for TopicFilter {
    fn default() -> Self {
        // The defaults are constants that compile; a failure here is a bug in this file and
        // the unit tests would catch it.
        Self::from_config(None, None)
            .unwrap_or_else(|_| Self::new(PatternList::empty(), PatternList::empty()))
    }
}

/// MM2's `DefaultGroupFilter`: a group is accepted when `groups` matches it and
/// `groups.exclude` (default `console-consumer-.*, connect-.*, __.*`) does not.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupFilter(IncludeExclude);

impl GroupFilter {
    /// A filter from compiled lists.
    pub fn new(include: PatternList, exclude: PatternList) -> Self {
        Self(IncludeExclude { include, exclude })
    }

    /// Compiles `groups` and `groups.exclude` values; `None` takes MM2's default.
    pub fn from_config(groups: Option<&str>, exclude: Option<&str>) -> Result<Self, FilterError> {
        Ok(Self::new(
            PatternList::parse("groups", groups.unwrap_or(DEFAULT_GROUPS))?,
            PatternList::parse("groups.exclude", exclude.unwrap_or(DEFAULT_GROUPS_EXCLUDE))?,
        ))
    }

    /// Whether the group passes the include and exclude lists.
    pub fn accepts(&self, group: &str) -> bool {
        self.0.accepts(group)
    }

    /// The include list (`groups`).
    pub fn include(&self) -> &PatternList {
        &self.0.include
    }

    /// The exclude list (`groups.exclude`).
    pub fn exclude(&self) -> &PatternList {
        &self.0.exclude
    }

    /// Checks the filter for mistakes seen in real configs.
    pub fn lint(&self) -> Vec<FilterLint> {
        lint(FilterKind::Group, &self.0, &[])
    }
}

impl Default for GroupFilter {
    fn default() -> Self {
        Self::from_config(None, None)
            .unwrap_or_else(|_| Self::new(PatternList::empty(), PatternList::empty()))
    }
}

/// A likely mistake in a filter. Lints never change what the filter does; the config layer
/// reports them as notices.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FilterLint {
    /// The config key of the list (`topics`, `groups.exclude`, ...).
    pub key: &'static str,
    /// The joined pattern (empty for an empty list).
    pub pattern: String,
    /// What is wrong.
    pub kind: FilterLintKind,
}

/// What a [`FilterLint`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FilterLintKind {
    /// The include list is empty, so it matches nothing.
    EmptyInclude,
    /// The include pattern uses look-around or back-references and matched none of the probe
    /// names (samples, the empty string, heartbeats, and names derived from the pattern).
    MatchesNothing {
        /// How many probe names were tried.
        probes: usize,
    },
    /// The exclude list matches a heartbeats topic, but heartbeats topics bypass topic filters.
    ExcludesHeartbeats {
        /// The heartbeats topic the exclude list matches.
        topic: String,
    },
    /// The include pattern mentions `heartbeats` and rejects it, apparently to keep heartbeats
    /// out, but heartbeats topics bypass topic filters.
    IncludeWrittenToExcludeHeartbeats,
    /// A group filter mentions `heartbeats`, which is a topic: group filters never see it.
    GroupFilterMentionsHeartbeats,
    /// An entry holds an unclosed `{`: a quantifier such as `{1,3}` was torn apart at its comma.
    SplitQuantifier {
        /// The torn entry.
        entry: String,
    },
    /// An entry is empty (`a,,b`); it only matches the empty name.
    EmptyEntry,
    /// Entries have unbalanced parentheses that only balance once joined with `|`.
    ParenthesesSpanEntries,
}

impl fmt::Display for FilterLint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = self.key;
        let pattern = &self.pattern;
        match &self.kind {
            FilterLintKind::EmptyInclude => write!(
                f,
                "`{key}` is empty, so it matches nothing (MM2: a blank list matches nothing)"
            ),
            FilterLintKind::MatchesNothing { probes } => write!(
                f,
                "`{key}` pattern `{pattern}` matches none of {probes} probe names (including the \
                 empty string): it probably matches nothing. A look-ahead such as `(?!.*(x|))` \
                 always fails because `(x|)` also matches the empty string"
            ),
            FilterLintKind::ExcludesHeartbeats { topic } => write!(
                f,
                "`{key}` pattern `{pattern}` matches the heartbeats topic `{topic}`, but \
                 heartbeats topics bypass topic filters; set `heartbeats.replication.enabled=false` \
                 to stop replicating them"
            ),
            FilterLintKind::IncludeWrittenToExcludeHeartbeats => write!(
                f,
                "`{key}` pattern `{pattern}` looks written to keep heartbeats out, but heartbeats \
                 topics bypass topic filters; set `heartbeats.replication.enabled=false` instead"
            ),
            FilterLintKind::GroupFilterMentionsHeartbeats => write!(
                f,
                "`{key}` pattern `{pattern}` mentions `heartbeats`, which is a topic, not a \
                 consumer group: group filters never see it"
            ),
            FilterLintKind::SplitQuantifier { entry } => write!(
                f,
                "`{key}` entry `{entry}` has an unclosed `{{`: lists are split at commas first, \
                 so a quantifier such as `{{1,3}}` is torn apart; write `{{1}}|{{2}}|...` or a \
                 character class instead"
            ),
            FilterLintKind::EmptyEntry => write!(
                f,
                "`{key}` pattern `{pattern}` has an empty entry (two commas in a row, or a \
                 trailing comma); it only matches the empty name"
            ),
            FilterLintKind::ParenthesesSpanEntries => write!(
                f,
                "`{key}` pattern `{pattern}`: parentheses span list entries; MM2 joins entries \
                 with `|` textually, so this works, but the entries do not stand alone"
            ),
        }
    }
}

/// Sample names tried by the "matches nothing" lint, besides names derived from the pattern.
const PROBES: &[&str] = &[
    "",
    "a",
    "x",
    "0",
    "orders",
    "topic1",
    "test-topic-1",
    "my.topic",
    "my_topic",
    "my-topic",
    "A.orders",
    "app1-t1",
    "customer.clicks",
    "_schemas",
    "__consumer_offsets",
    "connect-offsets",
    "console-consumer-12345",
    "consumer-group-1",
    "group-1",
    "my-group",
    "mm2-offset-syncs.B.internal",
    "A.checkpoints.internal",
    "orders.replica",
    HEARTBEATS,
];

fn lint(kind: FilterKind, filter: &IncludeExclude, heartbeat_topics: &[String]) -> Vec<FilterLint> {
    let mut lints = Vec::new();
    let include_key = kind.include_key();
    let exclude_key = kind.exclude_key();
    let include_pattern = filter.include.pattern().unwrap_or_default().to_owned();

    if filter.include.is_empty() {
        lints.push(FilterLint {
            key: include_key,
            pattern: String::new(),
            kind: FilterLintKind::EmptyInclude,
        });
    }

    for (key, list) in [
        (include_key, &filter.include),
        (exclude_key, &filter.exclude),
    ] {
        let pattern = list.pattern().unwrap_or_default().to_owned();
        if list.entries().len() > 1 && list.entries().iter().any(String::is_empty) {
            lints.push(FilterLint {
                key,
                pattern: pattern.clone(),
                kind: FilterLintKind::EmptyEntry,
            });
        }
        let mut unbalanced_parens = false;
        for entry in list.entries() {
            let counts = bracket_counts(entry);
            if counts.open_braces > counts.close_braces {
                lints.push(FilterLint {
                    key,
                    pattern: pattern.clone(),
                    kind: FilterLintKind::SplitQuantifier {
                        entry: entry.clone(),
                    },
                });
            }
            if counts.open_parens != counts.close_parens {
                unbalanced_parens = true;
            }
        }
        if unbalanced_parens {
            lints.push(FilterLint {
                key,
                pattern,
                kind: FilterLintKind::ParenthesesSpanEntries,
            });
        }
    }

    let mentions_heartbeats = include_pattern.contains(HEARTBEATS);
    match kind {
        FilterKind::Group => {
            for (key, list) in [
                (include_key, &filter.include),
                (exclude_key, &filter.exclude),
            ] {
                if let Some(p) = list.pattern().filter(|p| p.contains(HEARTBEATS)) {
                    lints.push(FilterLint {
                        key,
                        pattern: p.to_owned(),
                        kind: FilterLintKind::GroupFilterMentionsHeartbeats,
                    });
                }
            }
        }
        FilterKind::Topic => {
            if mentions_heartbeats && !filter.include.matches(HEARTBEATS) {
                lints.push(FilterLint {
                    key: include_key,
                    pattern: include_pattern.clone(),
                    kind: FilterLintKind::IncludeWrittenToExcludeHeartbeats,
                });
            }
            let hb_default = [HEARTBEATS.to_owned()];
            let hb_topics = if heartbeat_topics.is_empty() {
                &hb_default[..]
            } else {
                heartbeat_topics
            };
            if let Some(topic) = hb_topics.iter().find(|t| filter.exclude.matches(t)) {
                lints.push(FilterLint {
                    key: exclude_key,
                    pattern: filter.exclude.pattern().unwrap_or_default().to_owned(),
                    kind: FilterLintKind::ExcludesHeartbeats {
                        topic: topic.clone(),
                    },
                });
            }
        }
    }

    if !filter.include.is_empty() && uses_lookaround_or_backref(&include_pattern) {
        let mut probes: Vec<String> = PROBES.iter().map(|s| (*s).to_owned()).collect();
        probes.extend(heartbeat_topics.iter().cloned());
        for entry in filter.include.entries() {
            probes.extend(derived_probes(entry));
        }
        probes.sort();
        probes.dedup();
        if !probes.iter().any(|p| filter.include.matches(p)) {
            lints.push(FilterLint {
                key: include_key,
                pattern: include_pattern,
                kind: FilterLintKind::MatchesNothing {
                    probes: probes.len(),
                },
            });
        }
    }
    lints
}

#[derive(Default)]
struct BracketCounts {
    open_parens: usize,
    close_parens: usize,
    open_braces: usize,
    close_braces: usize,
}

/// Counts unescaped parentheses and braces outside character classes.
fn bracket_counts(entry: &str) -> BracketCounts {
    let mut counts = BracketCounts::default();
    let mut chars = entry.chars();
    let mut in_class = 0usize;
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '[' => in_class += 1,
            ']' => in_class = in_class.saturating_sub(1),
            '(' if in_class == 0 => counts.open_parens += 1,
            ')' if in_class == 0 => counts.close_parens += 1,
            '{' if in_class == 0 => counts.open_braces += 1,
            '}' if in_class == 0 => counts.close_braces += 1,
            _ => {}
        }
    }
    counts
}

fn uses_lookaround_or_backref(pattern: &str) -> bool {
    ["(?=", "(?!", "(?<=", "(?<!", r"\k<"]
        .iter()
        .any(|p| pattern.contains(p))
        || pattern.as_bytes().windows(2).any(|w| {
            w.first() == Some(&b'\\') && w.get(1).is_some_and(|d| (b'1'..=b'9').contains(d))
        })
}

/// Names built from a pattern's literal skeleton, per top-level alternative: with and without
/// the contents of negative look-arounds. `customer\..*` gives `customer.x`; `(?!.*test).*-prod`
/// gives `x-prod`.
fn derived_probes(entry: &str) -> Vec<String> {
    let mut probes = Vec::new();
    for alternative in split_top_level_alternatives(entry) {
        probes.push(skeleton(&alternative, true));
        probes.push(skeleton(&alternative, false));
    }
    probes
}

fn split_top_level_alternatives(pattern: &str) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut depth = 0usize;
    let mut in_class = 0usize;
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        let current = parts.last_mut();
        match c {
            '\\' => {
                if let Some(current) = current {
                    current.push('\\');
                    if let Some(n) = chars.next() {
                        current.push(n);
                    }
                }
                continue;
            }
            '[' => in_class += 1,
            ']' => in_class = in_class.saturating_sub(1),
            '(' if in_class == 0 => depth += 1,
            ')' if in_class == 0 => depth = depth.saturating_sub(1),
            '|' if in_class == 0 && depth == 0 => {
                parts.push(String::new());
                continue;
            }
            _ => {}
        }
        if let Some(current) = parts.last_mut() {
            current.push(c);
        }
    }
    parts
}

/// The literal characters of a pattern: escaped punctuation kept, `.` as `x`, the first member
/// of a class, quantifiers and anchors dropped.
fn skeleton(pattern: &str, keep_negative_lookaround: bool) -> String {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::new();
    // Depths at which a negative look-around opened, to skip its contents.
    let mut group_stack: Vec<bool> = Vec::new();
    let mut skipping = 0usize;
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        i += 1;
        match c {
            '\\' => {
                if let Some(&n) = chars.get(i) {
                    i += 1;
                    if skipping == 0 && !n.is_ascii_alphanumeric() {
                        out.push(n);
                    } else if skipping == 0 && n == 'd' {
                        out.push('0');
                    } else if skipping == 0 && n == 'w' {
                        out.push('a');
                    }
                }
            }
            '(' => {
                let rest: String = chars[i..].iter().take(3).collect();
                let negative = rest.starts_with("?!") || rest.starts_with("?<!");
                let skip = negative && !keep_negative_lookaround;
                if skip {
                    skipping += 1;
                }
                group_stack.push(skip);
                // Skip the group's `?...` prefix up to its colon or look-around marker.
                if chars.get(i) == Some(&'?') {
                    while let Some(&p) = chars.get(i) {
                        i += 1;
                        if matches!(p, ':' | '=' | '!' | '>') {
                            break;
                        }
                    }
                }
            }
            ')' if group_stack.pop() == Some(true) => {
                skipping = skipping.saturating_sub(1);
            }
            ')' => {}
            '[' => {
                let mut first = None;
                while let Some(&p) = chars.get(i) {
                    i += 1;
                    if p == ']' {
                        break;
                    }
                    if p == '\\' {
                        i += 1;
                        continue;
                    }
                    if first.is_none() && p != '^' {
                        first = Some(p);
                    }
                }
                if let Some(f) = first.filter(|_| skipping == 0) {
                    out.push(f);
                }
            }
            '{' => {
                while let Some(&p) = chars.get(i) {
                    i += 1;
                    if p == '}' {
                        break;
                    }
                }
            }
            '.' if skipping == 0 => out.push('x'),
            '*' | '+' | '?' | '^' | '$' | '|' | '.' => {}
            other if skipping == 0 => out.push(other),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn list(value: &str) -> PatternList {
        PatternList::parse("topics", value).unwrap()
    }

    #[test]
    fn split_list_follows_configdef() {
        assert_eq!(split_list(""), Vec::<String>::new());
        assert_eq!(split_list("   "), Vec::<String>::new());
        assert_eq!(split_list("a"), vec!["a"]);
        assert_eq!(split_list(" a , b,c "), vec!["a", "b", "c"]);
        assert_eq!(split_list("a,,b,"), vec!["a", "", "b", ""]);
        assert_eq!(split_list("a,\t b"), vec!["a", "b"]);
    }

    #[test]
    fn full_match_not_find() {
        let l = list("orders");
        assert!(l.matches("orders"));
        assert!(!l.matches("orders-v2"));
        assert!(!l.matches("my-orders"));
        let l = list("a|ab");
        assert!(
            l.matches("ab"),
            "alternation must backtrack to the longer branch"
        );
    }

    #[test]
    fn entries_join_without_grouping() {
        // `(a` and `b)` form the valid `(a|b)`.
        let l = list("(a, b)");
        assert!(l.matches("a"));
        assert!(l.matches("b"));
        assert_eq!(l.pattern(), Some("(a|b)"));
        // `^app1.*|app2.*$` from a real guide: both alternatives.
        let l = list("^app1.*|app2.*$");
        assert!(l.matches("app1-t1"));
        assert!(l.matches("app2-x"));
        assert!(!l.matches("app3"));
    }

    #[test]
    fn unbalanced_join_is_an_error_like_java() {
        let err = PatternList::parse("topics", "a), (b").unwrap_err();
        assert_eq!(err.key(), "topics");
        assert_eq!(err.pattern(), "a)|(b");
        assert!(matches!(err, FilterError::InvalidPattern { .. }));
    }

    #[test]
    fn empty_list_matches_nothing_empty_entry_matches_empty_name() {
        let l = list("");
        assert!(l.is_empty());
        assert!(!l.matches(""));
        assert!(!l.matches("orders"));
        let l = list("a,,b");
        assert!(l.matches(""));
        assert!(l.matches("a"));
        assert!(!l.matches("c"));
    }

    #[test]
    fn dangling_quantifier_from_a_guide_is_an_error() {
        // `*\..test`, written in a migration guide as a topic deny-list, is not a valid regex.
        let err = PatternList::parse("topics.exclude", r"*\..test").unwrap_err();
        assert_eq!(err.key(), "topics.exclude");
        assert_eq!(err.pattern(), r"*\..test");
        let msg = err.to_string();
        assert!(
            msg.contains("topics.exclude") && msg.contains(r"*\..test"),
            "{msg}"
        );
    }

    #[test]
    fn quote_blocks_become_literals() {
        let l = list(r"\Qa.b\E.*");
        assert!(l.matches("a.b"));
        assert!(l.matches("a.bcd"));
        assert!(!l.matches("axb"));
        // Unterminated \Q quotes to the end.
        let l = list(r"x\Q(*)");
        assert!(l.matches("x(*)"));
        assert!(!l.matches("x"));
        // An escaped backslash before Q is not a quote.
        let l = list(r"a\\Q");
        assert!(l.matches(r"a\Q"));
    }

    #[test]
    fn java_classes_are_ascii() {
        let l = list(r"\w+");
        assert!(l.matches("abc_09"));
        assert!(!l.matches("é"), "Java's \\w is ASCII-only");
        let l = list(r"[\w.-]+");
        assert!(l.matches("my.topic-1"));
        assert!(!l.matches("my topic"));
        let l = list(r"\d{3}");
        assert!(l.matches("123"));
        assert!(!l.matches("١٢٣"), "Java's \\d is ASCII-only");
        let l = list(r"a\sb");
        assert!(l.matches("a\tb"));
        let l = list(r"a\hb");
        assert!(l.matches("a b"));
        assert!(
            !l.matches("afb"),
            "Java's \\h is whitespace, not a hex digit"
        );
        let l = list(r"\p{Lower}+");
        assert!(l.matches("abc"));
        assert!(!l.matches("aBc"));
        let l = list(r"[\P{Digit}]+");
        assert!(l.matches("abc"));
        assert!(!l.matches("a1"));
        let l = list(r"a\011b");
        assert!(l.matches("a\tb"));
    }

    #[test]
    fn java_only_classes_are_refused_with_the_key() {
        let err = PatternList::parse("groups", r"\p{javaLowerCase}+").unwrap_err();
        assert!(
            matches!(err, FilterError::UnsupportedJavaSyntax { ref construct, .. } if construct == r"\p{javaLowerCase}")
        );
        assert_eq!(err.key(), "groups");
    }

    #[test]
    fn lookaround_and_possessive_constructs_compile() {
        let l = list(r"^(?!internal-).*");
        assert!(l.matches("orders"));
        assert!(!l.matches("internal-x"));
        let l = list(r"(?<!x)y");
        assert!(l.matches("y"));
        assert!(list(r"a++b").matches("aab"));
        assert!(list(r"(?>a+)b").matches("aab"));
        assert!(list(r"(a)\1").matches("aa"));
    }

    #[test]
    fn default_topic_filter() {
        let f = TopicFilter::default();
        for ok in ["orders", "my.topic", "A.orders", "heartbeats", "_schemas"] {
            assert!(f.accepts(ok), "{ok}");
        }
        for no in [
            "__consumer_offsets",
            "mm2-offsets.A.internal",
            "connect-offsets-internal",
            "orders.replica",
            "A.checkpoints.internal",
        ] {
            assert!(!f.accepts(no), "{no}");
        }
    }

    #[test]
    fn default_group_filter() {
        let f = GroupFilter::default();
        assert!(f.accepts("billing"));
        assert!(!f.accepts("console-consumer-4711"));
        assert!(!f.accepts("connect-my-sink"));
        assert!(!f.accepts("__share"));
    }

    #[test]
    fn exclude_wins_and_empty_exclude_excludes_nothing() {
        let f =
            TopicFilter::from_config(Some("customer\\..*, .*\\.logistic\\..*"), Some(".*\\.test"))
                .unwrap();
        assert!(f.accepts("customer.clicks"));
        assert!(f.accepts("eu.logistic.trucks"));
        assert!(!f.accepts("customer.test"));
        assert!(!f.accepts("orders"));
        let f = TopicFilter::from_config(None, Some("")).unwrap();
        assert!(
            f.accepts("__consumer_offsets"),
            "an empty exclude list excludes nothing"
        );
        let f = TopicFilter::from_config(Some(""), None).unwrap();
        assert!(
            !f.accepts("orders"),
            "an empty include list matches nothing"
        );
    }

    #[test]
    fn lint_catches_the_guide_pattern_that_matches_nothing() {
        let f = GroupFilter::from_config(Some("^(?!.*(heartbeats|)).*$"), None).unwrap();
        for name in ["orders", "heartbeats", "", "app1-consumer"] {
            assert!(!f.accepts(name), "{name}");
        }
        let lints = f.lint();
        assert!(
            lints
                .iter()
                .any(|l| matches!(l.kind, FilterLintKind::MatchesNothing { .. })),
            "{lints:?}"
        );
        assert!(
            lints
                .iter()
                .any(|l| l.kind == FilterLintKind::GroupFilterMentionsHeartbeats)
        );

        let f = TopicFilter::from_config(Some("^(?!.*(heartbeats|)).*$"), None).unwrap();
        let lints = f.lint(&["heartbeats".to_owned(), "A.heartbeats".to_owned()]);
        assert!(
            lints
                .iter()
                .any(|l| matches!(l.kind, FilterLintKind::MatchesNothing { .. }))
        );
        assert!(
            lints
                .iter()
                .any(|l| l.kind == FilterLintKind::IncludeWrittenToExcludeHeartbeats)
        );
        let text = lints
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n");
        assert!(
            text.contains("heartbeats.replication.enabled=false"),
            "{text}"
        );
    }

    #[test]
    fn lint_keeps_quiet_on_working_lookarounds() {
        for p in [
            r"^(?!internal-).*",
            r"(?!.*test).*-prod",
            r"^(?!.*heartbeats).*$",
            r"(?=app).*",
        ] {
            let f = TopicFilter::from_config(Some(p), None).unwrap();
            let lints = f.lint(&[]);
            assert!(
                !lints
                    .iter()
                    .any(|l| matches!(l.kind, FilterLintKind::MatchesNothing { .. })),
                "{p}: {lints:?}"
            );
        }
        // A literal include list is never flagged, whatever it names.
        let f = TopicFilter::from_config(Some("very-specific-topic-name"), None).unwrap();
        assert!(f.lint(&[]).is_empty());
        assert!(
            TopicFilter::default()
                .lint(&["heartbeats".to_owned()])
                .is_empty()
        );
        assert!(GroupFilter::default().lint().is_empty());
    }

    #[test]
    fn lint_flags_heartbeat_excludes_and_intended_exclusions() {
        let f = TopicFilter::from_config(None, Some(".*heartbeats")).unwrap();
        let lints = f.lint(&["heartbeats".to_owned(), "A.heartbeats".to_owned()]);
        assert!(lints.iter().any(|l| l.kind
            == FilterLintKind::ExcludesHeartbeats {
                topic: "heartbeats".to_owned()
            }));
        // The likely intent of the guide pattern: rejects heartbeats, accepts the rest.
        let f = TopicFilter::from_config(Some("^(?!.*heartbeats).*$"), None).unwrap();
        assert!(f.accepts("orders"));
        let lints = f.lint(&[]);
        assert_eq!(lints.len(), 1, "{lints:?}");
        assert_eq!(
            lints[0].kind,
            FilterLintKind::IncludeWrittenToExcludeHeartbeats
        );
    }

    #[test]
    fn lint_flags_split_quantifiers_empty_entries_and_spanning_parentheses() {
        let f = TopicFilter::from_config(Some("a{1,3}"), None).unwrap();
        assert_eq!(f.include().entries(), ["a{1", "3}"]);
        let lints = f.lint(&[]);
        assert!(
            lints.iter().any(|l| l.kind
                == FilterLintKind::SplitQuantifier {
                    entry: "a{1".to_owned()
                }),
            "{lints:?}"
        );
        let f = TopicFilter::from_config(Some("a,,b"), None).unwrap();
        assert!(
            f.lint(&[])
                .iter()
                .any(|l| l.kind == FilterLintKind::EmptyEntry)
        );
        let f = TopicFilter::from_config(Some("(a, b)"), None).unwrap();
        assert!(
            f.lint(&[])
                .iter()
                .any(|l| l.kind == FilterLintKind::ParenthesesSpanEntries)
        );
        let f = TopicFilter::from_config(Some(""), None).unwrap();
        assert!(
            f.lint(&[])
                .iter()
                .any(|l| l.kind == FilterLintKind::EmptyInclude)
        );
    }

    #[test]
    fn skeleton_probes() {
        assert_eq!(skeleton(r"customer\..*", true), "customer.x");
        assert_eq!(skeleton(r"(?!.*test).*-prod", false), "x-prod");
        assert_eq!(skeleton(r"app[0-9]+", true), "app0");
        assert_eq!(
            split_top_level_alternatives("a|(b|c)|d"),
            vec!["a", "(b|c)", "d"]
        );
    }

    proptest! {
        /// A list of escaped literal names matches exactly those names.
        #[test]
        fn quoted_literals_match_exactly(names in proptest::collection::vec("[a-zA-Z0-9._-]{1,20}", 1..5), probe in "[a-zA-Z0-9._-]{0,20}") {
            let value = names.iter().map(|n| format!(r"\Q{n}\E")).collect::<Vec<_>>().join(", ");
            let l = PatternList::parse("topics", &value).unwrap();
            for n in &names {
                prop_assert!(l.matches(n));
            }
            prop_assert_eq!(l.matches(&probe), names.contains(&probe));
        }

        /// `split_list` never loses a non-separator character and round-trips a clean join.
        #[test]
        fn split_list_round_trips(items in proptest::collection::vec("[a-z0-9.*]{1,8}", 1..6)) {
            let joined = items.join(" , ");
            prop_assert_eq!(split_list(&joined), items);
        }
    }
}
