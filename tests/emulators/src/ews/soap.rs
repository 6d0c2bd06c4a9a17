//! Splitting a SOAP request into standalone documents for schema validation.

use super::*;

/// Which part of a SOAP request a standalone document came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartKind {
    /// A child of `soap:Header`: validate with `types.xsd`.
    Header,
    /// The first child of `soap:Body`: validate with `messages.xsd`.
    Operation,
}

/// A header element or the operation of a SOAP request, as a standalone document that
/// declares every namespace it inherited from the envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoapPart {
    pub kind: PartKind,
    /// Local name, e.g. `RequestServerVersion` or `CreateItem`.
    pub name: String,
    pub xml: String,
}

/// Splits a SOAP 1.1 request into its header elements and its operation, each a document of
/// its own, so that they can be validated against the EWS schemas (which do not describe the
/// envelope). Copies events as they are, so nothing the sender wrote is changed or escaped
/// again.
pub fn soap_parts(body: &str) -> Result<Vec<SoapPart>, String> {
    struct Open {
        name: String,
        decls: Vec<(String, String)>,
    }
    let mut reader = Reader::from_str(body);
    let mut stack: Vec<Open> = Vec::new();
    let mut parts = Vec::new();
    let mut current: Option<(PartKind, String, W, usize)> = None;
    let declarations = |start: &BytesStart<'_>| -> Result<Vec<(String, String)>, String> {
        let mut decls = Vec::new();
        for a in start.attributes() {
            let a = a.map_err(|e| e.to_string())?;
            let key = a.key.into_inner();
            if key == "xmlns" || key.starts_with("xmlns:") {
                let v = a
                    .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                    .map_err(|e| e.to_string())?;
                decls.push((key.to_owned(), v.into_owned()));
            }
        }
        Ok(decls)
    };
    let resolve = |stack: &[Open], qname: &str| -> Option<String> {
        let key = match qname.split_once(':') {
            Some((prefix, _)) => format!("xmlns:{prefix}"),
            None => "xmlns".to_owned(),
        };
        stack.iter().rev().find_map(|o| {
            o.decls
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.clone())
        })
    };
    loop {
        let event = reader
            .read_event()
            .map_err(|e| format!("malformed XML: {e}"))?;
        let (start, empty) = match &event {
            Event::Start(s) => (Some(s.clone()), false),
            Event::Empty(s) => (Some(s.clone()), true),
            _ => (None, false),
        };
        if let Some(start) = start {
            let qname = start.name().into_inner().to_owned();
            let decls = declarations(&start)?;
            if current.is_none() && stack.len() == 2 {
                let parent = &stack[1].name;
                let local = parent.rsplit(':').next().unwrap_or(parent).to_owned();
                let in_soap = resolve(&stack, parent).as_deref() == Some(SOAP_NS);
                let kind = match local.as_str() {
                    "Header" if in_soap => Some(PartKind::Header),
                    "Body"
                        if in_soap
                            && !parts
                                .iter()
                                .any(|p: &SoapPart| p.kind == PartKind::Operation) =>
                    {
                        Some(PartKind::Operation)
                    }
                    _ => None,
                };
                if let Some(kind) = kind {
                    // Every binding in scope that the element does not declare itself.
                    let mut inherited: Vec<(String, String)> = Vec::new();
                    for open in stack.iter().rev() {
                        for (k, v) in &open.decls {
                            if !decls.iter().any(|(d, _)| d == k)
                                && !inherited.iter().any(|(i, _)| i == k)
                            {
                                inherited.push((k.clone(), v.clone()));
                            }
                        }
                    }
                    let mut root = start.to_owned();
                    for (k, v) in &inherited {
                        root.push_attribute((k.as_str(), v.as_str()));
                    }
                    let mut w = Writer::new(Vec::new());
                    let local_name = qname.rsplit(':').next().unwrap_or(&qname).to_owned();
                    if empty {
                        w.write_event(Event::Empty(root))
                            .map_err(|e| e.to_string())?;
                        parts.push(SoapPart {
                            kind,
                            name: local_name,
                            xml: String::from_utf8(w.into_inner()).map_err(|e| e.to_string())?,
                        });
                    } else {
                        w.write_event(Event::Start(root))
                            .map_err(|e| e.to_string())?;
                        current = Some((kind, local_name, w, stack.len()));
                        stack.push(Open { name: qname, decls });
                    }
                    continue;
                }
            }
            if let Some((_, _, w, _)) = current.as_mut() {
                w.write_event(event.clone()).map_err(|e| e.to_string())?;
            }
            if !empty {
                stack.push(Open { name: qname, decls });
            }
            continue;
        }
        match event {
            Event::End(_) => {
                stack.pop();
                if let Some((_, _, w, _)) = current.as_mut() {
                    w.write_event(event.clone()).map_err(|e| e.to_string())?;
                }
                if current
                    .as_ref()
                    .is_some_and(|(_, _, _, depth)| *depth == stack.len())
                {
                    if let Some((kind, name, w, _)) = current.take() {
                        parts.push(SoapPart {
                            kind,
                            name,
                            xml: String::from_utf8(w.into_inner()).map_err(|e| e.to_string())?,
                        });
                    }
                }
            }
            Event::Eof => break,
            Event::Decl(_) | Event::DocType(_) | Event::PI(_) => {}
            other => {
                if let Some((_, _, w, _)) = current.as_mut() {
                    w.write_event(other).map_err(|e| e.to_string())?;
                }
            }
        }
    }
    if current.is_some() || !stack.is_empty() {
        return Err("the document ends inside an element".into());
    }
    Ok(parts)
}
