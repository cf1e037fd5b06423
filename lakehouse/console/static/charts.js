// Draws every chart a page embeds: <script type="application/json" data-chart-for="ID">.
(function () {
  function draw() {
    document.querySelectorAll("script[data-chart-for]").forEach(function (block) {
      var target = document.getElementById(block.getAttribute("data-chart-for"));
      if (!target || !window.Plotly) { return; }
      var figure = JSON.parse(block.textContent);
      window.Plotly.newPlot(target, figure.data, figure.layout,
        {responsive: true, displaylogo: false}).then(function () {
        target.setAttribute("data-rendered", "true");
      });
    });
  }
  window.lakehouseDrawCharts = draw;
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
