// The IAM page's script. Registered in <head>, after console.js (a file, not inline: the
// console's Content-Security-Policy allows script only from /console/static).
// A new key's private half exists only in this answer: save it as a file, once, as the Cloud
// Console does (https://cloud.google.com/iam/docs/keys-create-delete#creating). Registered in
// <head>, after console.js, so that it exists before the Create key button can be clicked.
window.cloudlet.thens["download-key"] = (key) => {
  const json = atob(key.privateKeyData);
  const id = key.name.split("/").pop();
  const project = JSON.parse(json).project_id || "key";
  const link = document.createElement("a");
  link.href = URL.createObjectURL(new Blob([json], { type: "application/json" }));
  link.download = `${project}-${id.slice(0, 12)}.json`;
  document.body.appendChild(link);
  link.click();
  link.remove();
  const notice = document.getElementById("key-notice");
  notice.hidden = false;
  notice.textContent = `Key ${id.slice(0, 12)} saved to ${link.download}. It cannot be downloaded again; keep it safe. Reloading…`;
  setTimeout(() => location.reload(), 1500);
};
