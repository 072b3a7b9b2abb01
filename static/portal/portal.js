/* Channel portal: a little progressive enhancement, no dependencies, no build step.
 *
 * - [data-poll]: while data-poll-active="1", fetch the element's JSON every data-poll-every ms
 *   ({html, poll, connect, state, parts?}), put `html` in the element, and stop once `poll` is false;
 *   when the state changed, also refresh the other `parts` of the page (element id → html), and once
 *   it settled drop the messages about its progress (.message.about-state). With
 *   data-poll-rows (the dashboard), the poll names the rows shown and gets back those that changed.
 *   A poll answered 403, 404 or 410 loads the page again, from data-page-url when given.
 * - #connect[data-qr-url]: show the login QR, fetched again shortly before it expires; hidden as soon
 *   as the status says the channel cannot (or need not) be linked any more.
 * - .progress[data-start][data-end][data-now]: a start-up progress bar that moves by itself.
 * - [data-copy]: copy the value of the input it names.
 * The words the script shows itself come from the page, in its language: the QR panel's
 * data-msg-* attributes and the body's data-copied-label (the templates translate them).
 * - form[data-confirm]: ask before submitting; button[data-once]: no second click while submitting.
 * - the browser's time zone in the portal_tz cookie, which the server shows times in unless the
 *   user's profile names one (portal/timezones.py); a page drawn in UTC before the server knew it,
 *   and showing a time, is drawn again once.
 * Without JavaScript every page still works; it just does not update by itself.
 */
(function () {
  "use strict";

  // ---- start-up progress bar -------------------------------------------------------------------
  function startProgress(root) {
    root.querySelectorAll(".progress[data-start]").forEach(function (bar) {
      var start = Number(bar.dataset.start);
      var end = Number(bar.dataset.end);
      var skew = Date.now() - Number(bar.dataset.now); // our clock minus the server's
      var fill = bar.querySelector(".progress-bar");
      var left = root.querySelector(".js-seconds-left");
      function tick() {
        if (!bar.isConnected) return;
        var now = Date.now() - skew;
        var percent = Math.max(0, Math.min(100, ((now - start) * 100) / Math.max(1, end - start)));
        fill.style.width = percent.toFixed(1) + "%";
        bar.setAttribute("aria-valuenow", String(Math.round(percent)));
        if (left) left.textContent = String(Math.max(0, Math.ceil((end - now) / 1000)));
        if (percent < 100) window.setTimeout(tick, 250);
      }
      tick();
    });
  }

  // ---- polling a status fragment ---------------------------------------------------------------
  // [data-poll-rows] (the dashboard): each poll names the rows shown with their version
  // (<tr data-channel data-v>); the answer's `html` has the rows that changed, each replacing the row
  // with its code, and `gone` the codes of rows to remove (a channel deleted meanwhile).
  function rowsUrl(element) {
    var query = [];
    element.querySelectorAll("tr[data-channel]").forEach(function (row) {
      query.push("c=" + encodeURIComponent(row.dataset.channel + "." + (row.dataset.v || "")));
    });
    return query.length ? element.dataset.poll + "?" + query.join("&") : null;
  }

  function updateRows(element, data) {
    var fresh = document.createElement("template");
    fresh.innerHTML = data.html || "";
    fresh.content.querySelectorAll("tr[data-channel]").forEach(function (row) {
      var shown = element.querySelector('tr[data-channel="' + row.dataset.channel + '"]');
      if (shown) shown.replaceWith(row);
    });
    (data.gone || []).forEach(function (code) {
      var shown = element.querySelector('tr[data-channel="' + code + '"]');
      if (shown) shown.remove();
    });
  }

  // Load the page again from its own address (data-page-url), not by a reload: a page that answered
  // a form (a pairing code) would send the form again.
  function showPageAgain() {
    var marked = document.querySelector("[data-page-url]");
    window.location.replace(marked ? marked.dataset.pageUrl : window.location.href);
  }

  // Messages about the channel's progress ("… is requested", "… was logged out") are out of date once
  // the channel has settled: the status block says where it stands.
  function dropStateMessages() {
    document.querySelectorAll(".messages .message.about-state").forEach(function (message) {
      var list = message.parentNode;
      message.remove();
      if (!list.children.length) list.remove();
    });
  }

  function poller(element) {
    var byRows = element.hasAttribute("data-poll-rows");
    var every = Number(element.dataset.pollEvery) || 2000;
    var started = Date.now();

    function schedule() {
      // A page left open for long (say, waiting for a scan nobody makes) asks less often.
      window.setTimeout(tick, Date.now() - started > 5 * 60 * 1000 ? Math.max(every, 5000) : every);
    }

    function tick() {
      if (document.hidden) {
        schedule(); // nobody is looking: ask again later
        return;
      }
      var url = byRows ? rowsUrl(element) : element.dataset.poll;
      if (!url) return; // no row left to follow
      fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin", cache: "no-store" })
        .then(function (response) {
          var type = response.headers.get("Content-Type") || "";
          if ([403, 404, 410].indexOf(response.status) !== -1 || (response.ok && type.indexOf("json") === -1)) {
            // Signed out, access gone or link over: the page itself says what happened.
            showPageAgain();
            return null;
          }
          if (!response.ok) throw new Error("status " + response.status);
          return response.json();
        })
        .then(function (data) {
          if (!data) return;
          var shown = element.querySelector("[data-state]");
          if (data.parts && shown && shown.dataset.state !== data.state) {
            // The state moved on: other parts of the page that depend on it follow.
            Object.keys(data.parts).forEach(function (id) {
              var part = document.getElementById(id);
              if (part) part.innerHTML = data.parts[id];
            });
            if (!data.poll) dropStateMessages();
          }
          if (byRows) {
            updateRows(element, data);
          } else if (typeof data.html === "string") {
            element.innerHTML = data.html;
            startProgress(element);
          }
          document.dispatchEvent(new CustomEvent("portal:status", { detail: data }));
          if (data.poll) schedule();
        })
        .catch(schedule); // a network hiccup: try again
    }

    if (element.dataset.pollActive === "1") schedule();
  }

  // ---- the QR code -----------------------------------------------------------------------------
  function qrPanel(panel) {
    var url = panel.dataset.qrUrl;
    var image = panel.querySelector("img.qr");
    var message = panel.querySelector(".qr-message");
    var timer = null;
    var running = false;
    var linked = false;
    var objectUrl = null;
    var words = panel.dataset;

    function say(text) {
      message.textContent = text;
      message.hidden = !text;
    }
    function later(seconds) {
      window.clearTimeout(timer);
      timer = window.setTimeout(load, seconds * 1000);
    }
    function clearImage() {
      image.hidden = true;
      image.removeAttribute("src");
      if (objectUrl) URL.revokeObjectURL(objectUrl);
      objectUrl = null;
    }
    function load() {
      if (!running) return;
      fetch(url, { credentials: "same-origin", cache: "no-store" })
        .then(function (response) {
          if (!running) return null;
          if (response.status === 200) {
            var expiresIn = parseInt(response.headers.get("X-QR-Expires-In"), 10) || 20;
            return response.blob().then(function (blob) {
              if (!running) return;
              var previous = objectUrl;
              objectUrl = URL.createObjectURL(blob);
              image.src = objectUrl;
              image.hidden = false;
              say("");
              if (previous) URL.revokeObjectURL(previous);
              later(Math.max(1, expiresIn - 3)); // the next code before this one expires
            });
          }
          if (response.status === 204) {
            // Whapi says a phone is linked; the status poll shows the success in a moment.
            running = false;
            linked = true;
            clearImage();
            say(words.msgLinked);
            return null;
          }
          if (response.status === 410) {
            showPageAgain();
            return null;
          }
          return response.text().then(function (text) {
            clearImage();
            say(text || words.msgUnavailable);
            later(response.status === 503 ? 2 : 5);
          });
        })
        .catch(function () {
          say(words.msgOffline);
          later(5);
        });
    }
    function start() {
      if (running || linked) return;
      running = true;
      panel.hidden = false;
      if (!image.getAttribute("src")) say(words.msgLoading);
      load();
    }
    function stop() {
      running = false;
      linked = false;
      window.clearTimeout(timer);
      panel.hidden = true;
      clearImage();
    }

    if (!panel.hidden) start();
    document.addEventListener("portal:status", function (event) {
      if (event.detail.connect) start();
      else stop();
    });
  }

  // ---- the browser's time zone ----------------------------------------------------------------
  function rememberTimeZone() {
    var zone = "";
    try {
      zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
    } catch (error) {
      return;
    }
    if (!/^[A-Za-z0-9_+\/-]+$/.test(zone)) return;
    var cookie = "portal_tz=" + zone;
    if (document.cookie.split("; ").indexOf(cookie) >= 0) return;
    document.cookie = cookie + "; path=/; max-age=31536000; samesite=lax" + (location.protocol === "https:" ? "; secure" : "");
    var body = document.body;
    var stale = body.dataset.timeZoneSource === "default" && body.dataset.timeZone !== zone;
    if (stale && document.querySelector("time[datetime]") && document.cookie.split("; ").indexOf(cookie) >= 0) {
      try {
        if (window.sessionStorage.getItem("portal_tz_redrawn")) return;
        window.sessionStorage.setItem("portal_tz_redrawn", "1");
      } catch (error) {
        return;
      }
      window.location.reload();
    }
  }

  // ---- copy buttons, confirmations, single submit ----------------------------------------------
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) return;
    var input = document.querySelector(button.dataset.copy);
    if (!input) return;
    if (!button.dataset.label) button.dataset.label = button.textContent;
    function done() {
      button.textContent = document.body.dataset.copiedLabel || "Copied";
      window.setTimeout(function () {
        button.textContent = button.dataset.label;
      }, 1500);
    }
    function fallback() {
      input.select();
      try {
        if (document.execCommand("copy")) done();
      } catch (error) {
        /* the text stays selected for a manual copy */
      }
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(input.value).then(done, fallback);
    } else {
      fallback();
    }
  });

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
      return;
    }
    form.querySelectorAll("button[data-once]").forEach(function (button) {
      window.setTimeout(function () {
        button.disabled = true;
      }, 0);
    });
  });

  document.addEventListener("DOMContentLoaded", function () {
    rememberTimeZone();
    startProgress(document);
    document.querySelectorAll("[data-poll]").forEach(poller);
    document.querySelectorAll("#connect[data-qr-url]").forEach(qrPanel);
  });
})();
