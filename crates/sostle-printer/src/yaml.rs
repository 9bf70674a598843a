//! Objects as a YAML stream (`---` between them), as `kubectl apply -f -` reads them, and a
//! Kubernetes `List` of objects.

use std::io::{self, Write};

use serde::Serialize;
use serde_json::Value as J;

/// Prints objects as a YAML stream.
pub fn print_yaml(docs: &[J], w: &mut dyn Write) -> io::Result<()> {
    for (i, d) in docs.iter().enumerate() {
        if i > 0 {
            writeln!(w, "---")?;
        }
        let text = serde_saphyr::to_string(d)
            .map_err(|e| io::Error::other(format!("cannot write YAML: {e}")))?;
        write!(w, "{text}")?;
        if !text.ends_with('\n') {
            writeln!(w)?;
        }
    }
    Ok(())
}

/// A Kubernetes `List` of objects, as `kubectl apply -f -` takes them.
#[derive(Debug, Serialize)]
pub struct List<'a> {
    #[serde(rename = "apiVersion")]
    api_version: &'static str,
    kind: &'static str,
    items: &'a [J],
}

impl<'a> List<'a> {
    /// The list of `items`.
    pub fn of(items: &'a [J]) -> List<'a> {
        List {
            api_version: "v1",
            kind: "List",
            items,
        }
    }
}
