// cloudlet console: calls the gateway's REST API from the browser and shows its errors.
//
//   <form data-api="POST /api/v1/projects" data-then="go:/console/projects/{projectId}">
//   <button data-api="DELETE /storage/v1/b/B/o/O" data-confirm="Delete O?" data-then="reload">
//
// Form fields become the JSON body ("a.b" names nest). An API error shows Google's message in
// the nearest [data-role=error] region (role=alert), so screen readers announce it too.
"use strict";
(function () {
  class ApiError extends Error {
    constructor(message, code, body) { super(message); this.code = code; this.body = body; }
  }

  // The anti-CSRF token of the signed-in session (a <meta> of every console page). The gateway
  // refuses a cookie-authenticated POST, PUT, PATCH or DELETE without it.
  function csrfToken() {
    const meta = document.querySelector("meta[name=csrf-token]");
    return meta ? meta.content : "";
  }

  function csrfHeaders(method) {
    const token = csrfToken();
    return token && !/^(GET|HEAD|OPTIONS)$/i.test(method) ? { "X-CSRF-Token": token } : {};
  }

  // htmx requests carry it too.
  document.addEventListener("htmx:configRequest", (ev) => {
    Object.assign(ev.detail.headers, csrfHeaders(ev.detail.verb || "POST"));
  });

  async function callApi(method, url, body, headers) {
    const init = { method, headers: Object.assign(csrfHeaders(method), headers || {}) };
    if (body !== undefined && body !== null) {
      init.headers["content-type"] = "application/json";
      init.body = typeof body === "string" ? body : JSON.stringify(body);
    }
    const response = await fetch(url, init);
    const text = await response.text();
    let data = null;
    try { data = text ? JSON.parse(text) : {}; } catch (e) { data = null; }
    if (!response.ok) {
      const message = data && data.error && data.error.message
        ? data.error.message : `${response.status} ${response.statusText}`;
      throw new ApiError(message, response.status, data);
    }
    return data;
  }

  function setPath(target, name, value) {
    const parts = name.split(".");
    let node = target;
    for (const part of parts.slice(0, -1)) node = node[part] = node[part] || {};
    node[parts[parts.length - 1]] = value;
  }

  function formBody(form) {
    const body = form.dataset.body ? JSON.parse(form.dataset.body) : {};
    for (const el of form.elements) {
      if (!el.name || el.disabled || el.type === "submit" || el.type === "file") continue;
      if ((el.type === "checkbox" || el.type === "radio") && !el.checked) continue;
      let value = el.value;
      if (value === "" && !el.hasAttribute("data-keep-empty")) continue;
      if (el.type === "number") value = Number(value);
      if (value === 0 && el.hasAttribute("data-omit-zero")) continue;
      setPath(body, el.name, value);
    }
    return body;
  }

  function errorRegion(el) {
    const scope = el.closest("form, section, dialog, .card") || document;
    return scope.querySelector("[data-role=error]");
  }

  function showError(el, message) {
    const region = errorRegion(el);
    if (region) { region.textContent = message; region.hidden = false; }
    else toast(message);
  }

  function clearError(el) {
    const region = errorRegion(el);
    if (region) { region.textContent = ""; region.hidden = true; }
  }

  function toast(message) {
    const box = document.getElementById("toast");
    if (!box) return;
    box.textContent = message;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => { box.textContent = ""; }, 6000);
  }

  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, (_, key) => encodeURIComponent(values[key] ?? ""));
  }

  const thens = {
    reload: () => location.reload(),
  };

  function then(spec, result, el) {
    // A change Google answers with a long-running Operation (projects.create): its resource.
    if (result && result.done === true && result.response) result = result.response;
    if (!spec || spec === "reload") return location.reload();
    if (spec.startsWith("go:")) return location.assign(fill(spec.slice(3), result || {}));
    if (spec.startsWith("toast:")) { toast(spec.slice(6)); return; }
    if (thens[spec]) return thens[spec](result, el);
  }

  async function run(el, method, url, body) {
    if (el.dataset.confirm && !window.confirm(el.dataset.confirm)) return;
    const busy = el.matches("form") ? el.querySelector("[type=submit]") : el;
    clearError(el);
    if (busy) { busy.disabled = true; busy.setAttribute("aria-busy", "true"); }
    try {
      const result = await callApi(method, url, body);
      then(el.dataset.then, result, el);
    } catch (err) {
      showError(el, err.message);
    } finally {
      if (busy) { busy.disabled = false; busy.removeAttribute("aria-busy"); }
    }
  }

  function splitSpec(spec) {
    const space = spec.indexOf(" ");
    return [spec.slice(0, space), spec.slice(space + 1)];
  }

  document.addEventListener("submit", (ev) => {
    const form = ev.target.closest("form[data-api]");
    if (!form) return;
    ev.preventDefault();
    const body = formBody(form);
    const [method, urlTemplate] = splitSpec(form.dataset.api);
    run(form, method, fill(urlTemplate, body), method === "GET" || method === "DELETE" ? undefined : body);
  });

  document.addEventListener("click", (ev) => {
    const button = ev.target.closest("button[data-api]");
    if (!button) return;
    ev.preventDefault();
    const [method, url] = splitSpec(button.dataset.api);
    run(button, method, url, button.dataset.body ? JSON.parse(button.dataset.body) : undefined);
  });

  // Tabs: buttons with role=tab inside [role=tablist], panels named by aria-controls.
  document.addEventListener("click", (ev) => {
    const tab = ev.target.closest("[role=tab]");
    if (!tab) return;
    const list = tab.closest("[role=tablist]");
    for (const other of list.querySelectorAll("[role=tab]")) {
      const selected = other === tab;
      other.setAttribute("aria-selected", String(selected));
      other.tabIndex = selected ? 0 : -1;
      document.getElementById(other.getAttribute("aria-controls")).hidden = !selected;
    }
    tab.dispatchEvent(new CustomEvent("tabshown", { bubbles: true }));
  });
  document.addEventListener("keydown", (ev) => {
    const tab = ev.target.closest && ev.target.closest("[role=tab]");
    if (!tab || (ev.key !== "ArrowRight" && ev.key !== "ArrowLeft")) return;
    const tabs = [...tab.closest("[role=tablist]").querySelectorAll("[role=tab]")];
    const next = tabs[(tabs.indexOf(tab) + (ev.key === "ArrowRight" ? 1 : tabs.length - 1)) % tabs.length];
    next.focus(); next.click();
  });

  window.cloudlet = { ApiError, callApi, csrfHeaders, toast, showError, clearError, thens, fill };
})();
