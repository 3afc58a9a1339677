/* Statistics dashboard: sortable ranking table and ECharts charts (no inline scripts, CSP-clean). */
(function () {
  "use strict";

  // -- sortable tables: click a header with data-sort to sort by it, again to reverse --------
  function cellValue(row, index, kind) {
    var cell = row.cells[index];
    var raw = cell ? cell.getAttribute("data-value") : "";
    if (kind === "num") {
      if (raw === null || raw === "") return null;
      var n = parseFloat(raw);
      return isNaN(n) ? null : n;
    }
    return raw || "";
  }

  function sortTable(table, th) {
    var index = Array.prototype.indexOf.call(th.parentNode.children, th);
    var kind = th.getAttribute("data-sort");
    var descending = th.getAttribute("aria-sort") !== "descending";
    if (kind === "text") descending = th.getAttribute("aria-sort") === "ascending";
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = cellValue(a, index, kind), y = cellValue(b, index, kind);
      if (x === null && y === null) return 0;
      if (x === null) return 1; // undefined values last, whatever the direction
      if (y === null) return -1;
      var c = kind === "num" ? x - y : String(x).localeCompare(String(y), "zh-CN");
      return descending ? -c : c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
    Array.prototype.forEach.call(th.parentNode.children, function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", descending ? "descending" : "ascending");
  }

  Array.prototype.forEach.call(document.querySelectorAll("table.ranking"), function (table) {
    Array.prototype.forEach.call(table.querySelectorAll("thead th[data-sort]"), function (th) {
      th.tabIndex = 0;
      th.addEventListener("click", function () { sortTable(table, th); });
      th.addEventListener("keydown", function (e) {
        if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sortTable(table, th); }
      });
    });
  });

  // -- charts -------------------------------------------------------------------------------
  var dataNode = document.getElementById("stats-data");
  if (!dataNode || !window.echarts) return;
  var data = JSON.parse(dataNode.textContent);
  var charts = [];
  function percent(v) { return v === null || v === undefined ? null : Math.round(v * 1000) / 10; }

  var trendNode = document.getElementById("trend-chart");
  if (trendNode) {
    var trend = echarts.init(trendNode);
    trend.setOption({
      tooltip: { trigger: "axis" },
      legend: { top: 0, type: "scroll", data: ["信访事项", "已化解", "化解率", "满意率", "按期办结率"] },
      grid: { left: 50, right: 50, top: 50, bottom: 30 },
      xAxis: { type: "category", data: data.months.map(function (m) { return m.month; }) },
      yAxis: [{ type: "value", name: "件" }, { type: "value", name: "%", min: 0, max: 100 }],
      series: [
        { name: "信访事项", type: "bar", data: data.months.map(function (m) { return m.cases; }) },
        { name: "已化解", type: "bar", data: data.months.map(function (m) { return m.resolved; }) },
        { name: "化解率", type: "line", yAxisIndex: 1, data: data.months.map(function (m) { return percent(m.resolution_rate); }) },
        { name: "满意率", type: "line", yAxisIndex: 1, data: data.months.map(function (m) { return percent(m.satisfaction_rate); }) },
        { name: "按期办结率", type: "line", yAxisIndex: 1, data: data.months.map(function (m) { return percent(m.on_time_rate); }) }
      ]
    });
    charts.push(trend);
  }

  var catNode = document.getElementById("category-chart");
  if (catNode) {
    var cats = data.categories.slice().sort(function (a, b) { return a.cases - b.cases; });
    var cat = echarts.init(catNode);
    cat.setOption({
      tooltip: { trigger: "axis", axisPointer: { type: "shadow" } },
      legend: { top: 0, data: ["本期", "去年同期"] },
      grid: { left: 110, right: 20, top: 30, bottom: 20 },
      xAxis: { type: "value" },
      yAxis: { type: "category", axisLabel: { interval: 0 }, data: cats.map(function (c) { return c.name; }) },
      series: [
        { name: "本期", type: "bar", data: cats.map(function (c) { return c.cases; }) },
        { name: "去年同期", type: "bar", data: cats.map(function (c) { return c.last_year; }) }
      ]
    });
    charts.push(cat);
  }

  var levelsNode = document.getElementById("levels-chart");
  if (levelsNode) {
    var lv = data.levels;
    var levels = echarts.init(levelsNode);
    levels.setOption({
      tooltip: { trigger: "item", formatter: "{b}：{c} 件（{d}%）" },
      series: [{
        type: "pie", radius: ["35%", "65%"],
        data: [
          { name: "村级", value: lv.resolved_village },
          { name: "乡镇级", value: lv.resolved_township },
          { name: "县级", value: lv.resolved_county },
          { name: "县以上", value: lv.resolved_above }
        ]
      }]
    });
    charts.push(levels);
  }
  window.addEventListener("resize", function () { charts.forEach(function (c) { c.resize(); }); });
})();
