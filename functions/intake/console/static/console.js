// Intake's console: live SLA countdowns, and the agent's name carried into each action form. No inline script
// anywhere (the pages' CSP forbids it); htmx (loaded beside this file) refreshes the queue by itself.
(function () {
  "use strict";
  var HOUR = 3600 * 1000;

  function duration(ms) {
    var minutes = Math.floor(Math.abs(ms) / 60000);
    var days = Math.floor(minutes / 1440), hours = Math.floor((minutes % 1440) / 60), mins = minutes % 60;
    var parts = days ? [[days, "d"], [hours, "h"]] : [[hours, "h"], [mins, "min"]];
    var shown = parts.filter(function (p) { return p[0]; }).map(function (p) { return p[0] + " " + p[1]; });
    return shown.join(" ") || "under a minute";
  }

  // The same words and states as the server's `console.countdown`: ok, soon (from data-soon, else an hour
  // before), overdue. The state goes on the countdown and on its table row.
  function tick() {
    var now = Date.now();
    document.querySelectorAll(".countdown[data-due]").forEach(function (el) {
      var due = Date.parse(el.dataset.due);
      if (isNaN(due)) { return; }
      var soon = el.dataset.soon ? Date.parse(el.dataset.soon) : due - HOUR;
      var left = due - now;
      var state = left <= 0 ? "overdue" : now >= soon ? "soon" : "ok";
      el.textContent = left <= 0 ? "overdue " + duration(left) : "in " + duration(left);
      var row = el.closest("tr");
      [el, row].forEach(function (target) {
        if (!target || (target === row && !row.className.match(/\bdue-/))) { return; }
        target.classList.remove("due-ok", "due-soon", "due-overdue", "due-none");
        target.classList.add("due-" + state);
      });
    });
  }

  // "Acting as": remembered in this browser, copied into each action form's `by` as it is sent.
  function agentName() {
    var input = document.getElementById("agent-name");
    if (!input) { return; }
    try { input.value = localStorage.getItem("intake.agent") || ""; } catch (e) { /* storage off */ }
    document.querySelectorAll("form.action").forEach(function (form) {
      form.addEventListener("submit", function () {
        var name = input.value.trim();
        form.querySelectorAll("input.by").forEach(function (by) { by.value = name; });
        try { localStorage.setItem("intake.agent", name); } catch (e) { /* storage off */ }
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    agentName();
    tick();
    setInterval(tick, 1000);
  });
  document.addEventListener("htmx:afterSwap", tick);
})();
