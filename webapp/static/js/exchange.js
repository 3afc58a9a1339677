// Ledger import page: poll the job's progress and reload the page when it ends.
(function () {
  "use strict";
  var job = document.getElementById("job");
  if (!job) return;
  var running = { uploaded: true, checking: true, importing: true };
  if (!running[job.dataset.state]) return;
  var stage = document.getElementById("job-stage");
  var count = document.getElementById("job-count");
  var bar = document.getElementById("job-progress");
  function poll() {
    fetch(job.dataset.progressUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (p) {
        if (!running[p.state]) { window.location.reload(); return; }
        stage.textContent = p.stage || p.state_label;
        if (p.total) {
          count.textContent = p.done + "/" + p.total;
          bar.max = p.total;
          bar.value = p.done;
        } else {
          bar.removeAttribute("value");
        }
        window.setTimeout(poll, 1000);
      })
      .catch(function () { window.setTimeout(poll, 3000); });
  }
  window.setTimeout(poll, 500);
})();
