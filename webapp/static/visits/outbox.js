/*
 * GridCaseOutbox: JSON POSTs kept in IndexedDB and sent, with retries, when the
 * network allows. Each item carries the id its sender made (the body's client_id):
 * the server stores a resend once, so sending an item twice is harmless.
 *
 * Item: { id, url, body, meta, owner, createdAt, attempts, nextAt, state, error }
 *   state "pending" (to send), "auth" (waits for a new sign-in), "failed" (the server
 *   refused it for good; shown to the user, who may drop it).
 *   owner: the account that queued it (options.owner). A phone may be shared: an
 *   item is sent, shown and dropped only while its owner is signed in; another
 *   account's items wait for theirs (mine() / others()).
 *
 * Written to be replaceable by (or merged into) the field reporting queue: the
 * store holds plain request descriptions; nothing here knows about visits.
 * CSP-clean: no eval, no inline code. Works without IndexedDB (memory only).
 */
(function (global) {
  "use strict";

  var RETRY_MIN_MS = 2000;
  var RETRY_MAX_MS = 5 * 60 * 1000;

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  function uuid4() {
    if (global.crypto && typeof global.crypto.randomUUID === "function") {
      return global.crypto.randomUUID();
    }
    var b = new Uint8Array(16);
    global.crypto.getRandomValues(b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    var h = Array.prototype.map.call(b, function (x) { return (x + 0x100).toString(16).slice(1); }).join("");
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
  }

  function MemoryStore() { this.items = {}; }
  MemoryStore.prototype.put = function (item) { this.items[item.id] = item; return Promise.resolve(); };
  MemoryStore.prototype.remove = function (id) { delete this.items[id]; return Promise.resolve(); };
  MemoryStore.prototype.all = function () {
    var items = this.items;
    return Promise.resolve(Object.keys(items).map(function (k) { return items[k]; }));
  };

  function IdbStore(dbName, storeName) {
    this.storeName = storeName;
    this.ready = new Promise(function (resolve, reject) {
      var req = global.indexedDB.open(dbName, 1);
      req.onupgradeneeded = function () {
        var db = req.result;
        if (!db.objectStoreNames.contains(storeName)) {
          db.createObjectStore(storeName, { keyPath: "id" }).createIndex("createdAt", "createdAt");
        }
      };
      req.onsuccess = function () { resolve(req.result); };
      req.onerror = function () { reject(req.error); };
    });
  }
  IdbStore.prototype.tx = function (mode, fn) {
    var name = this.storeName;
    return this.ready.then(function (db) {
      return new Promise(function (resolve, reject) {
        var tx = db.transaction(name, mode);
        var result = fn(tx.objectStore(name));
        tx.oncomplete = function () { resolve(result && result.result !== undefined ? result.result : result); };
        tx.onerror = function () { reject(tx.error); };
        tx.onabort = function () { reject(tx.error); };
      });
    });
  };
  IdbStore.prototype.put = function (item) { return this.tx("readwrite", function (s) { s.put(item); }); };
  IdbStore.prototype.remove = function (id) { return this.tx("readwrite", function (s) { s.delete(id); }); };
  IdbStore.prototype.all = function () {
    return this.tx("readonly", function (s) { return s.index("createdAt").getAll(); });
  };

  function Outbox(options) {
    options = options || {};
    this.owner = options.owner || null;
    this.listeners = [];
    this.sending = false;
    this.timer = null;
    var store = null;
    try {
      if (global.indexedDB) { store = new IdbStore(options.dbName || "gridcase-outbox", options.storeName || "requests"); }
    } catch (e) { store = null; }
    this.store = store || new MemoryStore();
    var self = this;
    if (store) {
      store.ready.catch(function () { self.store = new MemoryStore(); });
    }
  }

  Outbox.prototype.onChange = function (fn) { this.listeners.push(fn); };
  Outbox.prototype.emit = function (event, item, data) {
    var self = this;
    this.listeners.forEach(function (fn) { try { fn(event, item, data, self); } catch (e) { /* a listener's bug must not stop the queue */ } });
  };

  /* Queue a POST of ``body`` (a JSON object with its own client_id) to ``url``. */
  Outbox.prototype.add = function (url, body, meta) {
    var item = {
      id: body.client_id || uuid4(), url: url, body: body, meta: meta || {}, owner: this.owner,
      createdAt: Date.now(), attempts: 0, nextAt: 0, state: "pending", error: null
    };
    var self = this;
    return this.store.put(item).then(function () {
      self.emit("queued", item);
      self.flush();
      return item;
    });
  };

  Outbox.prototype.items = function () { return this.store.all(); };

  /* Whether ``item`` is the signed-in account's (an item queued before owners were
     kept, or by an outbox that knows no owner, is everyone's). */
  Outbox.prototype.owns = function (item) {
    return !item.owner || !this.owner || item.owner === this.owner;
  };
  Outbox.prototype.mine = function () {
    var self = this;
    return this.store.all().then(function (items) { return items.filter(function (it) { return self.owns(it); }); });
  };
  /* How many items of other accounts wait on this phone (their content is not theirs to see). */
  Outbox.prototype.others = function () {
    var self = this;
    return this.store.all().then(function (items) {
      return items.filter(function (it) { return !self.owns(it) && it.state !== "failed"; }).length;
    });
  };

  Outbox.prototype.drop = function (id) {
    var self = this;
    return this.store.all().then(function (items) {
      var item = items.filter(function (it) { return it.id === id; })[0];
      if (!item || !self.owns(item)) { return; }
      return self.store.remove(id).then(function () { self.emit("dropped", { id: id }); });
    });
  };

  Outbox.prototype.schedule = function (ms) {
    var self = this;
    if (this.timer) { clearTimeout(this.timer); }
    this.timer = setTimeout(function () { self.timer = null; self.flush(); }, Math.max(ms, 0));
  };

  /* Send every item that is due, oldest first, one at a time. */
  Outbox.prototype.flush = function (force) {
    if (this.sending) { return Promise.resolve(); }
    this.sending = true;
    var self = this;
    return this.store.all().then(function (items) {
      var now = Date.now();
      var due = items.filter(function (it) {
        return self.owns(it) && (it.state === "pending" || (force && it.state === "auth")) && (force || it.nextAt <= now);
      });
      return due.reduce(function (p, it) {
        return p.then(function (stop) { return stop ? true : self.send(it); });
      }, Promise.resolve(false));
    }).then(function () {
      self.sending = false;
      return self.store.all().then(function (items) {
        var waiting = items.filter(function (it) { return it.state === "pending" && self.owns(it); });
        if (waiting.length) {
          var next = Math.min.apply(null, waiting.map(function (it) { return it.nextAt; }));
          self.schedule(next - Date.now());
        }
        self.emit("idle", null, items.filter(function (it) { return self.owns(it); }));
      });
    }, function (err) {
      self.sending = false;
      self.emit("error", null, err);
    });
  };

  /* Send one item; resolve true to stop this round (offline or signed out). */
  Outbox.prototype.send = function (item) {
    var self = this;
    if (global.navigator && global.navigator.onLine === false) {
      return Promise.resolve(true);
    }
    item.attempts += 1;
    return global.fetch(item.url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json", "X-CSRF-Token": csrfToken() },
      body: JSON.stringify(item.body)
    }).then(function (resp) {
      return resp.json().catch(function () { return {}; }).then(function (data) {
        if (resp.ok) {
          return self.store.remove(item.id).then(function () { self.emit("sent", item, data); return false; });
        }
        var code = data && data.error ? data.error.code : "";
        var message = data && data.error ? data.error.message : ("HTTP " + resp.status);
        if (resp.status === 401 || code === "csrf_failed") {
          item.state = "auth";
          item.error = "登录已过期，请重新登录后自动发送";
          return self.store.put(item).then(function () { self.emit("auth", item, data); return true; });
        }
        if (resp.status >= 500 || resp.status === 429 || resp.status === 408) {
          return self.retryLater(item, message).then(function () { return true; });
        }
        item.state = "failed";
        item.error = message;
        return self.store.put(item).then(function () { self.emit("failed", item, data); return false; });
      });
    }, function () {
      return self.retryLater(item, "网络不可用，稍后自动重试").then(function () { return true; });
    });
  };

  Outbox.prototype.retryLater = function (item, why) {
    var wait = Math.min(RETRY_MAX_MS, RETRY_MIN_MS * Math.pow(2, Math.min(item.attempts, 10)));
    item.nextAt = Date.now() + wait * (0.75 + Math.random() * 0.5);
    item.error = why;
    var self = this;
    return this.store.put(item).then(function () { self.emit("retry", item); });
  };

  /* Flush now, whenever the network comes back and when the page is shown again. */
  Outbox.prototype.start = function () {
    var self = this;
    global.addEventListener("online", function () { self.flush(true); });
    document.addEventListener("visibilitychange", function () {
      if (document.visibilityState === "visible") { self.flush(); }
    });
    return this.flush(true);
  };

  Outbox.uuid4 = uuid4;
  global.GridCaseOutbox = Outbox;
})(window);
