//! Resolving the device boxes (`[devices]`) or the list form (`[[device]]`): names, values and strings compiled, box shapes lined up, units, classes and settable devices.

use super::*;

/// One element of a device box: its text and byte offset inside the box.
#[derive(Debug, Clone, PartialEq)]
pub struct BoxElement<'a> {
    pub text: &'a str,
    pub offset: usize,
}

/// Splits a box on `&&&` (roots), then `&&` (features), never inside a text literal.
pub fn split_box(source: &str) -> Vec<Vec<BoxElement<'_>>> {
    let literals = literal_ranges(source);
    let inside = |i: usize| inside_ranges(&literals, i);
    let separators = |from: usize, to: usize, token: &str| -> Vec<usize> {
        let mut found = Vec::new();
        let mut i = from;
        while let Some(p) = source[i..to].find(token) {
            let at = i + p;
            if inside(at) {
                i = at + 1;
                continue;
            }
            // `&&&` must not be read as `&&` followed by `&`.
            if token == "&&" && source[at..].starts_with("&&&") {
                i = at + 3;
                continue;
            }
            found.push(at);
            i = at + token.len();
        }
        found
    };
    let mut groups = Vec::new();
    let mut start = 0;
    let mut root_cuts = separators(0, source.len(), "&&&");
    root_cuts.push(source.len());
    for cut in root_cuts {
        let mut elements = Vec::new();
        let mut element_start = start;
        let mut feature_cuts = separators(start, cut, "&&");
        feature_cuts.push(cut);
        for feature_cut in feature_cuts {
            elements.push(BoxElement {
                text: &source[element_start..feature_cut],
                offset: element_start,
            });
            element_start = (feature_cut + 2).min(cut);
        }
        groups.push(elements);
        start = (cut + 3).min(source.len());
    }
    groups
}

pub(super) fn compile_element(
    c: &mut Collector<'_>,
    key: &str,
    source: &str,
    element: &BoxElement<'_>,
) -> Option<Option<Expression>> {
    let trimmed = element.text.trim_start();
    if trimmed.trim().is_empty() {
        return Some(None);
    }
    let offset = element.offset + (element.text.len() - trimmed.len());
    match Expression::compile(trimmed.trim_end()) {
        Ok(expression) => {
            for warning in expression.warnings() {
                let column = column_at(source, offset + warning.span.start);
                let line = line_of_key(c.text, key);
                c.diagnostics.push(
                    Diagnostic::warning(c.file, key, warning.message.clone())
                        .at_line(line)
                        .at_column(column),
                );
            }
            Some(Some(expression))
        }
        Err(errors) => {
            c.compile_errors(key, source, offset, errors);
            None
        }
    }
}

pub(super) fn compile_required(
    c: &mut Collector<'_>,
    key: &str,
    source: &str,
    element: &BoxElement<'_>,
    what: &str,
) -> Option<Expression> {
    match compile_element(c, key, source, element)? {
        Some(e) => Some(e),
        None => {
            c.error(key, format!("{what} is empty"));
            None
        }
    }
}

pub(super) fn resolve_mapping(raw: &RawProfile, c: &mut Collector<'_>) -> DeviceMapping {
    let devices: &RawDevices = &raw.devices;
    let affect = devices.affect.as_deref().and_then(|source| {
        compile_element(
            c,
            "devices.affect",
            source,
            &BoxElement {
                text: source,
                offset: 0,
            },
        )
        .flatten()
    });
    let uses_boxes = devices.root_names.is_some()
        || devices.feature_names.is_some()
        || devices.values.is_some()
        || devices.strings.is_some();
    if uses_boxes && !raw.device.is_empty() {
        c.error(
            "device",
            "use either the boxes in `[devices]` or `[[device]]` tables, not both",
        );
    }
    let roots = if uses_boxes {
        resolve_boxes(devices, c)
    } else {
        resolve_list(raw, c)
    };
    for (name, unit) in &devices.units {
        if unit.is_empty() || unit.chars().count() > 32 || unit.chars().any(char::is_control) {
            c.error(
                &format!("devices.units.{name}"),
                "a unit is 1 to 32 printable characters, such as °C or kWh",
            );
        }
    }
    for (name, class) in &devices.device_classes {
        if class.is_empty()
            || class.len() > 40
            || !class.chars().all(|ch| ch.is_ascii_lowercase() || ch == '_')
        {
            c.error(
                &format!("devices.device_classes.{name}"),
                "a device class is a Home Assistant class name such as temperature or power",
            );
        }
    }
    let settable = devices
        .settable
        .iter()
        .filter_map(|(name, raw)| {
            resolve_settable(raw, &format!("devices.settable.{name}"), c).map(|s| (name.clone(), s))
        })
        .collect();
    DeviceMapping {
        locked: devices.locked,
        affect,
        roots,
        from_list: !raw.device.is_empty(),
        units: devices.units.clone(),
        device_classes: devices.device_classes.clone(),
        settable,
    }
}

/// Longest `pattern` of a settable text, in bytes.
pub(super) const MAX_SETTABLE_PATTERN_BYTES: usize = 255;

/// One `[devices.settable]` entry, checked against what Home Assistant accepts (so a config is
/// never refused there): a number's `min < max` and `step ≥ 0.001`, a text's `max ≤ 255` and a
/// pattern that compiles.
pub(super) fn resolve_settable(
    raw: &crate::profile::raw::RawSettable,
    key: &str,
    c: &mut Collector<'_>,
) -> Option<crate::profile::Settable> {
    let finite = |c: &mut Collector<'_>, field: &str, value: Option<f64>, default: f64| match value
    {
        Some(v) if !v.is_finite() => {
            c.error(&format!("{key}.{field}"), "must be a finite number");
            None
        }
        Some(v) => Some(v),
        None => Some(default),
    };
    match raw.kind.as_deref().unwrap_or("number") {
        "number" => {
            if raw.pattern.is_some() {
                c.error(
                    &format!("{key}.pattern"),
                    "`pattern` is for `kind = \"text\"`",
                );
            }
            let min = finite(c, "min", raw.min, 0.0)?;
            let max = finite(c, "max", raw.max, 100.0)?;
            let step = finite(c, "step", raw.step, 1.0)?;
            if min >= max {
                c.error(
                    &format!("{key}.max"),
                    format!("`max` ({max}) must be above `min` ({min})"),
                );
                return None;
            }
            if step < 0.001 {
                c.error(&format!("{key}.step"), "`step` is at least 0.001");
                return None;
            }
            let mode = match raw.mode.as_deref().unwrap_or("auto") {
                "auto" => "auto",
                "box" => "box",
                "slider" => "slider",
                other => {
                    c.error(
                        &format!("{key}.mode"),
                        format!("unknown mode `{other}`: auto, box or slider"),
                    );
                    return None;
                }
            };
            Some(crate::profile::Settable::Number {
                min,
                max,
                step,
                mode,
            })
        }
        "text" => {
            if raw.min.is_some() || raw.step.is_some() || raw.mode.is_some() {
                c.error(
                    key,
                    "a settable text takes `max` (characters) and `pattern` only",
                );
                return None;
            }
            let max = match raw.max {
                None => 255,
                Some(max) if max.fract() == 0.0 && (1.0..=255.0).contains(&max) => max as u16,
                Some(_) => {
                    c.error(
                        &format!("{key}.max"),
                        "a text's `max` is a whole number of characters from 1 to 255",
                    );
                    return None;
                }
            };
            if let Some(pattern) = &raw.pattern {
                let compiled = (pattern.len() <= MAX_SETTABLE_PATTERN_BYTES).then(|| {
                    regex::RegexBuilder::new(pattern)
                        .size_limit(1 << 20)
                        .build()
                });
                match compiled {
                    Some(Ok(_)) => {}
                    Some(Err(error)) => {
                        c.error(
                            &format!("{key}.pattern"),
                            format!("not a valid pattern: {error}"),
                        );
                        return None;
                    }
                    None => {
                        c.error(
                            &format!("{key}.pattern"),
                            format!("a pattern is at most {MAX_SETTABLE_PATTERN_BYTES} bytes"),
                        );
                        return None;
                    }
                }
            }
            Some(crate::profile::Settable::Text {
                max,
                pattern: raw.pattern.clone(),
            })
        }
        other => {
            c.error(
                &format!("{key}.kind"),
                format!("unknown kind `{other}`: number or text"),
            );
            None
        }
    }
}

/// The most elements one device box may hold (each is an expression compiled at load): far
/// beyond a real profile, and a bound on what a file of separators can make the loader build.
pub const MAX_BOX_ELEMENTS: usize = 1_000;

/// Whether a split box is within [`MAX_BOX_ELEMENTS`] (said at `key` when not).
fn within_bound(c: &mut Collector<'_>, key: &str, groups: &[Vec<BoxElement<'_>>]) -> bool {
    let elements: usize = groups.iter().map(Vec::len).sum();
    if elements > MAX_BOX_ELEMENTS {
        c.error(
            key,
            format!("the box has {elements} elements, over the limit of {MAX_BOX_ELEMENTS}"),
        );
        return false;
    }
    true
}

pub(super) fn resolve_boxes(devices: &RawDevices, c: &mut Collector<'_>) -> Vec<DeviceRule> {
    let Some(root_source) = devices.root_names.as_deref() else {
        c.error("devices.root_names", "the device boxes need `root_names`");
        return Vec::new();
    };
    let root_groups = split_box(root_source);
    if !within_bound(c, "devices.root_names", &root_groups) {
        return Vec::new();
    }
    let mut roots = Vec::new();
    for group in &root_groups {
        if group.len() > 1 {
            c.error(
                "devices.root_names",
                "`&&` separates features: put feature names in `feature_names`",
            );
            return Vec::new();
        }
        if let Some(name) = compile_required(
            c,
            "devices.root_names",
            root_source,
            &group[0],
            "a root device name",
        ) {
            roots.push(DeviceRule {
                name,
                value: None,
                string: None,
                features: Vec::new(),
            });
        }
    }
    if roots.len() != root_groups.len() {
        return Vec::new();
    }
    let shape_of = |groups: &[Vec<BoxElement<'_>>]| groups.iter().map(Vec::len).collect::<Vec<_>>();
    let feature_groups = devices
        .feature_names
        .as_deref()
        .filter(|s| !s.trim().is_empty())
        .map(split_box);
    if let Some(groups) = &feature_groups {
        if !within_bound(c, "devices.feature_names", groups) {
            return Vec::new();
        }
    }
    let expected_shape = match &feature_groups {
        Some(groups) => shape_of(groups),
        None => vec![1; roots.len()],
    };
    if expected_shape.len() != roots.len() {
        c.error(
            "devices.feature_names",
            format!(
                "feature_names has {} group(s) separated by `&&&` but root_names names {} root(s)",
                expected_shape.len(),
                roots.len()
            ),
        );
        return Vec::new();
    }
    let mut per_box = |key: &str, source: Option<&str>| -> Option<Vec<Vec<Option<Expression>>>> {
        let Some(source) = source.filter(|s| !s.trim().is_empty()) else {
            return Some(expected_shape.iter().map(|n| vec![None; *n]).collect());
        };
        let groups = split_box(source);
        if shape_of(&groups) != expected_shape {
            c.error(
                key,
                format!(
                    "`{}` must line up with {}: {} element(s) per `&&&` group, found {:?}",
                    key.trim_start_matches("devices."),
                    if feature_groups.is_some() {
                        "feature_names"
                    } else {
                        "root_names"
                    },
                    format_shape(&expected_shape),
                    shape_of(&groups)
                ),
            );
            return None;
        }
        let mut compiled = Vec::new();
        let mut ok = true;
        for group in &groups {
            let mut row = Vec::new();
            for element in group {
                match compile_element(c, key, source, element) {
                    Some(e) => row.push(e),
                    None => ok = false,
                }
            }
            compiled.push(row);
        }
        ok.then_some(compiled)
    };
    let values = per_box("devices.values", devices.values.as_deref());
    let strings = per_box("devices.strings", devices.strings.as_deref());
    let (Some(values), Some(strings)) = (values, strings) else {
        return Vec::new();
    };
    match (&feature_groups, devices.feature_names.as_deref()) {
        (Some(groups), Some(source)) => {
            for (position, root) in roots.iter_mut().enumerate() {
                for (element_position, element) in groups[position].iter().enumerate() {
                    if let Some(name) = compile_required(
                        c,
                        "devices.feature_names",
                        source,
                        element,
                        "a feature name",
                    ) {
                        root.features.push(DeviceRule {
                            name,
                            value: values[position][element_position].clone(),
                            string: strings[position][element_position].clone(),
                            features: Vec::new(),
                        });
                    }
                }
            }
        }
        _ => {
            for (position, root) in roots.iter_mut().enumerate() {
                root.value = values[position][0].clone();
                root.string = strings[position][0].clone();
            }
        }
    }
    roots
}

pub(super) fn format_shape(shape: &[usize]) -> String {
    format!("{shape:?}")
}

pub(super) fn resolve_list(raw: &RawProfile, c: &mut Collector<'_>) -> Vec<DeviceRule> {
    let mut roots = Vec::new();
    for (position, device) in raw.device.iter().enumerate() {
        let key = |field: &str| format!("device[{position}].{field}");
        let rule = |c: &mut Collector<'_>,
                    key: &dyn Fn(&str) -> String,
                    name: &str,
                    value: &Option<String>,
                    string: &Option<String>| {
            let compile = |c: &mut Collector<'_>, field: &str, source: &str| {
                compile_element(
                    c,
                    &key(field),
                    source,
                    &BoxElement {
                        text: source,
                        offset: 0,
                    },
                )
            };
            let name = compile(c, "name", name);
            let value = value.as_deref().map(|s| compile(c, "value", s));
            let string = string.as_deref().map(|s| compile(c, "string", s));
            match (name, value, string) {
                (Some(Some(name)), value, string)
                    if value.as_ref().is_none_or(Option::is_some)
                        && string.as_ref().is_none_or(Option::is_some) =>
                {
                    Some(DeviceRule {
                        name,
                        value: value.flatten().flatten(),
                        string: string.flatten().flatten(),
                        features: Vec::new(),
                    })
                }
                (Some(None), ..) => {
                    c.error(&key("name"), "a device name is empty");
                    None
                }
                _ => None,
            }
        };
        let Some(mut root) = rule(c, &key, &device.name, &device.value, &device.string) else {
            continue;
        };
        for (feature_position, feature) in device.feature.iter().enumerate() {
            let feature_key =
                |field: &str| format!("device[{position}].feature[{feature_position}].{field}");
            if let Some(f) = rule(
                c,
                &feature_key,
                &feature.name,
                &feature.value,
                &feature.string,
            ) {
                root.features.push(f);
            }
        }
        roots.push(root);
    }
    roots
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(source: &str) -> Vec<Vec<&str>> {
        split_box(source)
            .into_iter()
            .map(|g| g.into_iter().map(|e| e.text.trim()).collect())
            .collect()
    }

    #[test]
    fn boxes_split_roots_then_features_outside_literals() {
        assert_eq!(texts("a && b &&& c"), vec![vec!["a", "b"], vec!["c"]]);
        assert_eq!(
            texts(r#""x&&&y" &&& "p&&q""#),
            vec![vec![r#""x&&&y""#], vec![r#""p&&q""#]]
        );
        assert_eq!(texts("a"), vec![vec!["a"]]);
        assert_eq!(texts("a &&&  && b"), vec![vec!["a"], vec!["", "b"]]);
    }

    #[test]
    fn element_offsets_point_into_the_box() {
        let groups = split_box("a &&& bc && d");
        assert_eq!(groups[1][0].offset, 5);
        assert_eq!(groups[1][1].offset, 11);
    }
}
