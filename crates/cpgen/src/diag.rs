//! Diagnostics as plain data — code, severity, labelled spans, help — and their rendering
//! as text (via codespan-reporting) or JSON. Rules produce them; only the binary prints them.

use std::borrow::Cow;
use std::ops::Range;

use codespan_reporting::diagnostic as cs;
use codespan_reporting::files::SimpleFile;
use codespan_reporting::term;
use serde::Serialize;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The configuration is usable, but probably not what was meant.
    Warning,
    /// The configuration cannot be used.
    Error,
}

stable_codes! {
    /// The stable identity of a configuration finding. The `CPnnn` id never changes
    /// meaning; README.md lists them all.
    Code;
    TomlSyntax = "CP001", "toml-syntax";
    WrongType = "CP002", "wrong-type";
    UnknownKey = "CP003", "unknown-key";
    MissingKey = "CP004", "missing-key";
    UnknownValue = "CP005", "unknown-value";
    NotAConfig = "CP006", "not-a-config";
    InvalidName = "CP101", "invalid-name";
    DuplicateName = "CP102", "duplicate-name";
    DuplicateAddress = "CP103", "duplicate-address";
    InvalidAddress = "CP104", "invalid-address";
    InvalidCidr = "CP201", "invalid-cidr";
    CidrOverlap = "CP202", "cidr-overlap";
    AddressOutsideHostCidrs = "CP203", "address-outside-host-cidrs";
    AddressInClusterCidr = "CP204", "address-in-cluster-cidr";
    ServiceCidrSize = "CP205", "service-cidr-size";
    IpFamilyMismatch = "CP206", "ip-family-mismatch";
    InvalidPort = "CP301", "invalid-port";
    InvalidPortRange = "CP302", "invalid-port-range";
    ListenerCollision = "CP303", "listener-collision";
    NodePortCollision = "CP304", "node-port-collision";
    EndpointPortMismatch = "CP305", "endpoint-port-mismatch";
    NoMasters = "CP401", "no-masters";
    EvenEtcdMembers = "CP402", "even-etcd-members";
    LargeEtcdCluster = "CP403", "large-etcd-cluster";
    InvalidDataDir = "CP404", "invalid-data-dir";
    EmptyClusterToken = "CP405", "empty-cluster-token";
    TooManyEtcdMembers = "CP406", "too-many-etcd-members";
    UnsupportedVersion = "CP501", "unsupported-version";
    InvalidKeyAlgorithm = "CP502", "invalid-key-algorithm";
    ServiceAccountKeyAlgorithm = "CP503", "service-account-key-algorithm";
    SharedCa = "CP504", "shared-ca";
    InvalidValidity = "CP505", "invalid-validity";
    InvalidSan = "CP601", "invalid-san";
    SanNotCovered = "CP602", "san-not-covered";
    NoLoadBalancer = "CP701", "no-load-balancer";
    VipMisuse = "CP702", "vip-misuse";
    UnknownAdmissionPlugin = "CP703", "unknown-admission-plugin";
    UnknownAuthorizationMode = "CP704", "unknown-authorization-mode";
    UnusedLoadBalancerHosts = "CP705", "unused-load-balancer-hosts";
    InvalidInterface = "CP706", "invalid-interface";
    SingleMasterEndpoint = "CP707", "single-master-endpoint";
    VipOutsideMasterNetwork = "CP708", "vip-outside-master-network";
}

/// A dotted path to a field of a cluster description, e.g. `masters[1].address`: where a
/// finding about a [`ClusterSpec`](crate::spec::ClusterSpec) built in code points, as such a
/// spec has no source text to underline.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct FieldPath(String);

impl FieldPath {
    /// The path as written: keys joined by `.`, list indices in brackets.
    pub fn new(path: impl Into<String>) -> FieldPath {
        FieldPath(path.into())
    }

    /// The path as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for FieldPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a finding points: a byte range of the source text (a `cluster.toml`), or the path
/// of a field (a spec built in code, which has no text).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Location {
    /// Byte range in the source.
    Span(Range<usize>),
    /// The field's path in the spec.
    Path(FieldPath),
}

impl From<Range<usize>> for Location {
    fn from(span: Range<usize>) -> Location {
        Location::Span(span)
    }
}

impl From<FieldPath> for Location {
    fn from(path: FieldPath) -> Location {
        Location::Path(path)
    }
}

/// A place with a short message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Label {
    /// Where: a span of the source, or a field path.
    pub location: Location,
    /// What is at that place.
    pub message: String,
}

impl Label {
    /// A label at `location`.
    pub fn new(location: impl Into<Location>, message: impl Into<String>) -> Label {
        Label {
            location: location.into(),
            message: message.into(),
        }
    }

    /// The byte range in the source, when the label points into one.
    pub fn span(&self) -> Option<Range<usize>> {
        match &self.location {
            Location::Span(span) => Some(span.clone()),
            Location::Path(_) => None,
        }
    }

    /// The field path, when the label points at a field of a spec built in code.
    pub fn path(&self) -> Option<&FieldPath> {
        match &self.location {
            Location::Span(_) => None,
            Location::Path(path) => Some(path),
        }
    }
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// Stable identity.
    pub code: Code,
    /// One line saying what is wrong.
    pub message: String,
    /// Where it is wrong; `None` when the offending value is a default nobody wrote.
    pub primary: Option<Label>,
    /// Other places involved, e.g. the first of two duplicates.
    pub secondary: Vec<Label>,
    /// How to fix it.
    pub help: Option<String>,
}

impl Diagnostic {
    /// An error with `code` and `message`.
    pub fn error(code: Code, message: impl Into<String>) -> Diagnostic {
        Self::new(Severity::Error, code, message)
    }

    /// A warning with `code` and `message`.
    pub fn warning(code: Code, message: impl Into<String>) -> Diagnostic {
        Self::new(Severity::Warning, code, message)
    }

    fn new(severity: Severity, code: Code, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity,
            code,
            message: message.into(),
            primary: None,
            secondary: Vec::new(),
            help: None,
        }
    }

    /// Points the finding at `location` (if known): a span or a field path.
    pub fn at<L: Into<Location>>(
        mut self,
        location: Option<L>,
        message: impl Into<String>,
    ) -> Diagnostic {
        self.primary = location.map(|at| Label::new(at, message));
        self
    }

    /// Adds a secondary place (if known).
    pub fn also<L: Into<Location>>(
        mut self,
        location: Option<L>,
        message: impl Into<String>,
    ) -> Diagnostic {
        if let Some(at) = location {
            self.secondary.push(Label::new(at, message));
        }
        self
    }

    /// True when a label names a field path rather than a span: such a finding is about a
    /// spec built in code and is rendered without a source snippet.
    fn has_path(&self) -> bool {
        self.primary
            .iter()
            .chain(&self.secondary)
            .any(|l| l.path().is_some())
    }

    /// Says how to fix it.
    pub fn help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }

    fn to_codespan(&self) -> cs::Diagnostic<()> {
        let severity = match self.severity {
            Severity::Error => cs::Severity::Error,
            Severity::Warning => cs::Severity::Warning,
        };
        let labels = self
            .primary
            .iter()
            .filter_map(|l| {
                Some(cs::Label::primary((), l.span()?).with_message(escape(&l.message)))
            })
            .chain(self.secondary.iter().filter_map(|l| {
                Some(cs::Label::secondary((), l.span()?).with_message(escape(&l.message)))
            }))
            .collect();
        let notes = self
            .help
            .iter()
            .map(|h| format!("help: {}", escape(h)))
            .collect();
        cs::Diagnostic::new(severity)
            .with_code(self.code.id())
            .with_message(&self.message)
            .with_labels(labels)
            .with_notes(notes)
    }
}

/// A source file and every finding about it.
#[derive(Debug, Clone)]
pub struct Report {
    source_name: String,
    source: String,
    diagnostics: Vec<Diagnostic>,
}

/// How findings are rendered as text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Style {
    /// Plain text: for files, pipes and logs.
    #[default]
    Plain,
    /// With ANSI colours: for a terminal only.
    Colour,
}

impl Report {
    /// A report on `source` (named `source_name` in output). Findings are kept in source
    /// order, so output reads top to bottom.
    pub fn new(source_name: &str, source: &str, mut diagnostics: Vec<Diagnostic>) -> Report {
        diagnostics.sort_by_key(|d| {
            d.primary
                .as_ref()
                .and_then(Label::span)
                .map_or(usize::MAX, |span| span.start)
        });
        Report {
            source_name: escape(source_name).into_owned(),
            source: source.to_owned(),
            diagnostics,
        }
    }

    /// Every finding.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        &self.diagnostics
    }

    /// The name of the file the findings are about.
    pub fn source_name(&self) -> &str {
        &self.source_name
    }

    /// Number of findings of `severity`.
    pub fn count(&self, severity: Severity) -> usize {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == severity)
            .count()
    }

    /// True when at least one finding is an error.
    pub fn has_errors(&self) -> bool {
        self.count(Severity::Error) > 0
    }

    /// "2 errors, 1 warning".
    pub fn summary(&self) -> String {
        format!(
            "{}, {}",
            counted(self.count(Severity::Error), "error"),
            counted(self.count(Severity::Warning), "warning")
        )
    }

    /// Every finding as text, in `style`.
    pub fn render(&self, style: Style) -> String {
        self.render_first(usize::MAX, style)
    }

    /// The first `limit` findings as text, and how many more there are: a generated or
    /// hostile file can have thousands, and the first screen is what a person reads.
    pub fn render_first(&self, limit: usize, style: Style) -> String {
        // Control characters from a hostile file must not reach the terminal; each becomes
        // as many `?` as it had bytes, so every span still points at the same place.
        let shown = printable(&self.source);
        let file = SimpleFile::new(self.source_name.as_str(), shown.as_str());
        let config = term::Config::default();
        let mut out = Vec::new();
        for diagnostic in self.diagnostics.iter().take(limit) {
            if diagnostic.has_path() {
                out.extend_from_slice(self.render_by_path(diagnostic).as_bytes());
                continue;
            }
            let mut diagnostic = self.fit_to_screen(diagnostic);
            // A message may span lines (the TOML parser's do); each line is escaped.
            diagnostic.message = diagnostic
                .message
                .split('\n')
                .map(escape)
                .collect::<Vec<_>>()
                .join("\n");
            let diagnostic = diagnostic.to_codespan();
            // Rendering into memory can only fail on a label outside the source, which the
            // rules never produce; the message still reaches the user without its snippet.
            let rendered = if style == Style::Colour {
                let mut ansi = term::termcolor::Ansi::new(&mut out);
                term::emit_to_write_style(&mut ansi, &config, &file, &diagnostic)
            } else {
                term::emit_to_io_write(&mut out, &config, &file, &diagnostic)
            };
            if rendered.is_err() {
                out.extend_from_slice(format!("{}\n", diagnostic.message).as_bytes());
            }
        }
        if self.diagnostics.len() > limit {
            let more = self.diagnostics.len() - limit;
            out.extend_from_slice(
                format!("... and {more} more (all of them with --format json)\n\n").as_bytes(),
            );
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    /// A finding about a spec built in code, which has no text to quote: the message, then
    /// each place as its field path (`--> masters[1].address`), then the help.
    fn render_by_path(&self, diagnostic: &Diagnostic) -> String {
        let severity = match diagnostic.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let message: Vec<_> = diagnostic.message.split('\n').map(escape).collect();
        let mut out = format!(
            "{severity}[{}]: {}\n",
            diagnostic.code.id(),
            message.join("\n")
        );
        let place = |label: &Label| match &label.location {
            Location::Path(path) => escape(path.as_str()).into_owned(),
            Location::Span(span) => {
                let (line, column) = line_column(&self.source, span.start);
                format!("{}:{line}:{column}", self.source_name)
            }
        };
        if let Some(label) = &diagnostic.primary {
            out.push_str(&format!(
                "  --> {}: {}\n",
                place(label),
                escape(&label.message)
            ));
        }
        for label in &diagnostic.secondary {
            out.push_str(&format!(
                "  ::: {}: {}\n",
                place(label),
                escape(&label.message)
            ));
        }
        if let Some(help) = &diagnostic.help {
            out.push_str(&format!("  = help: {}\n", escape(help)));
        }
        out.push('\n');
        out
    }

    /// A finding whose labels sit on very long lines (a hostile or generated file) loses its
    /// source snippet, which would fill the screen, and names the place in words instead.
    fn fit_to_screen(&self, diagnostic: &Diagnostic) -> Diagnostic {
        const MAX_LINE: usize = 240;
        let line_length = |offset: usize| {
            let start = self
                .source
                .get(..offset)
                .and_then(|s| s.rfind('\n'))
                .map_or(0, |i| i + 1);
            let end = self
                .source
                .get(offset..)
                .and_then(|s| s.find('\n'))
                .map_or(self.source.len(), |i| offset + i);
            end.saturating_sub(start)
        };
        let labels = diagnostic.primary.iter().chain(&diagnostic.secondary);
        let spans = labels.clone().filter_map(Label::span);
        if spans
            .clone()
            .all(|span| line_length(span.start) <= MAX_LINE)
        {
            return diagnostic.clone();
        }
        let mut short = diagnostic.clone();
        let places: Vec<String> = labels
            .filter_map(|l| {
                let (line, column) = line_column(&self.source, l.span()?.start);
                Some(format!(
                    "{}:{line}:{column} ({})",
                    self.source_name, l.message
                ))
            })
            .collect();
        short.message = format!("{} — at {}", diagnostic.message, places.join(", "));
        short.primary = None;
        short.secondary.clear();
        short
    }

    /// Every finding as JSON values with 1-based line and column; a finding about a spec
    /// built in code has its field `path` instead, at the top and in each label.
    pub fn to_json(&self) -> serde_json::Value {
        let locate = |label: &Label| match &label.location {
            Location::Span(span) => {
                let (line, column) = line_column(&self.source, span.start);
                serde_json::json!({
                    "line": line, "column": column,
                    "start": span.start, "end": span.end,
                    "message": escape(&label.message),
                })
            }
            Location::Path(path) => serde_json::json!({
                "path": escape(path.as_str()),
                "message": escape(&label.message),
            }),
        };
        let findings: Vec<_> = self
            .diagnostics
            .iter()
            .map(|d| {
                let mut finding = serde_json::json!({
                    "code": d.code.id(),
                    "name": d.code.slug(),
                    "severity": d.severity,
                    "message": escape(&d.message),
                    "file": escape(&self.source_name),
                    "primary": d.primary.as_ref().map(locate),
                    "secondary": d.secondary.iter().map(locate).collect::<Vec<_>>(),
                    "help": d.help.as_deref().map(escape),
                });
                // Only findings located by path gain the key: those of a file keep the
                // fields they always had.
                if let (Some(path), Some(object)) = (
                    d.primary.as_ref().and_then(Label::path),
                    finding.as_object_mut(),
                ) {
                    object.insert("path".to_owned(), escape(path.as_str()).into());
                }
                finding
            })
            .collect();
        serde_json::Value::Array(findings)
    }
}

/// `1 error`, `2 errors`: a count and a noun that takes an `s`.
pub(crate) fn counted(n: usize, noun: &str) -> String {
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}

/// True for a character a terminal acts on instead of showing: C0 and C1 controls (ESC,
/// BEL, BS, CR, U+009B CSI...), DEL, and the bidirectional overrides that reorder what is
/// shown around them.
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `text` fit to print: every character a terminal would act on becomes a visible escape
/// (`\x1b`, `\u{9b}`, `\n`), so an auditor sees what a hostile file holds and nothing it
/// holds reaches the terminal. Every string cpgen prints from a bundle or a config goes
/// through here, in text and in JSON alike (serde_json leaves DEL and C1 controls raw).
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if is_unsafe(c) && c.is_ascii() => out.push_str(&format!("\\x{:02x}", u32::from(c))),
            c if is_unsafe(c) => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// The source text for codespan: what `escape` escapes becomes as many `?` as it had bytes
/// instead, because every label's span must still point at the same place. Newlines and
/// tabs stay, as they lay the snippet out.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\n' | '\t' => c.to_string(),
            c if is_unsafe(c) => "?".repeat(c.len_utf8()),
            c => c.to_string(),
        })
        .collect()
}

/// 1-based line and column (in characters) of a byte offset.
fn line_column(source: &str, offset: usize) -> (usize, usize) {
    let before = source.get(..offset).unwrap_or(source);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
    (line, column)
}

/// The closest of `candidates` to `given`, if any is close enough to be a likely typo.
pub fn did_you_mean<'a>(
    given: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(given, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_well_formed() {
        let mut ids: Vec<_> = Code::ALL.iter().map(|c| c.id()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), Code::ALL.len());
        assert!(ids.iter().all(|id| id.len() == 5 && id.starts_with("CP")));
    }

    #[test]
    fn control_characters_never_reach_the_terminal() {
        let source = "name = \"a\u{1b}[2Jb\u{9b}c\"\n";
        let report = Report::new(
            "c.toml",
            source,
            vec![Diagnostic::error(Code::InvalidName, "bad \u{1b}[31m").at(Some(7..19), "here")],
        );
        let text = report.render(Style::Plain);
        assert!(
            !text.chars().any(|c| c.is_control() && c != '\n'),
            "{text:?}"
        );
        assert_eq!(printable("a\u{9b}b").len(), "a\u{9b}b".len());
    }

    #[test]
    fn escapes_are_visible_and_leave_plain_text_alone() {
        assert_eq!(
            escape("a\u{1b}[2J\u{7}\u{8}\u{7f}\u{9b}\u{202e}\r\n\tb"),
            r"a\x1b[2J\x07\x08\x7f\u{9b}\u{202e}\r\n\tb"
        );
        assert!(matches!(escape("hosts/kübem00/ca.pem"), Cow::Borrowed(_)));
    }

    #[test]
    fn line_and_column_are_one_based() {
        assert_eq!(line_column("ab\ncd", 0), (1, 1));
        assert_eq!(line_column("ab\ncd", 4), (2, 2));
    }

    #[test]
    fn suggestions_catch_typos_only() {
        let fields = ["endpoint", "port", "bind_port"];
        assert_eq!(did_you_mean("endpont", fields), Some("endpoint"));
        assert_eq!(did_you_mean("zzz", fields), None);
    }

    #[test]
    fn a_finding_at_a_field_path_names_the_path_in_text_and_json() {
        let at = |path: &str| Some(FieldPath::new(path));
        let report = Report::new(
            "cluster spec",
            "",
            vec![
                Diagnostic::error(Code::DuplicateName, "host name `a` is used twice")
                    .at(at("workers[0].name"), "used again here")
                    .also(at("masters[0].name"), "first used here")
                    .help("rename it"),
            ],
        );
        assert_eq!(
            report.render(Style::Plain),
            "error[CP102]: host name `a` is used twice\n  --> workers[0].name: used again here\n  ::: masters[0].name: first used here\n  = help: rename it\n\n"
        );
        let json = &report.to_json()[0];
        assert_eq!(json["path"], "workers[0].name");
        assert_eq!(json["primary"]["path"], "workers[0].name");
        assert_eq!(json["secondary"][0]["message"], "first used here");
        assert_eq!(json["code"], "CP102");
        // A finding on a file keeps exactly the fields it had.
        let file = Report::new(
            "c.toml",
            "x = 1\n",
            vec![Diagnostic::error(Code::UnknownKey, "unknown").at(Some(0..1), "here")],
        );
        assert!(file.to_json()[0].get("path").is_none());
        assert_eq!(file.to_json()[0]["primary"]["line"], 1);
    }

    #[test]
    fn rendering_shows_code_position_and_underline() {
        let source = "[api]\nport = 0\n";
        let report = Report::new(
            "c.toml",
            source,
            vec![Diagnostic::error(Code::InvalidPort, "bad port")
                .at(Some(13..14), "here")
                .help("use 6443")],
        );
        let text = report.render(Style::Plain);
        assert!(text.contains("error[CP301]: bad port"), "{text}");
        assert!(text.contains("c.toml:2:8"), "{text}");
        assert!(text.contains("^ here"), "{text}");
        assert!(text.contains("= help: use 6443"), "{text}");
        assert!(!text.contains('\u{1b}'));
        assert!(report.render(Style::Colour).contains('\u{1b}'));
    }
}
