/* Plan pages: confirmations, print buttons, select-all of the people table. */
(function () {
  "use strict";
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (e) {
      if (!window.confirm(form.getAttribute("data-confirm"))) { e.preventDefault(); }
    });
  });
  document.querySelectorAll("button[data-confirm]").forEach(function (button) {
    button.addEventListener("click", function (e) {
      if (!window.confirm(button.getAttribute("data-confirm"))) { e.preventDefault(); }
    });
  });
  document.querySelectorAll("[data-print]").forEach(function (b) {
    b.addEventListener("click", function () { window.print(); });
  });
  var all = document.getElementById("all-people");
  if (all) {
    all.addEventListener("change", function () {
      document.querySelectorAll(".person-check").forEach(function (c) { c.checked = all.checked; });
    });
  }
})();
