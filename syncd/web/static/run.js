// Live progress of a queued or running run: poll its JSON once a second, update every
// field shown (the live box and the details table), and reload the page when the run
// starts, fails an attempt or ends (times, attempts, error, cursors, traceback).
(function () {
  "use strict";
  var live = document.getElementById("live");
  if (!live || live.dataset.finished === "1") { return; }
  var url = live.dataset.progressUrl;
  var status = live.dataset.status;
  var attemptErrors = Number(live.dataset.attemptErrors || 0);
  var failures = 0;

  function number(value) {
    return value === null || value === undefined ? "-" : Number(value).toLocaleString("en-US");
  }

  var PHASES = { starting: "starting", full: "full load", incremental: "incremental pass",
                 reconcile: "reconciling deletes" };

  function words(seconds) {
    if (seconds === null || seconds === undefined) { return "-"; }
    if (seconds === 0) { return "0s"; }
    if (seconds < 0.9995) { return Math.max(1, Math.round(seconds * 1000)) + "ms"; }
    if (seconds < 10) { return seconds.toFixed(1) + "s"; }
    var s = Math.round(seconds), h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
    if (h) { return h + "h " + m + "m"; }
    return m ? m + "m " + (s % 60) + "s" : s + "s";
  }

  var counts = ["rows_read", "rows_total", "rows_inserted", "rows_updated", "rows_deleted"];

  function show(run) {
    var badge = document.getElementById("run-status");
    badge.textContent = run.status;
    badge.className = "badge status-" + run.status;
    document.querySelectorAll("[data-field]").forEach(function (el) {
      var key = el.dataset.field, value = run[key];
      if (key === "status") { return; }
      if (key === "duration_s") { el.textContent = words(value); }
      else if (counts.indexOf(key) >= 0) { el.textContent = number(value); }
      else if (key === "phase") { el.textContent = PHASES[value] || value || ""; }
      else { el.textContent = value === null || value === undefined ? "" : value; }
      if (key === "activity") { el.hidden = !value; }
    });
    document.querySelectorAll(".of-total").forEach(function (el) { el.hidden = !run.rows_total; });
    var bar = document.getElementById("run-progress");
    if (bar && run.rows_total) {
      bar.max = run.rows_total;
      bar.value = Math.min(run.rows_read || 0, run.rows_total);
    }
  }

  function changed(run) {
    return run.finished || run.status !== status ||
      (run.attempt_errors || []).length !== attemptErrors;
  }

  function poll() {
    fetch(url, { headers: { "Accept": "application/json" }, credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.json();
      })
      .then(function (run) {
        failures = 0;
        show(run);
        if (changed(run)) { window.location.reload(); return; }
        window.setTimeout(poll, 1000);
      })
      .catch(function () {
        failures += 1;
        window.setTimeout(poll, Math.min(30000, 1000 * Math.pow(2, failures)));
      });
  }

  window.setTimeout(poll, 1000);
})();
