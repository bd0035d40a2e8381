// The desk's pages: count the hold deadlines down (the page already says the time left when it is sent).
(function () {
  "use strict";
  function span(seconds) {
    var minutes = Math.floor(Math.abs(seconds) / 60);
    var days = Math.floor(minutes / 1440);
    var hours = Math.floor((minutes % 1440) / 60);
    minutes = minutes % 60;
    if (days) { return days + " d " + hours + " h"; }
    if (hours) { return hours + " h " + minutes + " min"; }
    return minutes + " min";
  }
  function tick() {
    var now = Date.now();
    document.querySelectorAll("time[data-deadline]").forEach(function (element) {
      var seconds = (Date.parse(element.getAttribute("data-deadline")) - now) / 1000;
      var text = seconds < 0 ? "overdue by " + span(seconds) : "in " + span(seconds);
      if (element.textContent !== text) { element.textContent = text; }
      element.classList.toggle("overdue-text", seconds < 0);
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    tick();
    window.setInterval(tick, 30000);
    var summary = document.getElementById("error-summary") || document.getElementById("conflict");
    if (summary) { summary.focus(); }
  });
}());
