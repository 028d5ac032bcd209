//! The built component is valid and exports exactly the `core` world of `wit/`.

use std::collections::BTreeMap;

use wit_parser::{Function, Handle, Resolve, Type, TypeDefKind, WorldId, WorldItem};

/// Renders a type structurally, so types from two different `Resolve`s compare as strings.
fn describe(resolve: &Resolve, ty: &Type) -> String {
    let Type::Id(id) = ty else {
        return format!("{ty:?}").to_lowercase();
    };
    let def = &resolve.types[*id];
    let list = |items: Vec<String>| items.join(", ");
    let opt = |ty: &Option<Type>| ty.as_ref().map_or("_".into(), |t| describe(resolve, t));
    let body = match &def.kind {
        TypeDefKind::Record(r) => format!(
            "record {{{}}}",
            list(
                r.fields
                    .iter()
                    .map(|f| format!("{}: {}", f.name, describe(resolve, &f.ty)))
                    .collect()
            )
        ),
        TypeDefKind::Variant(v) => format!(
            "variant {{{}}}",
            list(
                v.cases
                    .iter()
                    .map(|c| format!("{}({})", c.name, opt(&c.ty)))
                    .collect()
            )
        ),
        TypeDefKind::Enum(e) => format!(
            "enum {{{}}}",
            list(e.cases.iter().map(|c| c.name.clone()).collect())
        ),
        TypeDefKind::Tuple(t) => format!(
            "tuple<{}>",
            list(t.types.iter().map(|t| describe(resolve, t)).collect())
        ),
        TypeDefKind::List(t) => format!("list<{}>", describe(resolve, t)),
        TypeDefKind::Option(t) => format!("option<{}>", describe(resolve, t)),
        TypeDefKind::Result(r) => format!("result<{}, {}>", opt(&r.ok), opt(&r.err)),
        TypeDefKind::Handle(Handle::Own(id)) => {
            format!("own<{}>", describe(resolve, &Type::Id(*id)))
        }
        TypeDefKind::Handle(Handle::Borrow(id)) => {
            format!("borrow<{}>", describe(resolve, &Type::Id(*id)))
        }
        TypeDefKind::Resource => "resource".into(),
        TypeDefKind::Type(t) => return describe(resolve, t),
        other => panic!("the core world should not use a {}", other.as_str()),
    };
    match &def.name {
        Some(name) => format!("{name}={body}"),
        None => body,
    }
}

fn signature(resolve: &Resolve, f: &Function) -> String {
    let params: Vec<String> = f
        .params
        .iter()
        .map(|p| format!("{}: {}", p.name, describe(resolve, &p.ty)))
        .collect();
    let result = f
        .result
        .as_ref()
        .map_or("()".into(), |t| describe(resolve, t));
    format!("({}) -> {result}", params.join(", "))
}

/// interface id → function name → signature, for every interface `world` exports.
fn exports(resolve: &Resolve, world: WorldId) -> BTreeMap<String, BTreeMap<String, String>> {
    resolve.worlds[world]
        .exports
        .iter()
        .map(|(key, item)| {
            let WorldItem::Interface { id, .. } = item else {
                panic!(
                    "core exports only interfaces, found {}",
                    resolve.name_world_key(key)
                );
            };
            let interface = &resolve.interfaces[*id];
            let functions = interface
                .functions
                .iter()
                .map(|(name, f)| (name.clone(), signature(resolve, f)))
                .collect();
            (resolve.id_of(*id).expect("a named interface"), functions)
        })
        .collect()
}

fn built() -> Vec<u8> {
    std::fs::read(wit_check::WSBOX_WASM).expect("build.rs built wsbox.wasm")
}

fn decoded() -> (Resolve, WorldId) {
    match wit_component::decode(&built()).expect("wsbox.wasm decodes") {
        wit_component::DecodedWasm::Component(resolve, world) => (resolve, world),
        wit_component::DecodedWasm::WitPackage(..) => {
            panic!("wsbox.wasm is a package, not a component")
        }
    }
}

#[test]
fn component_is_valid() {
    let mut validator = wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all());
    validator
        .validate_all(&built())
        .expect("wsbox.wasm validates");
}

#[test]
fn exports_match_the_core_world() {
    let mut source = Resolve::default();
    let wit = concat!(env!("CARGO_MANIFEST_DIR"), "/../../wit");
    let (package, _) = source.push_dir(wit).expect("wit/ parses");
    let core = source
        .select_world(&[package], Some("core"))
        .expect("wit/ has a core world");
    let expected = exports(&source, core);

    let (resolve, world) = decoded();
    let actual = exports(&resolve, world);

    // Guard against comparing two empty maps.
    let names: Vec<&str> = expected.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "wsbox:websocket/frames@0.2.1",
            "wsbox:websocket/handshake@0.2.1"
        ]
    );
    assert!(expected["wsbox:websocket/frames@0.2.1"].contains_key("[method]session.receive"));
    assert_eq!(actual, expected);
}

#[test]
fn imports_only_what_std_needs() {
    let (resolve, world) = decoded();
    let imports: Vec<String> = resolve.worlds[world]
        .imports
        .keys()
        .map(|key| resolve.name_world_key(key))
        .collect();
    for import in &imports {
        let allowed = import.starts_with("wasi:cli/")
            || import.starts_with("wasi:io/")
            || import.starts_with("wasi:random/")
            || import == "wsbox:websocket/types@0.2.1";
        assert!(allowed, "unexpected import {import}; all: {imports:?}");
    }
    assert!(
        imports.iter().any(|i| i.starts_with("wasi:random/random")),
        "{imports:?}"
    );
}
