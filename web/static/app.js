/* Grid Atlas map front end.
 *
 * Folium writes one call per layer, GridAtlas.<factory>(map, options); each factory returns its
 * Leaflet layer at once and fills it from a JSON endpoint of the app. Geometry is fetched per
 * zoom bucket (the server simplifies it for that zoom) and swapped in when the zoom needs a
 * finer bucket. Every name that reaches a tooltip, a popup or the search list is escaped:
 * area and checkpoint names can come from uploaded files.
 *
 * Panes, bottom to top: ga-land (outlines, the base map), ga-areas (choropleth, the only
 * interactive canvas), ga-heat, ga-lines (district borders, current area), markers (clusters),
 * ga-points (checkpoint circles, SVG). Non-interactive panes let the mouse through.
 */
(function (window, document) {
  'use strict';

  var GA = window.GridAtlas = window.GridAtlas || {};
  var LEVELS = ['city', 'district', 'town', 'village', 'grid'];
  var ESCAPES = {'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'};
  var KIND_COLORS = {road: '#1f5fa8', transport_hub: '#6a3d9a', community_gate: '#23897e'};

  GA.maps = GA.maps || [];
  GA.status = GA.status || {choropleth: 0, outlines: 0, heat: 0, checkpoints: 0, errors: []};

  function esc(text) {
    return String(text === null || text === undefined ? '' : text).replace(/[&<>"']/g, function (c) {
      return ESCAPES[c];
    });
  }
  GA.esc = esc;

  function fmt(n) {
    return Number(n || 0).toLocaleString('en-US');
  }

  function report(err) {
    GA.status.errors.push(String(err && err.message || err));
    if (window.console) { console.error('Grid Atlas: ' + (err && err.message || err)); }
    var toast = document.querySelector('.ga-toast');
    if (!toast) {
      toast = document.createElement('div');
      toast.className = 'ga-toast';
      toast.setAttribute('role', 'alert');
      (document.querySelector('.ga-map') || document.body).appendChild(toast);
    }
    toast.textContent = String(err && err.message || err);
  }

  function withParams(url, params) {
    var u = new URL(url, window.location.href);
    Object.keys(params).forEach(function (k) { u.searchParams.set(k, params[k]); });
    return u.pathname + u.search;
  }

  /* One request per URL, shared by the layers that need it (heat and markers). */
  var requests = {};
  GA.getJSON = function (url) {
    if (!requests[url]) {
      requests[url] = fetch(url, {credentials: 'same-origin', headers: {Accept: 'application/json'}})
        .then(function (r) {
          if (r.ok) { return r.json(); }
          return r.json().catch(function () { return {}; }).then(function (body) {
            throw new Error(body.error || ('HTTP ' + r.status + ' ' + url));
          });
        });
      requests[url].catch(function () { delete requests[url]; });
    }
    return requests[url];
  };

  /* The zoom bucket whose geometry suits map zoom z (mirrors geo.mapdata.zoom_bucket). */
  function bucketFor(zoom, buckets, full) {
    for (var i = 0; i < buckets.length; i++) {
      if (zoom <= buckets[i]) { return buckets[i]; }
    }
    return full;
  }

  function setUp(map) {
    if (map._ga) { return map._ga; }
    function pane(name, z, interactive) {
      var p = map.createPane(name);
      p.style.zIndex = z;
      if (!interactive) { p.style.pointerEvents = 'none'; }
    }
    pane('ga-land', 250, false);
    pane('ga-areas', 350, true);
    pane('ga-heat', 420, false);
    pane('ga-lines', 450, false);
    pane('ga-points', 620, false); // circles themselves are interactive (leaflet-interactive)
    map._ga = {
      land: L.canvas({pane: 'ga-land'}),
      areas: L.canvas({pane: 'ga-areas', tolerance: 1}),
      lines: L.canvas({pane: 'ga-lines'}),
      points: L.svg({pane: 'ga-points'})
    };
    if (GA.maps.indexOf(map) < 0) { GA.maps.push(map); }
    GA.map = map;
    return map._ga;
  }

  /* Keep a layer's geometry detailed enough for the zoom: load(bucket) runs on add and when
   * the map settles in a zoom that needs finer geometry than the layer has. Zooming out keeps
   * the finer geometry (Leaflet simplifies it on screen anyway), so a zoom-out never rebuilds
   * thousands of polygons; a burst of wheel steps loads once, after the map has settled. */
  function followZoom(layer, map, o, load) {
    var have = null;
    var timer = null;
    function check() {
      var want = bucketFor(map.getZoom(), o.zoomBuckets, o.fullZoom);
      if (have === null || want > have) {
        have = want;
        load(want);
      }
    }
    function settled() { clearTimeout(timer); timer = setTimeout(check, 250); }
    layer.on('add', function () { map.on('zoomend', settled); check(); });
    layer.on('remove', function () { map.off('zoomend', settled); clearTimeout(timer); have = null; });
  }

  /* ---- Pages -------------------------------------------------------------------------- */

  /* Does a page of an area at `level` accept ?level=show? (mirrors mapdata.display_levels) */
  function levelFits(show, level) {
    if (level === 'grid') { return show === 'grid'; }
    return LEVELS.indexOf(show) > LEVELS.indexOf(level);
  }

  /* The page of an area in the same state. `query` is a list of [name, value] pairs (the
   * page URL's order: metric, from, to...) or an object. */
  GA.pageUrl = function (template, query, code, level) {
    var pairs = Array.isArray(query) ? query : Object.keys(query || {}).map(function (k) { return [k, query[k]]; });
    pairs = pairs.filter(function (kv) { return kv[0] !== 'level' || levelFits(kv[1], level); });
    var search = new URLSearchParams(pairs).toString();
    return template.replace('__CODE__', encodeURIComponent(code)) + (search ? '?' + search : '');
  };

  /* ---- Base map: district and town outlines ------------------------------------------- */

  GA.outlines = function (map, o) {
    var r = setUp(map);
    var group = L.layerGroup();
    var bucket = null;
    function load(b) {
      bucket = b;
      Promise.all([
        GA.getJSON(withParams(o.towns, {zoom: b})),
        GA.getJSON(withParams(o.districts, {zoom: b})),
        o.area ? GA.getJSON(withParams(o.area, {zoom: b})) : null,
        o.siblings ? GA.getJSON(withParams(o.siblings, {zoom: b})) : null
      ]).then(function (res) {
        if (b !== bucket) { return; }
        group.clearLayers();
        group.addLayer(L.geoJSON(res[0], {renderer: r.land, pane: 'ga-land', interactive: false,
          style: {color: '#b5ad9f', weight: 0.8, fillColor: '#f4f1ea', fillOpacity: o.tiles ? 0 : 1}}));
        group.addLayer(L.geoJSON(res[1], {renderer: r.lines, pane: 'ga-lines', interactive: false,
          style: {color: '#4a463f', weight: 1.3, opacity: 0.85, fill: false}}));
        if (res[3]) {  // a grid's neighbours in its village, for context
          group.addLayer(L.geoJSON(res[3], {renderer: r.land, pane: 'ga-land', interactive: false,
            style: {color: '#9c9384', weight: 1, dashArray: '4 3', fill: false}}));
        }
        if (res[2]) {
          group.addLayer(L.geoJSON(res[2], {renderer: r.lines, pane: 'ga-lines', interactive: false,
            style: {color: '#111827', weight: 3, fill: false}}));
        }
        GA.status.outlines = res[0].features.length + res[1].features.length;
      }).catch(report);
    }
    followZoom(group, map, o, load);
    return group;
  };

  /* ---- Choropleth of the child areas --------------------------------------------------- */

  GA.choropleth = function (map, o) {
    var r = setUp(map);
    var group = L.featureGroup();
    var current = null;
    var bucket = null;
    var weight = o.count > 3000 ? 0.25 : (o.count > 300 ? 0.6 : 1.2);
    var labels = o.labels;
    var values = null;  // code -> row of the last update(); geometry loaded later gets them too

    // Thousands of grids at a low zoom are a few pixels each: their outlines would only grey
    // the colours and cost half of every redraw, so they are drawn from zoom 12 on.
    var dense = o.count > 3000;
    var outlined = function () { return !dense || map.getZoom() >= 12; };
    var stroked = outlined();
    map.on('zoomend', function () {
      if (current && outlined() !== stroked) { stroked = outlined(); current.setStyle(style); }
    });

    function style(feature) {
      return L.Util.extend({fillColor: feature.properties.color, fillOpacity: 0.82, color: '#ffffff',
        weight: weight, opacity: 0.9, stroke: outlined()}, o.style);
    }

    function restyle(layer) {
      if (!values) { return; }
      layer.eachLayer(function (f) {
        var p = f.feature.properties, row = values[p.code];
        if (row) { p.value = row.value; p['class'] = row['class']; p.color = row.color; }
      });
      layer.setStyle(style);
    }

    /* New counts for the same areas (rows of /values): restyle the polygons in place. */
    group.update = function (rows) {
      values = {};
      rows.forEach(function (row) { values[row.code] = row; });
      if (current) { restyle(current); }
    };

    function load(b) {
      bucket = b;
      GA.getJSON(withParams(o.url, {zoom: b})).then(function (fc) {
        if (b !== bucket) { return; }
        var layer = L.geoJSON(fc, {style: style, renderer: r.areas, pane: 'ga-areas'});
        restyle(layer);
        if (current) { group.removeLayer(current); }
        current = layer;
        group.addLayer(layer);
        GA.status.choropleth = fc.features.length;
        group.fire('ga:loaded', {collection: fc});
      }).catch(report);
    }

    group.bindTooltip(function (layer) {
      var p = layer.feature.properties;
      return '<div class="ga-tip"><div class="ga-tip-name">' + esc(p.name) +
        ' <span class="ga-tip-level">' + esc(labels.levels[p.level] || p.level) + '</span></div>' +
        '<div class="ga-tip-value">' + fmt(p.value) + ' <span>' + esc(o.unit) + '</span></div>' +
        '<div class="ga-tip-hint">' + esc(o.drill ? labels.hint_drill : labels.hint_grid) + '</div></div>';
    }, {sticky: true, direction: 'top', offset: [0, -10], className: 'ga-tooltip', opacity: 1});

    group.on('mouseover', function (e) {
      e.layer.setStyle({weight: Math.max(2.5, weight * 3), color: '#111827'});
      e.layer.bringToFront();
    });
    group.on('mouseout', function (e) {
      if (current) { current.resetStyle(e.layer); }
    });
    group.on('click', function (e) {
      var p = e.layer.feature.properties;
      if (o.drill) {
        window.location.href = GA.pageUrl(o.pageUrl, o.query, p.code, p.level);
      } else {
        GA.openSummary(map, e.latlng, p.code, o);
      }
    });
    group.on('contextmenu', function (e) {
      GA.openSummary(map, e.latlng, e.layer.feature.properties.code, o);
    });
    followZoom(group, map, o, load);
    GA.choroplethLayer = group;  // static/playback.js restyles it day by day (issue 10)
    return group;
  };

  /* A popup with every metric, the staff and a link to the area's page. */
  GA.openSummary = function (map, latlng, code, o) {
    var popup = L.popup({maxWidth: 360, minWidth: 270, className: 'ga-popup', autoPanPadding: [20, 20]})
      .setLatLng(latlng)
      .setContent('<div class="ga-pop-loading">' + esc(o.labels.loading) + '</div>')
      .openOn(map);
    GA.getJSON(o.summaryUrl.replace('__CODE__', encodeURIComponent(code))).then(function (s) {
      popup.setContent(GA.summaryHtml(s, o));
    }).catch(function (err) {
      popup.setContent('<div class="ga-pop-error">' + esc(o.labels.failed) + ' ' + esc(err.message) + '</div>');
    });
    return popup;
  };

  GA.summaryHtml = function (s, o) {
    var zh = o.lang === 'zh';
    var labels = o.labels;
    var metrics = s.metrics.map(function (m) {
      return '<tr' + (m.key === o.metric ? ' class="on"' : '') + '><th>' + esc(zh ? m.name_zh : m.name_en) +
        '</th><td>' + fmt(m.value) + '</td><td class="ga-unit">' + esc(zh ? m.unit_zh : m.unit_en) + '</td></tr>';
    }).join('');
    var staff = [['leaders', s.leaders], ['workers', s.workers], ['grids', s.grids],
      ['households', s.households], ['population', s.population], ['checkpoints', s.checkpoints]]
      .map(function (kv) {
        return '<div><dt>' + esc(labels[kv[0]]) + '</dt><dd>' + fmt(kv[1]) + '</dd></div>';
      }).join('');
    var path = s.lineage.slice(1, -1).map(function (a) { return esc(a.name); }).join(' › ');
    var href = GA.pageUrl(o.pageUrl, o.query, s.code, s.level);
    return '<div class="ga-pop">' +
      '<div class="ga-pop-head"><div class="ga-pop-name">' + esc(s.name) + '</div>' +
      '<div class="ga-pop-meta">' + esc(labels.levels[s.level] || s.level) + ' · ' + esc(s.code) +
      (path ? ' · ' + path : '') + '</div></div>' +
      '<div class="ga-pop-period">' + esc(labels.period) + ' ' + esc(s.period.from) + ' – ' + esc(s.period.to) + '</div>' +
      '<table class="ga-pop-metrics">' + metrics + '</table>' +
      '<dl class="ga-pop-staff">' + staff + '</dl>' +
      '<a class="ga-pop-open" href="' + esc(href) + '">' + esc(labels.open) + ' ›</a></div>';
  };

  /* ---- Checkpoints: heat weights and clustered markers -------------------------------- */

  function checkpointsOnce(layer, o, use) {
    var done = false;
    layer.on('add', function () {
      if (done) { return; }
      done = true;
      GA.getJSON(o.url).then(use).catch(function (err) { done = false; report(err); });
    });
  }

  GA.heat = function (map, o) {
    setUp(map);
    // Cool hues, so that the heat never reads as a class of the (yellow-to-red) choropleth.
    var layer = L.heatLayer([], {pane: 'ga-heat', radius: o.radius, blur: o.blur,
      minOpacity: o.minOpacity,
      gradient: o.gradient || {0.2: '#c6dbef', 0.45: '#6baed6', 0.65: '#2171b5', 0.85: '#6a51a3', 1: '#3f007d'}});
    /* Also called with new weights for the same checkpoints (the wall's refresh). */
    layer.update = function (fc) {
      var points = [];
      fc.features.forEach(function (f) {
        if (f.properties.checks > 0) {
          points.push([f.geometry.coordinates[1], f.geometry.coordinates[0], f.properties.checks]);
        }
      });
      layer.setOptions({max: fc.max || 1});
      layer.setLatLngs(points);
      GA.status.heat = points.length;
    };
    checkpointsOnce(layer, o, layer.update);
    return layer;
  };

  GA.checkpoints = function (map, o) {
    var r = setUp(map);
    var outer = L.layerGroup();
    var cluster = L.markerClusterGroup({chunkedLoading: true, showCoverageOnHover: false,
      maxClusterRadius: 45, disableClusteringAtZoom: 17, spiderfyOnMaxZoom: false});
    var labels = o.labels;
    var loaded = false;
    var shown = false;

    function tooltip(m) {
      var p = m.feature.properties;
      return '<div class="ga-tip"><div class="ga-tip-name">' + esc(p.name) + '</div>' +
        '<div class="ga-tip-value">' + fmt(p.checks) + ' <span>' + esc(labels.persons) + '</span></div></div>';
    }
    function popup(m) {
      var p = m.feature.properties;
      return '<div class="ga-pop"><div class="ga-pop-head"><div class="ga-pop-name">' + esc(p.name) + '</div>' +
        '<div class="ga-pop-meta">' + esc(labels.kinds[p.kind] || p.kind) + ' · ' + esc(p.code) + '</div></div>' +
        '<dl class="ga-pop-staff"><div><dt>' + esc(labels.checks) + '</dt><dd>' + fmt(p.checks) + '</dd></div></dl>' +
        '<a class="ga-pop-open" href="' + esc(GA.pageUrl(o.pageUrl, o.query, p.grid, 'grid')) + '">' +
        esc(labels.grid) + ' ' + esc(p.grid) + ' ›</a></div>';
    }
    function fill(fc) {
      var markers = fc.features.map(function (f) {
        var c = f.geometry.coordinates;
        var m = L.circleMarker([c[1], c[0]], {renderer: r.points, pane: 'ga-points', radius: 6,
          color: '#ffffff', weight: 1.5, fillColor: KIND_COLORS[f.properties.kind] || '#444', fillOpacity: 0.95});
        m.feature = f;
        m.bindTooltip(tooltip, {direction: 'top', offset: [0, -6], className: 'ga-tooltip', opacity: 1});
        m.bindPopup(popup, {className: 'ga-popup', minWidth: 220});
        return m;
      });
      cluster.addLayers(markers);
      GA.status.checkpoints = markers.length;
    }
    function gate() {
      var want = map.getZoom() >= o.minZoom;
      if (want && !shown) {
        outer.addLayer(cluster);
        shown = true;
        if (!loaded) {
          loaded = true;
          GA.getJSON(o.url).then(fill).catch(function (err) { loaded = false; report(err); });
        }
      } else if (!want && shown) {
        outer.removeLayer(cluster);
        shown = false;
      }
    }
    outer.on('add', function () { map.on('zoomend', gate); gate(); });
    outer.on('remove', function () {
      map.off('zoomend', gate);
      if (shown) { outer.removeLayer(cluster); shown = false; }
    });
    return outer;
  };

  /* ---- Search box with suggestions ---------------------------------------------------- */

  GA.initSearch = function (form) {
    var input = form.querySelector('input[name=q]');
    var list = form.querySelector('.ga-suggest');
    var query = [];
    form.querySelectorAll('input[type=hidden]').forEach(function (h) { query.push([h.name, h.value]); });
    var pageUrl = form.getAttribute('data-page-url');
    var suggestUrl = form.getAttribute('data-suggest-url');
    var levelNames = JSON.parse(form.getAttribute('data-levels') || '{}');
    var emptyText = form.getAttribute('data-empty') || '';
    var timer = null;
    var seq = 0;
    var active = -1;

    function hide() { list.hidden = true; list.innerHTML = ''; active = -1; input.setAttribute('aria-expanded', 'false'); }
    function links() { return list.querySelectorAll('a'); }
    function mark(i) {
      var all = links();
      if (!all.length) { return; }
      active = (i + all.length) % all.length;
      all.forEach(function (a, j) { a.classList.toggle('active', j === active); a.setAttribute('aria-selected', j === active); });
    }
    function render(results) {
      if (!results.length) {
        list.innerHTML = '<li class="ga-suggest-empty">' + esc(emptyText) + '</li>';
      } else {
        list.innerHTML = results.map(function (h) {
          var meta = esc(levelNames[h.level] || h.level) + (h.path.length ? ' · ' + h.path.map(esc).join(' › ') : '');
          return '<li role="option"><a href="' + esc(GA.pageUrl(pageUrl, query, h.code, h.level)) + '" data-code="' +
            esc(h.code) + '"><span class="ga-suggest-name">' + esc(h.name) + '</span><span class="ga-suggest-meta">' +
            meta + ' · ' + esc(h.code) + '</span></a></li>';
        }).join('');
      }
      list.hidden = false;
      input.setAttribute('aria-expanded', 'true');
      active = -1;
    }
    function suggest() {
      var q = input.value.trim();
      if (!q) { hide(); return; }
      var mine = ++seq;
      fetch(withParams(suggestUrl, {q: q, limit: 8}), {credentials: 'same-origin'})
        .then(function (r) { return r.ok ? r.json() : {results: []}; })
        .then(function (data) { if (mine === seq) { render(data.results || []); } })
        .catch(function () { /* the form still submits to /search */ });
    }
    input.addEventListener('input', function () { clearTimeout(timer); timer = setTimeout(suggest, 120); });
    input.addEventListener('keydown', function (e) {
      if (e.key === 'ArrowDown') { e.preventDefault(); mark(active + 1); }
      else if (e.key === 'ArrowUp') { e.preventDefault(); mark(active - 1); }
      else if (e.key === 'Escape') { hide(); }
      else if (e.key === 'Enter' && active >= 0) { e.preventDefault(); window.location.href = links()[active].href; }
    });
    document.addEventListener('click', function (e) { if (!form.contains(e.target)) { hide(); } });
  };

  /* ---- Controls: selects apply at once; dates keep from <= to ------------------------- */

  GA.initControls = function (form) {
    form.querySelectorAll('select').forEach(function (s) {
      s.addEventListener('change', function () { form.submit(); });
    });
    var from = form.querySelector('input[name=from]');
    var to = form.querySelector('input[name=to]');
    if (from && to) {
      var sync = function () { to.min = from.value || from.min; from.max = to.value || to.max; };
      from.addEventListener('change', sync);
      to.addEventListener('change', sync);
      sync();
    }
  };

  document.addEventListener('DOMContentLoaded', function () {
    document.querySelectorAll('form.ga-search').forEach(GA.initSearch);
    document.querySelectorAll('form.ga-controls').forEach(GA.initControls);
  });
})(window, document);
