// Forms built from the server's schema (GET /api/v1/schema): one description of every field —
// its kind, help, choices, default and when it applies — for the profile and event editors.
import { text } from "./dom.js";

// One field: a label with its control (named after the field's key), and its help.
export function fieldElement(field, value) {
  const wrapper = document.createElement("div");
  wrapper.className = "field";
  wrapper.dataset.key = field.key;
  if (field.when) { wrapper.dataset.whenField = field.when[0]; wrapper.dataset.whenValues = field.when[1].join(" "); }
  const label = document.createElement("label");
  let control;
  if (field.kind === "boolean") {
    label.className = "inline";
    control = document.createElement("input");
    control.type = "checkbox";
    control.name = field.key;
    if (field.default != null) control.dataset.default = String(field.default);
    label.append(control, text(" " + field.label));
  } else {
    if (field.kind === "select") {
      control = document.createElement("select");
      for (const [choice, shown] of field.choices || []) {
        const option = new Option(shown.replace(/ \(file\)$/, " (edit in the file)"), choice);
        option.disabled = shown.endsWith(" (file)");
        control.append(option);
      }
    } else if (field.kind === "long_text" || field.kind === "lines") {
      control = document.createElement("textarea");
      control.rows = 2;
    } else {
      control = document.createElement("input");
      if (field.kind === "secret") { control.type = "password"; control.autocomplete = "off"; }
      if (field.kind === "number") control.inputMode = "decimal";
    }
    if (field.kind === "expression" || field.kind === "lines") { control.spellcheck = false; control.classList.add("code"); }
    control.name = field.key;
    if (field.placeholder) control.placeholder = field.placeholder;
    label.append(text(field.label + " "), control);
  }
  wrapper.append(label);
  if (field.help) { const help = document.createElement("p"); help.className = "hint"; help.textContent = field.help; wrapper.append(help); }
  setField(wrapper, field, value);
  return wrapper;
}

export function setField(wrapper, field, value) {
  const control = wrapper.querySelector(`[name="${field.key}"]`);
  control.dataset.original = JSON.stringify(value ?? null);
  if (field.kind === "boolean") control.checked = value === true || (value == null && control.dataset.default === "true");
  else if (field.kind === "lines") control.value = Array.isArray(value) ? value.join("\n") : (value ?? "");
  else control.value = value ?? (field.kind === "select" && field.choices && field.choices.length ? field.choices[0][0] : "");
}

// A field's value as the server takes it; a checkbox left at its default where the file says
// nothing stays unsaid (so saving an unchanged form writes nothing).
export function readField(control, field) {
  if (field.kind === "boolean") {
    const original = JSON.parse(control.dataset.original || "null");
    const fallback = control.dataset.default === "true";
    return original === null && control.checked === fallback ? null : control.checked;
  }
  if (field.kind === "lines") return control.value.split("\n").map((l) => l.trim()).filter(Boolean);
  return control.value;
}

// Fields grouped into fieldsets (in schema order).
export function buildFields(container, fields, values) {
  container.replaceChildren();
  const groups = new Map();
  for (const field of fields) {
    if (!groups.has(field.group)) {
      const set = document.createElement("fieldset");
      set.dataset.group = field.group;
      const legend = document.createElement("legend");
      legend.textContent = field.group;
      set.append(legend);
      groups.set(field.group, set);
      container.append(set);
    }
    groups.get(field.group).append(fieldElement(field, values[field.key]));
  }
  return groups;
}

// Shows the fields that apply: those whose `when` names the value of another field in scope.
export function syncWhen(scope) {
  scope.querySelectorAll("[data-when-field]").forEach((part) => {
    const holder = part.closest(".list-item") || scope;
    const control = holder.querySelector(`[name="${part.dataset.whenField}"]`);
    part.hidden = !control || !part.dataset.whenValues.split(" ").includes(control.value);
  });
}
