// The case file: a small map with the grid and the point (no base layer), and printing.
(function () {
  "use strict";
  var el = document.getElementById("case-map");
  var dataEl = document.getElementById("case-map-data");
  if (el && dataEl && window.L) {
    var data = JSON.parse(dataEl.textContent);
    var map = L.map(el, { attributionControl: false, scrollWheelZoom: false });
    // The view first: Leaflet's renderer needs one before paths are added.
    var grid = L.geoJSON(data.grid, { style: { color: "#b3261e", weight: 2, fillColor: "#b3261e", fillOpacity: 0.08 } });
    map.fitBounds(grid.getBounds(), { padding: [12, 12] });
    grid.addTo(map);
    var c = data.point.coordinates;
    L.circleMarker([c[1], c[0]], {
      radius: 7, color: "#fff", weight: 2, fillColor: data.approx ? "#6b7785" : "#0b57d0", fillOpacity: 1
    }).addTo(map);
  }
  var button = document.getElementById("print-button");
  if (button) button.addEventListener("click", function () { window.print(); });
})();
