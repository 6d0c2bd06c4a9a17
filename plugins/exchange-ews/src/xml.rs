//! XML in and out, with quick-xml: a writer for SOAP requests and a small namespace-aware
//! tree for answers.
//!
//! Requests are written event by event so that quick-xml escapes every value; the few
//! characters XML 1.0 cannot carry at all (control characters an ERP may hold) are dropped
//! first, so a request is always well-formed. Answers are read into an [`Element`] tree
//! keyed by namespace URI and local name, so that the prefixes a server picks (`m:`, `t:`,
//! a default namespace, as the samples show) do not matter.

use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesDecl, BytesText, Event};
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;
use quick_xml::Writer;
use std::io;

pub const SOAP_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";
pub const TYPES_NS: &str = "http://schemas.microsoft.com/exchange/services/2006/types";
pub const MESSAGES_NS: &str = "http://schemas.microsoft.com/exchange/services/2006/messages";
pub const ERRORS_NS: &str = "http://schemas.microsoft.com/exchange/services/2006/errors";

/// Answers deeper than this are refused rather than risk the stack when the tree is dropped.
const MAX_DEPTH: usize = 256;

/// The writer every request is built with.
pub type XmlWriter = Writer<Vec<u8>>;

/// A writer that starts with the XML declaration.
pub fn writer() -> io::Result<XmlWriter> {
    let mut w = Writer::new(Vec::new());
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("utf-8"), None)))?;
    Ok(w)
}

/// `<name>text</name>`, escaped.
pub fn text_element(w: &mut XmlWriter, name: &str, text: &str) -> io::Result<()> {
    let text = xml_safe(text);
    w.create_element(name)
        .write_text_content(BytesText::new(&text))?;
    Ok(())
}

/// Drops the characters XML 1.0 cannot represent (C0 controls but tab, line feed and
/// carriage return; U+FFFE and U+FFFF).
pub fn xml_safe(text: &str) -> String {
    text.chars()
        .filter(|&c| {
            matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{FFFE}' && c != '\u{FFFF}')
        })
        .collect()
}

/// An element of an answer: namespace URI, local name, unqualified attributes, children and
/// the text directly inside it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Element {
    pub ns: Option<String>,
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Element>,
    pub text: String,
}

impl Element {
    /// Whether this element is `{ns}name`.
    pub fn is(&self, ns: &str, name: &str) -> bool {
        self.ns.as_deref() == Some(ns) && self.name == name
    }

    /// The first child `{ns}name`.
    pub fn child(&self, ns: &str, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.is(ns, name))
    }

    /// Every child `{ns}name`.
    pub fn children_named<'a>(
        &'a self,
        ns: &'a str,
        name: &'a str,
    ) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.is(ns, name))
    }

    /// Follows a path of `{ns}name` children.
    pub fn path(&self, steps: &[(&str, &str)]) -> Option<&Element> {
        steps
            .iter()
            .try_fold(self, |el, (ns, name)| el.child(ns, name))
    }

    /// The trimmed text of the child `{ns}name`, when present and not empty.
    pub fn child_text(&self, ns: &str, name: &str) -> Option<&str> {
        self.child(ns, name)
            .map(|c| c.text.trim())
            .filter(|t| !t.is_empty())
    }

    /// An attribute by local name.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every descendant `{ns}name`, depth first.
    pub fn descendants<'a>(&'a self, ns: &'a str, name: &'a str, out: &mut Vec<&'a Element>) {
        for c in &self.children {
            if c.is(ns, name) {
                out.push(c);
            }
            c.descendants(ns, name, out);
        }
    }
}

/// Why an answer could not be read as XML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XmlError(pub String);

impl std::fmt::Display for XmlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Reads a whole document into its root element.
pub fn parse(bytes: &[u8]) -> Result<Element, XmlError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| XmlError(format!("the answer is not UTF-8 ({e})")))?;
    let bom: u64 = if text.starts_with('\u{feff}') { 3 } else { 0 };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = NsReader::from_str(text);
    reader.config_mut().expand_empty_elements = true;
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    loop {
        // Offsets in refusals count from the first byte received, byte order mark included.
        let position = reader.buffer_position() + bom;
        let (ns, event) = reader
            .read_resolved_event()
            .map_err(|e| XmlError(format!("malformed XML at byte {position}: {e}")))?;
        match event {
            Event::Start(start) => {
                if root.is_some() {
                    return Err(XmlError(format!(
                        "content after the root element at byte {position}"
                    )));
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(XmlError(format!(
                        "elements nested deeper than {MAX_DEPTH} at byte {position}"
                    )));
                }
                let ns = match ns {
                    ResolveResult::Bound(ns) => Some(ns.into_inner().to_owned()),
                    ResolveResult::Unbound => None,
                    ResolveResult::Unknown(prefix) => {
                        return Err(XmlError(format!(
                            "undeclared namespace prefix {prefix:?} at byte {position}"
                        )))
                    }
                };
                let mut attrs = Vec::new();
                for attr in start.attributes() {
                    let attr = attr.map_err(|e| {
                        XmlError(format!("malformed attribute at byte {position}: {e}"))
                    })?;
                    if attr.key.as_namespace_binding().is_some() {
                        continue;
                    }
                    let value = attr
                        .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                        .map_err(|e| {
                            XmlError(format!("malformed attribute value at byte {position}: {e}"))
                        })?;
                    attrs.push((
                        attr.key.local_name().into_inner().to_owned(),
                        value.into_owned(),
                    ));
                }
                stack.push(Element {
                    ns,
                    name: start.local_name().into_inner().to_owned(),
                    attrs,
                    children: Vec::new(),
                    text: String::new(),
                });
            }
            Event::End(_) => {
                let Some(done) = stack.pop() else {
                    return Err(XmlError(format!(
                        "closing tag without an opening one at byte {position}"
                    )));
                };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(done),
                    None => root = Some(done),
                }
            }
            Event::Text(t) => {
                let content = t.xml10_content();
                match stack.last_mut() {
                    Some(current) => current.text.push_str(&content),
                    None if content.trim().is_empty() => {}
                    None => {
                        return Err(XmlError(format!(
                            "text outside the root element at byte {position}"
                        )))
                    }
                }
            }
            Event::CData(c) => {
                if let Some(current) = stack.last_mut() {
                    current.text.push_str(&c.xml10_content());
                }
            }
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    Ok(None) => resolve_predefined_entity(&r.xml10_content())
                        .map(str::to_owned)
                        .ok_or_else(|| {
                            XmlError(format!(
                                "unknown entity &{}; at byte {position}",
                                r.xml10_content()
                            ))
                        })?,
                    Err(e) => {
                        return Err(XmlError(format!(
                            "bad character reference at byte {position}: {e}"
                        )))
                    }
                };
                if let Some(current) = stack.last_mut() {
                    current.text.push_str(&resolved);
                }
            }
            Event::Eof => break,
            Event::Empty(_)
            | Event::Comment(_)
            | Event::Decl(_)
            | Event::PI(_)
            | Event::DocType(_) => {}
        }
    }
    if let Some(open) = stack.last() {
        return Err(XmlError(format!(
            "the document ends inside the element <{}> (at byte {})",
            open.name,
            bom + text.len() as u64
        )));
    }
    root.ok_or_else(|| XmlError("no root element (the document is empty or only a prolog)".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_namespaces_whatever_the_prefixes() {
        let doc = r#"<?xml version="1.0"?>
            <a:Root xmlns:a="urn:a" xmlns="urn:d"><Child x="1 &amp; 2">t &lt;&#233;&gt;<![CDATA[<c>]]></Child><a:Other/></a:Root>"#;
        let root = parse(doc.as_bytes()).unwrap();
        assert!(root.is("urn:a", "Root"));
        let child = root.child("urn:d", "Child").unwrap();
        assert_eq!(child.attr("x"), Some("1 & 2"));
        assert_eq!(child.text, "t <é><c>");
        assert!(root.child("urn:a", "Other").is_some());
        assert!(root.child("urn:d", "Other").is_none());
    }

    #[test]
    fn refuses_what_is_not_xml() {
        assert!(parse(b"<html><body>login</html>").is_err());
        assert!(parse(b"plain text").is_err());
        assert!(parse(b"<a:b/>").is_err());
        assert!(parse(b"").is_err());
    }

    #[test]
    fn writer_escapes_and_drops_impossible_characters() {
        let mut w = writer().unwrap();
        text_element(&mut w, "s", "a <b> & \"c\" \u{1}\u{8}é").unwrap();
        let out = String::from_utf8(w.into_inner()).unwrap();
        assert!(
            out.ends_with("<s>a &lt;b&gt; &amp; &quot;c&quot; é</s>"),
            "{out}"
        );
        let back = parse(out.as_bytes()).unwrap();
        assert_eq!(back.text, "a <b> & \"c\" é");
    }
}
