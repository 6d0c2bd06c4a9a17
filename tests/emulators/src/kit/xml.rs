//! Reading XML requests into a small element tree, and escaping text for the answers the
//! emulators write. Built on `quick-xml` (already what the plugins' side uses), in one place
//! instead of one hand-made tree per provider: SOAP (EWS) and XML-RPC (Universign) requests
//! are read by [`parse`]; streaming readers that only look for a few paths (invoices) use
//! `quick-xml` directly.
//!
//! Refused as the providers' parsers refuse them: DTDs (no entity expansion), unknown
//! entities, undeclared namespace prefixes, text or a second element after the root, and
//! nesting deeper than the caller allows.

use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;
use std::fmt;

/// An element: namespace, local name, unqualified attributes, child elements, and the
/// concatenation of its own text pieces (not its children's).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    pub ns: Option<String>,
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Element>,
    pub text: String,
}

impl Element {
    /// Whether the element is `{ns}name`.
    pub fn is(&self, ns: &str, name: &str) -> bool {
        self.ns.as_deref() == Some(ns) && self.name == name
    }

    /// The first child `{ns}name`.
    pub fn child(&self, ns: &str, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.is(ns, name))
    }

    /// The first child whose local name is `name`, whatever its namespace (XML-RPC has none).
    pub fn child_local(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// The children `{ns}name`.
    pub fn children_named<'a>(
        &'a self,
        ns: &'a str,
        name: &'a str,
    ) -> impl Iterator<Item = &'a Element> {
        self.children.iter().filter(move |c| c.is(ns, name))
    }

    /// The descendant reached by following `steps` of `(ns, name)`.
    pub fn path(&self, steps: &[(&str, &str)]) -> Option<&Element> {
        steps
            .iter()
            .try_fold(self, |el, (ns, name)| el.child(ns, name))
    }

    /// The trimmed text of the child `{ns}name`, if it has any.
    pub fn child_text(&self, ns: &str, name: &str) -> Option<&str> {
        self.child(ns, name)
            .map(|c| c.text.trim())
            .filter(|t| !t.is_empty())
    }

    /// Visits this element and its descendants depth-first, in document order, with the
    /// local names from this element down to each one: readers that only want a few values
    /// by path (invoices, CDAR messages) need no tree of their own.
    pub fn walk<'a>(&'a self, visit: &mut impl FnMut(&[&'a str], &'a Element)) {
        fn go<'a>(
            el: &'a Element,
            path: &mut Vec<&'a str>,
            visit: &mut impl FnMut(&[&'a str], &'a Element),
        ) {
            path.push(&el.name);
            visit(path, el);
            for child in &el.children {
                go(child, path, visit);
            }
            path.pop();
        }
        go(self, &mut Vec::new(), visit);
    }

    /// The value of the unqualified attribute `name`.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Why a document was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum XmlError {
    /// The underlying reader's complaint (syntax, encoding, attributes).
    Malformed(String),
    UndeclaredPrefix(String),
    UnknownEntity(String),
    Dtd,
    TextOutsideRoot,
    AfterRoot,
    TooDeep(usize),
    UnbalancedEnd,
    Unterminated,
    Empty,
}

impl fmt::Display for XmlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            XmlError::Malformed(e) => write!(f, "the XML is malformed: {e}"),
            XmlError::UndeclaredPrefix(p) => {
                write!(f, "the namespace prefix '{p}' is not declared")
            }
            XmlError::UnknownEntity(e) => write!(f, "unknown entity &{e};"),
            XmlError::Dtd => f.write_str("DTDs are not allowed"),
            XmlError::TextOutsideRoot => f.write_str("text outside the root element"),
            XmlError::AfterRoot => f.write_str("content after the root element"),
            XmlError::TooDeep(max) => write!(f, "elements nested deeper than {max} levels"),
            XmlError::UnbalancedEnd => f.write_str("unbalanced end tag"),
            XmlError::Unterminated => f.write_str("the document ends inside an element"),
            XmlError::Empty => f.write_str("the body is empty"),
        }
    }
}

impl std::error::Error for XmlError {}

/// Reads `text` (a leading byte-order mark is allowed) into its root element, refusing
/// elements nested more than `max_depth` levels.
pub fn parse(text: &str, max_depth: usize) -> Result<Element, XmlError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let malformed = |e: &dyn fmt::Display| XmlError::Malformed(e.to_string());
    let mut reader = NsReader::from_str(text);
    reader.config_mut().expand_empty_elements = true;
    let mut stack: Vec<Element> = Vec::new();
    let mut root = None;
    loop {
        let (ns, event) = reader.read_resolved_event().map_err(|e| malformed(&e))?;
        match event {
            Event::Start(start) => {
                if root.is_some() {
                    return Err(XmlError::AfterRoot);
                }
                if stack.len() >= max_depth {
                    return Err(XmlError::TooDeep(max_depth));
                }
                let ns = match ns {
                    ResolveResult::Bound(n) => Some(n.into_inner().to_owned()),
                    ResolveResult::Unbound => None,
                    ResolveResult::Unknown(p) => {
                        return Err(XmlError::UndeclaredPrefix(p.to_string()))
                    }
                };
                let mut attrs = Vec::new();
                for a in start.attributes() {
                    let a = a.map_err(|e| malformed(&e))?;
                    if a.key.as_namespace_binding().is_some() {
                        continue;
                    }
                    let v = a
                        .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                        .map_err(|e| malformed(&e))?;
                    let key = a.key.local_name().into_inner().to_owned();
                    attrs.push((key, v.into_owned()));
                }
                stack.push(Element {
                    ns,
                    name: start.local_name().into_inner().to_owned(),
                    attrs,
                    ..Element::default()
                });
            }
            Event::End(_) => {
                let done = stack.pop().ok_or(XmlError::UnbalancedEnd)?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(done),
                    None => root = Some(done),
                }
            }
            Event::Text(t) => {
                let content = t.xml10_content();
                match stack.last_mut() {
                    Some(cur) => cur.text.push_str(&content),
                    None if content.trim().is_empty() => {}
                    None => return Err(XmlError::TextOutsideRoot),
                }
            }
            Event::CData(c) => match stack.last_mut() {
                Some(cur) => cur.text.push_str(&c.xml10_content()),
                None => return Err(XmlError::TextOutsideRoot),
            },
            Event::GeneralRef(r) => {
                let s = match r.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    Ok(None) => {
                        let name = r.xml10_content();
                        resolve_predefined_entity(&name)
                            .ok_or_else(|| XmlError::UnknownEntity(name.into_owned()))?
                            .to_owned()
                    }
                    Err(e) => return Err(malformed(&e)),
                };
                match stack.last_mut() {
                    Some(cur) => cur.text.push_str(&s),
                    None => return Err(XmlError::TextOutsideRoot),
                }
            }
            Event::DocType(_) => return Err(XmlError::Dtd),
            Event::Eof => break,
            _ => {}
        }
    }
    if !stack.is_empty() {
        return Err(XmlError::Unterminated);
    }
    root.ok_or(XmlError::Empty)
}

/// `text` escaped for element content: `&`, `<` and `>` (quotes need no escaping there).
pub fn escape_text(text: &str) -> String {
    quick_xml::escape::partial_escape(text).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOAP: &str = "http://schemas.xmlsoap.org/soap/envelope/";

    #[test]
    fn reads_namespaces_attributes_text_and_references() {
        let doc = "\u{feff}<?xml version=\"1.0\"?><s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\">\
            <s:Body><Op Id=\"a&amp;b\">x &lt; y<![CDATA[<z>]]>&#233;</Op><Empty/></s:Body></s:Envelope>";
        let root = parse(doc, 16).unwrap();
        assert!(root.is(SOAP, "Envelope"));
        let body = root.path(&[(SOAP, "Body")]).unwrap();
        let op = body.child_local("Op").unwrap();
        assert_eq!(op.ns, None);
        assert_eq!(op.attr("Id"), Some("a&b"));
        assert_eq!(op.text, "x < y<z>é");
        assert_eq!(body.children.len(), 2);
    }

    #[test]
    fn walks_in_document_order_with_paths() {
        let root = parse("<a><b>1</b><c><d>2</d></c><b/></a>", 8).unwrap();
        let mut seen = Vec::new();
        root.walk(&mut |path, el| seen.push((path.join("/"), el.text.clone())));
        assert_eq!(
            seen,
            [
                ("a", ""),
                ("a/b", "1"),
                ("a/c", ""),
                ("a/c/d", "2"),
                ("a/b", "")
            ]
            .map(|(p, t)| (p.to_owned(), t.to_owned()))
        );
    }

    #[test]
    fn refuses_what_a_strict_parser_refuses() {
        assert_eq!(
            parse("<!DOCTYPE x [<!ENTITY e \"v\">]><x>&e;</x>", 8),
            Err(XmlError::Dtd)
        );
        assert_eq!(
            parse("<x>&e;</x>", 8),
            Err(XmlError::UnknownEntity("e".into()))
        );
        assert_eq!(
            parse("<p:x/>", 8),
            Err(XmlError::UndeclaredPrefix("p".into()))
        );
        assert_eq!(parse("<x/><y/>", 8), Err(XmlError::AfterRoot));
        assert_eq!(parse("<x/>text", 8), Err(XmlError::TextOutsideRoot));
        assert_eq!(parse("<a><b><c/></b></a>", 2), Err(XmlError::TooDeep(2)));
        assert_eq!(parse("<a><b>", 8), Err(XmlError::Unterminated));
        assert_eq!(parse("  ", 8), Err(XmlError::Empty));
        assert!(matches!(parse("<a></b>", 8), Err(XmlError::Malformed(_))));
    }

    #[test]
    fn escapes_only_what_element_content_needs() {
        assert_eq!(escape_text("a & <b> \"c\""), "a &amp; &lt;b&gt; \"c\"");
    }
}
