// Upload from the browser straight to the GCS JSON API (uploadType=media), with progress.
// https://cloud.google.com/storage/docs/uploading-objects#uploading-an-object
"use strict";
// Loaded in <head>, before the form exists: the listener is on document, so a click that comes
// before the page has finished loading still uploads instead of submitting the form natively.
(function () {
  function uploadOne(form, bar, file, name, done, total) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      const url = `/upload/storage/v1/b/${encodeURIComponent(form.dataset.bucket)}/o` +
        `?uploadType=media&name=${encodeURIComponent(name)}`;
      xhr.open("POST", url);
      xhr.setRequestHeader("content-type", file.type || "application/octet-stream");
      for (const [name, value] of Object.entries(window.cloudlet.csrfHeaders("POST"))) {
        xhr.setRequestHeader(name, value);
      }
      xhr.upload.onprogress = (ev) => {
        if (ev.lengthComputable && total > 0) bar.value = Math.round(100 * (done + ev.loaded) / total);
      };
      xhr.onload = () => {
        if (xhr.status < 400) return resolve(JSON.parse(xhr.responseText || "{}"));
        let message = `${xhr.status} ${xhr.statusText}`;
        try { message = JSON.parse(xhr.responseText).error.message; } catch (e) { /* keep */ }
        reject(new Error(message));
      };
      xhr.onerror = () => reject(new Error("The upload failed: the gateway did not answer."));
      xhr.send(file);
    });
  }

  document.addEventListener("submit", async (ev) => {
    const form = ev.target.closest("form#upload");
    if (!form) return;
    ev.preventDefault();
    const bar = document.getElementById("upload-progress");
    const status = document.getElementById("upload-status");
    const files = [...form.querySelector("input[type=file]").files];
    if (!files.length) return;
    const total = files.reduce((sum, f) => sum + f.size, 0);
    const button = form.querySelector("[type=submit]");
    button.disabled = true;
    window.cloudlet.clearError(form);
    let done = 0;
    try {
      for (const file of files) {
        status.textContent = `Uploading ${file.name}…`;
        await uploadOne(form, bar, file, form.dataset.prefix + file.name, done, total);
        done += file.size;
      }
      bar.value = 100;
      status.textContent = `Uploaded ${files.length} file${files.length > 1 ? "s" : ""}.`;
      location.reload();
    } catch (err) {
      status.textContent = "";
      window.cloudlet.showError(form, err.message);
    } finally {
      button.disabled = false;
    }
  });
})();
