// The dashboard: polls v1/live every two seconds and draws it. No dependencies.
"use strict";
(function () {
  const every = 2000;
  const $ = (id) => document.getElementById(id);
  const fmt = (x) => x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2);
  const pct = (x) => (100 * x).toFixed(1) + "%";

  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // spark draws series (each {values, cls}) into an svg of 240×40, on one scale.
  function spark(svg, series) {
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    let max = 0;
    for (const s of series) for (const v of s.values) max = Math.max(max, v);
    if (max === 0) max = 1;
    for (const s of series) {
      const n = s.values.length;
      const pts = s.values.map((v, i) => (i * 240 / Math.max(n - 1, 1)).toFixed(1) + "," + (39 - 38 * v / max).toFixed(1));
      const p = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
      p.setAttribute("points", pts.join(" "));
      p.setAttribute("class", s.cls);
      svg.appendChild(p);
    }
  }

  function sparkCell(series) {
    const td = el("td");
    const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    svg.setAttribute("class", "spark");
    svg.setAttribute("viewBox", "0 0 240 40");
    svg.setAttribute("preserveAspectRatio", "none");
    spark(svg, series);
    td.appendChild(svg);
    return td;
  }

  // recent is the mean of the last k samples.
  function recent(values, k) {
    const xs = values.slice(-k);
    return xs.reduce((a, b) => a + b, 0) / Math.max(xs.length, 1);
  }

  function draw(s) {
    const r = s.rules;
    $("rules").replaceChildren(
      el("div", {}, "version " + r.version + ": " + r.domains + " domains, " + r.rules + " rules"),
      el("div", {}, "loaded " + new Date(r.loaded_at).toLocaleTimeString()),
      r.last_error ? el("div", { class: "bad" }, "last reload rejected " + new Date(r.last_failed_at).toLocaleTimeString() + ": " + r.last_error)
                   : el("div", { class: "good" }, "last reload ok"));

    const st = s.store;
    const store = [el("div", {}, st.kind)];
    if (st.kind !== "memory") {
      store.push(el("div", { class: st.breaker_open ? "bad" : "good" }, "breaker " + (st.breaker_open ? "open" : "closed") + " (opened " + st.breaker_opens + "×)"));
      store.push(el("div", {}, st.calls + " calls, " + st.failures + " failed, " + st.policy_answers + " answered by the fail policy"));
    } else {
      store.push(el("div", { class: "good" }, "in process: no breaker"));
    }
    const fails = recent(s.latency.failures_per_s, 10);
    store.push(el("div", { class: fails > 0 ? "bad" : "" }, fmt(fails) + " store failures/s"));
    $("store").replaceChildren(...store);

    $("latency").replaceChildren(el("div", {}, "mean " + fmt(recent(s.latency.mean_us, 10)) + " µs, max " + fmt(Math.max(...s.latency.max_us.slice(-10))) + " µs (last 10 s)"));
    spark($("latency-chart"), [{ values: s.latency.mean_us, cls: "calls" }, { values: s.latency.max_us, cls: "over" }]);

    const rates = $("rates").tBodies[0];
    rates.replaceChildren();
    for (const rr of s.rates) {
      const calls = recent(rr.calls_per_s, 5), over = recent(rr.over_per_s, 5);
      const tr = el("tr", { "data-rule": rr.rule });
      tr.appendChild(el("td", {}, rr.domain));
      tr.appendChild(el("td", {}, rr.name || rr.rule));
      tr.appendChild(el("td", { class: "num" }, fmt(calls)));
      tr.appendChild(el("td", { class: "num" + (over > 0 ? " bad" : "") }, calls > 0 ? pct(over / calls) : "–"));
      tr.appendChild(sparkCell([{ values: rr.calls_per_s, cls: "calls" }, { values: rr.over_per_s, cls: "over" }]));
      rates.appendChild(tr);
    }

    const top = $("top").tBodies[0];
    top.replaceChildren();
    for (const d of Object.keys(s.top).sort()) {
      for (const k of s.top[d]) {
        const tr = el("tr", { "data-domain": d });
        tr.appendChild(el("td", {}, d));
        tr.appendChild(el("td", { class: "key" }, k.key));
        tr.appendChild(el("td", { class: "num" }, k.denied + (k.denied_missed ? " (+≤" + k.denied_missed + ")" : "")));
        tr.appendChild(el("td", { class: "num" }, String(k.total)));
        tr.appendChild(el("td", { class: "num" }, pct(k.deny_ratio)));
        top.appendChild(tr);
      }
    }
    if (!top.rows.length) {
      const tr = el("tr");
      tr.appendChild(el("td", { colspan: "5" }, "no key was limited in the last minute"));
      top.appendChild(tr);
    }
    $("status").textContent = "updated " + new Date(s.time).toLocaleTimeString();
  }

  async function poll() {
    try {
      // From the origin: a URL with the credentials the page was opened with cannot be
      // fetched, and the browser sends the credentials it keeps for the origin anyway.
      const resp = await fetch(location.origin + "/v1/live?n=10", { credentials: "same-origin", cache: "no-store" });
      if (!resp.ok) throw new Error(resp.status + " " + resp.statusText);
      draw(await resp.json());
    } catch (e) {
      $("status").textContent = "no answer: " + e.message;
    }
    setTimeout(poll, every);
  }
  poll();
})();
