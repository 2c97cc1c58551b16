// The App Engine logs page's script (a file, not inline: the console's
// Content-Security-Policy allows script only from /console/static).
// Live tail: new entries arrive over SSE and are appended (the page never reloads).
window.addEventListener("DOMContentLoaded", () => {
  const params = new URLSearchParams(location.search);
  const rows = document.querySelector("#log-entries tbody");
  const last = document.getElementById("log-entries").dataset.last;
  if (last) params.set("after", last);
  const source = new EventSource(`${location.pathname}/events?${params}`);
  const fmt = (t) => t.replace("T", " ").replace(/\.\d+/, "").replace("Z", " UTC");
  source.addEventListener("entries", (ev) => {
    document.getElementById("no-entries")?.remove();
    for (const e of JSON.parse(ev.data)) {
      const tr = document.createElement("tr");
      for (const [text, cls] of [[fmt(e.time), ""], [e.severity, `sev sev-${e.severity}`],
          [`${e.service}/${e.version}`, ""], [e.logName, ""], [e.text, ""]]) {
        const td = document.createElement("td");
        td.textContent = text;
        if (cls) td.className = cls;
        tr.appendChild(td);
      }
      rows.appendChild(tr);
    }
  });
  source.addEventListener("apierror", (ev) => window.cloudlet.toast(JSON.parse(ev.data).message));
  window.addEventListener("pagehide", () => source.close());
});
