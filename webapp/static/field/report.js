/*
 * The field report page: a form built for a phone, the GPS position on a small map
 * of grid outlines, photos from the camera, and an outbox that sends when it can.
 *
 * Every report goes into the outbox (IndexedDB, see queue.js) first and is sent from
 * there, online or not: one path, so a report made offline and one made online are
 * handled alike. The outbox is sent on page load, when the phone comes back online,
 * when the page becomes visible, and on a timer with exponential backoff. A 401 stops
 * sending and asks the worker to sign in again; the outbox is kept meanwhile. Every
 * report carries its client id, so a resend returns the same case number.
 *
 * All user text is put into the page with textContent, never as HTML.
 */
(function () {
  "use strict";

  var root = document.getElementById("field-report");
  if (!root) { return; }
  var cfg = root.dataset;
  var MAX_PHOTO = Number(cfg.maxPhotoBytes);
  var PHOTO_TYPES = ["image/jpeg", "image/png", "image/webp"];
  var $ = function (id) { return document.getElementById(id); };
  var form = $("report-form");

  // ---------------------------------------------------------------- service worker
  if ("serviceWorker" in navigator) {
    // Registered from /field/, so its scope covers this page (and nothing above it).
    navigator.serviceWorker.register(cfg.swUrl, { scope: cfg.swUrl.replace(/[^/]*$/, "") })
      .catch(function (err) { console.warn("service worker not registered:", err); });
  }

  // ---------------------------------------------------------------- small helpers
  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }

  function showError(message) {
    var box = $("form-error");
    box.textContent = message || "";
    box.hidden = !message;
    if (message) { box.scrollIntoView({ block: "nearest" }); }
  }

  function mb(bytes) { return (bytes / 1048576).toFixed(1).replace(/\.0$/, "") + " MB"; }

  // ---------------------------------------------------------------- map and grids
  L.Icon.Default.imagePath = "/vendor/leaflet/dist/images/";
  // No base map: the only map there is offline is the grid outlines themselves.
  var map = L.map("map", { attributionControl: false, zoomSnap: 0.5 }).setView([35.25, 114.2], 13);
  var gridLayer = L.geoJSON(null, {
    style: function (f) {
      return f.properties.own
        ? { color: "#b3261e", weight: 3, fillColor: "#b3261e", fillOpacity: 0.06 }
        : { color: "#5b6b7b", weight: 1, fillOpacity: 0 };
    },
    onEachFeature: function (f, layer) {
      layer.bindTooltip(el("span", null, f.properties.name), { sticky: true });
    }
  }).addTo(map);
  var grids = [];          // the features loaded, for the offline lookup
  var gridsFetchedAt = null; // the point grids were last fetched around

  function loadGrids(lon, lat) {
    var url = cfg.gridsUrl + (lon === undefined ? "" : "?lon=" + lon.toFixed(6) + "&lat=" + lat.toFixed(6));
    return fetch(url, { credentials: "same-origin" }).then(function (r) {
      if (!r.ok) { throw new Error("HTTP " + r.status); }
      return r.json();
    }).then(function (fc) {
      grids = fc.features || [];
      gridsLoaded = true;
      gridLayer.clearLayers();
      gridLayer.addData(fc);
      frame();
    }).catch(function () { /* offline and never cached: the pin still works */ });
  }

  // Show the worker's own grid with the pin in it, once both are known; the pin alone
  // (zoomed in enough to place it) when there is no own grid to show.
  var framed = false, gridsLoaded = false;
  function frame() {
    if (framed) { return; }
    var own = grids.filter(function (f) { return f.properties.own; });
    var bounds = own.length ? L.geoJSON({ type: "FeatureCollection", features: own }).getBounds() : null;
    if (pin && bounds) {
      framed = true;
      map.fitBounds(bounds.extend(pin.getLatLng()), { padding: [12, 12], maxZoom: 17 });
    } else if (pin) {
      framed = gridsLoaded; // no own grid to show: the pin alone, once
      map.setView(pin.getLatLng(), 15);
    } else if (bounds) {
      map.fitBounds(bounds, { padding: [12, 12] });
    }
  }

  // Ray casting over the loaded outlines: which grid holds the point (offline estimate).
  function inRing(x, y, ring) {
    var inside = false;
    for (var i = 0, j = ring.length - 1; i < ring.length; j = i++) {
      var xi = ring[i][0], yi = ring[i][1], xj = ring[j][0], yj = ring[j][1];
      if ((yi > y) !== (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi) { inside = !inside; }
    }
    return inside;
  }
  function inPolygon(x, y, rings) {
    if (!inRing(x, y, rings[0])) { return false; }
    for (var k = 1; k < rings.length; k++) { if (inRing(x, y, rings[k])) { return false; } }
    return true;
  }
  function localGrid(lon, lat) {
    for (var i = 0; i < grids.length; i++) {
      var g = grids[i].geometry;
      var polys = g.type === "Polygon" ? [g.coordinates] : g.type === "MultiPolygon" ? g.coordinates : [];
      for (var p = 0; p < polys.length; p++) { if (inPolygon(lon, lat, polys[p])) { return grids[i].properties; } }
    }
    return null;
  }

  // ---------------------------------------------------------------- position
  var pin = null, circle = null;
  var position = null; // {lon, lat, accuracy, adjusted}
  var place = null;    // {state: "inside"|"outside"|"unknown", ...}

  function setPosition(lon, lat, accuracy, adjusted) {
    position = { lon: lon, lat: lat, accuracy: adjusted ? null : accuracy, adjusted: adjusted };
    var ll = [lat, lon];
    if (!pin) {
      pin = L.marker(ll, { draggable: true, autoPan: true, title: "拖动调整位置" }).addTo(map);
      pin.on("dragend", function () {
        var p = pin.getLatLng();
        setPosition(p.lng, p.lat, null, true);
      });
      frame();
    } else {
      pin.setLatLng(ll);
    }
    if (circle) { map.removeLayer(circle); circle = null; }
    if (!adjusted && accuracy) {
      circle = L.circle(ll, { radius: accuracy, color: "#0b57d0", weight: 1, fillOpacity: 0.08, interactive: false }).addTo(map);
    }
    if (!adjusted && framed && !map.getBounds().contains(ll)) { map.panTo(ll); }
    $("gps-status").textContent = adjusted
      ? "已手动调整位置（拖动图钉或点地图可再调整）"
      : "GPS 定位精度约 " + Math.round(accuracy) + " 米";
    var far = !gridsFetchedAt || map.distance(gridsFetchedAt, ll) > 400;
    if (far) { gridsFetchedAt = L.latLng(ll); loadGrids(lon, lat); }
    locateSoon();
  }

  map.on("click", function (e) { setPosition(e.latlng.lng, e.latlng.lat, null, true); });

  var watchId = null;
  function startGps() {
    if (!("geolocation" in navigator)) {
      $("gps-status").textContent = "本设备不支持定位，请在地图上点选位置";
      return;
    }
    $("gps-status").textContent = "正在获取定位…";
    if (watchId !== null) { navigator.geolocation.clearWatch(watchId); }
    watchId = navigator.geolocation.watchPosition(function (p) {
      // Once the worker moved the pin, the GPS no longer moves it.
      if (position && position.adjusted) { return; }
      setPosition(p.coords.longitude, p.coords.latitude, p.coords.accuracy, false);
    }, function (err) {
      var why = err.code === 1 ? "未获得定位权限" : err.code === 3 ? "定位超时" : "无法获取定位";
      $("gps-status").textContent = why + "：请在地图上点选或拖动图钉确定位置";
      if (!pin) {
        var c = map.getCenter();
        setPosition(c.lng, c.lat, null, true);
      }
    }, { enableHighAccuracy: true, timeout: 30000, maximumAge: 0 });
  }
  $("relocate").addEventListener("click", function () {
    if (position) { position.adjusted = false; }
    startGps();
  });

  // Which grid, village and township the point is in: the server's answer, or an
  // estimate from the outlines when offline.
  var locateTimer = null, locateSeq = 0;
  function locateSoon() {
    clearTimeout(locateTimer);
    locateTimer = setTimeout(locateNow, 350);
  }
  function locateNow() {
    if (!position) { return; }
    var seq = ++locateSeq, pos = position;
    var url = cfg.locateUrl + "?lon=" + pos.lon.toFixed(7) + "&lat=" + pos.lat.toFixed(7);
    fetch(url, { credentials: "same-origin", cache: "no-store" }).then(function (r) {
      return r.json().then(function (body) { return { status: r.status, body: body }; });
    }).then(function (res) {
      if (seq !== locateSeq) { return; }
      if (res.status === 200) {
        showPlace({ state: "inside", grid: res.body.grid, village: res.body.village, township: res.body.township });
      } else if (res.body && res.body.error && res.body.error.code === "outside_county") {
        showPlace({ state: "outside" });
      } else {
        showPlace(localPlace(pos));
      }
    }).catch(function () {
      setReachable(false);
      if (seq === locateSeq) { showPlace(localPlace(pos)); }
    });
  }
  function localPlace(pos) {
    var g = localGrid(pos.lon, pos.lat);
    return g
      ? { state: "inside", estimate: true, grid: { code: g.code, name: g.name }, village: { name: g.village }, township: { name: g.township } }
      : { state: "unknown" };
  }
  function showPlace(p) {
    place = p;
    var box = $("place");
    box.textContent = "";
    box.className = "field-place";
    if (p.state === "inside") {
      box.appendChild(el("strong", null, p.grid.name));
      box.appendChild(document.createTextNode(" · " + p.village.name + " · " + p.township.name));
      if (p.grid.code && p.grid.code.indexOf(cfg.ownArea) !== 0) {
        box.appendChild(el("span", "field-note", "不在您的辖区，将归入该网格"));
      }
      if (p.estimate) { box.appendChild(el("span", "field-note", "（离线估算，发送时由服务器确认）")); }
    } else if (p.state === "outside") {
      box.className = "field-place field-bad";
      box.textContent = "该位置不在本县任何网格内，无法上报。请检查定位，或在地图上拖动图钉到正确位置。";
    } else {
      box.textContent = "暂时无法确认所在网格（离线），发送时由服务器判定。";
    }
  }

  // ---------------------------------------------------------------- photos
  var photos = []; // {client_photo_id, blob, name, type, size, url}
  var photoProblems = [];

  $("photo-input").addEventListener("change", function (e) {
    photoProblems = [];
    Array.prototype.forEach.call(e.target.files, function (file) {
      // The server checks the content; this only spares the worker a pointless upload.
      if (file.type && PHOTO_TYPES.indexOf(file.type) < 0) {
        photoProblems.push(file.name + "：只能上传 JPEG、PNG 或 WebP 格式的照片");
      } else if (file.size > MAX_PHOTO) {
        photoProblems.push(file.name + "：照片过大（" + mb(file.size) + "），每张不超过 " + mb(MAX_PHOTO));
      } else {
        photos.push({ client_photo_id: FieldQueue.uuid(), blob: file, name: file.name || "photo.jpg",
                      type: file.type, size: file.size, url: URL.createObjectURL(file) });
      }
    });
    e.target.value = ""; // the same file may be chosen again
    renderPhotos();
  });

  function renderPhotos() {
    var list = $("photo-list");
    list.textContent = "";
    photos.forEach(function (p, i) {
      var li = el("li", "field-photo");
      var img = el("img");
      img.src = p.url;
      img.alt = "待上传照片 " + (i + 1);
      li.appendChild(img);
      li.appendChild(el("span", null, p.name + " · " + mb(p.size)));
      var rm = el("button", "secondary", "移除");
      rm.type = "button";
      rm.addEventListener("click", function () {
        URL.revokeObjectURL(p.url);
        photos.splice(photos.indexOf(p), 1);
        renderPhotos();
      });
      li.appendChild(rm);
      list.appendChild(li);
    });
    photoProblems.forEach(function (msg) { list.appendChild(el("li", "field-photo-error", msg)); });
  }

  // ---------------------------------------------------------------- the form
  function readForm() {
    var f = form.elements;
    var people = f.people_count.value.trim();
    var report = {
      category_id: f.category_id.value,
      description: f.description.value.trim(),
      people_count: /^\d+$/.test(people) ? Number(people) : people,
      petitioner_name: f.petitioner_name.value.trim() || null,
      petitioner_phone: f.petitioner_phone.value.trim() || null
    };
    var problems = [];
    if (!report.category_id) { problems.push("请选择类别"); }
    if (!report.description) { problems.push("请填写情况描述"); }
    if (typeof report.people_count !== "number" || report.people_count < 1 || report.people_count > 100000) {
      problems.push("涉及人数应为 1 至 100,000 之间的整数");
    }
    if (report.petitioner_phone && !/^\+?[0-9][0-9\- ]{4,22}[0-9]$/.test(report.petitioner_phone)) {
      problems.push("联系电话格式不正确");
    }
    if (!position) { problems.push("还没有位置：请等待定位，或在地图上点选位置"); }
    else if (place && place.state === "outside") { problems.push("该位置不在本县任何网格内，无法上报"); }
    return { report: report, problems: problems,
             category_name: f.category_id.options[f.category_id.selectedIndex].text };
  }

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var read = readForm();
    if (read.problems.length) { showError(read.problems.join("；")); return; }
    showError("");
    var id = FieldQueue.uuid();
    var r = read.report;
    r.client_id = id;
    r.lon = Math.round(position.lon * 1e7) / 1e7;
    r.lat = Math.round(position.lat * 1e7) / 1e7;
    r.accuracy_m = position.accuracy;
    r.location_adjusted = position.adjusted;
    r.reported_at = new Date().toISOString();
    var item = {
      client_id: id,
      username: cfg.username,
      created_at: r.reported_at,
      state: "waiting",
      category_name: read.category_name,
      place: place && place.state === "inside" ? place.grid.name : null,
      report: r,
      photos: photos.map(function (p) {
        return { client_photo_id: p.client_photo_id, blob: p.blob, name: p.name, type: p.type, size: p.size, state: "waiting" };
      }),
      attempts: 0
    };
    $("submit").disabled = true;
    FieldQueue.put(item).then(function () {
      // Saved on the phone: the form can be cleared for the next report.
      form.elements.description.value = "";
      form.elements.people_count.value = "1";
      form.elements.petitioner_name.value = "";
      form.elements.petitioner_phone.value = "";
      form.elements.category_id.value = "";
      photos.forEach(function (p) { URL.revokeObjectURL(p.url); });
      photos = [];
      photoProblems = [];
      renderPhotos();
      showResult(offline() ? "已保存在本机，恢复网络后自动发送" : "已保存，正在发送…");
      retryCount = 0;
      return render().then(flush);
    }).catch(function (err) {
      showError("无法保存到本机（" + (err && err.name || err) + "），请重试；表单内容未清除");
    }).then(function () { $("submit").disabled = false; });
  });

  function showResult(text, strong) {
    var box = $("result");
    box.textContent = text;
    if (strong) { box.appendChild(el("strong", "field-case-number", strong)); }
    box.hidden = false;
  }

  // ---------------------------------------------------------------- the outbox view
  var STATE_LABEL = { waiting: "等待发送", sending: "正在发送…", sent: "已上报", failed: "未被接受" };
  var me = cfg.username;      // updated from the server before sending
  var loginNeeded = false;

  // Sent reports stay listed for a week (the worker may want the case numbers), then go.
  var KEEP_SENT_MS = 7 * 24 * 3600 * 1000;

  // A phone may be shared: another account's reports (their petitioners' names and
  // phones, photos, descriptions) stay in the outbox until that account sends them, but
  // are neither shown to, edited, sent nor removed by whoever is signed in now.
  function own(item) { return item.username === me; }

  function render() {
    return FieldQueue.all().then(function (all) {
      var old = Date.now() - KEEP_SENT_MS;
      var kept = all.filter(function (i) {
        var stale = i.state === "sent" && !pending(i) && Date.parse(i.created_at) < old;
        if (stale) { FieldQueue.remove(i.client_id); }
        return !stale;
      });
      var items = kept.filter(own);
      var others = kept.filter(function (i) { return !own(i) && pending(i); }).length;
      var list = $("queue");
      list.textContent = "";
      var waiting = 0;
      items.slice().reverse().forEach(function (item) {
        var li = el("li", "field-item field-" + item.state);
        li.dataset.clientId = item.client_id;
        li.dataset.state = item.state;
        var head = el("div", "field-item-head");
        head.appendChild(el("span", "field-badge", STATE_LABEL[item.state] || item.state));
        head.appendChild(el("span", "muted", new Date(item.created_at).toLocaleString("zh-CN", { hour12: false })));
        li.appendChild(head);
        li.appendChild(el("div", "field-item-text", (item.category_name || "") + "：" + item.report.description.slice(0, 60)));
        if (item.number) {
          var n = el("div", "field-item-number", "案件编号 ");
          n.appendChild(el("strong", "field-case-number", item.number));
          if (item.place) { n.appendChild(el("span", "muted", " · " + item.place)); }
          li.appendChild(n);
        }
        if (item.state === "waiting") {
          waiting++;
          var why = loginNeeded ? "需要重新登录后发送"
            : offline() ? "离线，恢复网络后自动发送"
            : nextTryAt ? "发送失败，稍后自动重试" : "";
          if (why) { li.appendChild(el("div", "field-item-why", why)); }
        }
        if (item.error) { li.appendChild(el("div", "field-item-error", item.error)); }
        var ph = item.photos || [];
        if (ph.length) {
          var done = ph.filter(function (p) { return p.state === "sent"; }).length;
          if (item.state === "sent" && pending(item)) { waiting++; }
          li.appendChild(el("div", "muted", "照片 " + done + "/" + ph.length + " 已上传"));
          ph.forEach(function (p) {
            if (p.state === "failed") { li.appendChild(el("div", "field-item-error", p.name + "：" + p.error)); }
          });
        }
        if (item.state === "failed") {
          var edit = el("button", "secondary", "修改后重报");
          edit.type = "button";
          edit.addEventListener("click", function () { editItem(item); });
          li.appendChild(edit);
        }
        if (item.state === "failed" || (item.state === "sent" && !pending(item))) {
          var del = el("button", "secondary", "删除记录");
          del.type = "button";
          del.addEventListener("click", function () { FieldQueue.remove(item.client_id).then(render); });
          li.appendChild(del);
        }
        list.appendChild(li);
      });
      if (others) {
        list.appendChild(el("li", "field-item field-others",
          "本机另有 " + others + " 条其他账号的上报待发送，以该账号登录后可见并自动发送"));
      }
      var refused = items.filter(function (i) { return i.state === "failed"; }).length;
      $("queue-count").textContent = [waiting ? waiting + " 条待发送" : "", refused ? refused + " 条未被接受" : ""]
        .filter(Boolean).join("，") || (items.length ? "全部已发送" : "暂无");
      $("login-needed").hidden = !loginNeeded;
      return items;
    });
  }

  // A report the server refused goes back into the form, photos included.
  function editItem(item) {
    var f = form.elements, r = item.report;
    f.category_id.value = r.category_id;
    f.description.value = r.description;
    f.people_count.value = r.people_count;
    f.petitioner_name.value = r.petitioner_name || "";
    f.petitioner_phone.value = r.petitioner_phone || "";
    (item.photos || []).forEach(function (p) {
      if (p.blob) {
        photos.push({ client_photo_id: FieldQueue.uuid(), blob: p.blob, name: p.name, type: p.type,
                      size: p.size, url: URL.createObjectURL(p.blob) });
      }
    });
    renderPhotos();
    showError(item.error || "");
    FieldQueue.remove(item.client_id).then(render);
    form.scrollIntoView();
  }

  $("clear-sent").addEventListener("click", function () {
    FieldQueue.all().then(function (items) {
      return Promise.all(items.filter(own).filter(function (i) {
        return i.state === "sent" && (i.photos || []).every(function (p) { return p.state !== "waiting"; });
      }).map(function (i) { return FieldQueue.remove(i.client_id); }));
    }).then(render);
  });

  // ---------------------------------------------------------------- sending
  function Stop(kind) { this.kind = kind; } // "login": wait for sign-in; "retry": back off

  function call(url, options) {
    return fetch(url, Object.assign({ credentials: "same-origin", cache: "no-store" }, options))
      .catch(function () { setReachable(false); throw new Stop("retry"); })
      .then(function (r) {
        setReachable(true);
        return r.json().catch(function () { return {}; }).then(function (body) {
          if (r.status === 401) { throw new Stop("login"); }
          // Sent to the sign-in page instead of an answer: the session is gone.
          if (r.redirected && /\/login/.test(r.url)) { throw new Stop("login"); }
          return { status: r.status, body: body };
        });
      });
  }

  // 4xx answers are final for this report (the server said why); others are worth a retry.
  function isFinal(res) {
    var code = res.body && res.body.error && res.body.error.code;
    return res.status >= 400 && res.status < 500 && [408, 425, 429].indexOf(res.status) < 0 && code !== "csrf_failed";
  }
  function reason(res) {
    return (res.body && res.body.error && res.body.error.message) || "服务器拒绝（HTTP " + res.status + "）";
  }

  function sendItem(item, csrf) {
    var headers = { "X-CSRF-Token": csrf };
    var step = Promise.resolve();
    if (!item.number) {
      step = call(cfg.reportUrl, {
        method: "POST",
        headers: Object.assign({ "Content-Type": "application/json" }, headers),
        body: JSON.stringify(item.report)
      }).then(function (res) {
        if (res.status === 200 || res.status === 201) {
          var rep = res.body.report;
          item.state = "sent";
          item.case_id = rep.case_id;
          item.number = rep.number;
          item.place = rep.grid.name + " · " + rep.village.name + " · " + rep.township.name;
          item.error = null;
          showResult("已上报，案件编号：", rep.number);
          return FieldQueue.put(item);
        }
        if (isFinal(res)) {
          item.state = "failed";
          item.error = reason(res);
          return FieldQueue.put(item).then(function () { throw new Stop("skip"); });
        }
        throw new Stop("retry");
      });
    }
    return step.then(function () {
      return (item.photos || []).reduce(function (chain, p) {
        return chain.then(function () { return p.state === "waiting" ? sendPhoto(item, p, headers) : null; });
      }, Promise.resolve());
    }).catch(function (err) { if (!(err instanceof Stop && err.kind === "skip")) { throw err; } });
  }

  function sendPhoto(item, p, headers) {
    var body = new FormData();
    body.append("client_photo_id", p.client_photo_id);
    body.append("photo", p.blob, p.name);
    var url = cfg.photoUrl.replace("/cases/0/", "/cases/" + item.case_id + "/");
    return call(url, { method: "POST", headers: headers, body: body }).then(function (res) {
      if (res.status === 200 || res.status === 201) {
        p.state = "sent";
        p.photo_id = res.body.photo.id;
      } else if (isFinal(res)) {
        // This photo is refused (wrong type, too large, broken); the report stands.
        p.state = "failed";
        p.error = reason(res);
      } else {
        throw new Stop("retry");
      }
      delete p.blob; // sent or refused: the phone need not keep it
      return FieldQueue.put(item);
    });
  }

  var flushing = false, again = false, retryTimer = null, retryCount = 0, nextTryAt = null;

  function pending(item) {
    return item.state === "waiting" ||
      (item.state === "sent" && (item.photos || []).some(function (p) { return p.state === "waiting"; }));
  }

  function flush() {
    if (flushing) { again = true; return Promise.resolve(); }
    flushing = true;
    clearTimeout(retryTimer);
    nextTryAt = null;
    return FieldQueue.all().then(function (items) {
      if (!items.some(pending)) { return null; }
      // A fresh token from the server: a page from the cache may carry an old one.
      return call(cfg.sessionUrl, { method: "GET" }).then(function (res) {
        if (res.status !== 200) { throw new Stop("retry"); }
        me = res.body.user.username;
        loginNeeded = false;
        var mine = items.filter(function (i) { return pending(i) && i.username === me; });
        return mine.reduce(function (chain, item) {
          return chain.then(function () { return sendItem(item, res.body.csrf_token); });
        }, Promise.resolve());
      });
    }).then(function () {
      retryCount = 0;
    }).catch(function (err) {
      if (err instanceof Stop && err.kind === "login") {
        loginNeeded = true; // resumes after sign-in: the sign-in page sends the worker back here
      } else {
        if (!(err instanceof Stop)) { console.error(err); }
        // Exponential backoff with jitter, from 2 s up to 5 min.
        var delay = Math.min(300000, 2000 * Math.pow(2, retryCount++)) * (0.75 + Math.random() / 2);
        nextTryAt = Date.now() + delay;
        retryTimer = setTimeout(flush, delay);
      }
    }).then(function () {
      flushing = false;
      return render();
    }).then(function () {
      if (again) { again = false; return flush(); }
    });
  }

  // ---------------------------------------------------------------- network status
  // navigator.onLine only knows about the phone's own link; a failed request tells
  // us the server cannot be reached (no signal, captive portal, server down).
  var reachable = true;
  function offline() { return !navigator.onLine || !reachable; }
  function setReachable(yes) {
    if (reachable !== yes) { reachable = yes; showNet(); }
  }
  function showNet() {
    var box = $("net-status");
    box.textContent = offline() ? "当前离线：上报将保存在本机，恢复网络后自动发送" : "";
    box.className = offline() ? "field-net field-offline" : "field-net";
  }
  window.addEventListener("online", function () { reachable = true; showNet(); retryCount = 0; flush(); locateSoon(); });
  window.addEventListener("offline", function () { showNet(); render(); });
  document.addEventListener("visibilitychange", function () { if (!document.hidden) { flush(); } });
  $("retry").addEventListener("click", function () { retryCount = 0; flush(); });

  showNet();
  loadGrids();
  startGps();
  render().then(flush);
})();
