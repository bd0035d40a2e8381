// securecomm's pages work without this file; with it, the map picks places in place and the charts draw.
(function () {
  "use strict";

  // Links on the SVG maps: fetch the fragment they name into their target instead of loading a page.
  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("a[data-get]");
    if (!link || !window.htmx) return;
    event.preventDefault();
    htmx.ajax("GET", link.getAttribute("data-get"), {
      target: link.getAttribute("data-target"),
      swap: link.getAttribute("data-swap") || "outerHTML",
    });
  });

  // After a swap, move the keyboard focus to what the swap asked for (a new map's heading).
  document.addEventListener("htmx:afterSettle", function (event) {
    var focus = event.detail.elt && event.detail.elt.querySelector && event.detail.elt.querySelector("[data-focus], [autofocus]");
    if (focus) focus.focus();
  });

  // The charts: each figure's JSON sits in a script element beside it.
  function draw(root) {
    if (!window.Plotly) return;
    root.querySelectorAll("[data-figure]").forEach(function (element) {
      if (element.getAttribute("data-drawn")) return;
      var figure = JSON.parse(document.getElementById(element.getAttribute("data-figure")).textContent);
      Plotly.newPlot(element, figure.data, figure.layout, { displaylogo: false, displayModeBar: false, responsive: true });
      element.setAttribute("data-drawn", "true");
    });
  }
  document.addEventListener("DOMContentLoaded", function () { draw(document); });
})();
