//! XML-RPC values: read through an element tree, written as text.

use super::*;
use crate::kit::xml;

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

/// An element of a call, read by the kit's tree (XML-RPC uses no namespaces).
pub(super) type Element = xml::Element;

/// The child `<name>`, or an error naming the parent.
fn child<'a>(parent: &'a Element, name: &str) -> Result<&'a Element, String> {
    parent
        .child_local(name)
        .ok_or_else(|| format!("<{}> has no <{name}>", parent.name))
}

/// Fails when non-whitespace text sits among child elements.
fn only_elements(element: &Element) -> Result<(), String> {
    if element.text.trim().is_empty() {
        Ok(())
    } else {
        Err(format!("unexpected text inside <{}>", element.name))
    }
}

/// Parses a call into its root element (101 levels of nesting at most, as before).
pub(super) fn parse_tree(body: &[u8]) -> Result<Element, String> {
    let text = std::str::from_utf8(body).map_err(|_| "the body is not UTF-8".to_owned())?;
    xml::parse(text, 101).map_err(|e| match e {
        xml::XmlError::Malformed(why) => format!("not well-formed XML: {why}"),
        other => other.to_string(),
    })
}

pub(super) fn parse_call(body: &[u8]) -> Result<Call, String> {
    let root = parse_tree(body)?;
    if root.name != "methodCall" {
        return Err(format!(
            "the root element is <{}>, not <methodCall>",
            root.name
        ));
    }
    let method = child(&root, "methodName")?.text.trim().to_owned();
    if method.is_empty() {
        return Err("<methodName> is empty".to_owned());
    }
    let mut params = Vec::new();
    if let Ok(list) = child(&root, "params") {
        only_elements(list)?;
        for param in list.children.iter() {
            if param.name != "param" {
                return Err(format!("<params> holds a <{}>", param.name));
            }
            params.push(read_value(child(param, "value")?)?);
        }
    }
    Ok(Call { method, params })
}

pub(super) fn read_value(value: &Element) -> Result<Rpc, String> {
    let typed: Vec<&Element> = value.children.iter().collect();
    let inner = match typed.as_slice() {
        [] => return Ok(Rpc::Str(value.text.clone())),
        [one] => {
            only_elements(value)?;
            *one
        }
        _ => return Err("a <value> holds more than one type element".to_owned()),
    };
    let text = inner.text.clone();
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
            only_elements(inner)?;
            let mut members = BTreeMap::new();
            for member in inner.children.iter() {
                if member.name != "member" {
                    return Err(format!("<struct> holds a <{}>", member.name));
                }
                let name = child(member, "name")?.text.clone();
                members.insert(name, read_value(child(member, "value")?)?);
            }
            Rpc::Struct(members)
        }
        "array" => {
            let data = child(inner, "data")?;
            only_elements(data)?;
            Rpc::Array(
                data.children
                    .iter()
                    .map(read_value)
                    .collect::<Result<_, _>>()?,
            )
        }
        "nil" => Rpc::Nil,
        other => return Err(format!("unknown XML-RPC type <{other}>")),
    })
}

/// Element content escaped; a carriage return is written as a reference so that the
/// reader's end-of-line normalisation does not turn it into a line feed.
pub(super) fn escape(text: &str) -> String {
    xml::escape_text(text).replace('\r', "&#13;")
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
