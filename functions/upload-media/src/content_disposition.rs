//! The filename of a `Content-Disposition` header (RFC 6266), preferring the
//! RFC 5987 `filename*=charset'lang'percent-encoded` form over plain `filename`.

/// The filename a `Content-Disposition` value carries, if any; malformed
/// parameters are ignored rather than guessed at.
pub fn filename(header: &str) -> Option<String> {
    let mut plain = None;
    let mut extended = None;
    // The first element is the disposition type (attachment, inline, form-data).
    for param in split_params(header).into_iter().skip(1) {
        let Some((name, value)) = param.split_once('=') else {
            continue;
        };
        match name.trim().to_ascii_lowercase().as_str() {
            "filename*" => extended = extended.or_else(|| decode_ext_value(value.trim())),
            "filename" => plain = plain.or_else(|| unquote(value.trim())),
            _ => {}
        }
    }
    extended.or(plain).filter(|f| !f.is_empty())
}

/// Splits at `;` outside quoted strings.
fn split_params(header: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in header.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ';' if !quoted => {
                parts.push(&header[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&header[start..]);
    parts
}

/// A token or a quoted-string with its backslash escapes undone.
fn unquote(value: &str) -> Option<String> {
    let Some(inner) = value.strip_prefix('"') else {
        return Some(value.to_owned());
    };
    let inner = inner.strip_suffix('"')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            out.push(chars.next()?);
        } else {
            out.push(c);
        }
    }
    Some(out)
}

/// RFC 5987 `ext-value`: `UTF-8''na%C3%AFve.txt` (ISO-8859-1 also accepted).
fn decode_ext_value(value: &str) -> Option<String> {
    let mut it = value.splitn(3, '\'');
    let (charset, _lang, encoded) = (it.next()?, it.next()?, it.next()?);
    let bytes: Vec<u8> = percent_encoding::percent_decode_str(encoded).collect();
    match charset.to_ascii_lowercase().as_str() {
        "utf-8" => String::from_utf8(bytes).ok(),
        "iso-8859-1" => Some(bytes.into_iter().map(char::from).collect()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::filename;

    #[test]
    fn plain_and_quoted_filenames() {
        assert_eq!(
            filename("attachment; filename=cat.png").as_deref(),
            Some("cat.png")
        );
        assert_eq!(
            filename("attachment; filename=\"my cat; v2.png\"").as_deref(),
            Some("my cat; v2.png")
        );
        assert_eq!(
            filename(r#"inline; filename="say \"hi\".txt""#).as_deref(),
            Some("say \"hi\".txt")
        );
        assert_eq!(
            filename("form-data; name=\"file\"; filename=\"a.pdf\"").as_deref(),
            Some("a.pdf")
        );
    }

    #[test]
    fn extended_filename_wins_and_is_decoded() {
        assert_eq!(
            filename(
                "attachment; filename=\"EURO rates.txt\"; filename*=UTF-8''%e2%82%ac%20rates.txt"
            )
            .as_deref(),
            Some("€ rates.txt")
        );
        assert_eq!(
            filename("attachment; filename*=iso-8859-1'en'%A3%20rates.txt").as_deref(),
            Some("£ rates.txt")
        );
        // Undecodable extended value: fall back to the plain one.
        assert_eq!(
            filename("attachment; filename*=UTF-8''%ff%fe.txt; filename=x.txt").as_deref(),
            Some("x.txt")
        );
    }

    #[test]
    fn absent_or_broken_filenames() {
        assert_eq!(filename("attachment"), None);
        assert_eq!(filename("attachment; filename=\"unterminated"), None);
        assert_eq!(filename("attachment; filename=\"\""), None);
        assert_eq!(filename("attachment; name=x"), None);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(header in "\\PC*", tail in proptest::prelude::any::<String>()) {
            let _ = filename(&header);
            let _ = filename(&format!("attachment; filename{tail}"));
            let _ = filename(&format!("attachment; filename*={tail}"));
        }

        #[test]
        fn quoted_names_round_trip(name in "\\PC+", other in "[a-z]{1,8}") {
            proptest::prop_assume!(other != "filename");
            let quoted = name.replace('\\', "\\\\").replace('"', "\\\"");
            let header = format!("attachment; {other}=1; filename=\"{quoted}\"; x=\"a;b\"");
            proptest::prop_assert_eq!(filename(&header), Some(name));
        }

        #[test]
        fn extended_names_round_trip(name in "\\PC+") {
            let encoded =
                percent_encoding::utf8_percent_encode(&name, percent_encoding::NON_ALPHANUMERIC);
            let header = format!("attachment; filename=\"fallback\"; filename*=UTF-8''{encoded}");
            proptest::prop_assert_eq!(filename(&header), Some(name));
        }
    }
}
