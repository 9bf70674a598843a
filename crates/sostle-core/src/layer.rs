//! Layers L0–L7 and the trial namespace: names, parsing, and the set type the suite table uses.

use std::fmt;

/// One of the nine layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Layer {
    /// L0 — public.
    L0,
    /// L1 — read-only.
    L1,
    /// L2 — local, SSO-gated.
    L2,
    /// L3 — registered crew.
    L3,
    /// L4 — SOSTLE token.
    L4,
    /// L5 — Kay-gated.
    L5,
    /// L6 — closed.
    L6,
    /// L7 — MEGSCIFIAR.
    L7,
    /// The `chaos-trial` namespace.
    Trial,
}

impl Layer {
    /// All layers in order.
    pub const ALL: [Layer; 9] = [
        Layer::L0,
        Layer::L1,
        Layer::L2,
        Layer::L3,
        Layer::L4,
        Layer::L5,
        Layer::L6,
        Layer::L7,
        Layer::Trial,
    ];

    /// `L0`…`L7` or `trial`.
    pub fn as_str(self) -> &'static str {
        match self {
            Layer::L0 => "L0",
            Layer::L1 => "L1",
            Layer::L2 => "L2",
            Layer::L3 => "L3",
            Layer::L4 => "L4",
            Layer::L5 => "L5",
            Layer::L6 => "L6",
            Layer::L7 => "L7",
            Layer::Trial => "trial",
        }
    }

    /// Parses `L3`, `l3` or `trial`.
    pub fn parse(s: &str) -> Option<Layer> {
        match s {
            "trial" | "Trial" | "TRIAL" => Some(Layer::Trial),
            _ => {
                let rest = s.strip_prefix('L').or_else(|| s.strip_prefix('l'))?;
                let n: u8 = rest.parse().ok()?;
                Layer::from_index(n)
            }
        }
    }

    /// L`n` for n in 0..=7.
    pub fn from_index(n: u8) -> Option<Layer> {
        Layer::ALL
            .get(usize::from(n))
            .copied()
            .filter(|l| *l != Layer::Trial)
    }

    /// The bit of this layer in a [`LayerSet`].
    fn bit(self) -> u16 {
        1 << (self as u16)
    }

    /// The default namespace of the layer.
    pub fn default_namespace(self) -> &'static str {
        match self {
            Layer::L0 => "sostle-l0-public",
            Layer::L1 => "sostle-l1-readonly",
            Layer::L2 => "sostle-l2-local",
            Layer::L3 => "sostle-l3-crew",
            Layer::L4 => "sostle-l4-token",
            Layer::L5 => "sostle-l5-gated",
            Layer::L6 => "sostle-l6-closed",
            Layer::L7 => "sostle-l7-mega",
            Layer::Trial => "chaos-trial",
        }
    }

    /// The layer a namespace name implies by the pattern `sostle-l<N>-*` / `chaos-trial`.
    pub fn from_namespace_name(ns: &str) -> Option<Layer> {
        if ns == "chaos-trial" {
            return Some(Layer::Trial);
        }
        let rest = ns.strip_prefix("sostle-l")?;
        let mut chars = rest.chars();
        let d = chars.next()?.to_digit(10)?;
        if chars.next()? != '-' {
            return None;
        }
        Layer::from_index(u8::try_from(d).ok()?)
    }
}

/// A layer serializes as its name (`L3`, `trial`), as the ledger and every report write it.
impl serde::Serialize for Layer {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Layer {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Layer, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Layer::parse(&s).ok_or_else(|| {
            serde::de::Error::custom(format!("`{s}` is not a layer (L0…L7 or trial)"))
        })
    }
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct LayerSet(u16);

impl LayerSet {
    /// The empty set.
    pub const NONE: LayerSet = LayerSet(0);

    /// Every layer from `a` to `b` (inclusive, numbered layers only).
    pub fn range(a: u8, b: u8) -> LayerSet {
        let mut s = LayerSet::NONE;
        for n in a..=b {
            if let Some(l) = Layer::from_index(n) {
                s = s.with(l);
            }
        }
        s
    }

    /// This set plus `l`.
    #[must_use]
    pub fn with(self, l: Layer) -> LayerSet {
        LayerSet(self.0 | l.bit())
    }

    /// Both sets together.
    #[must_use]
    pub fn union(self, other: LayerSet) -> LayerSet {
        LayerSet(self.0 | other.0)
    }

    /// This set without `l`.
    #[must_use]
    pub fn without(self, l: Layer) -> LayerSet {
        LayerSet(self.0 & !l.bit())
    }

    /// Whether `l` is in the set.
    pub fn contains(self, l: Layer) -> bool {
        self.0 & l.bit() != 0
    }

    /// The layers in order.
    pub fn iter(self) -> impl Iterator<Item = Layer> {
        Layer::ALL.into_iter().filter(move |l| self.contains(*l))
    }

    /// Parses a list of items such as `L0-L7`, `L3`, `trial`.
    pub fn parse_items<'a>(
        items: impl IntoIterator<Item = &'a str>,
    ) -> Result<LayerSet, LayerSetError> {
        let mut s = LayerSet::NONE;
        for item in items {
            let item = item.trim();
            if let Some((a, b)) = item.split_once('-').filter(|_| item != "trial") {
                let (Some(la), Some(lb)) = (Layer::parse(a), Layer::parse(b)) else {
                    return Err(LayerSetError::NotARange(item.to_string()));
                };
                if la == Layer::Trial || lb == Layer::Trial || la > lb {
                    return Err(LayerSetError::NotARange(item.to_string()));
                }
                s = LayerSet(s.0 | LayerSet::range(la as u8, lb as u8).0);
            } else {
                let l =
                    Layer::parse(item).ok_or_else(|| LayerSetError::NotALayer(item.to_string()))?;
                s = s.with(l);
            }
        }
        Ok(s)
    }
}

/// An item of a layer list that is neither a layer nor a range of layers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LayerSetError {
    /// `L5-L2`, `L1-trial`, `L1-L9`: not an ascending range of numbered layers.
    #[error("`{0}` is not a layer range like L0-L7")]
    NotARange(String),
    /// Not a layer name.
    #[error("`{0}` is not a layer (L0…L7 or trial)")]
    NotALayer(String),
}

impl fmt::Display for LayerSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v: Vec<&str> = self.iter().map(Layer::as_str).collect();
        f.write_str(&v.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_patterns() {
        assert_eq!(
            Layer::from_namespace_name("sostle-l3-crew"),
            Some(Layer::L3)
        );
        assert_eq!(Layer::from_namespace_name("sostle-l3x"), None);
        assert_eq!(Layer::from_namespace_name("sostle-l8-x"), None);
        assert_eq!(
            Layer::from_namespace_name("chaos-trial"),
            Some(Layer::Trial)
        );
        assert_eq!(Layer::from_namespace_name("default"), None);
    }

    #[test]
    fn sets_parse() {
        let s = LayerSet::parse_items(["L2-L4", "trial"]).ok();
        let want = LayerSet::range(2, 4).with(Layer::Trial);
        assert_eq!(s, Some(want));
        assert!(LayerSet::parse_items(["L5-L2"]).is_err());
        assert!(LayerSet::parse_items(["L9"]).is_err());
    }
}
