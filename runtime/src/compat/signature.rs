//! Canonical, structural rendering of WIT function types, so a job's import and a host's
//! module can be compared function by function even though they come from different WIT
//! documents. Named types are expanded to their structure (record field names, variant and
//! enum cases, flags), which is what the component model's type check compares.

use wasmtime::component::wit_parser::{Function, Handle, Resolve, Type, TypeDefKind};

/// `func(key: string) -> option<string>`.
pub fn function(resolve: &Resolve, f: &Function) -> String {
    let params: Vec<String> = f
        .params
        .iter()
        .map(|p| format!("{}: {}", p.name, ty(resolve, &p.ty)))
        .collect();
    let mut out = format!("func({})", params.join(", "));
    if let Some(result) = &f.result {
        out.push_str(" -> ");
        out.push_str(&ty(resolve, result));
    }
    out
}

/// The structural rendering of one type. (One arm per WIT type kind: a flat match over 80
/// lines reads better whole than split.)
pub fn ty(resolve: &Resolve, t: &Type) -> String {
    match t {
        Type::Bool => "bool".into(),
        Type::U8 => "u8".into(),
        Type::U16 => "u16".into(),
        Type::U32 => "u32".into(),
        Type::U64 => "u64".into(),
        Type::S8 => "s8".into(),
        Type::S16 => "s16".into(),
        Type::S32 => "s32".into(),
        Type::S64 => "s64".into(),
        Type::F32 => "f32".into(),
        Type::F64 => "f64".into(),
        Type::Char => "char".into(),
        Type::String => "string".into(),
        Type::ErrorContext => "error-context".into(),
        Type::Id(id) => {
            let def = &resolve.types[*id];
            match &def.kind {
                TypeDefKind::Type(inner) => ty(resolve, inner),
                TypeDefKind::Record(r) => {
                    let fields: Vec<String> = r
                        .fields
                        .iter()
                        .map(|f| format!("{}: {}", f.name, ty(resolve, &f.ty)))
                        .collect();
                    format!("record {{ {} }}", fields.join(", "))
                }
                TypeDefKind::Variant(v) => {
                    let cases: Vec<String> = v
                        .cases
                        .iter()
                        .map(|c| match &c.ty {
                            Some(t) => format!("{}({})", c.name, ty(resolve, t)),
                            None => c.name.clone(),
                        })
                        .collect();
                    format!("variant {{ {} }}", cases.join(", "))
                }
                TypeDefKind::Enum(e) => {
                    let cases: Vec<&str> = e.cases.iter().map(|c| c.name.as_str()).collect();
                    format!("enum {{ {} }}", cases.join(", "))
                }
                TypeDefKind::Flags(f) => {
                    let flags: Vec<&str> = f.flags.iter().map(|c| c.name.as_str()).collect();
                    format!("flags {{ {} }}", flags.join(", "))
                }
                TypeDefKind::Tuple(t) => {
                    let types: Vec<String> = t.types.iter().map(|t| ty(resolve, t)).collect();
                    format!("tuple<{}>", types.join(", "))
                }
                TypeDefKind::Option(t) => format!("option<{}>", ty(resolve, t)),
                TypeDefKind::Result(r) => {
                    let part =
                        |t: &Option<Type>| t.as_ref().map_or("_".to_string(), |t| ty(resolve, t));
                    format!("result<{}, {}>", part(&r.ok), part(&r.err))
                }
                TypeDefKind::List(t) => format!("list<{}>", ty(resolve, t)),
                TypeDefKind::Map(k, v) => format!("map<{}, {}>", ty(resolve, k), ty(resolve, v)),
                TypeDefKind::FixedLengthList(t, n) => format!("list<{}, {n}>", ty(resolve, t)),
                TypeDefKind::Future(t) => format!(
                    "future<{}>",
                    t.as_ref().map_or("_".into(), |t| ty(resolve, t))
                ),
                TypeDefKind::Stream(t) => format!(
                    "stream<{}>",
                    t.as_ref().map_or("_".into(), |t| ty(resolve, t))
                ),
                TypeDefKind::Resource => format!("resource {}", def.name.as_deref().unwrap_or("?")),
                TypeDefKind::Handle(Handle::Own(r)) => {
                    format!("own<{}>", resolve.types[*r].name.as_deref().unwrap_or("?"))
                }
                TypeDefKind::Handle(Handle::Borrow(r)) => {
                    format!(
                        "borrow<{}>",
                        resolve.types[*r].name.as_deref().unwrap_or("?")
                    )
                }
                TypeDefKind::Unknown => "unknown".into(),
            }
        }
    }
}
