//! Decoding an AdmissionReview: the request, and the object as the engine's manifest model (with
//! the kind and namespace the API server states).

use std::collections::BTreeMap;

use kube_core::admission::AdmissionRequest;
use kube_core::{ApiResource, DynamicResourceScope, ObjectMeta, Resource, TypeMeta};
use sostle_core::exemption::PREFIX as EXEMPT_PREFIX;
use sostle_core::manifest::{Entry, Node, Pos, Value};

use crate::ApiError;

/// Why an admission request's object does not decode: its metadata is not what the API server
/// sends.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ObjectError {
    /// The object is not a mapping (its type).
    #[error("the object is a {0}, expected a mapping")]
    NotMapping(&'static str),
    /// `metadata` is not a mapping (its type).
    #[error("metadata is a {0}, expected a mapping")]
    MetadataNotMapping(&'static str),
    /// `metadata.labels` or `metadata.annotations` is not a mapping.
    #[error("metadata.{key} is a {kind}, expected a mapping")]
    FieldNotMapping {
        /// `labels` or `annotations`.
        key: &'static str,
        /// What it is.
        kind: &'static str,
    },
    /// A field of `metadata` that must be a string is not (its path under `metadata.`).
    #[error("metadata.{0} is not a string")]
    NotString(String),
}

/// The object of an admission request, read straight from the body into the engine's tree
/// (no `serde_json::Value` in between). It is the `T` of kube-core's
/// [`AdmissionRequest`]; [`Resource::meta`] carries the name, generateName and namespace
/// only (labels, annotations and everything else are read from [`tree`](Self::tree), so
/// nothing is copied twice). An object whose metadata the API server could not have sent (a
/// non-string label, say) does not decode.
#[derive(Debug, Clone)]
pub struct AdmissionObject {
    /// The whole object.
    pub tree: Node,
    meta: ObjectMeta,
}

impl AdmissionObject {
    /// Wraps a tree (a JSON object), reading its metadata.
    pub fn from_tree(tree: Node) -> Result<AdmissionObject, ObjectError> {
        if tree.as_map().is_none() {
            return Err(ObjectError::NotMapping(tree.type_name()));
        }
        let mut meta = ObjectMeta::default();
        if let Some(m) = tree
            .get("metadata")
            .filter(|m| !matches!(m.value, Value::Null))
        {
            if m.as_map().is_none() {
                return Err(ObjectError::MetadataNotMapping(m.type_name()));
            }
            let text = |key: &str| -> Result<Option<String>, ObjectError> {
                match m.get(key).map(|n| &n.value) {
                    None | Some(Value::Null) => Ok(None),
                    Some(Value::Str(s)) => Ok(Some(s.to_string())),
                    Some(_) => Err(ObjectError::NotString(key.to_string())),
                }
            };
            meta.name = text("name")?;
            meta.namespace = text("namespace")?;
            meta.generate_name = text("generateName")?;
            for key in ["labels", "annotations"] {
                let Some(map) = m.get(key).filter(|n| !matches!(n.value, Value::Null)) else {
                    continue;
                };
                let entries = map.as_map().ok_or_else(|| ObjectError::FieldNotMapping {
                    key,
                    kind: map.type_name(),
                })?;
                if let Some(e) = entries.iter().find(|e| e.value.as_str().is_none()) {
                    return Err(ObjectError::NotString(format!("{key}.{}", e.key)));
                }
            }
        }
        Ok(AdmissionObject { tree, meta })
    }
}

impl<'de> serde::Deserialize<'de> for AdmissionObject {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let tree = Node::deserialize(d)?;
        AdmissionObject::from_tree(tree).map_err(serde::de::Error::custom)
    }
}

impl Resource for AdmissionObject {
    type DynamicType = ApiResource;
    type Scope = DynamicResourceScope;

    fn kind(dt: &ApiResource) -> std::borrow::Cow<'_, str> {
        dt.kind.as_str().into()
    }

    fn group(dt: &ApiResource) -> std::borrow::Cow<'_, str> {
        dt.group.as_str().into()
    }

    fn version(dt: &ApiResource) -> std::borrow::Cow<'_, str> {
        dt.version.as_str().into()
    }

    fn plural(dt: &ApiResource) -> std::borrow::Cow<'_, str> {
        dt.plural.as_str().into()
    }

    fn meta(&self) -> &ObjectMeta {
        &self.meta
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.meta
    }
}

/// Decodes an AdmissionReview v1 body into its request, in one pass: kube-core's
/// [`AdmissionRequest`] with the object read straight into the engine's tree (with sonic-rs,
/// chosen by measurement: docs/performance.md). The object's
/// `apiVersion` and `kind` are filled in from the request when absent (real API servers send
/// objects without them; captured requests show it), and so is the namespace of a namespaced
/// object. A body that does not decode is skimmed for its version so a v1beta1 or foreign body
/// gets a clear 400.
pub fn parse_review(body: &[u8]) -> Result<AdmissionRequest<AdmissionObject>, ApiError> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Review {
        #[serde(default)]
        api_version: Option<String>,
        #[serde(default)]
        kind: Option<String>,
        #[serde(default)]
        request: Option<AdmissionRequest<AdmissionObject>>,
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Head {
        #[serde(default)]
        api_version: Option<String>,
        #[serde(default)]
        kind: Option<String>,
    }
    let version_error = |av: Option<&str>, kind: Option<&str>| {
        ApiError::BadRequest(format!(
            "expected admission.k8s.io/v1 AdmissionReview, got {} {}",
            av.unwrap_or("no apiVersion"),
            kind.unwrap_or("no kind")
        ))
    };
    let is_v1 = |av: Option<&str>, kind: Option<&str>| {
        av == Some("admission.k8s.io/v1") && kind == Some("AdmissionReview")
    };
    match sonic_rs::from_slice::<Review>(body) {
        Ok(review) => {
            let (av, kind) = (review.api_version, review.kind);
            if !is_v1(av.as_deref(), kind.as_deref()) {
                return Err(version_error(av.as_deref(), kind.as_deref()));
            }
            let mut req = review
                .request
                .ok_or_else(|| ApiError::BadRequest("no request".into()))?;
            req.types = TypeMeta {
                api_version: av.unwrap_or_default(),
                kind: kind.unwrap_or_default(),
            };
            if let Some(o) = req.object.as_mut() {
                complete(o, &req.kind, req.namespace.as_deref());
            }
            if let Some(o) = req.old_object.as_mut() {
                complete(o, &req.kind, None);
            }
            Ok(req)
        }
        Err(e) => match serde_json::from_slice::<Head>(body) {
            Ok(h) if !is_v1(h.api_version.as_deref(), h.kind.as_deref()) => {
                Err(version_error(h.api_version.as_deref(), h.kind.as_deref()))
            }
            // The decoder's first line names the problem and its line and column (the lines
            // after it draw the spot, which a JSON error field does not need).
            _ => Err(ApiError::BadRequest(
                e.to_string().lines().next().unwrap_or_default().to_string(),
            )),
        },
    }
}

/// Fills in `apiVersion` and `kind` from the request when the object lacks them, and the
/// namespace the API server is admitting it into.
pub(crate) fn complete(
    o: &mut AdmissionObject,
    gvk: &kube_core::GroupVersionKind,
    namespace: Option<&str>,
) {
    let Value::Map(entries) = &mut o.tree.value else {
        return;
    };
    let is_str = |entries: &[Entry], key: &str| {
        entries
            .iter()
            .any(|e| &*e.key == key && matches!(e.value.value, Value::Str(_)))
    };
    let set = |entries: &mut Vec<Entry>, key: &str, text: String| {
        let value = Node::new(Value::Str(text.into()), Pos::default());
        match entries.iter_mut().find(|e| &*e.key == key) {
            Some(e) => e.value = value,
            None => entries.push(Entry {
                key: key.into(),
                key_pos: Pos::default(),
                value,
            }),
        }
    };
    if !is_str(entries, "kind") {
        set(entries, "kind", gvk.kind.clone());
    }
    if !is_str(entries, "apiVersion") {
        let av = if gvk.group.is_empty() {
            gvk.version.clone()
        } else {
            format!("{}/{}", gvk.group, gvk.version)
        };
        set(entries, "apiVersion", av);
    }
    if let Some(ns) = namespace {
        // A missing or null `metadata`, or `metadata.namespace`, is filled in alike.
        let meta = match entries.iter().position(|e| &*e.key == "metadata") {
            Some(i) => entries.get_mut(i).map(|e| &mut e.value),
            None => {
                entries.push(Entry {
                    key: "metadata".into(),
                    key_pos: Pos::default(),
                    value: Node::new(Value::Null, Pos::default()),
                });
                entries.last_mut().map(|e| &mut e.value)
            }
        };
        let Some(meta) = meta else { return };
        if matches!(meta.value, Value::Null) {
            meta.value = Value::Map(Vec::new());
        }
        if let Value::Map(meta) = &mut meta.value {
            let value = Node::new(Value::Str(ns.into()), Pos::default());
            match meta.iter_mut().find(|e| &*e.key == "namespace") {
                Some(e) if matches!(e.value.value, Value::Null) => e.value = value,
                Some(_) => return,
                None => meta.push(Entry {
                    key: "namespace".into(),
                    key_pos: Pos::default(),
                    value,
                }),
            }
            o.meta.namespace = Some(ns.to_string());
        }
    }
}

/// The annotations of an object (strings: checked when it was decoded).
pub(crate) fn annotations(obj: Option<&AdmissionObject>) -> impl Iterator<Item = (&str, &str)> {
    obj.and_then(|o| o.tree.get_path(&["metadata", "annotations"]))
        .and_then(Node::as_map)
        .unwrap_or_default()
        .iter()
        .filter_map(|e| Some((&*e.key, e.value.as_str()?)))
}

/// The exemption annotations of an object.
pub(crate) fn exempt_annotations(obj: Option<&AdmissionObject>) -> BTreeMap<&str, &str> {
    annotations(obj)
        .filter(|(k, _)| k.starts_with(EXEMPT_PREFIX))
        .collect()
}
