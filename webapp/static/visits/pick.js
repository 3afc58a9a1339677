/* The start-point picker of the new-plan form: click the map to set longitude and latitude. */
(function () {
  "use strict";
  var el = document.getElementById("pick-map");
  if (!el || !window.L) { return; }
  var lon = document.getElementById("start_lon");
  var lat = document.getElementById("start_lat");
  var mode = document.getElementById("start-point-mode");
  var map = window.L.map(el, { zoomControl: true, attributionControl: false });
  var marker = null;

  function place(latlng) {
    if (marker) { marker.setLatLng(latlng); } else {
      marker = window.L.circleMarker(latlng, { radius: 8, color: "#8f1d17", weight: 3, fillOpacity: 0.8 }).addTo(map);
    }
  }

  fetch(el.getAttribute("data-outline"), { headers: { "Accept": "application/json" }, credentials: "same-origin" })
    .then(function (r) { return r.json(); })
    .then(function (gj) {
      var layer = window.L.geoJSON(gj, {
        style: { color: "#7b8794", weight: 1, fillColor: "#ffffff", fillOpacity: 0.4 },
        onEachFeature: function (f, l) {
          var label = document.createElement("span");
          label.textContent = f.properties.name;  // area names are text, never HTML
          l.bindTooltip(label);
        }
      }).addTo(map);
      if (layer.getLayers().length) { map.fitBounds(layer.getBounds()); } else { map.setView([35.3, 114.2], 11); }
    })
    .catch(function () { map.setView([35.3, 114.2], 11); });

  map.on("click", function (e) {
    lon.value = e.latlng.lng.toFixed(6);
    lat.value = e.latlng.lat.toFixed(6);
    mode.checked = true;
    place(e.latlng);
  });
  [lon, lat].forEach(function (input) {
    input.addEventListener("change", function () {
      var x = parseFloat(lon.value), y = parseFloat(lat.value);
      if (isFinite(x) && isFinite(y)) { mode.checked = true; place([y, x]); map.panTo([y, x]); }
    });
  });
})();
