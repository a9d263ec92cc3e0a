/* The confidant's pages update themselves (issue 12): every few seconds this asks the desk for
   what is new (/chat/updates or /requests/updates, JSON with HTML fragments rendered and escaped
   by the server) and adds it to the page; new messages are read out by screen readers through a
   polite live region. Polling pauses while the tab is hidden. Without this file the pages work
   the same with their Refresh button. No inline script, no library: CSP script-src 'self'. */
(function () {
  "use strict";
  var EVERY = 4000;
  var root = document.querySelector("[data-live]");
  if (!root || !window.fetch || !window.JSON) { return; }
  var url = root.getAttribute("data-live");
  var kind = root.getAttribute("data-kind");
  var say = document.getElementById("live-say");
  var timer = null;
  var busy = false;
  var stopped = false;

  Array.prototype.forEach.call(document.querySelectorAll(".live-hint"), function (el) {
    el.hidden = false;
  });

  function nodes(html) {
    var template = document.createElement("template");
    template.innerHTML = html;
    return template.content;
  }

  function announce(lines) {
    if (!say || !lines || !lines.length) { return; }
    say.textContent = "";
    window.setTimeout(function () { say.textContent = lines.join("\n"); }, 100);
  }

  function notices(html) {
    var box = document.getElementById("notices");
    if (!html || !box) { return; }
    box.querySelector("ul").appendChild(nodes(html));
    box.hidden = false;
  }

  function messages(html) {
    var list = document.getElementById("thread");
    if (!html || !list) { return; }
    var empty = list.querySelector("li.empty");
    if (empty) { list.removeChild(empty); }
    list.appendChild(nodes(html));
  }

  function offers(html, sig) {
    if (typeof html !== "string" || sig === root.getAttribute("data-sig")) { return; }
    var focused = root.contains(document.activeElement);
    while (root.firstChild) { root.removeChild(root.firstChild); }
    root.appendChild(nodes(html));
    root.setAttribute("data-sig", sig);
    if (focused) {
      var title = document.getElementById("offers-title");
      if (title) { title.focus(); }
    }
  }

  function apply(data) {
    if (data.reload) {
      stopped = true;
      window.location.reload();
      return;
    }
    notices(data.notices);
    if (kind === "chat") {
      messages(data.messages);
      if (typeof data.after === "number") { root.setAttribute("data-after", String(data.after)); }
    } else {
      offers(data.offers, data.sig);
    }
    announce(data.say);
  }

  function address() {
    if (kind !== "chat") { return url; }
    return url + "?chat=" + encodeURIComponent(root.getAttribute("data-chat") || "0") +
      "&after=" + encodeURIComponent(root.getAttribute("data-after") || "0");
  }

  function schedule() {
    if (timer === null && !stopped && !document.hidden) {
      timer = window.setTimeout(poll, EVERY);
    }
  }

  function poll() {
    timer = null;
    if (busy || stopped || document.hidden) { return; }
    busy = true;
    window.fetch(address(), {credentials: "same-origin", cache: "no-store",
                             headers: {"Accept": "application/json"}})
      .then(function (response) {
        var type = response.headers.get("Content-Type") || "";
        if (response.redirected || (response.ok && type.indexOf("application/json") !== 0)) {
          stopped = true;  /* logged out: the Refresh button leads to the login page */
          return null;
        }
        return response.ok ? response.json() : null;  /* a failure: try again at the next turn */
      })
      .then(function (data) { if (data) { apply(data); } })
      .catch(function () { /* a network hiccup: try again at the next turn */ })
      .then(function () { busy = false; schedule(); });
  }

  document.addEventListener("visibilitychange", function () {
    if (document.hidden) {
      if (timer !== null) { window.clearTimeout(timer); timer = null; }
    } else if (timer === null && !busy) {
      poll();
    }
  });
  schedule();
}());
