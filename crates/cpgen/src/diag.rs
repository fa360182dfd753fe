//! Findings as plain data — code, severity, message, help, and where: a span of a config, a
//! field of a spec built in code, or a file of a bundle — and their one rendering as text
//! (source snippets via codespan-reporting) and as JSON. `validate` and `verify` produce
//! them; only the binary prints them.

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
    /// The stable identity of a finding. The `CPnnn` id never changes meaning: CP0xx to
    /// CP7xx are about a cluster description (`check`, `bundle`), CP8xx about a bundle
    /// (`verify`, `certs`). README.md lists them all.
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
    InvalidRuntimeEndpoint = "CP709", "invalid-runtime-endpoint";
    WebhooksUnreachable = "CP710", "webhooks-unreachable";
    HostileEntry = "CP800", "hostile-entry";
    Unparseable = "CP801", "unparseable";
    KeyMismatch = "CP802", "key-mismatch";
    WrongIssuer = "CP803", "wrong-issuer";
    WrongUsage = "CP804", "wrong-usage";
    CertificateSanNotCovered = "CP805", "san-not-covered";
    Expired = "CP806", "expired";
    ExpiresSoon = "CP807", "expires-soon";
    MissingFile = "CP808", "missing-file";
    DanglingReference = "CP809", "dangling-reference";
    ManifestMismatch = "CP810", "manifest-mismatch";
    KeyReadable = "CP811", "key-readable";
    BundleEvenEtcdMembers = "CP812", "even-etcd-members";
    BundleSharedCa = "CP813", "shared-ca";
    NotABundle = "CP814", "not-a-bundle";
    DuplicateEntry = "CP815", "duplicate-entry";
    UnexpectedCertificate = "CP816", "unexpected-certificate";
    LeakedKey = "CP817", "leaked-key";
    UnsafeMetadata = "CP818", "unsafe-metadata";
    UnexpectedFile = "CP819", "unexpected-file";
    MissingHost = "CP830", "missing-host";
    PlanMismatch = "CP831", "plan-mismatch";
    UnsafeSetting = "CP832", "unsafe-setting";
    UnexpectedCommand = "CP833", "unexpected-command";
    NotReproduced = "CP834", "not-reproduced";
}

impl Code {
    /// True for the codes of `verify` (CP8xx), which are about a bundle's files; the others
    /// are about a cluster description.
    pub fn is_about_a_bundle(self) -> bool {
        self.id().starts_with("CP8")
    }
}

impl Severity {
    /// `error` or `warning`, as findings print it.
    pub fn word(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
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

/// Where a finding points: a byte range of the source text (a `cluster.toml`), the path of a
/// field (a spec built in code, which has no text), or a file of a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Location {
    /// Byte range in the source.
    Span(Range<usize>),
    /// The field's path in the spec.
    Path(FieldPath),
    /// A file's path in a bundle (`path#field` for data embedded in a kubeconfig).
    File(String),
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
            _ => None,
        }
    }

    /// The field path, when the label points at a field of a spec built in code.
    pub fn path(&self) -> Option<&FieldPath> {
        match &self.location {
            Location::Path(path) => Some(path),
            _ => None,
        }
    }

    /// The bundle path, when the label points at a file of a bundle.
    pub fn file(&self) -> Option<&str> {
        match &self.location {
            Location::File(file) => Some(file),
            _ => None,
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

    /// The bundle file the finding is about, for a finding of `verify`.
    pub fn file(&self) -> Option<&str> {
        self.primary.as_ref().and_then(Label::file)
    }

    /// Points the finding at `file`, a path in a bundle.
    pub(crate) fn in_file(mut self, file: &str) -> Diagnostic {
        self.primary = Some(Label::new(Location::File(file.to_owned()), ""));
        self
    }

    /// An error about `file` of a bundle, with how to fix it.
    pub(crate) fn file_error(
        code: Code,
        file: &str,
        message: impl Into<String>,
        help: impl Into<String>,
    ) -> Diagnostic {
        Diagnostic::error(code, message).in_file(file).help(help)
    }

    /// A warning about `file` of a bundle, with how to fix it.
    pub(crate) fn file_warning(
        code: Code,
        file: &str,
        message: impl Into<String>,
        help: impl Into<String>,
    ) -> Diagnostic {
        Diagnostic::warning(code, message).in_file(file).help(help)
    }

    /// True when every label points into source text, which can then be quoted; a finding
    /// about a spec built in code or a bundle's file is rendered by its places' names.
    fn quotes_source(&self) -> bool {
        self.primary
            .iter()
            .chain(&self.secondary)
            .all(|l| l.span().is_some())
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

/// The text findings point into: a config's name (as shown) and contents. Findings about a
/// spec built in code or about a bundle's files have none.
#[derive(Debug, Clone, Default)]
pub(crate) struct Source {
    name: String,
    text: String,
}

impl Source {
    /// `text`, shown as `name`.
    pub(crate) fn new(name: &str, text: &str) -> Source {
        Source {
            name: escape(name).into_owned(),
            text: text.to_owned(),
        }
    }

    /// 1-based line and column of a byte offset.
    fn line_column(&self, offset: usize) -> (usize, usize) {
        line_column(&self.text, offset)
    }
}

/// A source file and every finding about it.
#[derive(Debug, Clone)]
pub struct Report {
    source: Source,
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
            source: Source::new(source_name, source),
            diagnostics,
        }
    }

    /// Every finding.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        &self.diagnostics
    }

    /// The name of the file the findings are about.
    pub fn source_name(&self) -> &str {
        &self.source.name
    }

    /// Number of findings of `severity`.
    pub fn count(&self, severity: Severity) -> usize {
        count(&self.diagnostics, severity)
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
        render_text(&self.diagnostics, &self.source, limit, style)
    }

    /// Every finding as JSON values with 1-based line and column; a finding about a spec
    /// built in code has its field `path` instead, at the top and in each label.
    pub fn to_json(&self) -> serde_json::Value {
        diagnostics_json(&self.diagnostics, &self.source)
    }
}

/// Number of `diagnostics` of `severity`.
pub(crate) fn count(diagnostics: &[Diagnostic], severity: Severity) -> usize {
    diagnostics
        .iter()
        .filter(|d| d.severity == severity)
        .count()
}

/// The first `limit` findings as text, each escaped for a terminal, and how many more there
/// are. The one renderer of findings: those on a config quote its text under a caret, the
/// others name their places (a field path, a bundle file).
pub(crate) fn render_text(
    diagnostics: &[Diagnostic],
    source: &Source,
    limit: usize,
    style: Style,
) -> String {
    // Control characters from a hostile file must not reach the terminal; each becomes as
    // many `?` as it had bytes, so every span still points at the same place.
    let shown = printable(&source.text);
    let file = SimpleFile::new(source.name.as_str(), shown.as_str());
    let config = term::Config::default();
    let mut out = Vec::new();
    for diagnostic in diagnostics.iter().take(limit) {
        if !diagnostic.quotes_source() {
            out.extend_from_slice(render_by_place(diagnostic, source).as_bytes());
            continue;
        }
        let mut diagnostic = fit_to_screen(diagnostic, source);
        // A message may span lines (the TOML parser's do); each line is escaped.
        diagnostic.message = diagnostic
            .message
            .split('\n')
            .map(escape)
            .collect::<Vec<_>>()
            .join("\n");
        let diagnostic = diagnostic.to_codespan();
        // Rendering into memory can only fail on a label outside the source, which the rules
        // never produce; the message still reaches the user without its snippet.
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
    if diagnostics.len() > limit {
        let more = diagnostics.len() - limit;
        out.extend_from_slice(
            format!("... and {more} more (all of them with --format json)\n\n").as_bytes(),
        );
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A finding with no text to quote. One about a bundle's file reads `error[CP801]: FILE:
/// MESSAGE` and its help, two lines per finding like a compiler's short format, as a bundle
/// has many; one about a spec built in code names each place as its field path
/// (`--> masters[1].address`) and ends with a blank line, as a quoted finding does.
fn render_by_place(diagnostic: &Diagnostic, source: &Source) -> String {
    let mut out = format!("{}[{}]: ", diagnostic.severity.word(), diagnostic.code.id());
    if let Some(file) = diagnostic.file() {
        out.push_str(&format!("{}: ", escape(file)));
    }
    let message: Vec<_> = diagnostic.message.split('\n').map(escape).collect();
    out.push_str(&message.join("\n"));
    out.push('\n');
    let place = |label: &Label| match &label.location {
        Location::Path(path) => Some(escape(path.as_str()).into_owned()),
        Location::Span(span) => {
            let (line, column) = source.line_column(span.start);
            Some(format!("{}:{line}:{column}", source.name))
        }
        // Named on the first line already.
        Location::File(_) => None,
    };
    let primary = diagnostic.primary.iter().map(|label| ("-->", label));
    let secondary = diagnostic.secondary.iter().map(|label| (":::", label));
    for (marker, label) in primary.chain(secondary) {
        if let Some(place) = place(label) {
            out.push_str(&format!("  {marker} {place}: {}\n", escape(&label.message)));
        }
    }
    if let Some(help) = &diagnostic.help {
        out.push_str(&format!("  = help: {}\n", escape(help)));
    }
    if diagnostic.file().is_none() {
        out.push('\n');
    }
    out
}

/// A finding whose labels sit on very long lines (a hostile or generated file) loses its
/// source snippet, which would fill the screen, and names the place in words instead.
fn fit_to_screen(diagnostic: &Diagnostic, source: &Source) -> Diagnostic {
    const MAX_LINE: usize = 240;
    let text = &source.text;
    let line_length = |offset: usize| {
        let start = text
            .get(..offset)
            .and_then(|s| s.rfind('\n'))
            .map_or(0, |i| i + 1);
        let end = text
            .get(offset..)
            .and_then(|s| s.find('\n'))
            .map_or(text.len(), |i| offset + i);
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
            let (line, column) = source.line_column(l.span()?.start);
            Some(format!("{}:{line}:{column} ({})", source.name, l.message))
        })
        .collect();
    short.message = format!("{} — at {}", diagnostic.message, places.join(", "));
    short.primary = None;
    short.secondary.clear();
    short
}

/// Every finding as the JSON values `check` and `verify` print, every string escaped:
/// `code`, `name`, `severity`, `message`, `file` (the config, or the bundle file the finding
/// is about), `primary` and `secondary` places in the source (1-based line and column; a
/// finding about a spec built in code has its field `path` instead, at the top and in each
/// label; one about a bundle file has none), and `help`.
pub(crate) fn diagnostics_json(diagnostics: &[Diagnostic], source: &Source) -> serde_json::Value {
    let locate = |label: &Label| match &label.location {
        Location::Span(span) => {
            let (line, column) = source.line_column(span.start);
            Some(serde_json::json!({
                "line": line, "column": column,
                "start": span.start, "end": span.end,
                "message": escape(&label.message),
            }))
        }
        Location::Path(path) => Some(serde_json::json!({
            "path": escape(path.as_str()),
            "message": escape(&label.message),
        })),
        // The file is the finding's `file`: no place inside it.
        Location::File(_) => None,
    };
    let finding = |d: &Diagnostic| {
        let file = d.file().unwrap_or(&source.name);
        let mut finding = serde_json::json!({
            "code": d.code.id(),
            "name": d.code.slug(),
            "severity": d.severity,
            "message": escape(&d.message),
            "file": escape(file),
            "primary": d.primary.as_ref().and_then(locate),
            "secondary": d.secondary.iter().filter_map(locate).collect::<Vec<_>>(),
            "help": d.help.as_deref().map(escape),
        });
        // Only findings located by path gain the key: those of a file keep the fields they
        // always had.
        if let (Some(path), Some(object)) = (
            d.primary.as_ref().and_then(Label::path),
            finding.as_object_mut(),
        ) {
            object.insert("path".to_owned(), escape(path.as_str()).into());
        }
        finding
    };
    serde_json::Value::Array(diagnostics.iter().map(finding).collect())
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
    fn a_finding_about_a_bundle_file_names_the_file_escaped() {
        let findings = [Diagnostic::file_error(
            Code::Unparseable,
            "hosts/m\u{1b}[2J/ca.pem",
            "no PEM block",
            "re-issue it",
        )];
        assert_eq!(
            render_text(&findings, &Source::default(), usize::MAX, Style::Colour),
            "error[CP801]: hosts/m\\x1b[2J/ca.pem: no PEM block\n  = help: re-issue it\n"
        );
        let json = &diagnostics_json(&findings, &Source::default())[0];
        assert_eq!(json["file"], "hosts/m\\x1b[2J/ca.pem");
        assert_eq!(json["name"], "unparseable");
        assert_eq!(json["primary"], serde_json::Value::Null);
        assert_eq!(json["secondary"], serde_json::json!([]));
        assert!(json.get("path").is_none());
        assert!(Code::Unparseable.is_about_a_bundle() && !Code::InvalidPort.is_about_a_bundle());
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
