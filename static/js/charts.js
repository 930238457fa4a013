// Draws the charts of templates/_chart.html with the vendored Chart.js (static/vendor/chartjs/).
// The data comes from a json_script block named by the canvas's data-chart; without this file (or without
// JavaScript) the page still shows the same numbers in the table under each chart.
document.addEventListener("DOMContentLoaded", function () {
  if (typeof window.Chart === "undefined") { return; }
  var ink = "#1b1b35";
  window.Chart.defaults.color = ink;
  window.Chart.defaults.font.family = "system-ui, sans-serif";
  window.Chart.defaults.font.size = 14;
  document.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
    var source = document.getElementById(canvas.dataset.chart);
    if (!source) { return; }
    var spec = JSON.parse(source.textContent);
    var horizontal = spec.horizontal === true;
    var datasets = spec.datasets.map(function (set) {
      return {
        label: set.label,
        data: set.data,
        backgroundColor: set.colour,
        borderColor: set.colour,
        borderWidth: spec.type === "line" ? 2 : 0,
        fill: false,
        tension: 0.2,
      };
    });
    var axis = { stacked: spec.stacked === true, ticks: { precision: 0 }, grid: { color: "#dddddd" } };
    var chart = new window.Chart(canvas, {
      type: spec.type,
      data: { labels: spec.labels, datasets: datasets },
      options: {
        indexAxis: horizontal ? "y" : "x",
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        scales: { x: axis, y: Object.assign({}, axis, { beginAtZero: true }) },
        plugins: { legend: { display: datasets.length > 1, position: "bottom" } },
      },
    });
    canvas.dataset.drawn = String(chart.data.datasets.length);
  });
});
