/*! storeloop t.js: page views and e-commerce events to /v1/batch. docs/tracking.md explains it */
(function (w, d) {
  "use strict";
  var s = d.currentScript || d.querySelector("script[data-write-key]");
  if (!s || w.__storeloop) return;
  w.__storeloop = 1;
  var key = s.getAttribute("data-write-key"), base = new URL(s.src, location.href),
    api = base.origin + (s.src ? base.pathname.replace(/\/[^\/]*$/, "") : ""),
    ls = store(w.localStorage), ss = store(w.sessionStorage),
    q = [], out = [], ready = 0, timer = 0, YEAR = 34560000, U,
    held = s.getAttribute("data-consent") == "pending",
    gpc = navigator.globalPrivacyControl === true;
  var p = new URLSearchParams(location.search), click = p.get("sl_click") || ls.get("sl_click"),
    aid = ls.get("sl_aid") || cookie("sl_aid"), uid = ls.get("sl_uid"), cmp = {}, has = 0;
  ["source", "medium", "name", "term", "content"].forEach(function (k) {
    var v = p.get("utm_" + (k == "name" ? "campaign" : k));
    if (v) { cmp[k] = v; has = 1; }
  });
  function store(o) {
    return {
      get: function (k) { try { return o.getItem(k); } catch (e) { return null; } },
      set: function (k, v) { try { o.setItem(k, v); } catch (e) {} },
      del: function (k) { try { o.removeItem(k); } catch (e) {} }
    };
  }
  function cookie(k) {
    var m = d.cookie.match(new RegExp("(?:^|; )" + k + "=([^;]*)"));
    return m ? decodeURIComponent(m[1]) : null;
  }
  function uuid() {
    if (w.crypto && crypto.randomUUID) return crypto.randomUUID();
    var b = crypto.getRandomValues(new Uint8Array(16)), h = [];
    b[6] = (b[6] & 15) | 64; b[8] = (b[8] & 63) | 128;
    for (var i = 0; i < 16; i++) h.push((b[i] + 256).toString(16).slice(1));
    h = h.join("");
    return [h.slice(0, 8), h.slice(8, 12), h.slice(12, 16), h.slice(16, 20), h.slice(20)].join("-");
  }
  function keep() {
    aid = aid || uuid();
    if (held || gpc) return;
    ls.set("sl_aid", aid);
    d.cookie = "sl_aid=" + aid + "; max-age=" + YEAR + "; path=/; samesite=lax";
    if (click) ls.set("sl_click", click);
  }
  function msg(m, landing) {
    var c = {
      page: { url: location.href, path: location.pathname, referrer: d.referrer,
        title: d.title, search: location.search },
      userAgent: navigator.userAgent, locale: navigator.language,
      library: { name: "storeloop.js", version: "1" }
    };
    if (landing && has) c.campaign = cmp;
    if (click) c.storeloop = { click_id: click };
    m.messageId = uuid(); m.timestamp = new Date().toISOString();
    m.anonymousId = aid; if (uid) m.userId = uid; m.context = c;
    out.push(m);
    clearTimeout(timer); timer = setTimeout(flush, 30);
  }
  function flush(beacon) {
    if (!out.length || held) return;
    out.forEach(function (m) { m.anonymousId = m.anonymousId || aid; });
    var body = JSON.stringify({ batch: out, writeKey: key, sentAt: new Date().toISOString() }),
      blob = new Blob([body], { type: "text/plain" });
    out = [];
    if (beacon && navigator.sendBeacon && navigator.sendBeacon(api + "/v1/batch", blob)) return;
    fetch(api + "/v1/batch", { method: "POST", body: body, keepalive: blob.size < 60000,
      headers: { "Content-Type": "text/plain" } }).catch(function () {});
  }
  var calls = {
    page: function (name, props) {
      msg({ type: "page", name: name || U, properties: props || {} }, 1); has = 0;
    },
    track: function (event, props) { msg({ type: "track", event: event, properties: props || {} }); },
    identify: function (userId, traits) {
      if (userId) { uid = String(userId); if (!held && !gpc) ls.set("sl_uid", uid); }
      msg({ type: "identify", traits: traits || {} });
    },
    reset: function () {
      uid = null; ls.del("sl_uid"); aid = uuid(); keep();
    },
    consent: function (given) {
      if (!given) { out = []; return; }
      held = false; keep(); flush();
    }
  };
  function call(a) { if (calls[a[0]]) calls[a[0]].apply(null, [].slice.call(a, 1)); }
  var pub = {};
  Object.keys(calls).forEach(function (n) {
    pub[n] = function () { var a = [n].concat([].slice.call(arguments)); ready ? call(a) : q.push(a); };
  });
  pub.push = function () {
    [].forEach.call(arguments, function (a) { ready ? call(a) : q.push(a); });
  };
  var early = w.storeloop;
  w.storeloop = pub;
  if (early && early.length) q = q.concat([].slice.call(early));
  function start() {
    if (ready) return;
    ready = 1; keep(); calls.page();
    q.forEach(call); q = [];
  }
  d.addEventListener("visibilitychange", function () { if (d.visibilityState == "hidden") flush(1); });
  w.addEventListener("pagehide", function () { start(); flush(1); });
  // Served from a subdomain of the store (t.store.com on store.com)? Its HttpOnly cookies, set by
  // the /r/ redirect, outlive script storage (Safari: 7 days): ask for them once per session.
  var host = location.hostname, parent = base.hostname.split(".").slice(1).join(".");
  var sub = s.getAttribute("data-context") == "on" || (base.hostname != host && parent.indexOf(".") > 0 &&
    (host == parent || host.slice(-parent.length - 1) == "." + parent));
  if (!sub || held || gpc || ss.get("sl_ctx") || !w.fetch) return start();
  setTimeout(start, 1500);
  fetch(api + "/t/ctx?k=" + encodeURIComponent(key), { credentials: "include" })
    .then(function (r) { return r.ok ? r.json() : {}; })
    .then(function (x) {
      if (ready) return;
      ss.set("sl_ctx", "1");
      if (x.anonymous_id) aid = x.anonymous_id;
      if (x.click_id && !p.get("sl_click")) click = x.click_id;
    }, function () {})
    .then(start);
})(window, document);
