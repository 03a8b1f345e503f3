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

  /* One request per URL, shared by the layers that need it (heat and markers). The page's
   * first script may have started some already (window.GridAtlasEarly, templates/map.html). */
  var requests = {};
  GA.getJSON = function (url) {
    var early = window.GridAtlasEarly && window.GridAtlasEarly.requests;
    if (!requests[url]) {
      var started = early && early[url];
      if (started) { delete early[url]; }
      requests[url] = (started || fetch(url, {credentials: 'same-origin', headers: {Accept: 'application/json'}}))
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
      var early = window.GridAtlasEarly;
      if (have === null && o.early && early && early.bucket > want) {
        want = early.bucket;  // already on its way, and fine enough
      }
      if (have === null || want > have) {
        have = want;
        load(want);
      }
    }
    function settled() { clearTimeout(timer); timer = setTimeout(check, 250); }
    layer.on('add', function () { map.on('zoomend', settled); check(); });
    layer.on('remove', function () { map.off('zoomend', settled); clearTimeout(timer); have = null; });
  }

  /* ---- Many areas on one canvas ------------------------------------------------------- */

  /* Thousands of areas (the city's 10,205 grids) as ONE layer, from the packed answer of
   * children.geojson?format=packed: coordinates go straight into typed arrays (no GeoJSON
   * objects, no L.Polygon per area), areas of one fill colour share a few canvas paths, and the
   * mouse is hit-tested through a grid of cells (a few point-in-polygon tests per move instead
   * of asking every polygon). Leaflet's Renderer places the canvas and animates zooms, as for
   * L.Canvas. eachLayer() hands out light per-area objects with feature, options.fillColor and
   * setStyle({fillColor}): all that the day-by-day painters (static/playback.js) use. The base
   * map's district and town outlines use it too (from GeoJSON, not interactive).
   * Measured in headless Chromium on the city's grids: decoding 15 ms, a full redraw 11-17 ms,
   * where L.geoJSON took about 1 s to build and draw them. */
  var CELLS = 128;
  var PATH_AREAS = 50;

  /* A GeoJSON collection of (Multi)Polygons in the packed layout, with plain coordinates
   * (format "geojson") and the features' properties (props). */
  function packGeoJSON(fc) {
    var out = {format: 'geojson', props: [], polygons: [], rings: [], points: [], coords: []};
    fc.features.forEach(function (f) {
      var g = f.geometry || {coordinates: []};
      var polys = g.type === 'MultiPolygon' ? g.coordinates : (g.type === 'Polygon' ? [g.coordinates] : []);
      out.props.push(f.properties || {});
      out.polygons.push(polys.length);
      polys.forEach(function (rings) {
        out.rings.push(rings.length);
        rings.forEach(function (ring) {
          out.points.push(ring.length - 1);  // the closing point repeats the first
          for (var k = 0; k < ring.length - 1; k++) { out.coords.push(ring[k][0], ring[k][1]); }
        });
      });
    });
    return out;
  }

  function AreaRef(layer, i) {
    this._layer = layer;
    this._i = i;
    this.feature = {type: 'Feature', properties: layer._props[i]};
  }
  AreaRef.prototype.setStyle = function (s) {
    if (s && s.fillColor) { this._layer.setColor(this._i, s.fillColor); }
    return this;
  };
  Object.defineProperty(AreaRef.prototype, 'options', {get: function () {
    return {fillColor: this._layer._colors[this._i], pane: this._layer.options.pane};
  }});

  var AreaCanvas = L.Renderer.extend({
    options: {padding: 0.1, interactive: true},

    /* data: a packed choropleth, or a GeoJSON collection of (Multi)Polygons; options: pane,
     * crs (the map's), interactive, style (fill, fillColor where an area has no colour of its
     * own, fillOpacity, stroke, color, weight, opacity), highlight (color, weight),
     * onHover(properties or null, event), onClick(properties, event) (clicks, context menus). */
    initialize: function (data, options) {
      L.Renderer.prototype.initialize.call(this, options);
      this._hover = -1;
      this._refs = null;
      this._decode(data, options.crs || L.CRS.EPSG3857);
    },

    _decode: function (d, crs) {
      d = d.format === 'packed' ? d : packGeoJSON(d);
      var n = d.polygons.length, m = d.coords.length / 2;
      var xs = this._xs = new Float64Array(m), ys = this._ys = new Float64Array(m);
      var k, p, x = 0, y = 0, scale = Math.pow(10, d.decimals);
      var lon = new Float64Array(m), lat = new Float64Array(m);
      if (d.format === 'packed') {  // running sums of the differences
        for (k = 0; k < m; k++) {
          x += d.coords[2 * k];
          y += d.coords[2 * k + 1];
          lon[k] = x / scale;
          lat[k] = y / scale;
        }
      } else {
        for (k = 0; k < m; k++) { lon[k] = d.coords[2 * k]; lat[k] = d.coords[2 * k + 1]; }
      }
      // The map's projection at scale 1 (Web Mercator written out: no objects per point).
      if (crs === L.CRS.EPSG3857) {
        var rad = Math.PI / 180, max = L.Projection.SphericalMercator.MAX_LATITUDE, sin;
        for (k = 0; k < m; k++) {
          sin = Math.sin(Math.max(Math.min(max, lat[k]), -max) * rad);
          xs[k] = lon[k] / 360 + 0.5;
          ys[k] = 0.5 - Math.log((1 + sin) / (1 - sin)) / (4 * Math.PI);
        }
      } else {
        var s0 = crs.scale(0);
        for (k = 0; k < m; k++) {
          p = crs.latLngToPoint(L.latLng(lat[k], lon[k]), 0);
          xs[k] = p.x / s0;
          ys[k] = p.y / s0;
        }
      }
      var ringStart = this._ringStart = new Int32Array(d.points.length + 1);
      for (k = 0; k < d.points.length; k++) { ringStart[k + 1] = ringStart[k] + d.points[k]; }
      var areaRing = this._areaRing = new Int32Array(n + 1);
      var box = this._box = new Float64Array(4 * n);
      var props = this._props = new Array(n), colors = this._colors = new Array(n);
      var poly = 0, ring = 0, i, j, a, b;
      var all = [Infinity, Infinity, -Infinity, -Infinity];
      for (i = 0; i < n; i++) {
        areaRing[i] = ring;
        for (j = 0; j < d.polygons[i]; j++) { ring += d.rings[poly++]; }
        a = [Infinity, Infinity, -Infinity, -Infinity];
        for (k = ringStart[areaRing[i]], b = ringStart[ring]; k < b; k++) {
          if (xs[k] < a[0]) { a[0] = xs[k]; }
          if (ys[k] < a[1]) { a[1] = ys[k]; }
          if (xs[k] > a[2]) { a[2] = xs[k]; }
          if (ys[k] > a[3]) { a[3] = ys[k]; }
        }
        for (j = 0; j < 4; j++) { box[4 * i + j] = a[j]; }
        all = [Math.min(all[0], a[0]), Math.min(all[1], a[1]), Math.max(all[2], a[2]), Math.max(all[3], a[3])];
        props[i] = d.props ? d.props[i] : {code: d.codes[i], name: d.names[i], level: d.level, value: d.values[i],
          'class': d.classes[i], color: d.colors[d.classes[i]]};
        colors[i] = props[i].color;
      }
      areaRing[n] = ring;
      this._count = n;
      // Cells of the hit test: each lists the areas whose box touches it.
      this._all = all;
      this._cellW = Math.max((all[2] - all[0]) / CELLS, 1e-12);
      this._cellH = Math.max((all[3] - all[1]) / CELLS, 1e-12);
      var cells = this._cells = new Array(CELLS * CELLS);
      for (i = 0; i < n; i++) {
        var c0 = this._cell(box[4 * i], box[4 * i + 1]), c1 = this._cell(box[4 * i + 2], box[4 * i + 3]);
        for (a = c0[1]; a <= c1[1]; a++) {
          for (b = c0[0]; b <= c1[0]; b++) { (cells[a * CELLS + b] = cells[a * CELLS + b] || []).push(i); }
        }
      }
    },

    _cell: function (x, y) {
      return [Math.min(CELLS - 1, Math.max(0, Math.floor((x - this._all[0]) / this._cellW))),
        Math.min(CELLS - 1, Math.max(0, Math.floor((y - this._all[1]) / this._cellH)))];
    },

    /* The area under a point in units of the map's projection at scale 1, or -1. */
    _areaAt: function (x, y) {
      var all = this._all;
      if (x < all[0] || x > all[2] || y < all[1] || y > all[3]) { return -1; }
      var c = this._cell(x, y), list = this._cells[c[1] * CELLS + c[0]] || [];
      for (var j = list.length - 1; j >= 0; j--) {
        var i = list[j], box = this._box;
        if (x >= box[4 * i] && x <= box[4 * i + 2] && y >= box[4 * i + 1] && y <= box[4 * i + 3] && this._inside(i, x, y)) {
          return i;
        }
      }
      return -1;
    },

    _inside: function (i, x, y) {  // even-odd rule over every ring of the area (holes, islands)
      var xs = this._xs, ys = this._ys, inside = false;
      for (var r = this._areaRing[i]; r < this._areaRing[i + 1]; r++) {
        var start = this._ringStart[r], end = this._ringStart[r + 1];
        for (var k = start, l = end - 1; k < end; l = k++) {
          if ((ys[k] > y) !== (ys[l] > y) && x < (xs[l] - xs[k]) * (y - ys[k]) / (ys[l] - ys[k]) + xs[k]) {
            inside = !inside;
          }
        }
      }
      return inside;
    },

    /* Per-area handles for the painters; made on first use. */
    eachLayer: function (fn, context) {
      if (!this._refs) {
        this._refs = new Array(this._count);
        for (var i = 0; i < this._count; i++) { this._refs[i] = new AreaRef(this, i); }
      }
      this._refs.forEach(fn, context);
      return this;
    },

    setColor: function (i, color) {
      if (this._colors[i] !== color) {
        this._colors[i] = color;
        this._requestRedraw();
      }
    },

    /* New colours for every area: fn(properties) -> colour (it may update the properties). */
    recolor: function (fn) {
      for (var i = 0; i < this._count; i++) { this._colors[i] = fn(this._props[i]); }
      this._requestRedraw();
    },

    setStyle: function (style) {
      this.options.style = style;
      this._requestRedraw();
      return this;
    },

    getEvents: function () {
      var events = L.Renderer.prototype.getEvents.call(this);
      if (this.options.interactive) {
        events.mousemove = this._onMouseMove;
        events.mouseout = this._onMouseOut;
        events.click = this._onClick;
        events.contextmenu = this._onClick;
      }
      return events;
    },

    onAdd: function () {
      L.Renderer.prototype.onAdd.call(this);
      this._redraw();
    },

    _initContainer: function () {
      this._container = document.createElement('canvas');
      this._ctx = this._container.getContext('2d');
    },

    _destroyContainer: function () {
      L.Util.cancelAnimFrame(this._redrawRequest);
      this._redrawRequest = null;
      L.DomUtil.remove(this._container);
      delete this._ctx;
      delete this._container;
      this._setHover(-1, null);
    },

    /* Size and place the canvas over the view (plus padding), as L.Canvas does. */
    _update: function () {
      if (this._map._animatingZoom && this._bounds) { return; }
      L.Renderer.prototype._update.call(this);
      var b = this._bounds, size = b.getSize(), c = this._container, m = L.Browser.retina ? 2 : 1;
      L.DomUtil.setPosition(c, b.min);
      c.width = m * size.x;
      c.height = m * size.y;
      c.style.width = size.x + 'px';
      c.style.height = size.y + 'px';
      if (m !== 1) { this._ctx.scale(m, m); }
      this._ctx.translate(-b.min.x, -b.min.y);
      this._scale = this._map.options.crs.scale(this._map.getZoom());
      this._origin = this._map.getPixelOrigin();
      this.fire('update');
    },

    _updatePaths: function () { this._redraw(); },

    _requestRedraw: function () {
      if (this._map && !this._redrawRequest) {
        this._redrawRequest = L.Util.requestAnimFrame(function () { this._redraw(); }, this);
      }
    },

    /* Redraw everything, or only the areas touching `clip` (layer pixels: min/max x, y). */
    _redraw: function (clip) {
      if (!clip) {
        L.Util.cancelAnimFrame(this._redrawRequest);
        this._redrawRequest = null;
      }
      if (!this._map || !this._ctx || !this._bounds) { return; }
      var ctx = this._ctx, b = this._bounds, k = this._scale, ox = this._origin.x, oy = this._origin.y;
      var x0 = b.min.x, y0 = b.min.y, x1 = b.max.x, y1 = b.max.y;
      ctx.save();
      if (clip) {
        // Whole pixels, or the edges of the cleared box would show as faint lines.
        x0 = Math.max(x0, Math.floor(clip[0])); y0 = Math.max(y0, Math.floor(clip[1]));
        x1 = Math.min(x1, Math.ceil(clip[2])); y1 = Math.min(y1, Math.ceil(clip[3]));
        if (x0 >= x1 || y0 >= y1) { ctx.restore(); return; }
        ctx.beginPath();
        ctx.rect(x0, y0, x1 - x0, y1 - y0);
        ctx.clip();
        ctx.clearRect(x0, y0, x1 - x0, y1 - y0);
      } else {
        ctx.save();
        ctx.setTransform(1, 0, 0, 1, 0, 0);
        ctx.clearRect(0, 0, this._container.width, this._container.height);
        ctx.restore();
      }
      // What is in view, in projection units: only those areas are traced.
      var ux0 = (x0 + ox) / k, uy0 = (y0 + oy) / k, ux1 = (x1 + ox) / k, uy1 = (y1 + oy) / k;
      var box = this._box, shown = [], byColor = {}, colors = [], i, j;
      var st = this.options.style || {};
      for (i = 0; i < this._count; i++) {
        if (box[4 * i + 2] < ux0 || box[4 * i] > ux1 || box[4 * i + 3] < uy0 || box[4 * i + 1] > uy1) { continue; }
        shown.push(i);
        var col = this._colors[i] || st.fillColor;
        if (st.fill === false || !col) { continue; }
        if (!byColor[col]) { byColor[col] = []; colors.push(col); }
        byColor[col].push(i);
      }
      ctx.lineCap = ctx.lineJoin = 'round';
      ctx.globalAlpha = st.fillOpacity === undefined ? 0.8 : st.fillOpacity;
      for (j = 0; j < colors.length; j++) {
        ctx.fillStyle = colors[j];
        this._paint(ctx, byColor[colors[j]], k, ox, oy, 'fill');
      }
      if (st.stroke !== false && st.weight) {
        ctx.globalAlpha = st.opacity === undefined ? 1 : st.opacity;
        ctx.lineWidth = st.weight;
        ctx.strokeStyle = st.color || '#fff';
        this._paint(ctx, shown, k, ox, oy, 'stroke');
      }
      if (this._hover >= 0) {
        var hl = this.options.highlight || {};
        ctx.beginPath();
        this._trace(ctx, [this._hover], k, ox, oy);
        ctx.globalAlpha = 1;
        ctx.lineWidth = hl.weight || 2.5;
        ctx.strokeStyle = hl.color || '#111827';
        ctx.stroke();
      }
      ctx.restore();
    },

    /* Fill or stroke `areas` in the current style, PATH_AREAS areas to a path: a canvas path
     * costs more than linearly in its length (one path of 10,205 grids takes a second to
     * build, 200 paths of 50 take 10 ms), and one path per area costs a fill call each. */
    _paint: function (ctx, areas, k, ox, oy, how) {
      for (var j = 0; j < areas.length; j += PATH_AREAS) {
        ctx.beginPath();
        this._trace(ctx, areas.slice(j, j + PATH_AREAS), k, ox, oy);
        if (how === 'fill') { ctx.fill('evenodd'); } else { ctx.stroke(); }
      }
    },

    /* Add the rings of `areas` to the current path. A point within half a pixel of the last
     * one drawn is left out: at the city's zoom most of a grid's points are (the path costs
     * by its points). */
    _trace: function (ctx, areas, k, ox, oy) {
      var xs = this._xs, ys = this._ys, areaRing = this._areaRing, ringStart = this._ringStart;
      var x, y, lx, ly;
      for (var j = 0; j < areas.length; j++) {
        var i = areas[j];
        for (var r = areaRing[i]; r < areaRing[i + 1]; r++) {
          var p = ringStart[r], end = ringStart[r + 1];
          lx = xs[p] * k - ox;
          ly = ys[p] * k - oy;
          ctx.moveTo(lx, ly);
          for (p++; p < end; p++) {
            x = xs[p] * k - ox;
            y = ys[p] * k - oy;
            if (x - lx > 0.5 || lx - x > 0.5 || y - ly > 0.5 || ly - y > 0.5) {
              ctx.lineTo(x, y);
              lx = x;
              ly = y;
            }
          }
          ctx.closePath();
        }
      }
    },

    /* The pixel box (layer points) of area i, widened by the highlight's line. */
    _pixelBox: function (i) {
      var k = this._scale, ox = this._origin.x, oy = this._origin.y, box = this._box;
      var pad = ((this.options.highlight || {}).weight || 2.5) + 2;
      return [box[4 * i] * k - ox - pad, box[4 * i + 1] * k - oy - pad,
        box[4 * i + 2] * k - ox + pad, box[4 * i + 3] * k - oy + pad];
    },

    _setHover: function (i, e) {
      if (i === this._hover) { return; }
      var old = this._hover;
      this._hover = i;
      if (this._container) {
        L.DomUtil[i >= 0 ? 'addClass' : 'removeClass'](this._container, 'leaflet-interactive');
      }
      if (this._ctx && this._bounds && !this._redrawRequest) {  // only around the two outlines
        if (old >= 0) { this._redraw(this._pixelBox(old)); }
        if (i >= 0) { this._redraw(this._pixelBox(i)); }
      }
      if (i < 0 && this.options.onHover) { this.options.onHover(null, e); }
    },

    /* The area under a map mouse event; -1 when the mouse is on something else (a control,
     * a marker) or on no area. */
    _event: function (e) {
      if (!e.originalEvent || e.originalEvent.target !== this._container) { return -1; }
      var map = this._map, k = map.options.crs.scale(map.getZoom()), o = map.getPixelOrigin();
      return this._areaAt((e.layerPoint.x + o.x) / k, (e.layerPoint.y + o.y) / k);
    },

    _onMouseMove: function (e) {
      var map = this._map;
      if (!map || (map.dragging && map.dragging.moving()) || map._animatingZoom) { return; }
      var i = this._event(e);
      this._setHover(i, e);
      if (i >= 0 && this.options.onHover) { this.options.onHover(this._props[i], e); }
    },

    _onMouseOut: function (e) { this._setHover(-1, e); },

    _onClick: function (e) {
      var i = this._event(e);
      if (i >= 0 && this.options.onClick) { this.options.onClick(this._props[i], e); }
    }
  });
  GA.AreaCanvas = AreaCanvas;

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
        // Hundreds of detailed outlines: one canvas each, no Leaflet polygon per area.
        group.addLayer(new AreaCanvas(res[0], {pane: 'ga-land', crs: map.options.crs, interactive: false,
          style: {color: '#b5ad9f', weight: 0.8, opacity: 1, fillColor: '#f4f1ea', fillOpacity: 1, fill: !o.tiles}}));
        group.addLayer(new AreaCanvas(res[1], {pane: 'ga-lines', crs: map.options.crs, interactive: false,
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

  /* From this many areas on (o.packed, else o.count; web/layers.py PACKED_FROM), the choropleth
   * is one AreaCanvas fed with packed geometry; fewer areas are Leaflet polygons (a layer per
   * area, with Leaflet's own tooltips and events). */
  GA.PACKED_FROM = 1000;

  GA.choropleth = function (map, o) {
    var r = setUp(map);
    var group = L.featureGroup();
    var current = null;
    var bucket = null;
    var weight = o.count > 3000 ? 0.25 : (o.count > 300 ? 0.6 : 1.2);
    var labels = o.labels;
    var values = null;  // code -> row of the last update(); geometry loaded later gets them too
    var packed = o.packed === undefined ? o.count >= GA.PACKED_FROM : o.packed;
    var highlight = {weight: Math.max(2.5, weight * 3), color: '#111827'};

    // Thousands of grids at a low zoom are a few pixels each: their outlines would only grey
    // the colours and cost half of every redraw, so they are drawn from zoom 12 on.
    var dense = o.count > 3000;
    var outlined = function () { return !dense || map.getZoom() >= 12; };
    var stroked = outlined();
    map.on('zoomend', function () {
      if (current && outlined() !== stroked) {
        stroked = outlined();
        current.setStyle(packed ? style({properties: {}}) : style);
      }
    });

    function style(feature) {
      return L.Util.extend({fillColor: feature.properties.color, fillOpacity: 0.82, color: '#ffffff',
        weight: weight, opacity: 0.9, stroke: outlined()}, o.style);
    }

    function latest(p) {
      var row = values[p.code];
      if (row) { p.value = row.value; p['class'] = row['class']; p.color = row.color; }
      return p.color;
    }

    function restyle(layer) {
      if (!values) { return; }
      if (packed) { layer.recolor(latest); return; }
      layer.eachLayer(function (f) { latest(f.feature.properties); });
      layer.setStyle(style);
    }

    /* New counts for the same areas (rows of /values): restyle the polygons in place. */
    group.update = function (rows) {
      values = {};
      rows.forEach(function (row) { values[row.code] = row; });
      if (current) { restyle(current); }
    };

    function tipHtml(p) {
      return '<div class="ga-tip"><div class="ga-tip-name">' + esc(p.name) +
        ' <span class="ga-tip-level">' + esc(labels.levels[p.level] || p.level) + '</span></div>' +
        '<div class="ga-tip-value">' + fmt(p.value) + ' <span>' + esc(o.unit) + '</span></div>' +
        '<div class="ga-tip-hint">' + esc(o.drill ? labels.hint_drill : labels.hint_grid) + '</div></div>';
    }
    var tipOptions = {sticky: true, direction: 'top', offset: [0, -10], className: 'ga-tooltip', opacity: 1};

    function clicked(p, latlng, type) {
      if (type === 'contextmenu') {
        GA.openSummary(map, latlng, p.code, o);
      } else if (o.drill) {
        window.location.href = GA.pageUrl(o.pageUrl, o.query, p.code, p.level);
      } else {
        GA.openSummary(map, latlng, p.code, o);
      }
    }

    /* Packed: one canvas layer with its own hit test; one tooltip follows the mouse. */
    var tip = L.tooltip(tipOptions);
    var tipFor = null;
    function hovered(p, e) {
      if (!p) {
        tipFor = null;
        tip.close();
        return;
      }
      if (p !== tipFor) {
        tipFor = p;
        tip.setContent(tipHtml(p));
      }
      tip.setLatLng(e.latlng);
      if (!map.hasLayer(tip)) { tip.openOn(map); }
    }
    function canvasLayer(data) {
      return new AreaCanvas(data, {pane: 'ga-areas', crs: map.options.crs, style: style({properties: {}}),
        highlight: highlight, onHover: hovered,
        onClick: function (p, e) { clicked(p, e.latlng, e.type); }});
    }
    group.on('remove', function () { hovered(null); });

    function load(b) {
      bucket = b;
      var params = packed ? {zoom: b, format: 'packed'} : {zoom: b};
      GA.getJSON(withParams(o.url, params)).then(function (data) {
        if (b !== bucket) { return; }
        var layer = packed ? canvasLayer(data) : L.geoJSON(data, {style: style, renderer: r.areas, pane: 'ga-areas'});
        restyle(layer);
        if (current) { group.removeLayer(current); }
        current = layer;
        group.addLayer(layer);
        GA.status.choropleth = packed ? data.codes.length : data.features.length;
        group.fire('ga:loaded', {collection: data});
      }).catch(report);
    }

    // Leaflet polygons: the group's tooltip and events, per polygon.
    group.bindTooltip(function (layer) { return tipHtml(layer.feature.properties); }, tipOptions);
    group.on('mouseover', function (e) {
      e.layer.setStyle(highlight);
      e.layer.bringToFront();
    });
    group.on('mouseout', function (e) {
      if (current) { current.resetStyle(e.layer); }
    });
    group.on('click contextmenu', function (e) {
      clicked(e.layer.feature.properties, e.latlng, e.type);
    });
    followZoom(group, map, o, load);
    GA.choroplethLayer = group;  // static/playback.js restyles it day by day
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
    // Without weights (before they arrive) only clear: the plugin would read back, colour
    // and write the whole canvas for nothing, while the map is being drawn.
    var redraw = layer._redraw;
    layer._redraw = function () {
      if (this._latlngs.length) { return redraw.apply(this, arguments); }
      this._frame = null;
      if (this._heat) { this._heat._ctx.clearRect(0, 0, this._heat._width, this._heat._height); }
    };
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

  /* Scripts and stylesheets (our own URLs) that only some views need, loaded once. */
  var assets = {};
  GA.loadAssets = function (urls) {
    return Promise.all((urls || []).map(function (url) {
      if (!assets[url]) {
        assets[url] = new Promise(function (resolve, reject) {
          var css = /\.css(\?|$)/.test(url);
          var el = document.createElement(css ? 'link' : 'script');
          if (css) { el.rel = 'stylesheet'; el.href = url; } else { el.src = url; }
          el.onload = resolve;
          el.onerror = function () { delete assets[url]; reject(new Error('could not load ' + url)); };
          document.head.appendChild(el);
        });
      }
      return assets[url];
    }));
  };

  GA.checkpoints = function (map, o) {
    var r = setUp(map);
    var outer = L.layerGroup();
    var cluster = null;  // made when first shown: the cluster plugin loads only then (o.assets)
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
      if (want && !cluster) {
        GA.loadAssets(o.assets).then(function () {
          if (cluster) { return; }
          cluster = L.markerClusterGroup({chunkedLoading: true, showCoverageOnHover: false,
            maxClusterRadius: 45, disableClusteringAtZoom: 17, spiderfyOnMaxZoom: false});
          if (outer._map) { gate(); }
        }).catch(report);
      } else if (want && !shown) {
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
