// The API reference page: /openapi.json rendered in the browser, by the
// service's own script (no CDN, the console's strict CSP). Every value is
// written as text, never as markup.
"use strict";

// Errors the page hits end up here, so that browser tests can read them.
window.__consoleErrors = [];
window.addEventListener("error", (e) => window.__consoleErrors.push(String(e.message)));
window.addEventListener("unhandledrejection", (e) =>
  window.__consoleErrors.push("unhandled rejection: " + String(e.reason)));
document.addEventListener("securitypolicyviolation", (e) =>
  window.__consoleErrors.push("blocked by the policy: " + e.violatedDirective));

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function append(parent, ...children) {
  for (const child of children) if (child) parent.appendChild(child);
  return parent;
}

// The component a local "$ref" names, and its name.
function resolve(doc, value) {
  const ref = value && value["$ref"];
  if (!ref || !ref.startsWith("#/")) return { name: null, value };
  const parts = ref.slice(2).split("/");
  let target = doc;
  for (const part of parts) target = target ? target[part] : undefined;
  return { name: parts[parts.length - 1], value: target || {} };
}

function anchor(name) {
  return "schema-" + name.replace(/[^A-Za-z0-9_-]/g, "-");
}

function typeOf(schema) {
  if (!schema) return "";
  const type = Array.isArray(schema.type) ? schema.type.join(" | ") : schema.type;
  let text = type || "";
  if (schema.format) text += " (" + schema.format + ")";
  if (schema.enum) text += " one of " + schema.enum.map((v) => JSON.stringify(v)).join(", ");
  return text;
}

// A schema as nested lists: its properties with their types, what is
// required, and links to the named schemas it uses.
function renderSchema(doc, schema, depth) {
  const box = el("div", null, "schema");
  const { name, value } = resolve(doc, schema);
  if (name) {
    const link = el("a", name);
    link.href = "#" + anchor(name);
    append(box, append(el("p"), el("span", "see ", "type"), link));
    return box;
  }
  if (!value) return box;
  if (value.description && depth > 0) append(box, el("p", value.description, "description"));
  for (const key of ["oneOf", "anyOf", "allOf"]) {
    if (Array.isArray(value[key])) {
      append(box, el("p", key === "allOf" ? "all of:" : "one of:", "type"));
      for (const part of value[key]) append(box, renderSchema(doc, part, depth + 1));
    }
  }
  if (value.type === "array" || value.items) {
    append(box, el("p", "array of:", "type"));
    if (value.items) append(box, renderSchema(doc, value.items, depth + 1));
    return box;
  }
  const properties = value.properties || {};
  const names = Object.keys(properties);
  if (names.length === 0) {
    const type = typeOf(value);
    if (type) append(box, el("p", type, "type"));
    return box;
  }
  const required = new Set(value.required || []);
  const list = el("ul");
  for (const property of names) {
    const item = append(el("li"), el("code", property), document.createTextNode(" "));
    const inner = properties[property];
    const resolved = resolve(doc, inner);
    if (resolved.name) {
      const link = el("a", resolved.name);
      link.href = "#" + anchor(resolved.name);
      append(item, link);
    } else {
      append(item, el("span", typeOf(inner), "type"));
    }
    if (required.has(property)) append(item, document.createTextNode(" "), el("span", "required", "required"));
    if (inner.description) append(item, el("div", inner.description, "description"));
    if (!resolved.name && (inner.properties || inner.items || inner.oneOf || inner.allOf || inner.anyOf) && depth < 4) {
      append(item, renderSchema(doc, inner, depth + 1));
    }
    list.appendChild(item);
  }
  return append(box, list);
}

function renderOperation(doc, path, method, operation) {
  const box = el("section", null, "operation");
  box.id = "op-" + (operation.operationId || method + path).replace(/[^A-Za-z0-9_-]/g, "-");
  append(box, append(el("h3"), el("span", method, "method " + method), el("span", path)));
  if (operation.summary) append(box, el("p", operation.summary, "summary"));
  if (operation.description) append(box, el("p", operation.description, "description"));
  if (Array.isArray(operation.security) && operation.security.length) {
    const schemes = operation.security.flatMap((requirement) => Object.keys(requirement));
    append(box, el("p", "Who: " + schemes.join(" or "), "hint"));
  }
  const parameters = (operation.parameters || []).map((p) => resolve(doc, p).value);
  if (parameters.length) {
    const table = el("table");
    append(table, append(el("tr"), el("th", "parameter"), el("th", "in"), el("th", "meaning")));
    for (const parameter of parameters) {
      append(table, append(el("tr"),
        append(el("td"), el("code", parameter.name)),
        el("td", parameter.in + (parameter.required ? ", required" : "")),
        el("td", parameter.description || "")));
    }
    append(box, el("h4", "Parameters"), table);
  }
  if (operation.requestBody) {
    const body = resolve(doc, operation.requestBody).value;
    append(box, el("h4", "Body"));
    for (const [type, content] of Object.entries(body.content || {})) {
      append(box, el("p", type, "type"));
      if (content.schema) append(box, renderSchema(doc, content.schema, 0));
    }
  }
  append(box, el("h4", "Answers"));
  const answers = el("ul");
  for (const [status, response] of Object.entries(operation.responses || {})) {
    const answer = resolve(doc, response).value;
    const item = append(el("li"), el("span", status, "status-code"), document.createTextNode(" " + (answer.description || "")));
    for (const [type, content] of Object.entries(answer.content || {})) {
      append(item, el("div", type, "type"));
      if (content.schema) append(item, renderSchema(doc, content.schema, 1));
    }
    answers.appendChild(item);
  }
  return append(box, answers);
}

function render(doc) {
  const main = document.getElementById("docs");
  main.replaceChildren();
  append(main, el("h2", (doc.info && doc.info.title) + " " + ((doc.info && doc.info.version) || "")));
  if (doc.info && doc.info.description) append(main, el("p", doc.info.description, "description"));

  // Operations by tag, in the document's tag order.
  const byTag = new Map((doc.tags || []).map((tag) => [tag.name, { tag, operations: [] }]));
  for (const [path, item] of Object.entries(doc.paths || {})) {
    for (const [method, operation] of Object.entries(item)) {
      const tag = (operation.tags && operation.tags[0]) || "other";
      if (!byTag.has(tag)) byTag.set(tag, { tag: { name: tag }, operations: [] });
      byTag.get(tag).operations.push([path, method, operation]);
    }
  }
  const contents = el("ul");
  append(main, append(el("nav", null, "contents"), el("h2", "Contents"), contents));
  for (const { tag, operations } of byTag.values()) {
    if (!operations.length) continue;
    const section = el("section");
    section.id = "tag-" + tag.name;
    append(section, el("h2", tag.name));
    if (tag.description) append(section, el("p", tag.description, "description"));
    for (const [path, method, operation] of operations) append(section, renderOperation(doc, path, method, operation));
    const link = el("a", tag.name);
    link.href = "#" + section.id;
    append(contents, append(el("li"), link));
    append(main, section);
  }
  const webhooks = Object.entries(doc.webhooks || {});
  if (webhooks.length) {
    const section = el("section");
    section.id = "webhooks";
    append(section, el("h2", "Events (webhooks and live streams)"));
    for (const [name, item] of webhooks) {
      for (const [method, operation] of Object.entries(item)) append(section, renderOperation(doc, name, method, operation));
    }
    const link = el("a", "Events");
    link.href = "#webhooks";
    append(contents, append(el("li"), link));
    append(main, section);
  }
  const schemas = Object.entries((doc.components && doc.components.schemas) || {});
  if (schemas.length) {
    const section = el("section");
    section.id = "schemas";
    append(section, el("h2", "Schemas"));
    for (const [name, schema] of schemas) {
      const box = el("section", null, "operation");
      box.id = anchor(name);
      append(box, el("h3", name));
      if (schema.description) append(box, el("p", schema.description, "description"));
      append(section, append(box, renderSchema(doc, schema, 1)));
    }
    const link = el("a", "Schemas");
    link.href = "#schemas";
    append(contents, append(el("li"), link));
    append(main, section);
  }
  main.setAttribute("aria-busy", "false");
  if (location.hash) {
    const target = document.getElementById(location.hash.slice(1));
    if (target) target.scrollIntoView();
  }
}

fetch("openapi.json", { headers: { Accept: "application/json" } })
  .then((response) => {
    if (!response.ok) throw new Error("/openapi.json answered " + response.status);
    return response.json();
  })
  .then(render)
  .catch((error) => {
    window.__consoleErrors.push(String(error));
    const status = document.getElementById("docs-status");
    status.textContent = "The API document could not be read: " + error.message;
    status.className = "error";
  });
