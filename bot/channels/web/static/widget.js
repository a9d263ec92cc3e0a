/* Klachtwijzer web chat: the full page (/chat) and the widget (one script tag), no framework.
   Every text from the server is put in the page as text (textContent), never as HTML.
   localStorage keeps the conversation token, the last message seen and unsent text messages. */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script) { return; }
  var base = new URL(script.src, location.href).origin;
  var data = script.dataset;
  var mode = data.mode === "page" ? "page" : "widget";
  var org = /^[a-z0-9][a-z0-9-]{0,63}$/.test(data.organisation || "") ? data.organisation : null;
  var colour = /^#[0-9a-fA-F]{3,8}$/.test(data.colour || "") ? data.colour : null;
  var LANGS = ["nl", "uk", "ar", "en"];
  var KEY = "klachtwijzer:" + base + ":" + (org || "");
  var MENU = ["help", "dossier", "withdraw", "erase", "restart", "language"];

  function pick(code) {
    var c = String(code || "").split("-")[0].toLowerCase();
    return LANGS.indexOf(c) >= 0 ? c : null;
  }
  var lang = pick(data.language) || pick((navigator.languages || [])[0]) || pick(navigator.language) || "nl";

  function load() {
    try { return JSON.parse(localStorage.getItem(KEY) || "{}") || {}; } catch (e) { return {}; }
  }
  var st = load();
  st.pending = Array.isArray(st.pending) ? st.pending : [];
  st.last = typeof st.last === "number" ? st.last : 0;
  function save() {
    var keep = { token: st.token, last: st.last, started: st.started,
                 pending: st.pending.filter(function (f) { return f.t !== "file"; }) };
    try { localStorage.setItem(KEY, JSON.stringify(keep)); } catch (e) { /* private mode */ }
  }
  // What this tab has shown, for a reload: sessionStorage (gone when the tab closes).
  var TKEY = KEY + ":log", replaying = false, transcript = [];
  try { transcript = JSON.parse(sessionStorage.getItem(TKEY) || "[]") || []; } catch (e) { transcript = []; }
  function remember(entry) {
    if (replaying) { return; }
    transcript.push(entry);
    if (transcript.length > 300) { transcript = transcript.slice(-300); }
    try { sessionStorage.setItem(TKEY, JSON.stringify(transcript)); } catch (e) { /* full: only the page */ }
  }
  function replay() {
    replaying = true;
    var lastButtons = -1;
    transcript.forEach(function (e, i) { if (e.buttons && e.buttons.length) { lastButtons = i; } });
    transcript.forEach(function (e, i) {
      if (e.k === "code") { showCode(e); return; }
      var m = bubble(e.k === "me" ? "me" : "bot", e.text, e.k === "me" ? "kw-me" : e.k === "notice" ? "kw-bot kw-notice" : "kw-bot");
      if (e.k === "me" && e.id && st.pending.some(function (f) { return f.id === e.id; })) {
        m.classList.add("kw-pending");
        m.dataset.id = e.id;
        m.appendChild(el("span", "kw-state", ui.sending));
      }
      if (i === lastButtons && i === transcript.length - 1) { buttons(m, e.buttons, e.state); }
    });
    replaying = false;
    scrollEnd();
  }

  function newId() {
    var a = new Uint8Array(16);
    crypto.getRandomValues(a);
    return Array.prototype.map.call(a, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  function el(tag, cls, text, attrs) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined && text !== null) { e.textContent = text; }
    if (attrs) { Object.keys(attrs).forEach(function (k) { e.setAttribute(k, attrs[k]); }); }
    return e;
  }

  var ui = null, limit = 0, ws = null, wait = 1000, opened = false, host, root, parts = {};

  function fetchTexts(code) {
    return fetch(base + "/ui/" + code + ".json", { credentials: "omit" })
      .then(function (r) { return r.json(); })
      .then(function (j) { ui = j.texts; limit = j.limit; lang = j.lang; return j; });
  }

  function setLang(j) {
    [root, parts.wrap].forEach(function (e) { if (e) { e.setAttribute("lang", j.lang); e.setAttribute("dir", j.dir); } });
    if (mode === "page") {
      document.documentElement.setAttribute("lang", j.lang);
      document.documentElement.setAttribute("dir", j.dir);
    }
    label();
  }

  function label() {
    parts.title.textContent = mode === "page" ? ui.log : ui.title;  // the page has the title
    parts.log.setAttribute("aria-label", ui.log);
    parts.menuButton.textContent = ui.menu;
    parts.inputLabel.textContent = ui.input;
    parts.send.textContent = ui.send;
    parts.attachLabel.textContent = "";
    parts.attachLabel.appendChild(el("span", null, "+", { "aria-hidden": "true" }));
    parts.attachLabel.appendChild(el("span", "kw-sr", ui.attach));
    parts.attachLabel.setAttribute("title", ui.attach);
    parts.codeLabel.textContent = ui.code_label;
    parts.codeButton.textContent = ui.code_button;
    parts.forget.textContent = ui.forget;
    parts.newCode.textContent = ui.new_code;
    MENU.forEach(function (name) { parts["cmd_" + name].textContent = ui["cmd_" + name]; });
    if (parts.close) { parts.close.setAttribute("aria-label", ui.close); parts.close.textContent = "×"; }
    if (parts.launcher) { parts.launcher.textContent = ui.open; }
    status(ws && ws.readyState === 1 ? "online" : "offline");
  }

  function status(which) {
    root.classList.toggle("kw-offline", which !== "online");
    parts.status.textContent = which === "online" ? ui.online : which === "connecting" ? ui.connecting : ui.offline;
  }

  function build(container) {
    root = el("div", "kw kw-" + mode);
    if (colour) { root.style.setProperty("--kw-colour", colour); }
    var head = el("div", "kw-head");
    parts.title = el(mode === "page" ? "h2" : "h2", "kw-title", "", { id: "kw-title" });
    parts.status = el("p", "kw-status", "", { role: "status" });
    parts.menuButton = el("button", "kw-menu-button", "", { type: "button", "aria-expanded": "false", "aria-controls": "kw-menu" });
    head.appendChild(parts.title);
    head.appendChild(parts.menuButton);
    if (mode === "widget") {
      parts.close = el("button", "kw-close", "", { type: "button" });
      parts.close.addEventListener("click", function () { toggle(false); });
      head.appendChild(parts.close);
    }
    root.appendChild(head);
    root.appendChild(parts.status);

    var menu = el("div", "kw-menu", null, { id: "kw-menu", hidden: "" });
    var cmds = el("div", "kw-cmds");
    MENU.forEach(function (name) {
      var b = el("button", "kw-cmd", "", { type: "button", "data-command": name });
      b.addEventListener("click", function () { closeMenu(); queue({ t: "command", name: name }, ui["cmd_" + name]); });
      parts["cmd_" + name] = b;
      cmds.appendChild(b);
    });
    menu.appendChild(cmds);
    var codeForm = el("form", "kw-code-form");
    parts.codeLabel = el("label", "kw-label", "", { "for": "kw-code-input" });
    parts.codeInput = el("input", "kw-input", null, { id: "kw-code-input", autocomplete: "off", spellcheck: "false", dir: "ltr", maxlength: "40" });
    parts.codeButton = el("button", "kw-button", "", { type: "submit" });
    parts.codeError = el("p", "kw-error", "", { role: "alert" });
    codeForm.appendChild(parts.codeLabel);
    codeForm.appendChild(parts.codeInput);
    codeForm.appendChild(parts.codeButton);
    codeForm.appendChild(parts.codeError);
    codeForm.addEventListener("submit", function (ev) {
      ev.preventDefault();
      if (parts.codeInput.value.trim() && ws && ws.readyState === 1) {
        ws.send(JSON.stringify({ t: "code", code: parts.codeInput.value }));
      }
    });
    menu.appendChild(codeForm);
    parts.newCode = el("button", "kw-cmd", "", { type: "button" });
    parts.newCode.addEventListener("click", function () { closeMenu(); if (ws && ws.readyState === 1) { ws.send(JSON.stringify({ t: "newcode" })); } });
    menu.appendChild(parts.newCode);
    parts.forget = el("button", "kw-cmd kw-forget", "", { type: "button" });
    parts.forget.addEventListener("click", function () {
      if (!window.confirm(ui.forget_confirm)) { return; }
      if (ws && ws.readyState === 1) { ws.send(JSON.stringify({ t: "forget" })); }
      else { forgetHere(); }  // offline: this browser forgets now; the code still works elsewhere
    });
    menu.appendChild(parts.forget);
    parts.menu = menu;
    parts.menuButton.addEventListener("click", function () {
      var open = menu.hasAttribute("hidden");
      if (open) { menu.removeAttribute("hidden"); parts["cmd_help"].focus(); } else { closeMenu(); }
      parts.menuButton.setAttribute("aria-expanded", open ? "true" : "false");
    });
    root.appendChild(menu);

    parts.log = el("div", "kw-log", null, { role: "log", "aria-live": "polite", tabindex: "0" });
    root.appendChild(parts.log);

    var form = el("form", "kw-form");
    parts.inputLabel = el("label", "kw-sr", "", { "for": "kw-text" });
    parts.text = el("textarea", "kw-text", null, { id: "kw-text", rows: "2", dir: "auto", maxlength: "4000" });
    parts.file = el("input", "kw-file kw-sr", null, { id: "kw-file", type: "file", accept: "image/jpeg,image/png,image/webp,application/pdf,audio/*" });
    parts.attachLabel = el("label", "kw-attach", "", { "for": "kw-file" });
    parts.send = el("button", "kw-send", "", { type: "submit" });
    form.appendChild(parts.inputLabel);
    form.appendChild(parts.text);
    form.appendChild(parts.file);
    form.appendChild(parts.attachLabel);
    form.appendChild(parts.send);
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var text = parts.text.value;
      if (!text.trim()) { return; }
      parts.text.value = "";
      queue({ t: "text", text: text }, text);
    });
    parts.text.addEventListener("keydown", function (ev) {
      if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) { ev.preventDefault(); form.requestSubmit(); }
    });
    parts.file.addEventListener("change", sendFile);
    root.appendChild(form);
    container.appendChild(root);
    root.addEventListener("keydown", function (ev) {
      if (ev.key === "Escape") { if (!menu.hasAttribute("hidden")) { closeMenu(); parts.menuButton.focus(); } else if (mode === "widget") { toggle(false); } }
    });
  }

  function closeMenu() {
    parts.menu.setAttribute("hidden", "");
    parts.menuButton.setAttribute("aria-expanded", "false");
  }

  // Text in, text out: isolated runs (FSI ... PDI from the server) and /commands become <bdi>
  // elements, so a reference or a command keeps its order and stays whole inside Arabic.
  function fill(p, text) {
    String(text).split(/(\u2068[^\u2069]*\u2069|\/[a-z_]+)/).forEach(function (part) {
      if (!part) { return; }
      if (part.charAt(0) === "\u2068" || part.charAt(0) === "/") {
        var inner = part.replace(/[\u2068\u2069]/g, "");
        var short = inner.length <= 24 && !/\s/.test(inner);
        var rtl = /[\u0590-\u08ff\ufb1d-\ufdff\ufe70-\ufeff]/.test(inner), latin = /[A-Za-z0-9\u0400-\u04ff]/.test(inner);
        p.appendChild(el("bdi", short ? "kw-token" : null, inner, { dir: rtl && latin ? "auto" : rtl ? "rtl" : "ltr" }));
      } else {
        p.appendChild(document.createTextNode(part));
      }
    });
  }

  function scrollEnd() {
    if (replaying) { return; }
    if (mode === "page") { window.scrollTo(0, document.documentElement.scrollHeight); } else { parts.log.scrollTop = parts.log.scrollHeight; }
  }

  function bubble(who, text, cls) {
    var m = el("div", "kw-msg " + cls);
    m.appendChild(el("span", "kw-sr", (who === "me" ? ui.you : ui.bot) + ": "));
    var p = el("p", "kw-body", null, { dir: "auto" });
    if (who === "me") { p.textContent = text; } else { fill(p, text); }
    if (cls.indexOf("kw-notice") >= 0) { remember({ k: "notice", text: text }); }
    m.appendChild(p);
    parts.log.appendChild(m);
    scrollEnd();
    return m;
  }

  function buttons(m, rows, state) {
    var box = el("div", "kw-choices");
    var first = null;
    rows.forEach(function (row) {
      row.forEach(function (b) {
        var btn = el("button", "kw-choice", b[1], { type: "button", dir: "auto", "data-button": b[0] });
        btn.addEventListener("click", function () {
          Array.prototype.forEach.call(box.querySelectorAll("button"), function (x) { x.disabled = true; });
          btn.classList.add("kw-chosen");
          queue({ t: "choice", button: b[0], state: state }, b[1]);
        });
        box.appendChild(btn);
        first = first || btn;
      });
    });
    m.appendChild(box);
    if (first && opened && !replaying) { first.focus(); }
  }

  function queue(f, shown) {
    f.id = newId();
    if (shown !== null) {
      var m = bubble("me", shown, "kw-me kw-pending");
      remember({ k: "me", text: shown, id: f.id });
      m.dataset.id = f.id;
      m.appendChild(el("span", "kw-state", ui.sending));
    }
    st.pending.push(f);
    save();
    send(f);
  }

  function send(f) {
    if (ws && ws.readyState === 1) { ws.send(JSON.stringify(f)); }
  }

  function sendFile() {
    var file = parts.file.files[0];
    parts.file.value = "";
    if (!file) { return; }
    if (file.size > limit) { bubble("bot", ui.file_too_big, "kw-bot kw-notice"); return; }
    var reader = new FileReader();
    reader.onload = function () {
      var s = String(reader.result);
      queue({ t: "file", type: file.type || "application/octet-stream", data: s.slice(s.indexOf(",") + 1) }, file.name || ui.attach);
    };
    reader.readAsDataURL(file);
  }

  function acked(id) {
    st.pending = st.pending.filter(function (f) { return f.id !== id; });
    save();
    var m = parts.log.querySelector('[data-id="' + id + '"]');
    if (m) {
      m.classList.remove("kw-pending");
      var s = m.querySelector(".kw-state");
      if (s) { s.remove(); }
    }
  }

  function showFile(f) {
    var m = bubble("bot", f.caption || "", "kw-bot");
    remember({ k: "bot", text: f.caption || "…" });
    var bytes = Uint8Array.from(atob(f.data), function (c) { return c.charCodeAt(0); });
    var url = URL.createObjectURL(new Blob([bytes], { type: f.type }));
    var node;
    if (f.kind === "photo" && /^image\/(jpeg|png|webp|gif)$/.test(f.type)) {
      node = el("img", "kw-img", null, { src: url, alt: f.caption || ui.bot });
    } else if (f.kind === "voice" && /^audio\//.test(f.type)) {
      node = el("audio", "kw-audio", null, { src: url, controls: "" });
    } else {
      node = el("a", "kw-link", "file", { href: url, download: "file" });
    }
    m.appendChild(node);
  }

  function showCode(f) {
    var m = el("div", "kw-msg kw-bot kw-codebox");
    m.appendChild(el("span", "kw-sr", ui.bot + ": "));
    m.appendChild(el("p", "kw-body", f.text, { dir: "auto" }));
    remember({ k: "code", text: f.text, code: f.code });
    var line = el("p", "kw-codeline");
    line.appendChild(el("bdi", "kw-code", f.code, { dir: "ltr" }));
    m.appendChild(line);
    parts.log.appendChild(m);
    scrollEnd();
  }

  function onFrame(ev) {
    var f;
    try { f = JSON.parse(ev.data); } catch (e) { return; }
    if (f.t === "ready") {
      if (st.token !== f.token) { st.last = 0; st.started = !f.fresh; }  // a new or restored chat
      st.token = f.token;
      if (f.restored) { parts.codeError.textContent = ""; parts.codeInput.value = ""; closeMenu(); }
      if (f.fresh && !st.started) { st.started = true; save(); queue({ t: "start" }, null); }
      save();
      status("online");
      wait = 1000;
      st.pending.forEach(send);
      if (f.lang && f.lang !== lang) { fetchTexts(f.lang).then(setLang); }
    } else if (f.t === "msg" || f.t === "file") {
      if (f.seq && f.seq <= st.last) { ws.send(JSON.stringify({ t: "ack", seq: f.seq })); return; }
      if (f.t === "file") { showFile(f); } else {
        var m = bubble("bot", f.text, "kw-bot");
        remember({ k: "bot", text: f.text, buttons: f.buttons, state: f.state });
        if (f.buttons && f.buttons.length) { buttons(m, f.buttons, f.state); }
      }
      if (f.seq) { st.last = f.seq; save(); ws.send(JSON.stringify({ t: "ack", seq: f.seq })); }
    } else if (f.t === "ack") {
      acked(f.id);
    } else if (f.t === "notice") {
      bubble("bot", f.text, "kw-bot kw-notice");
      if (f.retry) { setTimeout(function () { st.pending.filter(function (x) { return x.id === f.retry; }).forEach(send); }, 5000); }
    } else if (f.t === "code") {
      showCode(f);
    } else if (f.t === "refused") {
      parts.codeError.textContent = f.text;
    } else if (f.t === "lang") {
      fetchTexts(f.lang).then(setLang);
    } else if (f.t === "forgotten") {
      forgetHere();
      ws.close();
    }
  }

  function forgetHere() {
    st = { pending: [], last: 0 };
    try { localStorage.removeItem(KEY); sessionStorage.removeItem(TKEY); } catch (e) { /* nothing kept */ }
    transcript = [];
    parts.log.textContent = "";
    bubble("bot", ui.forgotten, "kw-bot kw-notice");
    closeMenu();
  }

  function connect() {
    if (ws && ws.readyState <= 1) { return; }
    status("connecting");
    ws = new WebSocket(base.replace(/^http/, "ws") + "/ws");
    ws.onopen = function () { ws.send(JSON.stringify({ t: "hello", token: st.token || null, lang: lang, org: org })); };
    ws.onmessage = onFrame;
    ws.onclose = function () {
      status("offline");
      setTimeout(connect, wait);
      wait = Math.min(wait * 2, 15000);
    };
  }
  window.addEventListener("online", function () { wait = 1000; if (ws && ws.readyState === 3) { connect(); } });

  function toggle(open) {
    opened = open;
    if (open) {
      parts.panel.removeAttribute("hidden");
      parts.launcher.setAttribute("aria-expanded", "true");
      connect();
      parts.text.focus();
    } else {
      parts.panel.setAttribute("hidden", "");
      parts.launcher.setAttribute("aria-expanded", "false");
      parts.launcher.focus();
    }
  }

  function start() {
    if (mode === "page") {
      build(document.getElementById("klachtwijzer-chat") || document.body);
      replay();
      opened = true;
      setLang({ lang: lang, dir: lang === "ar" ? "rtl" : "ltr" });
      connect();
      return;
    }
    host = el("div", "klachtwijzer-widget");
    var shadow = host.attachShadow({ mode: "open" });
    shadow.appendChild(el("link", null, null, { rel: "stylesheet", href: base + "/static/chat.css" }));
    var wrap = parts.wrap = el("div", "kw-widget-wrap");
    parts.launcher = el("button", "kw-launcher", "", { type: "button", "aria-expanded": "false", "aria-controls": "kw-panel" });
    if (colour) { parts.launcher.style.setProperty("--kw-colour", colour); }
    parts.launcher.addEventListener("click", function () { toggle(!opened); });
    parts.panel = el("div", "kw-panel", null, { id: "kw-panel", role: "dialog", "aria-labelledby": "kw-title", hidden: "" });
    wrap.appendChild(parts.launcher);
    wrap.appendChild(parts.panel);
    shadow.appendChild(wrap);
    build(parts.panel);
    replay();
    document.body.appendChild(host);
    setLang({ lang: lang, dir: lang === "ar" ? "rtl" : "ltr" });
  }

  fetchTexts(lang).then(function () {
    if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
  });
})();
