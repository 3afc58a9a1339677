/* The field page: record visit outcomes through the outbox (works with a bad connection). */
(function () {
  "use strict";
  var root = document.getElementById("field");
  if (!root || !window.GridCaseOutbox) { return; }
  var recordUrl = root.getAttribute("data-record-url");
  var outbox = new window.GridCaseOutbox({
    dbName: "gridcase-outbox", storeName: "requests", owner: root.getAttribute("data-username")
  });
  var statusEl = document.getElementById("queue-status");
  var LABELS = { done: "已走访", nobody_home: "无人在家", refused: "拒绝接访" };

  function urlFor(stopId) { return recordUrl.replace(/\/0\/outcomes$/, "/" + stopId + "/outcomes"); }
  function card(stopId) { return document.getElementById("stop-" + stopId); }

  function setCard(stopId, state, label, extra) {
    var c = card(stopId);
    if (!c) { return; }
    c.className = c.className.replace(/\bvs-state-\S+/g, "").trim() + " vs-state-" + state;
    var el = c.querySelector("[data-state-label]");
    if (el) { el.textContent = label; }
    var summary = c.querySelector("[data-record-label]");
    if (summary && state !== "pending") { summary.textContent = "再次记录"; }
    var err = c.querySelector(".vs-form-error");
    if (extra !== undefined && err) {
      err.textContent = extra;
      err.hidden = !extra;
    }
  }

  function showError(form, message) {
    var el = form.querySelector(".vs-form-error");
    el.textContent = message;
    el.hidden = !message;
  }

  function value(form, name) {
    var el = form.querySelector('[name="' + name + '"]:checked') || form.querySelector('[name="' + name + '"]:not([type=radio])');
    return el ? el.value.trim() : "";
  }

  function collect(form) {
    var body = {
      client_id: window.GridCaseOutbox.uuid4(),
      outcome: value(form, "outcome"),
      note: value(form, "note"),
      visited_at: new Date().toISOString()
    };
    var sat = value(form, "satisfaction");
    if (sat) { body.satisfaction = sat; }
    if (value(form, "lon") && value(form, "lat")) { body.lon = value(form, "lon"); body.lat = value(form, "lat"); }
    var title = value(form, "problem_title");
    if (title) {
      body.problem = {
        title: title,
        category_id: value(form, "problem_category"),
        description: value(form, "problem_description"),
        people_count: value(form, "problem_people") || "1"
      };
    }
    return body;
  }

  function check(form, body) {
    var followUp = form.closest("[data-follow-up]").getAttribute("data-follow-up") === "1";
    if (!body.outcome) { return "请选择走访结果"; }
    if (followUp && body.outcome === "done" && !body.satisfaction) { return "回访已完成，请选择群众满意度"; }
    if (body.satisfaction && !(followUp && body.outcome === "done")) { return "只有完成的回访需要填写满意度"; }
    if (body.problem && !body.problem.category_id) { return "请选择新发现问题的类别"; }
    return "";
  }

  document.querySelectorAll("form.vs-outcome-form").forEach(function (form) {
    var details = form.closest("details");
    function locate() {
      if (!navigator.geolocation) { return; }
      navigator.geolocation.getCurrentPosition(function (pos) {
        form.querySelector('[name="lon"]').value = pos.coords.longitude.toFixed(6);
        form.querySelector('[name="lat"]').value = pos.coords.latitude.toFixed(6);
      }, function () { /* no position: the stop's own point is used */ },
      { enableHighAccuracy: true, timeout: 15000, maximumAge: 120000 });
    }
    if (details) {
      details.addEventListener("toggle", function () { if (details.open) { locate(); } });
      if (details.open) { locate(); }
    }
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var body = collect(form);
      var problem = check(form, body);
      showError(form, problem);
      if (problem) { return; }
      var stopId = form.getAttribute("data-stop");
      outbox.add(urlFor(stopId), body, { stopId: stopId, kind: "visit-outcome" }).then(function () {
        form.reset();
        if (details) { details.open = false; }
      }, function () {
        showError(form, "无法保存到本机，请检查浏览器设置后重试");
      });
      setCard(stopId, "queued", LABELS[body.outcome] + "（待发送）", "");
    });
  });

  function render(items, others) {
    var pending = items.filter(function (it) { return it.state === "pending"; }).length;
    var auth = items.filter(function (it) { return it.state === "auth"; }).length;
    var failed = items.filter(function (it) { return it.state === "failed"; });
    var parts = [];
    if (pending) { parts.push(pending + " 条走访记录待发送，网络恢复后自动发送"); }
    if (auth) { parts.push(auth + " 条记录因登录过期未发送，请重新登录，登录后自动发送"); }
    if (failed.length) { parts.push(failed.length + " 条记录被退回，请查看对应走访点"); }
    if (others) { parts.push("本机另有 " + others + " 条其他账号的走访记录待发送，以该账号登录后自动发送"); }
    statusEl.textContent = parts.join("；");
    statusEl.hidden = parts.length === 0;
    items.forEach(function (it) {
      var id = it.meta && it.meta.stopId;
      if (!id || !card(id)) { return; }
      var label = LABELS[it.body.outcome] || "";
      if (it.state === "failed") {
        setCard(id, "failed", label + "（未保存）", "未保存：" + it.error);
        addDrop(id, it.id);
      } else {
        setCard(id, "queued", label + "（待发送）");
      }
    });
  }

  function addDrop(stopId, itemId) {
    var c = card(stopId);
    if (!c || c.querySelector("[data-drop]")) { return; }
    var b = document.createElement("button");
    b.type = "button";
    b.className = "secondary small";
    b.setAttribute("data-drop", itemId);
    b.textContent = "放弃这条记录";
    b.addEventListener("click", function () {
      outbox.drop(itemId).then(function () { b.remove(); setCard(stopId, "pending", "待走访", ""); });
    });
    c.appendChild(b);
  }

  outbox.onChange(function (event, item, data) {
    if (event === "sent" && item.meta && item.meta.stopId) {
      var text = LABELS[item.body.outcome] || "";
      if (data && data.created === false) { text += "（此前已记录）"; }
      var notes = [];
      if (data && data.new_case_number) { notes.push("新发现问题已登记为案件 " + data.new_case_number); }
      if (data && data.follow_up && !data.follow_up.applied) {
        notes.push("回访未记入案件" + (data.follow_up.message ? "：" + data.follow_up.message : ""));
      }
      setCard(item.meta.stopId, item.body.outcome, text, notes.join("；"));
    }
    if (event === "idle" || event === "queued" || event === "dropped" || event === "failed" || event === "auth") {
      Promise.all([outbox.mine(), outbox.others()]).then(function (r) { render(r[0], r[1]); });
    }
  });
  outbox.start();
})();
