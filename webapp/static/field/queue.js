/*
 * The phone's outbox: field reports waiting to be sent, kept in IndexedDB with their
 * photos (as Blobs), so they survive a closed tab, a restart and an expired session.
 *
 * One object store, "reports", keyed by the report's client id (a UUID made here).
 * An item looks like:
 *   { client_id, username, created_at, state, report: {...fields},
 *     photos: [{client_photo_id, name, type, size, blob, state, error, photo_id}],
 *     case_id, number, place, error, attempts, next_try_at }
 * States: "waiting" (not sent yet), "failed" (refused by the server: shown with the
 * reason, kept until the worker removes it), "sent" (case number known; photos may
 * still be on their way, each with its own state).
 */
(function () {
  "use strict";

  var DB_NAME = "gridcase-field";
  var STORE = "reports";
  var dbPromise = null;

  function open() {
    if (!dbPromise) {
      dbPromise = new Promise(function (resolve, reject) {
        var req = indexedDB.open(DB_NAME, 1);
        req.onupgradeneeded = function () {
          var db = req.result;
          if (!db.objectStoreNames.contains(STORE)) {
            db.createObjectStore(STORE, { keyPath: "client_id" });
          }
        };
        req.onsuccess = function () { resolve(req.result); };
        req.onerror = function () { dbPromise = null; reject(req.error); };
      });
    }
    return dbPromise;
  }

  // Run one request in its own transaction; resolve when the transaction commits,
  // so a caller that awaits put() knows the item is on disk.
  function run(mode, fn) {
    return open().then(function (db) {
      return new Promise(function (resolve, reject) {
        var tx = db.transaction(STORE, mode);
        var req = fn(tx.objectStore(STORE));
        tx.oncomplete = function () { resolve(req ? req.result : undefined); };
        tx.onerror = function () { reject(tx.error); };
        tx.onabort = function () { reject(tx.error || new Error("aborted")); };
      });
    });
  }

  function uuid4() {
    if (window.crypto && crypto.randomUUID) { return crypto.randomUUID(); }
    // crypto.randomUUID needs a secure context; getRandomValues does not.
    var b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    var h = Array.prototype.map.call(b, function (x) { return (x + 0x100).toString(16).slice(1); }).join("");
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
  }

  window.FieldQueue = {
    uuid: uuid4,
    put: function (item) { return run("readwrite", function (s) { return s.put(item); }); },
    get: function (id) { return run("readonly", function (s) { return s.get(id); }); },
    remove: function (id) { return run("readwrite", function (s) { return s.delete(id); }); },
    all: function () {
      return run("readonly", function (s) { return s.getAll(); }).then(function (items) {
        return (items || []).sort(function (a, b) { return a.created_at < b.created_at ? -1 : 1; });
      });
    }
  };
})();
