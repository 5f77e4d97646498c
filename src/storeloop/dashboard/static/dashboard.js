/* storeloop dashboard: the few behaviours a page needs beyond htmx. The Content-Security-Policy
   forbids inline scripts, so everything lives here: the phone menu, the custom date range, the
   series chart (Chart.js, served from the package) and the live order stream (server-sent
   events) that tells htmx to refresh the overview's cards and latest orders. */
(function () {
  "use strict";

  function onReady(callback) {
    if (document.readyState === "loading") {
      document.addEventListener("DOMContentLoaded", callback);
    } else {
      callback();
    }
  }

  function setUpMenu() {
    var toggle = document.querySelector(".nav-toggle");
    var nav = document.getElementById("main-nav");
    if (!toggle || !nav) return;
    toggle.addEventListener("click", function () {
      var open = toggle.getAttribute("aria-expanded") === "true";
      toggle.setAttribute("aria-expanded", open ? "false" : "true");
      nav.classList.toggle("open", !open);
    });
  }

  // The date inputs only count (and are only sent) when the range is "custom".
  function setUpRangePicker() {
    var select = document.querySelector("[data-range-select]");
    if (!select) return;
    var inputs = document.querySelectorAll("[data-custom-date]");
    function sync() {
      var custom = select.value === "custom";
      inputs.forEach(function (input) {
        input.disabled = !custom;
        input.closest("label").classList.toggle("inactive", !custom);
      });
    }
    select.addEventListener("change", sync);
    sync();
  }

  function setUpCharts() {
    if (!window.Chart) return;
    document.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      var source = document.getElementById(canvas.getAttribute("data-chart"));
      if (!source) return;
      var data = JSON.parse(source.textContent);
      var revenueLabel = "Net revenue" + (data.currency ? " (" + data.currency + ")" : "");
      canvas.chart = new window.Chart(canvas, {
        data: {
          labels: data.labels,
          datasets: [
            { type: "bar", label: revenueLabel, data: data.revenue, yAxisID: "money",
              backgroundColor: "rgba(59, 91, 219, 0.25)", borderColor: "#3b5bdb", borderWidth: 1 },
            { type: "line", label: "Sessions", data: data.sessions, yAxisID: "count",
              borderColor: "#2b8a3e", backgroundColor: "#2b8a3e", tension: 0.25, pointRadius: 0 },
            { type: "line", label: "Orders", data: data.orders, yAxisID: "count",
              borderColor: "#e8590c", backgroundColor: "#e8590c", tension: 0.25, pointRadius: 2 }
          ]
        },
        options: {
          responsive: true,
          maintainAspectRatio: false,
          animation: false,
          interaction: { mode: "index", intersect: false },
          scales: {
            money: { position: "left", beginAtZero: true },
            count: { position: "right", beginAtZero: true, grid: { drawOnChartArea: false } }
          },
          plugins: { legend: { position: "bottom" } }
        }
      });
    });
  }

  // New orders, as the server announces them: refresh now, and once more when the rollups
  // (recomputed a few seconds after an order arrives) have caught up.
  var CATCH_UP_MS = 8000;

  function setUpLive() {
    var status = document.querySelector("[data-live]");
    if (!status || !window.EventSource) {
      if (status) status.textContent = "";
      return;
    }
    var source = new EventSource(status.getAttribute("data-live"));
    var catchUp = null;
    function refresh() {
      document.body.dispatchEvent(new CustomEvent("sl:order"));
    }
    source.addEventListener("ready", function () {
      status.textContent = "Live";
      status.classList.add("on");
    });
    source.addEventListener("order", function (event) {
      var order = JSON.parse(event.data);
      status.textContent = "New order: " + Number(order.total).toFixed(2) + " " + order.currency;
      status.setAttribute("data-last-order", order.id);
      refresh();
      if (catchUp) window.clearTimeout(catchUp);
      catchUp = window.setTimeout(refresh, CATCH_UP_MS);
    });
    source.addEventListener("signed-out", function () {
      source.close();
      status.textContent = "Signed out";
      status.classList.remove("on");
    });
    source.addEventListener("error", function () {
      status.classList.remove("on");
      // CLOSED: the server answered something else than a stream (signed out, say).
      status.textContent = source.readyState === EventSource.CLOSED
        ? "Live updates stopped: reload the page"
        : "Reconnecting…";
    });
    window.addEventListener("pagehide", function () { source.close(); });
  }

  onReady(function () {
    setUpMenu();
    setUpRangePicker();
    setUpCharts();
    setUpLive();
  });
})();
