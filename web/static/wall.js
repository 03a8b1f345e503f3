/* Grid Atlas command-centre wall: keeps the page alive for days without reloading it.
 *
 * The map's layers are the officials' map layers (static/app.js), made once by Folium. Every
 * `refresh` seconds one cycle runs: it asks /api/wall for the tiles and the ranking of the
 * current view and, only when the store version or "today" moved, the map's endpoints for new
 * colours (/values) and heat (/checkpoints.geojson), which restyle the existing layers in place
 * (layer.update). Nothing is re-created per cycle: tiles, ranking rows, legend rows and labels
 * are made once and only their text and styles change, so the page does not grow.
 *
 * When a cycle fails (server stopped, network down, timeout) the last data stay on screen with
 * a "数据更新于 HH:MM" badge; the next cycles keep trying and the badge goes by itself. Until the
 * map's polygons and the first cycle have arrived, a "connecting…" notice covers the map and
 * the polygons are asked for again every few seconds, so a server that was down when the page
 * opened never leaves a blank map. A wall device whose login ended (revoked, expired) is
 * covered by a notice saying so (and uncovered if it is signed in again).
 * The optional tour moves the view through the city and its districts every `dwell` seconds.
 * The optional playback loops the map through the last `playback` days, one day
 * every `step` seconds, from one /daily.json request (classes fixed for all those days),
 * painted by the officials' playback code (GridAtlas.dayRows / DayPainter, static/playback.js).
 *
 * GridAtlasWall.claim() runs the device page (/wall/device): it takes the token from the URL's
 * fragment, removes it from the address bar and exchanges it for a device session.
 */
(function (window, document) {
  'use strict';

  var W = window.GridAtlasWall = {};
  // What the tests and the memory bench read.
  W.state = {cycles: 0, ok: 0, failed: 0, mapUpdates: 0, tourSteps: 0, stale: false, lastOk: null, lastError: null,
    errors: [], version: null, day: null, stop: 0, connecting: true, geometryRetries: 0, ended: false,
    playbackDay: null, playbackSteps: 0, playbackLoops: 0};

  var cfg, map, layers, words, stops, refreshMs, timeoutMs;
  var GA = {};  // window.GridAtlas (static/app.js, static/playback.js), set by W.start
  var tiles = {};
  var rankRows = [];
  var legendRows = [];
  var labels = [];
  var frame = null;
  var board = null;
  var mapKey = null;
  var timer = null;
  var busy = false;
  var again = false;
  var el = {};
  var geometry = false;
  var lastRetry = 0;
  var play = null;

  function $(id) { return document.getElementById(id); }
  function fmt(n) { return Number(n || 0).toLocaleString('en-US'); }
  function fill(template, values) {
    return String(template).replace(/%\((\w+)\)s/g, function (m, k) { return k in values ? values[k] : m; });
  }
  function signed(n, digits) {
    var text = digits ? Math.abs(n).toFixed(digits) : fmt(Math.abs(n));
    return (n > 0 ? '+' : (n < 0 ? '\u2212' : '')) + text;
  }
  function pad(n) { return (n < 10 ? '0' : '') + n; }
  function hhmm(d) { return pad(d.getHours()) + ':' + pad(d.getMinutes()); }
  function hhmmss(d) { return hhmm(d) + ':' + pad(d.getSeconds()); }
  function withParams(url, params) {
    var u = new URL(url, window.location.href);
    Object.keys(params).forEach(function (k) { u.searchParams.set(k, params[k]); });
    return u.pathname + u.search;
  }

  /* A JSON GET that always asks the server (a 304 costs nothing) and gives up after a while,
     so that a hung connection cannot stop the cycles. */
  function getJSON(url) {
    var ctrl = new AbortController();
    var timeout = setTimeout(function () { ctrl.abort(); }, timeoutMs);
    return fetch(url, {credentials: 'same-origin', cache: 'no-cache', signal: ctrl.signal,
      headers: {Accept: 'application/json'}})
      .then(function (r) {
        if (!r.ok) {  // the server's own words (e.g. why a wall device was signed out)
          return r.json().catch(function () { return {}; }).then(function (body) {
            var err = new Error(body.error || ('HTTP ' + r.status + ' ' + url));
            err.status = r.status;
            throw err;
          });
        }
        return r.json();
      })
      .finally(function () { clearTimeout(timeout); });
  }

  /* Shrink a line's font until its text fits its box (the CSS size is the largest). */
  function fit(node) {
    node.style.fontSize = '';
    if (node.scrollWidth > node.clientWidth && node.clientWidth > 0) {
      var size = parseFloat(window.getComputedStyle(node).fontSize);
      node.style.fontSize = (size * node.clientWidth / node.scrollWidth * 0.98).toFixed(1) + 'px';
    }
  }

  /* ---- Tiles, ranking, legend, header ------------------------------------------------- */

  /* The 7-day line under a tile: one SVG polyline per tile, made once; each
   * refresh replaces its points. Each line has its own scale (its shape is what counts). */
  function drawTrend(t, values) {
    var nums = (values || []).map(function (v) { return v === null || v === undefined ? NaN : Number(v); });
    var ok = nums.filter(function (v) { return !isNaN(v); });
    if (!t.trend) {
      var ns = 'http://www.w3.org/2000/svg';
      t.trend = document.createElementNS(ns, 'svg');
      t.trend.setAttribute('class', 'wall-kpi-trend');
      t.trend.setAttribute('viewBox', '0 0 100 20');
      t.trend.setAttribute('preserveAspectRatio', 'none');
      t.trend.setAttribute('aria-hidden', 'true');
      // Its size and place are in wall.css (.wall-kpi-trend), with the rest of the tile's layout.
      t.trendLine = document.createElementNS(ns, 'polyline');
      t.trendLine.setAttribute('fill', 'none');
      t.trendLine.setAttribute('stroke', '#fdae61');
      t.trendLine.setAttribute('stroke-width', '2');
      t.trendLine.setAttribute('vector-effect', 'non-scaling-stroke');
      t.trend.appendChild(t.trendLine);
      t.root.appendChild(t.trend);
    }
    t.trend.style.visibility = ok.length > 1 ? 'visible' : 'hidden';
    if (ok.length < 2) { return; }
    var lo = Math.min.apply(null, ok), hi = Math.max.apply(null, ok), span = hi - lo || 1;
    var points = [];
    nums.forEach(function (v, i) {
      if (!isNaN(v)) { points.push((100 * i / (nums.length - 1)).toFixed(1) + ',' + (18 - 16 * (v - lo) / span).toFixed(1)); }
    });
    t.trendLine.setAttribute('points', points.join(' '));
    t.root.setAttribute('data-trend', nums.join(','));
  }

  function renderTiles(b) {
    b.kpis.forEach(function (k) {
      var t = tiles[k.key];
      if (!t) { return; }
      var missing = k.value === null || k.value === undefined;
      t.root.classList.toggle('wall-kpi-missing', missing);
      t.value.textContent = missing ? '\u2013' : (k.kind === 'rate' ? k.value.toFixed(1) : fmt(k.value));
      t.today.className = 'wall-kpi-today';
      if (k.kind === 'count') {
        t.todayLabel.textContent = words.today + ' ';
        t.todayValue.textContent = signed(k.today);
        t.note.textContent = k.yesterday === null ? '' : words.yesterday + ' ' + signed(k.yesterday);
      } else {
        var known = k.today !== null && k.today !== undefined;
        t.todayLabel.textContent = known ? words.vsYesterday + ' ' : '';
        // The arrow is the sign: "较昨日 ▼0.2 个百分点" fits the narrow tiles.
        var arrow = k.today > 0 ? '\u25b2' : (k.today < 0 ? '\u25bc' : '');
        t.todayValue.textContent = known ? arrow + (k.kind === 'rate' ? Math.abs(k.today).toFixed(1) + ' ' + words.points :
          fmt(Math.abs(k.today))) : '';
        if (k.today > 0) { t.today.classList.add('up'); } else if (k.today < 0) { t.today.classList.add('down'); }
        t.note.textContent = missing ? words.noFigures : (k.kind === 'rate' ?
          fill(words.online, {online: fmt(k.online), total: fmt(k.of)}) : fill(words.of, {n: fmt(k.of)}));
      }
      drawTrend(t, k.trend);
      fit(t.value);
      fit(t.today);
      fit(t.note);
    });
  }

  function renderRanking(b) {
    var r = b.ranking;
    el.rankTitle.textContent = b.area.level === 'city' ? words.rankCity : fill(words.rankDistrict, {name: b.area.name});
    rankRows.forEach(function (li, i) {
      var row = r.rows[i];
      li.hidden = !row;
      if (!row) { return; }
      li.setAttribute('data-code', row.code);
      li.children[0].textContent = row.rank;
      li.children[1].textContent = row.name;
      li.children[2].textContent = fmt(row.value);
      li.children[3].textContent = signed(row.today);
      li.children[4].firstChild.style.width = (r.max ? 100 * row.value / r.max : 0).toFixed(1) + '%';
    });
    var rows = 'repeat(' + Math.max(r.rows.length, 8) + ', minmax(0, 1fr))';
    if (el.rankList.style.gridTemplateRows !== rows) { el.rankList.style.gridTemplateRows = rows; }
    el.rankNote.textContent = r.count > r.rows.length ? fill(words.rankMore, {shown: r.rows.length, n: r.count}) : '';
  }

  /* The class scale: one block per class, its lower limit under its left edge and the highest
     limit under the right edge of the last one. */
  function renderLegend(legend, meta) {
    var n = legend.classes.length;
    legendRows.forEach(function (block, i) {
      var c = legend.classes[i];
      block.hidden = !c;
      if (!c) { return; }
      block.classList.toggle('last', i === n - 1);
      block.children[0].style.background = c.color;
      block.children[1].textContent = fmt(Math.round(i === 0 ? legend.lower : legend.classes[i - 1].upper));
      block.children[2].textContent = fmt(Math.round(c.upper));
    });
    el.legendMeta.textContent = meta || (words.legendLevel + ' \u00b7 ' + legend.period.from + ' \u2013 ' + legend.period.to);
  }

  function renderHead(b) {
    el.viewName.textContent = b.area.name;
    el.data.children[0].textContent = fill(words.dataDay, {day: ''});
    el.data.children[1].textContent = b.day;
    el.data.children[2].textContent = ' \u00b7 ' + fill(words.version, {v: b.version});
    el.legendHeat.textContent = fill(words.heat, {day: b.day});
  }

  function render(b) {
    board = b;
    W.state.version = b.version;
    W.state.day = b.day;
    renderHead(b);
    renderTiles(b);
    renderRanking(b);
  }

  /* ---- Map: new colours and heat for the same layers ------------------------------------ */

  function refreshMap(b) {
    var colours = cfg.playback ? getJSON(withParams(cfg.urls.daily, playbackPeriod(b))) :
      getJSON(withParams(cfg.urls.values, {from: b.period.from, to: b.day}));
    return Promise.all([
      colours,
      getJSON(withParams(cfg.urls.checkpoints, {from: b.day, to: b.day}))
    ]).then(function (res) {
      if (cfg.playback) {
        playData(res[0]);
      } else {
        layers.areas.update(res[0].values);
        renderLegend(res[0].legend);
      }
      layers.heat.update(res[1]);
      W.state.mapUpdates++;
    });
  }

  /* ---- Playback: the last N days, one day per step, looping ----------------------------- */

  function isoDay(ms) { return new Date(ms).toISOString().slice(0, 10); }

  /* The last `playback` days up to "today" (not before the start of the data). */
  function playbackPeriod(b) {
    var end = Date.parse(b.day + 'T00:00:00Z');
    var start = Math.max(Date.parse(b.period.from + 'T00:00:00Z'), end - (cfg.playback - 1) * 86400000);
    return {from: isoDay(start), to: b.day};
  }

  /* New days (first load, or the store changed): same painter and timer, fixed classes in the legend. */
  function playData(d) {
    if (!play) {
      play = {data: null, index: -1};
      play.painter = new GA.DayPainter(layers.areas, function () { if (play.data) { showDay(play.index); } });
      window.setInterval(function () {
        if (play.data) { showDay((play.index + 1) % play.data.days.length); }
      }, cfg.step * 1000);
    }
    play.data = d;
    var lg = d.legend;
    renderLegend({lower: lg.lower, period: d.period, classes: lg.colors.map(function (c, k) {
      return {color: c, upper: lg.bounds[k]};
    })}, fill(words.playbackFixed, {n: d.days.length, from: d.period.from, to: d.period.to}));
    showDay(Math.min(Math.max(play.index, 0), d.days.length - 1));
  }

  function showDay(i) {
    var d = play.data;
    if (i < 0) { return; }
    if (i === 0 && play.index === d.days.length - 1) { W.state.playbackLoops++; }
    play.index = i;
    play.painter.paint(GA.dayRows(d, i).rows);
    el.playbackDate.textContent = d.days[i];
    el.playbackName.textContent = fill(words.playback, {i: i + 1, n: d.days.length});
    el.playbackBar.style.width = (100 * (i + 1) / d.days.length).toFixed(1) + '%';
    W.state.playbackDay = d.days[i];
    W.state.playbackSteps++;
  }

  /* ---- Connecting: the map's polygons and the first cycle --------------------------------- */

  /* Until the polygons have come, ask for them again now and then: app.js loads them when the
     layer is added, and forgets a failed request. */
  function ensureGeometry() {
    if (geometry || GA.status.choropleth > 0) { geometry = true; return; }
    var now = Date.now();
    if (now - lastRetry < Math.max(refreshMs, 5000)) { return; }
    lastRetry = now;
    W.state.geometryRetries++;
    map.removeLayer(layers.areas);
    map.addLayer(layers.areas);
  }

  function updateConnecting() {
    var connecting = !(geometry && W.state.mapUpdates > 0);
    if (connecting !== W.state.connecting) {
      W.state.connecting = connecting;
      el.connecting.hidden = !connecting;
    }
    if (!connecting) {  // app.js's own error notes: the wall shows its state itself
      document.querySelectorAll('.ga-toast').forEach(function (t) { t.parentNode.removeChild(t); });
    }
    var errs = GA.status && GA.status.errors;
    if (errs && errs.length > 5) { errs.splice(0, errs.length - 5); }  // days of retries must not pile up
  }

  function setEnded(message) {
    W.state.ended = !!message;
    el.ended.hidden = !message;
    if (message) {
      el.endedTitle.textContent = words.ended;
      el.endedText.textContent = message;
    }
  }

  /* District outlines, the current one lit, and the names of the areas: made once. */
  function buildFrame() {
    getJSON(cfg.urls.districts).then(function (fc) {
      if (frame) { return; }
      frame = L.geoJSON(fc, {pane: 'ga-lines', interactive: false, renderer: map._ga ? map._ga.lines : undefined,
        style: frameStyle}).addTo(map);
    }).catch(function () { window.setTimeout(buildFrame, timeoutMs); });
    map.createPane('wall-labels').style.zIndex = 640;
    map.getPane('wall-labels').style.pointerEvents = 'none';
    cfg.labels.forEach(function (a) {
      var span = document.createElement('span');
      span.textContent = a.name;
      var marker = L.marker([a.lat, a.lon], {pane: 'wall-labels', interactive: false, keyboard: false,
        icon: L.divIcon({className: 'wall-label wall-label-' + a.level, html: span, iconSize: [0, 0]})});
      marker.addTo(map);
      labels.push({area: a, marker: marker});
    });
  }

  function frameStyle(feature) {
    var here = stops[W.state.stop].code === feature.properties.code;
    return here ? {color: '#fde047', weight: 4.5, opacity: 1, fill: false} :
      {color: '#dbe7ff', weight: 1.8, opacity: 0.75, fill: false};
  }

  function showLabels(stop) {
    labels.forEach(function (l) {
      var a = l.area;
      var show = stop.level === 'city' ? a.level === 'district' :
        (a.level === 'town' ? a.code.indexOf(stop.code) === 0 : a.code !== stop.code);
      l.wanted = show;
      var node = l.marker.getElement();
      if (node) { node.style.display = show ? '' : 'none'; }
    });
  }

  /* Hide the names that would overlap a name already shown (bigger areas first) or stick out
     of the map. Runs after each move: 30-odd boxes, no new elements. */
  function declutter() {
    var box = map.getContainer().getBoundingClientRect();
    var bottom = el.legend ? el.legend.getBoundingClientRect().top : box.bottom;  // not under the legend
    var taken = [];
    labels.forEach(function (l) {
      var node = l.marker.getElement();
      if (!node || !l.wanted) { return; }
      node.style.visibility = '';
      var r = node.firstChild.getBoundingClientRect();
      var clash = r.left < box.left || r.right > box.right || r.top < box.top || r.bottom > bottom ||
        taken.some(function (t) { return r.left < t.right && r.right > t.left && r.top < t.bottom && r.bottom > t.top; });
      if (clash) { node.style.visibility = 'hidden'; } else { taken.push(r); }
    });
  }

  /* Frame the current view above the legend strip. */
  function fitView(animate) {
    var stop = stops[W.state.stop];
    var pad = Math.round(map.getSize().y * 0.03);
    var legend = el.legend ? el.legend.offsetHeight : 0;
    map.fitBounds(stop.bounds, {paddingTopLeft: [pad, pad], paddingBottomRight: [pad, pad + legend],
      animate: animate, duration: 1.0});
  }

  /* ---- Cycles -------------------------------------------------------------------------- */

  function succeeded() {
    // The browser keeps a timing entry per request (up to 250); a wall that runs for days has no
    // use for them.
    if (window.performance && performance.clearResourceTimings) { performance.clearResourceTimings(); }
    W.state.ok++;
    W.state.lastOk = new Date();
    W.state.lastError = null;
    setStale(false);
    if (W.state.ended) { setEnded(null); }
    ensureGeometry();
    updateConnecting();
    el.fresh.textContent = fill(words.refreshed, {time: hhmmss(W.state.lastOk)});
  }

  function failed(err) {
    W.state.failed++;
    W.state.lastError = String(err && err.message || err);
    W.state.errors.push(new Date().toISOString() + ' ' + W.state.lastError);
    if (W.state.errors.length > 5) { W.state.errors.shift(); }  // the last few, for whoever looks
    W.state.signedOut = !!(err && err.status === 401);
    setStale(true);
    // A wall device that is signed out (revoked, expired) must not go on showing data. The server
    // gives every later request the same reason; the first one shown stays.
    if (cfg.device && W.state.signedOut && !W.state.ended) { setEnded(W.state.lastError); }
    ensureGeometry();
    updateConnecting();
  }

  function setStale(stale) {
    W.state.stale = stale;
    document.body.classList.toggle('wall-is-stale', stale);
    el.stale.hidden = !stale;
    if (stale) {
      el.staleText.textContent = fill(words.stale, {time: W.state.lastOk ? hhmm(W.state.lastOk) : '--:--'}) +
        (W.state.signedOut ? ' \u00b7 ' + words.signIn : '');
      el.stale.title = words.offline + (W.state.lastError ? ': ' + W.state.lastError : '');
    }
  }

  function cycle() {
    busy = true;
    W.state.cycles++;
    var stop = stops[W.state.stop];
    getJSON(withParams(cfg.urls.board, {area: stop.code})).then(function (b) {
      if (b.area.code !== stops[W.state.stop].code) { return; }  // the tour moved on meanwhile
      render(b);
      var key = b.version + '|' + b.day;
      if (key === mapKey) { return null; }
      return refreshMap(b).then(function () { mapKey = key; });
    }).then(succeeded, failed).catch(function (err) {
      W.state.lastError = 'wall: ' + (err && err.message || err);  // a bug here must not stop the cycles
    }).then(function () {
      busy = false;
      if (again) {
        again = false;
        cycle();
      } else {
        timer = window.setTimeout(cycle, refreshMs);
      }
    });
  }

  /* Run a cycle now (after the one under way, if any) instead of at the next tick. */
  function kick() {
    if (busy) { again = true; return; }
    window.clearTimeout(timer);
    cycle();
  }

  function goTo(index, animate) {
    W.state.stop = index;
    var stop = stops[index];
    el.viewName.textContent = stop.name;
    if (frame) { frame.setStyle(frameStyle); }
    showLabels(stop);
    fitView(animate);
    if (cfg.tour) {
      el.tour.textContent = fill(words.tour, {i: index + 1, n: stops.length});
      if (el.tourBar) {  // restart the progress bar: no transition to 0, then a dwell-long one to 100%
        el.tourBar.classList.remove('run');
        el.tourBar.style.transitionDuration = '0s';
        void el.tourBar.offsetWidth;
        el.tourBar.style.transitionDuration = cfg.dwell + 's';
        el.tourBar.classList.add('run');
      }
    }
  }

  function tourStep() {
    W.state.tourSteps++;
    goTo((W.state.stop + 1) % stops.length, true);
    kick();
  }

  function tick() {
    var now = new Date();
    el.clock.textContent = hhmmss(now);
    var date = now.toLocaleDateString(cfg.lang === 'zh' ? 'zh-CN' : 'en-GB',
      {year: 'numeric', month: 'long', day: 'numeric', weekday: 'long'});
    if (el.date.textContent !== date) { el.date.textContent = date; }
  }

  W.start = function (handles, config) {
    cfg = config;
    GA = window.GridAtlas;
    map = handles.map;
    layers = {areas: handles.areas, heat: handles.heat};
    W.layers = layers;
    W.map = map;
    W.stops = cfg.stops;
    words = cfg.words;
    stops = cfg.stops;
    refreshMs = Math.max(250, cfg.refresh * 1000);
    timeoutMs = Math.min(30000, Math.max(5000, 2 * refreshMs));
    ['view-name', 'data', 'fresh', 'stale', 'stale-text', 'tour', 'tour-bar', 'rank-title', 'rank-note',
      'legend', 'legend-meta', 'legend-heat', 'clock-time', 'clock-date', 'connecting', 'ended', 'ended-title',
      'ended-text', 'playback-name', 'playback-date', 'playback-bar'].forEach(function (id) {
      el[id.replace(/-(\w)/g, function (m, c) { return c.toUpperCase(); })] = $('wall-' + id);
    });
    el.clock = el.clockTime;
    el.date = el.clockDate;
    document.querySelectorAll('.wall-kpi').forEach(function (node) {
      tiles[node.getAttribute('data-kpi')] = {root: node, value: node.querySelector('.wall-kpi-value'),
        today: node.querySelector('.wall-kpi-today'), note: node.querySelector('.wall-kpi-note')};
      tiles[node.getAttribute('data-kpi')].todayLabel = tiles[node.getAttribute('data-kpi')].today.children[0];
      tiles[node.getAttribute('data-kpi')].todayValue = tiles[node.getAttribute('data-kpi')].today.children[1];
    });
    el.rankList = document.querySelector('.wall-rank-rows');
    rankRows = Array.prototype.slice.call(el.rankList.children);
    legendRows = Array.prototype.slice.call(document.querySelectorAll('.wall-legend-class'));

    // Heat spots as wide on every screen: the radius follows the root font size (1 rem).
    var rem = parseFloat(window.getComputedStyle(document.documentElement).fontSize) || 16;
    layers.heat.setOptions({radius: Math.round(rem * 1.1), blur: Math.round(rem * 1.2)});
    tick();
    window.setInterval(tick, 1000);
    render(cfg.board);
    // The board came with the page: as old as the page (a kept copy, when the server is away).
    W.state.lastOk = new Date(cfg.generatedAt || Date.now());
    el.fresh.textContent = fill(words.refreshed, {time: hhmmss(W.state.lastOk)});
    keepForRestarts();
    // The layers' first colours come with their geometry; the legend waits for the first cycle.
    lastRetry = Date.now();
    layers.areas.on('ga:loaded', function () { geometry = true; updateConnecting(); });
    buildFrame();
    goTo(cfg.start, false);
    map.on('moveend', declutter);
    declutter();
    window.addEventListener('resize', function () { map.invalidateSize(); fitView(false); });
    if (cfg.tour) { window.setInterval(tourStep, cfg.dwell * 1000); }
    cycle();
  };

  /* The service worker (static/wall-sw.js) keeps this page and its files, so that a wall PC
     restarted while the server is away opens the wall, not an error page. The page itself puts
     the first copies in (the worker only sees the requests made after it started). */
  function keepForRestarts() {
    if (!cfg.urls.serviceWorker || !('serviceWorker' in navigator) || !window.caches) { return; }
    navigator.serviceWorker.register(cfg.urls.serviceWorker, {scope: '/wall'}).then(function () {
      var files = [window.location.href];
      document.querySelectorAll('script[src], link[href]').forEach(function (node) {
        var url = new URL(node.src || node.href, window.location.href);
        if (url.origin === window.location.origin && url.pathname.indexOf('/static/') === 0) { files.push(url.href); }
      });
      return caches.open('gridatlas-wall-v1').then(function (cache) { return cache.addAll(files); });
    }).then(function () { W.state.keptForRestarts = true; }).catch(function (err) {
      W.state.errors.push('service worker: ' + err);
    });
  }

  /* The device page: exchange the token of the URL's fragment for a device session, then open
     the wall. The token leaves the address bar at once; a server that cannot be reached is
     asked again every 5 s (the token is spent only when the server takes it). */
  W.claim = function (o) {
    var text = document.getElementById('wall-device-text');
    var query = new URLSearchParams(window.location.search);
    var token = new URLSearchParams(window.location.hash.replace(/^#/, '')).get('token') || query.get('token');
    query.delete('token');
    var search = query.toString() ? '?' + query.toString() : '';
    window.history.replaceState(null, '', window.location.pathname + search);
    if (!token) {
      W.state.claim = 'no token';
      text.textContent = o.words.noToken;
      return;
    }
    var csrf = document.querySelector('meta[name="csrf-token"]').getAttribute('content');
    function attempt() {
      W.state.claim = 'asking';
      fetch(o.url, {method: 'POST', credentials: 'same-origin', cache: 'no-store',
        headers: {'Content-Type': 'application/json', Accept: 'application/json', 'X-CSRFToken': csrf},
        body: JSON.stringify({token: token, query: search})})
        .then(function (r) {
          return r.json().catch(function () { return {}; }).then(function (body) {
            if (r.ok && body.next) {
              W.state.claim = 'ok';
              token = null;
              window.location.replace(body.next);
            } else if (r.status >= 500) {
              throw new Error('HTTP ' + r.status);
            } else {
              W.state.claim = 'refused';
              document.body.classList.add('wall-device-refused');
              text.textContent = body.error || ('HTTP ' + r.status);
            }
          });
        })
        .catch(function () {
          W.state.claim = 'retrying';
          text.textContent = o.words.offline;
          window.setTimeout(attempt, 5000);
        });
    }
    attempt();
  };
})(window, document);
