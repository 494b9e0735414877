/* harness dashboard: sortable, filterable tables and plotly charts from JSON embedded in the page.
 *
 * All record text reaches the page through textContent (never innerHTML), so a model called
 * "<img src=x onerror=...>" is shown as those characters. Data comes from
 * <script type="application/json"> blocks written by harness.dashboard, and from the data
 * files of the shards (harness/dashboard/fragments.py), each of which pushes its runs onto
 * window.HARNESS_SHARDS before this deferred script runs.
 */
(function () {
  "use strict";

  var MISSING = "\u2014";

  function readJSON(id) {
    var el = document.getElementById(id);
    return el ? JSON.parse(el.textContent) : null;
  }

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  // ------------------------------------------------------------------ number formats
  // The same rules as harness/formatting.py's fmt(), kind for kind.

  function fixedFor(v) {
    var a = Math.abs(v);
    return a >= 100 ? 0 : a >= 10 ? 1 : 2;
  }

  var FORMATS = {
    acc: function (v) { return v.toFixed(3); },
    delta: function (v) { return (v >= 0 ? "+" : "") + v.toFixed(3); },
    tps: function (v) { return v.toFixed(fixedFor(v)); },
    ms: function (v) { return v.toFixed(fixedFor(v)); },
    j: function (v) {
      if (Math.abs(v) >= 100) return Math.round(v).toLocaleString("en-US");
      return v === 0 ? "0" : String(Number(v.toPrecision(3)));
    },
    int: function (v) { return String(Math.round(v)); },
    bytes: function (v) {
      var gib = v / 1073741824;
      return gib >= 1 ? gib.toFixed(2) + " GiB" : (v / 1048576).toFixed(0) + " MiB";
    },
    s: function (v) { return v >= 100 ? v.toFixed(0) + " s" : v.toFixed(1) + " s"; },
    num: function (v) {
      if (v === 0) return "0";
      return Math.abs(v) >= 1000 ? Math.round(v).toLocaleString("en-US") : String(Number(v.toPrecision(4)));
    },
    date: function (v) { return String(v).replace("T", " ").replace(/:\d\dZ$/, ""); },
    text: function (v) { return String(v); }
  };

  function fmt(kind, v) {
    if (v === null || v === undefined) return null;
    return (FORMATS[kind] || FORMATS.text)(v);
  }

  // ------------------------------------------------------------------ tables

  function lookup(row, path, scenario) {
    var v = row;
    for (var i = 0; i < path.length && v !== null && v !== undefined; i++) {
      // "$scenario": the picked load scenario, or the row's own first one when none is picked.
      var k = path[i] === "$scenario" ? (scenario || row.headline) : path[i];
      v = v[k];
    }
    return v === undefined ? null : v;
  }

  // Every shard's rows of one kind ("runs"), their links made relative to this page.
  function shardRows(kind, root) {
    var rows = [];
    (window.HARNESS_SHARDS || []).forEach(function (shard) {
      (shard[kind] || []).forEach(function (r) {
        if (root) {
          r = Object.assign({}, r);
          if (r.run_href) r.run_href = root + r.run_href;
          if (r.model_href) r.model_href = root + r.model_href;
        }
        rows.push(r);
      });
    });
    return rows;
  }

  function DataTable(root, config) {
    this.root = root;
    this.cfg = config;
    this.rows = config.shards ? shardRows(config.shards, config.root || "") : config.rows;
    this.scenario = config.scenario || "";
    this.sortKey = config.sort ? config.sort.key : null;
    this.sortDir = config.sort ? config.sort.dir : "desc";
    this.filters = { q: "", suite: "", hardware: "", status: "" };
    this.readHash();
    this.build();
    this.render();
  }

  DataTable.prototype.readHash = function () {
    if (!this.cfg.hash) return;
    var h = window.location.hash.replace(/^#/, "");
    var self = this;
    h.split("&").forEach(function (part) {
      var kv = part.split("=");
      if (kv.length === 2 && kv[0] in self.filters) {
        try { self.filters[kv[0]] = decodeURIComponent(kv[1]); } catch (err) { /* malformed: ignore */ }
      }
    });
  };

  DataTable.prototype.column = function (key) {
    for (var i = 0; i < this.cfg.columns.length; i++) {
      if (this.cfg.columns[i].key === key) return this.cfg.columns[i];
    }
    return null;
  };

  DataTable.prototype.build = function () {
    var self = this;
    var tools = el("div", "table-tools");
    var search = el("input", "filter-text");
    search.type = "search";
    search.placeholder = "Filter by model, suite, hardware, run id\u2026";
    search.setAttribute("aria-label", "Filter rows");
    search.value = this.filters.q;
    search.addEventListener("input", function () { self.filters.q = search.value; self.render(); });
    tools.appendChild(search);

    (this.cfg.filters || []).forEach(function (name) {
      var values = {};
      self.rows.forEach(function (r) { if (r[name] !== null && r[name] !== undefined) values[r[name]] = true; });
      var sel = el("select", "filter-select");
      sel.dataset.filter = name;
      sel.setAttribute("aria-label", "Filter by " + name);
      sel.appendChild(new Option("All " + (name === "hardware" ? "hardware" : name === "status" ? "statuses" : name + "s"), ""));
      // A value asked for in the URL stays selectable even when no row has it (then no row shows).
      if (self.filters[name]) values[self.filters[name]] = true;
      Object.keys(values).sort().forEach(function (v) { sel.appendChild(new Option(v, v)); });
      sel.value = self.filters[name];
      sel.addEventListener("change", function () { self.filters[name] = sel.value; self.render(); });
      tools.appendChild(sel);
    });

    if (this.cfg.scenarios && this.cfg.scenarios.length) {
      var lab = el("label", "scenario-pick", "Load scenario ");
      var ssel = el("select", "scenario-select");
      ssel.setAttribute("aria-label", "Load scenario for the performance columns");
      this.cfg.scenarios.forEach(function (s) { ssel.appendChild(new Option(s.label, s.name)); });
      ssel.value = this.scenario;
      ssel.addEventListener("change", function () { self.scenario = ssel.value; self.render(); });
      lab.appendChild(ssel);
      tools.appendChild(lab);
    }
    this.count = el("span", "row-count");
    tools.appendChild(this.count);
    this.root.appendChild(tools);

    var wrap = el("div", "table-wrap");
    var table = el("table", "data");
    var thead = el("thead");
    var tr = el("tr");
    this.headers = {};
    this.cfg.columns.forEach(function (c) {
      var th = el("th", c.num ? "num" : "");
      var btn = el("button", "sort", c.label);
      btn.type = "button";
      if (c.title) th.title = c.title;
      btn.addEventListener("click", function () { self.sortBy(c.key); });
      th.appendChild(btn);
      th.dataset.key = c.key;
      self.headers[c.key] = th;
      tr.appendChild(th);
    });
    thead.appendChild(tr);
    table.appendChild(thead);
    this.tbody = el("tbody");
    table.appendChild(this.tbody);
    wrap.appendChild(table);
    this.root.appendChild(wrap);
    this.empty = el("p", "empty", this.cfg.empty || "No rows.");
    this.root.appendChild(this.empty);
  };

  DataTable.prototype.sortBy = function (key) {
    var col = this.column(key);
    if (this.sortKey === key) {
      this.sortDir = this.sortDir === "asc" ? "desc" : "asc";
    } else {
      this.sortKey = key;
      // Numbers start with the best first; text starts A-Z.
      this.sortDir = col && col.num ? (col.better === "low" ? "asc" : "desc") : "asc";
    }
    this.render();
  };

  DataTable.prototype.value = function (row, col) {
    return lookup(row, col.path, this.scenario);
  };

  DataTable.prototype.visibleRows = function () {
    var f = this.filters;
    var q = f.q.trim().toLowerCase();
    return this.rows.filter(function (r) {
      if (f.suite && r.suite !== f.suite) return false;
      if (f.hardware && r.hardware !== f.hardware) return false;
      if (f.status && r.status !== f.status) return false;
      if (q && String(r.search).indexOf(q) < 0) return false;
      return true;
    });
  };

  DataTable.prototype.sorted = function (rows) {
    var col = this.column(this.sortKey);
    if (!col) return rows;
    var self = this;
    var dir = this.sortDir === "asc" ? 1 : -1;
    var keyed = rows.map(function (r, i) { return { r: r, i: i, v: self.value(r, col) }; });
    keyed.sort(function (a, b) {
      var av = a.v, bv = b.v;
      var an = av === null, bn = bv === null;
      if (an || bn) return an === bn ? a.i - b.i : an ? 1 : -1; // missing values always last
      var c = col.num ? av - bv : String(av).localeCompare(String(bv));
      return c !== 0 ? dir * c : a.i - b.i;
    });
    return keyed.map(function (k) { return k.r; });
  };

  DataTable.prototype.best = function (rows) {
    var best = {};
    var self = this;
    // Rows marked unranked (random weights, no accuracy) are shown but never "best".
    rows = rows.filter(function (r) { return !r.unranked; });
    this.cfg.columns.forEach(function (c) {
      if (!c.num || !c.better || rows.length < 2) return;
      var vals = rows.map(function (r) { return self.value(r, c); }).filter(function (v) { return v !== null; });
      if (vals.length < 2) return;
      var lo = Math.min.apply(null, vals), hi = Math.max.apply(null, vals);
      if (lo === hi) return; // all equal: nothing stands out
      best[c.key] = c.better === "low" ? lo : hi;
    });
    return best;
  };

  DataTable.prototype.cell = function (row, col, best) {
    var td = el("td", col.num ? "num" : "");
    var v = this.value(row, col);
    if (col.fmt === "status") {
      td.appendChild(el("span", "badge badge-" + (v === "ok" ? "ok" : "failed"), v));
      return td;
    }
    var text = fmt(col.fmt, v);
    if (text === null) {
      td.textContent = MISSING;
      td.classList.add("missing");
      td.title = "not measured";
      return td;
    }
    var main;
    var href = col.href ? lookup(row, col.href, this.scenario) : null;
    if (href) {
      main = el("a", "", text);
      main.setAttribute("href", href);
    } else {
      main = el("span", "", text);
    }
    if (col.clip && text.length > col.clip) {
      main.textContent = text.slice(0, col.clip) + "\u2026";
      td.title = text;
    }
    td.appendChild(main);
    if (best[col.key] !== undefined && v === best[col.key]) td.classList.add("best");
    if (col.se) {
      var se = lookup(row, col.se, this.scenario);
      if (se !== null) td.appendChild(el("span", "se", "\u00b1\u202f" + fmt(col.fmt, se)));
    }
    if (col.sub) {
      var sv = lookup(row, col.sub.path, this.scenario);
      if (sv !== null) td.appendChild(el("span", "sub", col.sub.label + "\u202f" + fmt(col.sub.fmt || col.fmt, sv)));
    }
    if (col.flag) {
      var flag = lookup(row, col.flag, this.scenario);
      if (flag) td.appendChild(el("span", "flag", flag));
    }
    return td;
  };

  DataTable.prototype.render = function () {
    var self = this;
    var rows = this.sorted(this.visibleRows());
    var best = this.best(rows);
    // Columns marked hideEmpty (e.g. tasks of another suite) are dropped while no shown row has a value.
    var cols = this.cfg.columns.filter(function (c) {
      var shown = !c.hideEmpty || rows.some(function (r) { return self.value(r, c) !== null; });
      self.headers[c.key].hidden = !shown;
      return shown;
    });
    var frag = document.createDocumentFragment();
    rows.forEach(function (r) {
      var tr = el("tr");
      if (r.status && r.status !== "ok") tr.className = "failed";
      else if (r.unranked) tr.className = "unranked";
      cols.forEach(function (c) { tr.appendChild(self.cell(r, c, best)); });
      frag.appendChild(tr);
    });
    this.tbody.textContent = "";
    this.tbody.appendChild(frag);
    Object.keys(this.headers).forEach(function (k) {
      var th = self.headers[k];
      if (k === self.sortKey) th.setAttribute("aria-sort", self.sortDir === "asc" ? "ascending" : "descending");
      else th.removeAttribute("aria-sort");
    });
    this.count.textContent = "Showing " + rows.length + " of " + this.rows.length;
    this.empty.hidden = rows.length > 0;
  };

  // ------------------------------------------------------------------ charts

  function renderCharts() {
    var charts = document.querySelectorAll("div.chart[data-spec]");
    if (!charts.length) return;
    if (typeof window.Plotly === "undefined") {
      console.error("plotly.min.js did not load: charts cannot be drawn");
      charts.forEach(function (div) { div.appendChild(el("p", "empty", "plotly.min.js is missing beside this page.")); });
      return;
    }
    charts.forEach(function (div) {
      var spec = readJSON(div.dataset.spec);
      spec.data.forEach(fillFromShards);
      var config = { responsive: true, displaylogo: false, modeBarButtonsToRemove: ["lasso2d", "select2d"] };
      window.Plotly.newPlot(div, spec.data, spec.layout, config).then(function () {
        div.dataset.rendered = "1";
      });
      // Points that carry a page link as their last customdata item open that page on click.
      div.on("plotly_click", function (ev) {
        var cd = ev.points && ev.points[0] && ev.points[0].customdata;
        var href = Array.isArray(cd) ? cd[cd.length - 1] : null;
        if (typeof href === "string" && /\.html$/.test(href)) window.location.href = (div.dataset.root || "") + href;
      });
    });
  }

  // A line whose points are in the shards' data files names them in trace.meta: a path into
  // each shard (["hist", suite, "model\u001fhardware", metric] or ["points", chart, series])
  // to [x, y, customdata] arrays. Joined, then put in time order (x is an ISO timestamp, so text
  // order is time order), as the lines of one shard are.
  function fillFromShards(trace) {
    if (!Array.isArray(trace.meta)) return;
    var pts = [];
    (window.HARNESS_SHARDS || []).forEach(function (shard) {
      var v = shard;
      for (var i = 0; i < trace.meta.length && v; i++) v = v[trace.meta[i]];
      if (!v) return;
      for (var j = 0; j < v[0].length; j++) pts.push([v[0][j], v[1][j], v[2][j]]);
    });
    pts.sort(function (a, b) { return a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0; });
    trace.x = pts.map(function (p) { return p[0]; });
    trace.y = pts.map(function (p) { return p[1]; });
    trace.customdata = pts.map(function (p) { return p[2]; });
  }

  function renderTables() {
    document.querySelectorAll("div.dtable[data-config]").forEach(function (root) {
      new DataTable(root, readJSON(root.dataset.config));
    });
  }

  // This script is deferred and comes before plotly.min.js, so the document is parsed by now:
  // fill the tables at once, and draw the charts once plotly.js (also deferred) has run.
  // A table wider than its card scrolls sideways: say so above it, and shade the edge that hides
  // columns, so nobody takes the visible columns for all of them.
  function markScrollables() {
    document.querySelectorAll("div.table-wrap").forEach(function (wrap) {
      var scrolls = wrap.scrollWidth > wrap.clientWidth + 1;
      wrap.classList.toggle("scrolls", scrolls);
      wrap.classList.toggle("at-end", wrap.scrollLeft + wrap.clientWidth >= wrap.scrollWidth - 1);
      var hint = wrap.previousElementSibling;
      var has = hint && hint.classList.contains("scroll-hint");
      if (scrolls && !has) {
        hint = el("p", "scroll-hint", "Wider than the page: scroll sideways for more columns \u2192");
        wrap.parentNode.insertBefore(hint, wrap);
        wrap.addEventListener("scroll", function () {
          wrap.classList.toggle("at-end", wrap.scrollLeft + wrap.clientWidth >= wrap.scrollWidth - 1);
        });
      } else if (!scrolls && has) {
        hint.remove();
      }
    });
  }

  renderTables();
  markScrollables();
  window.addEventListener("resize", markScrollables);
  document.addEventListener("DOMContentLoaded", renderCharts);
})();
