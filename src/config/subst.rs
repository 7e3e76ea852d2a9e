//! (placeholder until the config branch lands)
pub struct Vars {
    pub host: String,
    pub domain: String,
    pub date: String,
    pub time: String,
    pub version: String,
    pub build: String,
}
pub fn expand(template: &str, _vars: &Vars) -> String {
    template.to_string()
}
