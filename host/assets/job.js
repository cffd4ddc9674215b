// Follows a job on its page until it ends: polls the job's statusInfo
// (the same URL with f=json, this origin only) and updates the status,
// the progress bar and the message in place; when the job has ended,
// reloads once so the server renders the final page (results and log
// links, usage). Stops after MAX_POLLS polls. Without JavaScript the page
// refreshes itself instead (a <noscript> meta refresh).
(function () {
  "use strict";
  var FINAL = ["successful", "failed", "dismissed"];
  var INTERVAL_MS = 1000;
  var MAX_POLLS = 3600;
  var root = document.getElementById("job");
  if (!root || FINAL.indexOf(root.getAttribute("data-status")) >= 0) {
    return;
  }
  var polls = 0;

  function setText(id, text) {
    var element = document.getElementById(id);
    if (element) {
      element.textContent = text;
    }
  }

  function show(info) {
    var status = String(info.status || "");
    root.setAttribute("data-status", status);
    var badge = document.getElementById("job-status");
    if (badge) {
      badge.textContent = status;
      badge.className = "status status-" + status;
    }
    var percent = typeof info.progress === "number" ? info.progress : 0;
    var bar = document.getElementById("job-progress");
    if (bar) {
      bar.value = percent;
    }
    setText("job-progress-text", percent + " %");
    setText("job-message", info.message || "");
    // RFC 3339 to the second, as the server renders it.
    setText("job-updated", String(info.updated || "").replace(/\.\d+/, "").replace("+00:00", "Z"));
    return FINAL.indexOf(status) >= 0;
  }

  function again(delay) {
    if (polls < MAX_POLLS) {
      window.setTimeout(poll, delay);
    }
  }

  function poll() {
    polls += 1;
    window
      .fetch("?f=json", { headers: { Accept: "application/json" }, cache: "no-store" })
      .then(function (response) {
        if (response.status === 404) {
          // Dismissed (deleted) meanwhile: the page says so after a reload.
          window.location.reload();
          return undefined;
        }
        return response.ok ? response.json() : null;
      })
      .then(function (info) {
        if (info === undefined) {
          return;
        }
        if (info === null) {
          again(INTERVAL_MS * 2);
        } else if (show(info)) {
          window.location.reload();
        } else {
          again(INTERVAL_MS);
        }
      })
      .catch(function () {
        again(INTERVAL_MS * 2);
      });
  }

  again(INTERVAL_MS);
})();
