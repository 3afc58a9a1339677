// The desk registration form: pick the place on a map with no base layer (the county's
// townships are drawn), or only a village; show possible repeats as the form is filled.
// All user text is inserted with textContent, never as HTML.
(function () {
  "use strict";
  var form = document.getElementById("register-form");
  if (!form) return;
  var lon = document.getElementById("lon");
  var lat = document.getElementById("lat");
  var village = document.getElementById("village_code");
  var picked = document.getElementById("picked");
  var outline = JSON.parse(document.getElementById("outline-data").textContent);

  var map = L.map("pick-map", { zoomControl: true, attributionControl: false });
  // The view first: Leaflet's renderer needs one before paths are added.
  var layer = L.geoJSON(outline, {
    style: { color: "#8f1d17", weight: 1, fillColor: "#f4e9e8", fillOpacity: 0.5 },
    onEachFeature: function (feature, l) {
      l.bindTooltip(document.createTextNode(feature.properties.name), { sticky: true });
    }
  });
  if (layer.getLayers().length) map.fitBounds(layer.getBounds());
  else map.setView([35.2, 114.2], 10);
  layer.addTo(map);
  var marker = null;

  function setPoint(latlng) {
    lon.value = latlng.lng.toFixed(7);
    lat.value = latlng.lat.toFixed(7);
    village.value = "";
    if (marker) marker.setLatLng(latlng); else marker = L.marker(latlng, { keyboard: false }).addTo(map);
    picked.textContent = "已选点：" + lon.value + ", " + lat.value + "，正在查询所在网格…";
    fetch(form.dataset.locateUrl + "?lon=" + lon.value + "&lat=" + lat.value, { headers: { Accept: "application/json" } })
      .then(function (r) { return r.json().then(function (body) { return { ok: r.ok, body: body }; }); })
      .then(function (res) {
        if (!res.ok) { picked.textContent = (res.body.error && res.body.error.message) || "该位置不在本县"; return; }
        var b = res.body;
        picked.textContent = "已选点：" + b.township.name + " · " + b.village.name + " · " + b.grid.name;
      })
      .catch(function () { picked.textContent = "已选点：" + lon.value + ", " + lat.value; });
    suggest();
  }
  map.on("click", function (e) { setPoint(e.latlng); });
  layer.on("click", function (e) { setPoint(e.latlng); });
  if (lon.value && lat.value) {
    var ll = L.latLng(parseFloat(lat.value), parseFloat(lon.value));
    marker = L.marker(ll).addTo(map);
  }
  village.addEventListener("change", function () {
    if (village.value) {
      lon.value = ""; lat.value = "";
      if (marker) { map.removeLayer(marker); marker = null; }
      picked.textContent = "只知道村（社区）：" + village.options[village.selectedIndex].text + "（位置为估计）";
    }
    suggest();
  });

  // Visit-only batch field, accusation-only accused field, collective hint.
  var channel = document.getElementById("channel");
  var caseClass = document.getElementById("case_class");
  var people = document.getElementById("people_count");
  var hint = document.getElementById("collective-hint");
  function toggles() {
    document.querySelectorAll(".visit-only").forEach(function (el) { el.hidden = channel.value !== "visit"; });
    document.getElementById("accused-row").hidden = caseClass.value !== "accusation";
    var n = parseInt(people.value, 10) || 0, min = parseInt(hint.dataset.min, 10);
    hint.textContent = n >= min ? "集体访（" + n + " 人）" : min + " 人及以上为集体访";
    hint.classList.toggle("collective", n >= min);
  }
  [channel, caseClass, people].forEach(function (el) { el.addEventListener("input", toggles); el.addEventListener("change", toggles); });
  toggles();

  // Possible repeats.
  var box = document.getElementById("candidates");
  var timer = null;
  function suggest() {
    clearTimeout(timer);
    timer = setTimeout(load, 300);
  }
  function load() {
    var params = new URLSearchParams({
      phone: document.getElementById("petitioner_phone").value,
      id_number: document.getElementById("petitioner_id_number").value,
      category_id: document.getElementById("category_id").value,
      lon: lon.value, lat: lat.value, village_code: village.value
    });
    fetch(form.dataset.candidatesUrl + "?" + params.toString(), { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : { candidates: [] }; })
      .then(function (body) { render(body.candidates || []); })
      .catch(function () {});
  }
  function render(list) {
    box.textContent = "";
    if (!list.length) {
      var p = document.createElement("p"); p.className = "muted"; p.textContent = "未发现可能重复的案件。";
      box.appendChild(p); return;
    }
    list.forEach(function (c) {
      var label = document.createElement("label"); label.className = "candidate";
      var radio = document.createElement("input"); radio.type = "radio"; radio.name = "repeat_of_id"; radio.value = String(c.id);
      var a = document.createElement("a"); a.href = c.url; a.target = "_blank"; a.rel = "noopener"; a.textContent = c.number;
      var why = c.same_person ? "同一信访人" : "同类问题，相距约 " + c.distance_m + " 米";
      label.appendChild(radio);
      label.appendChild(document.createTextNode(" 关联为 "));
      label.appendChild(a);
      label.appendChild(document.createTextNode(" 的重复件：" + c.title + "（" + c.status_label + "，" + c.reported_at + "，" + why + "）"));
      box.appendChild(label);
    });
  }
  ["petitioner_phone", "petitioner_id_number"].forEach(function (id) {
    document.getElementById(id).addEventListener("change", suggest);
  });
  document.getElementById("category_id").addEventListener("change", suggest);
})();
