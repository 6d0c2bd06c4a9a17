//! A small path-based XML reader: the plugin reads a handful of values from invoices
//! (UBL, CII) and lifecycle messages (CDAR) by the local names of their elements, without
//! caring about prefixes.

use quick_xml::events::Event;
use quick_xml::Reader;

/// One text value with the path of local names that leads to it and its `schemeID`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Value {
    pub path: String,
    pub scheme: Option<String>,
    pub text: String,
}

/// The root's local name and every text value of the document, in order.
#[derive(Debug, Clone, Default)]
pub struct Document {
    pub root: String,
    pub root_namespace: Option<String>,
    pub values: Vec<Value>,
}

impl Document {
    /// The first value whose path ends with `suffix` (local names joined with `/`).
    pub fn first(&self, suffix: &str) -> Option<&Value> {
        self.values.iter().find(|v| ends_with_path(&v.path, suffix))
    }

    /// Every value whose path ends with `suffix`.
    pub fn all<'a>(&'a self, suffix: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.values
            .iter()
            .filter(move |v| ends_with_path(&v.path, suffix))
    }
}

fn ends_with_path(path: &str, suffix: &str) -> bool {
    path == suffix || path.ends_with(&format!("/{suffix}"))
}

fn local(name: &str) -> String {
    match name.rsplit_once(':') {
        Some((_, l)) => l.to_owned(),
        None => name.to_owned(),
    }
}

/// The character an entity reference (`amp`, `#233`, `#xE9`) stands for.
fn entity(name: &str) -> Option<char> {
    match name {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        _ => {
            let code = name.strip_prefix('#')?;
            let n = match code.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => code.parse().ok()?,
            };
            char::from_u32(n)
        }
    }
}

/// Deepest element nesting accepted: invoices and CDAR messages nest about 10 levels; every
/// value keeps its whole path, so a hostile document nested 100 000 deep would otherwise
/// cost gigabytes.
pub const MAX_DEPTH: usize = 64;

/// Reads `bytes` as XML; the error says why it is not well-formed (or has no root element),
/// and at which byte.
pub fn read(bytes: &[u8]) -> Result<Document, String> {
    let mut reader = Reader::from_reader(bytes);
    let mut doc = Document::default();
    let mut stack: Vec<String> = Vec::new();
    let mut scheme: Option<String> = None;
    let mut text = String::new();
    let mut buf = Vec::new();
    let version = quick_xml::XmlVersion::Implicit1_0;
    let flush =
        |doc: &mut Document, stack: &[String], scheme: &Option<String>, text: &mut String| {
            let t = text.trim();
            if !t.is_empty() && !stack.is_empty() {
                doc.values.push(Value {
                    path: stack.join("/"),
                    scheme: scheme.clone(),
                    text: t.to_owned(),
                });
            }
            text.clear();
        };
    loop {
        let position = reader.buffer_position();
        match reader.read_event_into(&mut buf) {
            Ok(event @ (Event::Start(_) | Event::Empty(_))) => {
                let (Event::Start(e) | Event::Empty(e)) = &event else {
                    continue;
                };
                flush(&mut doc, &stack, &scheme, &mut text);
                let qname = e.name();
                let full: &str = qname.as_ref();
                let name = local(full);
                scheme = None;
                for a in e.attributes().flatten() {
                    let key: &str = a.key.as_ref();
                    let value = a.normalized_value(version).ok().map(|v| v.into_owned());
                    if local(key) == "schemeID" {
                        scheme = value;
                    } else if stack.is_empty() {
                        let prefix = full.split_once(':').map(|(p, _)| p);
                        let declared = if key == "xmlns" {
                            Some(None)
                        } else {
                            key.strip_prefix("xmlns:").map(Some)
                        };
                        if declared == Some(prefix) {
                            doc.root_namespace = value;
                        }
                    }
                }
                if stack.is_empty() {
                    doc.root = name.clone();
                }
                if matches!(event, Event::Start(_)) {
                    if stack.len() >= MAX_DEPTH {
                        return Err(format!(
                            "elements are nested deeper than {MAX_DEPTH} levels at byte {position}"
                        ));
                    }
                    stack.push(name);
                } else {
                    scheme = None;
                }
            }
            Ok(Event::Text(t)) => text.push_str(&t.xml10_content()),
            Ok(Event::CData(t)) => text.push_str(&t.xml10_content()),
            Ok(Event::GeneralRef(r)) => {
                let name = r.into_inner().into_owned();
                let c = entity(&name)
                    .ok_or_else(|| format!("unknown entity &{name}; at byte {position}"))?;
                text.push(c);
            }
            Ok(Event::End(_)) => {
                flush(&mut doc, &stack, &scheme, &mut text);
                stack.pop();
                scheme = None;
            }
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(e) => {
                return Err(format!("{e} at byte {}", reader.error_position()));
            }
        }
        buf.clear();
    }
    if doc.root.is_empty() {
        return Err("there is no root element (the document is empty)".to_owned());
    }
    if let Some(open) = stack.last() {
        return Err(format!(
            "the document ends inside the element <{open}> (at byte {})",
            bytes.len()
        ));
    }
    Ok(doc)
}

/// Escapes text for an XML element or attribute.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every value keeps its whole path: 100 000 nested elements with text would have cost
    /// gigabytes. They are refused at the first element too deep, which the error names.
    #[test]
    fn deeply_nested_documents_are_refused_with_the_offset() {
        let deep = "<a>x".repeat(100_000);
        let e = read(deep.as_bytes()).unwrap_err();
        assert!(
            e.contains("nested deeper than 64 levels at byte 256"),
            "{e}"
        );
        assert!(read(b"<a>&nosuch;</a>")
            .unwrap_err()
            .contains("&nosuch; at byte 3"));
    }

    #[test]
    fn reads_paths_schemes_and_namespace() {
        let doc = read(
            br#"<?xml version="1.0"?><r:Root xmlns:r="urn:x"><r:A><r:ID schemeID="0002">702042755</r:ID></r:A><B>t &amp; u</B></r:Root>"#,
        )
        .unwrap();
        assert_eq!(doc.root, "Root");
        assert_eq!(doc.root_namespace.as_deref(), Some("urn:x"));
        let id = doc.first("A/ID").unwrap();
        assert_eq!(id.text, "702042755");
        assert_eq!(id.scheme.as_deref(), Some("0002"));
        assert_eq!(doc.first("B").unwrap().text, "t & u");
        assert!(read(b"<a><b></a>").unwrap_err().contains("at byte"));
        assert!(read(b"not xml").is_err());
    }
}
