/* labledger web UI: live updates and controls over the JSON API (the pages' JSON twins).
   Pages work without this script; it keeps them current and makes the buttons act in place. */
(function () {
  "use strict";
  var POLL_MS = Number(document.documentElement.dataset.pollMs || window.LABLEDGER_POLL_MS || 2000);
  var HEADERS = { "Accept": "application/json", "X-Labledger-Actor": "web-ui" };

  function $(sel, root) { return (root || document).querySelector(sel); }
  function $all(sel, root) { return Array.prototype.slice.call((root || document).querySelectorAll(sel)); }

  function announce(text) {
    var live = $("#live");
    if (!live) return;
    live.textContent = "";
    window.setTimeout(function () { live.textContent = text; }, 50);
  }

  function getJSON(url) {
    return fetch(url, { headers: HEADERS, cache: "no-store" }).then(function (r) {
      if (!r.ok) throw new Error(url + " answered " + r.status);
      return r.json();
    });
  }

  function fmtTime(iso) {
    if (!iso) return "—";
    return iso.replace("T", " ").replace(/\.\d+/, "").replace(/(\+00:00|Z)$/, "");
  }

  function badge(status) {
    var span = document.createElement("span");
    span.className = "badge status-" + status;
    span.dataset.status = status;
    span.textContent = status.replace(/_/g, " ");
    return span;
  }

  function setBadge(holder, status) {
    var old = holder.querySelector(".badge");
    if (old && old.dataset.status === status) return false;
    var fresh = badge(status);
    fresh.classList.add("changed");
    if (old) old.replaceWith(fresh); else holder.appendChild(fresh);
    return true;
  }

  function every(ms, fn) {
    var busy = false;
    function tick() {
      if (busy || document.hidden) return;
      busy = true;
      Promise.resolve().then(fn).catch(function () { /* the next tick retries */ })
        .then(function () { busy = false; });
    }
    window.setInterval(tick, ms);
  }

  /* ---------------------------------------------------------------- experiments table */
  function experimentsPage() {
    var url = document.body.dataset.poll;
    if (!url) return;
    var newestFirst = !/[?&](sort|page)=/.test(location.search) || /[?&]sort=-created_at/.test(location.search);
    every(POLL_MS, function () {
      return getJSON(url).then(function (list) {
        var unseen = list.filter(function (exp) {
          return !document.querySelector('tr[data-id="' + exp._id + '"]');
        }).length;
        var note = $("#new-note");
        if (note && newestFirst && unseen > 0 && note.hidden) {
          note.hidden = false;
          note.querySelector("a").textContent = "New experiments arrived: show them";
          announce("New experiments arrived");
        }
        list.forEach(function (exp) {
          var row = document.querySelector('tr[data-id="' + exp._id + '"]');
          if (!row) return;
          if (setBadge(row.querySelector(".status-cell"), exp.lifecycle_status)) {
            var name = exp.run_name || (exp.experiment_design && exp.experiment_design.experiment_name) || exp._id;
            announce(name + " is now " + exp.lifecycle_status.replace(/_/g, " "));
          }
          var ended = row.querySelector(".ended-cell");
          var endedText = exp.ended_at ? fmtTime(exp.ended_at).slice(0, 16) : "—";
          if (ended && ended.textContent !== endedText) ended.textContent = endedText;
        });
      });
    });
  }

  /* ---------------------------------------------------------------- one experiment */
  var TARGET = { pause: "paused", cancel: "cancelled", end: "completed" };

  function targetOf(action, exp) {
    if (action === "continue") return exp.started_at ? "in_progress" : "queued";
    return TARGET[action];
  }

  function updateButtons(exp, transitions) {
    $all("button.action").forEach(function (button) {
      var target = targetOf(button.dataset.action, exp);
      var allowed = target !== exp.lifecycle_status &&
        (transitions[exp.lifecycle_status] || []).indexOf(target) >= 0;
      button.disabled = !allowed;
    });
  }

  function showMessage(text, ok) {
    var box = $("#action-message");
    box.hidden = false;
    box.className = "message " + (ok ? "ok" : "error");
    box.textContent = text;
  }

  function experimentPage() {
    var body = document.body;
    var id = body.dataset.experiment;
    var transitions = JSON.parse(body.dataset.transitions || "{}");
    var lastEvent = Number(body.dataset.lastEvent || 0);
    var current = null;

    function refreshTimeline() {
      return fetch("/ui/experiments/" + id + "/timeline.svg", { cache: "no-store" })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (svg) { if (svg) $("#timeline").innerHTML = svg; });
    }

    function refreshMetrics() {
      return fetch("/ui/experiments/" + id + "/metrics.html", { cache: "no-store" })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) { if (html !== null) $("#metrics").innerHTML = html; });
    }

    function apply(exp) {
      var changed = current !== null && current.lifecycle_status !== exp.lifecycle_status;
      // metric charts follow a running experiment (and catch its last points when it ends)
      if (current !== null && (exp.lifecycle_status === "in_progress" || changed)) refreshMetrics();
      if (setBadge($("#status"), exp.lifecycle_status) && current !== null) {
        announce("Status is now " + exp.lifecycle_status.replace(/_/g, " "));
      }
      current = exp;
      $("#started").textContent = fmtTime(exp.started_at);
      $("#ended").textContent = fmtTime(exp.ended_at);
      var worker = $("#worker");
      if (worker) worker.textContent = exp.worker_id || "—";
      if (exp.progress !== null && exp.progress !== undefined) {
        var pct = Math.round(exp.progress * 100);
        $("#progress").innerHTML = '<progress max="1" aria-label="progress"></progress> <span class="pct"></span>';
        $("#progress progress").value = exp.progress;
        $("#progress .pct").textContent = pct + " %";
      }
      updateButtons(exp, transitions);
      if (changed) refreshTimeline();
    }

    function pollEvents() {
      return getJSON(body.dataset.events + "?after=" + lastEvent).then(function (events) {
        var rows = $("#event-rows");
        events.forEach(function (ev) {
          lastEvent = Math.max(lastEvent, ev.event_id);
          var tr = document.createElement("tr");
          var change = ev.to_status ? (ev.from_status || "∅") + " → " + ev.to_status : "";
          var cells = [ev.event_id, fmtTime(ev.at), ev.type.replace(/_/g, " "), change, ev.actor || "—",
                       Object.keys(ev.data || {}).length ? JSON.stringify(ev.data) : ""];
          cells.forEach(function (text) {
            var td = document.createElement("td");
            td.textContent = String(text);
            tr.appendChild(td);
          });
          rows.appendChild(tr);
        });
      });
    }

    function act(action, endStatus) {
      var url = "/experiment/" + id + "/" + action + (endStatus ? "?status=" + endStatus : "");
      return fetch(url, { method: "POST", headers: HEADERS }).then(function (r) {
        return r.json().catch(function () { return {}; }).then(function (data) {
          if (r.ok) {
            apply(data);
            showMessage("Done: the experiment is " + data.lifecycle_status.replace(/_/g, " ") + ".", true);
            return pollEvents();
          }
          var detail = data.detail || ("The server answered " + r.status);
          if (typeof detail !== "string") detail = JSON.stringify(detail);
          showMessage("Refused: " + detail, false);
          return getJSON(body.dataset.poll).then(apply);
        });
      }).catch(function (err) { showMessage("Could not reach the server: " + err.message, false); });
    }

    var dialog = $("#confirm");
    var pending = null;
    $all("button.action").forEach(function (button) {
      button.addEventListener("click", function () {
        var action = button.dataset.action;
        if (!button.dataset.confirm) { act(action); return; }
        pending = action;
        var name = $("h1").textContent;
        $("#confirm-title").textContent = action === "end" ? "End this experiment?" : "Cancel this experiment?";
        $("#confirm-text").textContent = action === "end"
          ? "“" + name + "” will be ended with the status you choose. This cannot be undone."
          : "“" + name + "” will be cancelled. This cannot be undone.";
        $("#end-choice").hidden = action !== "end";
        dialog.returnValue = "";
        dialog.showModal();
        $("#confirm-cancel").focus();
      });
    });
    dialog.addEventListener("close", function () {
      var action = pending;
      pending = null;
      if (dialog.returnValue === "ok" && action) {
        act(action, action === "end" ? $("#end-status").value : null);
      }
    });

    every(POLL_MS, function () {
      return getJSON(body.dataset.poll).then(apply).then(pollEvents);
    });
  }

  /* ---------------------------------------------------------------- campaign */
  var CAMPAIGN_TARGET = { pause: "paused", resume: "active", cancel: "cancelled" };

  function campaignControls() {
    var id = document.body.dataset.campaign;
    var transitions = JSON.parse(document.body.dataset.transitions || "{}");
    function update(status) {
      setBadge($("#status"), status);
      $all("button.action").forEach(function (button) {
        var action = button.dataset.action;
        var target = CAMPAIGN_TARGET[action];
        button.disabled = action === "resume" ? status !== "paused"
          : (transitions[status] || []).indexOf(target) < 0;
      });
    }
    function act(action) {
      return fetch("/campaign/" + id + "/" + action, { method: "POST", headers: HEADERS }).then(function (r) {
        return r.json().catch(function () { return {}; }).then(function (data) {
          if (r.ok) {
            update(data.status);
            showMessage("Done: the campaign is " + data.status + ".", true);
            announce("Campaign is now " + data.status);
            document.dispatchEvent(new Event("labledger:changed"));
            return;
          }
          showMessage("Refused: " + (data.detail || ("the server answered " + r.status)), false);
        });
      }).catch(function (err) { showMessage("Could not reach the server: " + err.message, false); });
    }
    var dialog = $("#confirm");
    $all("button.action").forEach(function (button) {
      button.addEventListener("click", function () {
        if (!button.dataset.confirm) { act(button.dataset.action); return; }
        dialog.returnValue = "";
        dialog.showModal();
        $("#confirm-cancel").focus();
      });
    });
    if (dialog) dialog.addEventListener("close", function () {
      if (dialog.returnValue === "ok") act("cancel");
    });
    return update;
  }

  function campaignPage() {
    var updateControls = campaignControls();
    var form = $("#plot-form");
    function plot() {
      var params = new URLSearchParams(new FormData(form));
      return fetch(form.dataset.svg + "?" + params.toString(), { cache: "no-store" })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (svg) {
          if (!svg) return;
          $("#results-chart").innerHTML = svg;
          history.replaceState(null, "", form.action + "?" + params.toString());
          announce("Chart updated: " + $("#plot-y").value + " against " + $("#plot-x").value);
        });
    }
    if (form) {
      form.addEventListener("submit", function (ev) { ev.preventDefault(); plot(); });
      $all("select", form).forEach(function (s) { s.addEventListener("change", plot); });
    }
    var lastCounts = JSON.stringify(JSON.parse(document.body.dataset.counts || "null"));
    function refresh() {
      return getJSON(document.body.dataset.poll).then(function (data) {
        if (data.status) updateControls(data.status);
        var key = JSON.stringify(data.counts);
        if (key !== lastCounts) {
          var chart = $("#status-chart");
          fetch(chart.dataset.src, { cache: "no-store" }).then(function (r) { return r.text(); })
            .then(function (svg) { chart.innerHTML = svg; });
          $("#finished").textContent = data.finished;
          $("#total").textContent = data.total;
          var bar = $("#campaign-progress progress");
          if (bar && data.progress !== null) bar.value = data.progress;
          announce(data.finished + " of " + data.total + " experiments finished");
        }
        lastCounts = key;
      });
    }
    document.addEventListener("labledger:changed", refresh);
    every(POLL_MS * 2, refresh);
  }

  /* ---------------------------------------------------------------- compare, queue */
  function comparePage() {
    var box = $("#only-diff");
    if (box) box.addEventListener("change", function () {
      document.body.classList.toggle("only-diff", box.checked);
    });
  }

  function queuePage() {
    var main = $("main");
    var last = null;
    every(POLL_MS * 2, function () {
      return getJSON(document.body.dataset.poll).then(function (data) {
        var key = [data.queued, data.running].map(function (list) {
          return list.map(function (e) { return e._id + ":" + e.lifecycle_status + ":" + (e.worker_id || ""); }).join();
        }).join("|");
        var changed = last !== null && key !== last;
        last = key;
        if (!changed || main.contains(document.activeElement)) return;
        return fetch(location.pathname, { cache: "no-store" }).then(function (r) { return r.text(); })
          .then(function (html) {
            var fresh = new DOMParser().parseFromString(html, "text/html").querySelector("main");
            if (fresh) { main.innerHTML = fresh.innerHTML; announce("The queue changed"); }
          });
      });
    });
  }

  var pages = { experiments: experimentsPage, experiment: experimentPage, campaign: campaignPage,
                compare: comparePage, queue: queuePage };
  document.addEventListener("DOMContentLoaded", function () {
    var page = pages[document.body.dataset.page];
    if (page) page();
  });
})();
