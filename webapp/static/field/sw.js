/*
 * Service worker of the field pages: keeps the report page and everything it needs
 * on the phone, so it opens with no connection.
 *
 * Served from /field/sw.js, so its scope is /field/ (the report page). It answers
 * GET requests for the files below and for the grid outlines network-first: the
 * newest version whenever the server answers, the cached one when it does not.
 * Nothing else is touched: reports and photos are POSTs that the page itself queues
 * (IndexedDB) and retries, and other pages are not cached (they hold personal data).
 */
"use strict";

var CACHE = "gridcase-field-v1";
var BASE = new URL("../", self.location).href; // the app's root, wherever it is mounted
var PAGE = new URL("field/report", BASE).href;
var GRIDS = new URL("api/v1/field/grids", BASE).href;
var ASSETS = [
  PAGE,
  "static/css/app.css",
  "static/field/field.css",
  "static/field/queue.js",
  "static/field/report.js",
  "vendor/leaflet/dist/leaflet.css",
  "vendor/leaflet/dist/leaflet.js",
  "vendor/leaflet/dist/images/marker-icon.png",
  "vendor/leaflet/dist/images/marker-icon-2x.png",
  "vendor/leaflet/dist/images/marker-shadow.png"
].map(function (path) { return new URL(path, BASE).href; });

// Only a real answer is worth keeping: not an error, not the sign-in page we were sent to.
function keepable(response) {
  return response && response.ok && !response.redirected && response.type === "basic";
}

self.addEventListener("install", function (event) {
  event.waitUntil(caches.open(CACHE).then(function (cache) {
    // The worker's own grid outlines too, so the map has them on the first offline day.
    return Promise.all(ASSETS.concat([GRIDS]).map(function (url) {
      return fetch(url, { credentials: "same-origin", cache: "no-cache" }).then(function (r) {
        if (keepable(r)) { return cache.put(url, r); }
      }).catch(function () { /* cached later, on first use */ });
    }));
  }).then(function () { return self.skipWaiting(); }));
});

self.addEventListener("activate", function (event) {
  event.waitUntil(caches.keys().then(function (keys) {
    return Promise.all(keys.filter(function (k) {
      return k.indexOf("gridcase-field-") === 0 && k !== CACHE;
    }).map(function (k) { return caches.delete(k); }));
  }).then(function () { return self.clients.claim(); }));
});

function networkFirst(request, key, ignoreSearch) {
  return fetch(request).then(function (response) {
    if (keepable(response)) {
      var copy = response.clone();
      caches.open(CACHE).then(function (cache) { return cache.put(key, copy); });
    }
    return response;
  }).catch(function (err) {
    return caches.open(CACHE).then(function (cache) {
      return cache.match(key, { ignoreSearch: ignoreSearch });
    }).then(function (hit) {
      if (hit) { return hit; }
      throw err;
    });
  });
}

self.addEventListener("fetch", function (event) {
  var request = event.request;
  if (request.method !== "GET") { return; }
  var url = request.url.split("#")[0];
  var bare = url.split("?")[0];
  if (bare === PAGE && request.mode === "navigate") {
    event.respondWith(networkFirst(request, PAGE, true));
  } else if (ASSETS.indexOf(url) >= 0) {
    event.respondWith(networkFirst(request, url, false));
  } else if (bare === GRIDS) {
    // The last outlines fetched stand in for any position while offline.
    event.respondWith(networkFirst(request, GRIDS, true));
  }
});
