//! XML-RPC values: read through an element tree, written as text.

use super::*;

/// An XML-RPC value as the emulator reads and writes it.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Rpc {
    Int(i64),
    Bool(bool),
    Str(String),
    Double(f64),
    Date(String),
    Bytes(Vec<u8>),
    Struct(BTreeMap<String, Rpc>),
    /// A struct written with its members in this order (answers only).
    Ordered(Vec<(String, Rpc)>),
    Array(Vec<Rpc>),
    Nil,
}

impl Rpc {
    pub(super) fn as_str(&self) -> Option<&str> {
        match self {
            Rpc::Str(s) => Some(s),
            _ => None,
        }
    }

    pub(super) fn type_name(&self) -> &'static str {
        match self {
            Rpc::Int(_) => "int",
            Rpc::Bool(_) => "boolean",
            Rpc::Str(_) => "string",
            Rpc::Double(_) => "double",
            Rpc::Date(_) => "dateTime.iso8601",
            Rpc::Bytes(_) => "base64",
            Rpc::Struct(_) | Rpc::Ordered(_) => "struct",
            Rpc::Array(_) => "array",
            Rpc::Nil => "nil",
        }
    }
}

#[derive(Debug)]
pub(super) struct Call {
    pub(super) method: String,
    pub(super) params: Vec<Rpc>,
}

/// An XML element: its local name and its children (elements and text pieces).
#[derive(Debug)]
pub(super) struct Element {
    pub(super) name: String,
    pub(super) children: Vec<Node>,
}

#[derive(Debug)]
pub(super) enum Node {
    Element(Element),
    Text(String),
}

impl Element {
    pub(super) fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            Node::Text(_) => None,
        })
    }

    pub(super) fn text(&self) -> String {
        self.children
            .iter()
            .filter_map(|n| match n {
                Node::Text(t) => Some(t.as_str()),
                Node::Element(_) => None,
            })
            .collect()
    }

    pub(super) fn child(&self, name: &str) -> Result<&Element, String> {
        self.elements()
            .find(|e| e.name == name)
            .ok_or_else(|| format!("<{}> has no <{name}>", self.name))
    }

    /// Fails when non-whitespace text sits among child elements.
    pub(super) fn only_elements(&self) -> Result<(), String> {
        if self.text().trim().is_empty() {
            Ok(())
        } else {
            Err(format!("unexpected text inside <{}>", self.name))
        }
    }
}

/// Parses a document into its root element.
pub(super) fn parse_tree(body: &[u8]) -> Result<Element, String> {
    let text = std::str::from_utf8(body).map_err(|_| "the body is not UTF-8".to_owned())?;
    let mut reader = Reader::from_str(text);
    reader.config_mut().expand_empty_elements = true;
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| format!("not well-formed XML: {e}"))?;
        match event {
            Event::Start(s) => {
                let raw = s.name();
                let name = raw.0.rsplit(':').next().unwrap_or(raw.0).to_owned();
                if root.is_some() {
                    return Err("content after the root element".to_owned());
                }
                if stack.len() > 100 {
                    return Err("elements nested too deeply".to_owned());
                }
                stack.push(Element {
                    name,
                    children: Vec::new(),
                });
            }
            Event::End(_) => {
                let done = stack.pop().ok_or("unbalanced closing tag")?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(Node::Element(done)),
                    None => root = Some(done),
                }
            }
            Event::Text(t) => {
                let content = t.xml10_content().into_owned();
                match stack.last_mut() {
                    Some(parent) => parent.children.push(Node::Text(content)),
                    None if content.trim().is_empty() => {}
                    None => return Err("text outside the root element".to_owned()),
                }
            }
            Event::CData(c) => {
                let parent = stack.last_mut().ok_or("CDATA outside the root element")?;
                parent
                    .children
                    .push(Node::Text(c.into_inner().into_owned()));
            }
            Event::GeneralRef(r) => {
                let ch = match r.resolve_char_ref() {
                    Ok(Some(ch)) => ch,
                    Ok(None) => match &*r {
                        "lt" => '<',
                        "gt" => '>',
                        "amp" => '&',
                        "apos" => '\'',
                        "quot" => '"',
                        other => return Err(format!("unknown entity &{other};")),
                    },
                    Err(e) => return Err(format!("bad character reference: {e}")),
                };
                let parent = stack
                    .last_mut()
                    .ok_or("reference outside the root element")?;
                parent.children.push(Node::Text(ch.to_string()));
            }
            Event::DocType(_) => return Err("DOCTYPE is not allowed".to_owned()),
            Event::Empty(_) => return Err("unexpected empty element".to_owned()),
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err("the document ends inside an element".to_owned());
    }
    root.ok_or_else(|| "the body is empty".to_owned())
}

pub(super) fn parse_call(body: &[u8]) -> Result<Call, String> {
    let root = parse_tree(body)?;
    if root.name != "methodCall" {
        return Err(format!(
            "the root element is <{}>, not <methodCall>",
            root.name
        ));
    }
    let method = root.child("methodName")?.text().trim().to_owned();
    if method.is_empty() {
        return Err("<methodName> is empty".to_owned());
    }
    let mut params = Vec::new();
    if let Ok(list) = root.child("params") {
        list.only_elements()?;
        for param in list.elements() {
            if param.name != "param" {
                return Err(format!("<params> holds a <{}>", param.name));
            }
            params.push(read_value(param.child("value")?)?);
        }
    }
    Ok(Call { method, params })
}

pub(super) fn read_value(value: &Element) -> Result<Rpc, String> {
    let typed: Vec<&Element> = value.elements().collect();
    let inner = match typed.as_slice() {
        [] => return Ok(Rpc::Str(value.text())),
        [one] => {
            value.only_elements()?;
            *one
        }
        _ => return Err("a <value> holds more than one type element".to_owned()),
    };
    let text = inner.text();
    let bad = |kind: &str| format!("invalid <{kind}> value {:?}", text.trim());
    Ok(match inner.name.as_str() {
        "int" | "i4" => Rpc::Int(
            text.trim()
                .parse::<i32>()
                .map_err(|_| bad(&inner.name))?
                .into(),
        ),
        "boolean" => match text.trim() {
            "1" => Rpc::Bool(true),
            "0" => Rpc::Bool(false),
            _ => return Err(bad("boolean")),
        },
        "string" => Rpc::Str(text),
        "double" => Rpc::Double(
            text.trim()
                .parse::<f64>()
                .ok()
                .filter(|d| d.is_finite())
                .ok_or_else(|| bad("double"))?,
        ),
        "dateTime.iso8601" => {
            let t = text.trim();
            let ok = t.len() == 17
                && t.as_bytes()[8] == b'T'
                && t.as_bytes()[11] == b':'
                && t.as_bytes()[14] == b':';
            if !ok {
                return Err(bad("dateTime.iso8601"));
            }
            Rpc::Date(t.to_owned())
        }
        "base64" => {
            let compact: String = text.split_ascii_whitespace().collect();
            Rpc::Bytes(
                base64::engine::general_purpose::STANDARD
                    .decode(compact)
                    .map_err(|_| bad("base64"))?,
            )
        }
        "struct" => {
            inner.only_elements()?;
            let mut members = BTreeMap::new();
            for member in inner.elements() {
                if member.name != "member" {
                    return Err(format!("<struct> holds a <{}>", member.name));
                }
                let name = member.child("name")?.text();
                members.insert(name, read_value(member.child("value")?)?);
            }
            Rpc::Struct(members)
        }
        "array" => {
            let data = inner.child("data")?;
            data.only_elements()?;
            Rpc::Array(data.elements().map(read_value).collect::<Result<_, _>>()?)
        }
        "nil" => Rpc::Nil,
        other => return Err(format!("unknown XML-RPC type <{other}>")),
    })
}

pub(super) fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\r', "&#13;")
}

pub(super) fn write_value(out: &mut String, value: &Rpc) {
    out.push_str("<value>");
    match value {
        Rpc::Int(i) => out.push_str(&format!("<i4>{i}</i4>")),
        Rpc::Bool(b) => out.push_str(&format!("<boolean>{}</boolean>", u8::from(*b))),
        Rpc::Str(s) => out.push_str(&format!("<string>{}</string>", escape(s))),
        Rpc::Double(d) => out.push_str(&format!("<double>{d}</double>")),
        Rpc::Date(d) => out.push_str(&format!("<dateTime.iso8601>{d}</dateTime.iso8601>")),
        Rpc::Bytes(b) => out.push_str(&format!(
            "<base64>{}</base64>",
            base64::engine::general_purpose::STANDARD.encode(b)
        )),
        Rpc::Struct(members) => write_struct(out, members.iter()),
        Rpc::Ordered(members) => write_struct(out, members.iter().map(|(k, v)| (k, v))),
        Rpc::Array(items) => {
            out.push_str("<array><data>");
            for item in items {
                write_value(out, item);
            }
            out.push_str("</data></array>");
        }
        Rpc::Nil => out.push_str("<nil/>"),
    }
    out.push_str("</value>");
}

pub(super) fn write_struct<'a>(
    out: &mut String,
    members: impl Iterator<Item = (&'a String, &'a Rpc)>,
) {
    out.push_str("<struct>");
    for (name, value) in members {
        out.push_str(&format!("<member><name>{}</name>", escape(name)));
        write_value(out, value);
        out.push_str("</member>");
    }
    out.push_str("</struct>");
}

pub(super) const DECLARATION: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>";

pub(super) fn success(value: &Rpc) -> String {
    let mut out = format!("{DECLARATION}<methodResponse><params><param>");
    write_value(&mut out, value);
    out.push_str("</param></params></methodResponse>");
    out
}

pub(super) fn fault(code: i32, message: &str) -> String {
    let mut out = format!("{DECLARATION}<methodResponse><fault>");
    write_value(
        &mut out,
        &Rpc::Ordered(vec![
            ("faultCode".into(), Rpc::Int(code.into())),
            ("faultString".into(), Rpc::Str(message.to_owned())),
        ]),
    );
    out.push_str("</fault></methodResponse>");
    out
}

/// Now, in XML-RPC's form (`20240301T10:22:05`, UTC).
pub(super) fn now_xmlrpc() -> String {
    dates::format(
        dates::from_unix(i64::try_from(dates::unix_secs()).unwrap_or(i64::MAX)),
        time::macros::format_description!("[year][month][day]T[hour]:[minute]:[second]"),
    )
}
