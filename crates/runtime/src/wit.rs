//! A component's WIT: what it imports and exports, as text a caller can
//! generate bindings from.

use wit_component::{DecodedWasm, WitPrinter};

/// The WIT of the component `bytes`: its world, with every package it
/// uses nested in the same document.
pub fn component_wit(bytes: &[u8]) -> anyhow::Result<String> {
    let decoded = wit_component::decode(bytes)?;
    let (resolve, root) = match &decoded {
        DecodedWasm::Component(resolve, world) => (resolve, resolve.worlds[*world].package),
        DecodedWasm::WitPackage(resolve, package) => (resolve, Some(*package)),
    };
    let root = root.ok_or_else(|| anyhow::anyhow!("the component's world has no package"))?;
    let nested: Vec<_> = resolve
        .packages
        .iter()
        .map(|(id, _)| id)
        .filter(|id| *id != root)
        .collect();
    let mut printer = WitPrinter::default();
    printer.print(resolve, root, &nested)?;
    Ok(printer.output.to_string())
}
