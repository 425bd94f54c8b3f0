/* The dashboard's only script: the hits-per-hour chart (uPlot), empty filters left out of the
   query, and the notice preview following the domain form. No request leaves this host. */
(function () {
  "use strict";

  function drawChart() {
    var island = document.getElementById("hits-per-hour");
    var box = document.getElementById("hits-chart");
    if (!island || !box || typeof window.uPlot !== "function") return;
    var data = JSON.parse(island.textContent);
    var uPlot = window.uPlot;
    var width = function () { return Math.max(240, box.clientWidth); };
    var series = { label: "hits", stroke: "#8b0000", fill: "rgba(139, 0, 0, 0.18)", width: 1 };
    if (uPlot.paths && uPlot.paths.bars) series.paths = uPlot.paths.bars({ size: [0.8, 40] });
    var chart = new uPlot({
      width: width(), height: 240,
      tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"); },
      scales: { x: { time: true }, y: { range: function (u, min, max) { return [0, Math.max(1, max)]; } } },
      axes: [{}, { label: "hits per hour (UTC)" }],
      series: [{ label: "hour (UTC)" }, series]
    }, [data.x, data.y], box);
    box.dataset.points = String(data.x.length);
    box.dataset.total = String(data.y.reduce(function (a, b) { return a + b; }, 0));
    window.seizedChart = chart;
    window.addEventListener("resize", function () { chart.setSize({ width: width(), height: 240 }); });
  }

  function leaveOutEmptyFilters() {
    var forms = document.querySelectorAll("form.filters");
    forms.forEach(function (form) {
      form.addEventListener("submit", function () {
        form.querySelectorAll("input, select").forEach(function (field) {
          if (field.value === "") field.disabled = true;
        });
      });
    });
    // Back to this page from the browser's cache: the fields disabled for the query are usable again.
    window.addEventListener("pageshow", function () {
      forms.forEach(function (form) {
        form.querySelectorAll("input, select").forEach(function (field) { field.disabled = false; });
      });
    });
  }

  function followDomainForm() {
    var form = document.getElementById("domain-form");
    var frames = document.querySelectorAll("iframe.preview");
    if (!form || !frames.length) return;
    var timer = null;
    var refresh = function () {
      var params = new URLSearchParams();
      ["agency", "case_ref", "legal_basis", "language", "status", "blocked_by"].forEach(function (name) {
        var field = form.elements[name];
        if (field) params.set(name, field.value);
      });
      frames.forEach(function (frame) { frame.src = frame.dataset.base + "&" + params.toString(); });
    };
    form.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(refresh, 300);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    drawChart();
    leaveOutEmptyFilters();
    followDomainForm();
  });
})();
