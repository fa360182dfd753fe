//! The one place askama templates are turned into text: every module that renders a
//! template (`crates/cpgen/templates/`) goes through here, so the error mapping and the
//! final-newline rule are the same for all of them.

use askama::Template;

use crate::Error;

/// Renders a template into a text file's contents. askama drops a template file's final
/// newline, and POSIX text files (and `systemd-analyze`) want one, so it is put back.
pub(crate) fn render_text(template: &impl Template, name: &'static str) -> Result<String, Error> {
    let mut text = template.render().map_err(|source| Error::Render {
        template: name,
        source,
    })?;
    if !text.ends_with('\n') {
        text.push('\n');
    }
    Ok(text)
}

/// [`render_text`] as the bytes of a file.
pub(crate) fn render_template(
    template: &impl Template,
    name: &'static str,
) -> Result<Vec<u8>, Error> {
    render_text(template, name).map(String::into_bytes)
}
