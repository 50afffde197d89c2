//! Text in pictures: shapes and types as `float32 ⟨1×3×224×224⟩`, lines cut
//! to a width, XML escaping (SVG and Graphviz HTML labels share it; names
//! from a hostile file may hold anything) and the width estimate the layout
//! sizes boxes with.

/// Longest line kept in a box, in characters; longer ones end in `…`.
pub(crate) const MAX_LINE_CHARS: usize = 44;

/// `⟨64×3×7×7⟩` from dims already written as text; `⟨⟩` for a scalar.
pub fn shape_text<S: AsRef<str>>(dims: &[S]) -> String {
    let mut s = String::from("⟨");
    for (i, d) in dims.iter().enumerate() {
        if i > 0 {
            s.push('×');
        }
        s.push_str(d.as_ref());
    }
    s.push('⟩');
    s
}

/// `float32 ⟨1×3×224×224⟩`, `float32` (rank unknown) or `⟨3×3⟩` (dtype
/// unknown); `None` when neither is known.
pub fn type_text<S: AsRef<str>>(dtype: Option<&str>, dims: Option<&[S]>) -> Option<String> {
    match (dtype, dims) {
        (Some(t), Some(d)) => Some(format!("{t} {}", shape_text(d))),
        (Some(t), None) => Some(t.to_owned()),
        (None, Some(d)) => Some(shape_text(d)),
        (None, None) => None,
    }
}

/// `s` cut to [`MAX_LINE_CHARS`] characters, ending in `…` when cut.
pub(crate) fn clip(s: &str) -> String {
    clip_to(s, MAX_LINE_CHARS)
}

/// `s` cut to `max` characters, ending in `…` when cut.
pub(crate) fn clip_to(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Escapes text for XML content and attribute values. Characters XML 1.0
/// does not allow (controls other than tab, newline and carriage return;
/// U+FFFE, U+FFFF) become U+FFFD, so the output always parses.
pub(crate) fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(' '),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// Estimated width in pixels of `s` at `font_px`, bold or not: an average
/// sans-serif advance (wide enough that text stays inside its box in the
/// browsers and in Graphviz).
pub(crate) fn text_width(s: &str, font_px: f64, bold: bool) -> f64 {
    let per_char = if bold { 0.64 } else { 0.58 };
    s.chars().count() as f64 * font_px * per_char
}

/// A coordinate with one decimal, `-0.0` written as `0`.
pub(crate) fn num(v: f64) -> String {
    let r = (v * 10.0).round() / 10.0;
    if r == 0.0 {
        return "0".into();
    }
    if r.fract() == 0.0 {
        format!("{r:.0}")
    } else {
        format!("{r:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_and_types() {
        assert_eq!(shape_text(&["64", "3", "7", "7"]), "⟨64×3×7×7⟩");
        assert_eq!(shape_text::<&str>(&[]), "⟨⟩");
        assert_eq!(
            type_text(Some("float32"), Some(&["1", "N"][..])).as_deref(),
            Some("float32 ⟨1×N⟩")
        );
        assert_eq!(type_text::<&str>(None, None), None);
    }

    #[test]
    fn escaping_makes_valid_xml_text() {
        assert_eq!(
            xml_escape("a<b>&\"'\u{1}"),
            "a&lt;b&gt;&amp;&quot;&apos;\u{fffd}"
        );
        assert_eq!(clip_to("abcdef", 4), "abc…");
        assert_eq!(clip_to("abcd", 4), "abcd");
        assert_eq!(num(-0.04), "0");
        assert_eq!(num(12.0), "12");
        assert_eq!(num(1.25), "1.3");
    }
}
