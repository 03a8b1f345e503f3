/* Grid Atlas: time on the area page.
 *
 * Three modes of the same choropleth, switched by the buttons of section#ga-time:
 *  - total: the period's totals, as the page was served;
 *  - play: one day at a time. All days arrive in ONE request (/daily.json) with classes computed
 *    once over every area-day value, so a colour means the same count on every day; stepping a
 *    day only restyles the polygons already drawn (GridAtlas.choroplethLayer.update), never
 *    rebuilds them. The legend says the classes are fixed for the whole period;
 *  - change: the difference between two periods (/change.json), blue for fewer, red for more.
 * Names and numbers reach the page through textContent only.
 */
(function (window, document) {
  'use strict';

  var GA = window.GridAtlas = window.GridAtlas || {};
  var WORDS = {
    zh: {title: '时间', total: '期间合计', play: '逐日回放', change: '变化', playBtn: '▶', pauseBtn: '❚❚',
      playLabel: '播放', pauseLabel: '暂停', a: '前期', b: '后期', absolute: '绝对变化', percent: '百分比变化',
      apply: '显示变化', fixed: '分级在整个期间 %s 固定不变，各日颜色可比', day: '日期', areas: '个区域',
      changeTitle: '变化：%a → %b', perDay: '两期天数不同，按日均值比较', noData: '前期为 0（无百分比）',
      fewer: '减少', more: '增加', chart: '每日趋势图'},
    en: {title: 'Time', total: 'Period totals', play: 'Day by day', change: 'Change', playBtn: '▶', pauseBtn: '❚❚',
      playLabel: 'Play', pauseLabel: 'Pause', a: 'Before', b: 'After', absolute: 'Absolute change',
      percent: 'Change in per cent', apply: 'Show change',
      fixed: 'Classes fixed for the whole period %s, so colours compare across days', day: 'Date', areas: 'areas',
      changeTitle: 'Change: %a → %b', perDay: 'Periods differ in length: daily means compared',
      noData: 'first period 0 (no per cent)', fewer: 'fewer', more: 'more', chart: 'Daily trend chart'}
  };

  function words() {
    return (document.documentElement.lang || 'zh').indexOf('zh') === 0 ? WORDS.zh : WORDS.en;
  }

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    return e;
  }

  function fmt(n) {
    return n === null || n === undefined ? '–' : Number(n).toLocaleString('en-US');
  }

  /* A legend in the place of the page's one: title, notes, then one row per class. */
  function drawLegend(box, title, notes, classes) {
    box.textContent = '';
    box.appendChild(el('div', 'ga-legend-title', title));
    notes.forEach(function (n) { box.appendChild(el('div', n.cls || 'ga-legend-meta', n.text)); });
    var table = el('table', 'ga-legend-classes');
    classes.forEach(function (c) {
      var tr = el('tr');
      var sw = el('span', 'ga-swatch');
      sw.style.background = c.color;
      var td = el('td');
      td.appendChild(sw);
      tr.appendChild(td);
      tr.appendChild(el('td', 'ga-legend-limits', c.label));
      tr.appendChild(el('td', 'ga-legend-count', c.count));
      table.appendChild(tr);
    });
    box.appendChild(table);
  }

  /* Day i of a /daily.json answer as rows for the choropleth's update (code, value, class,
   * colour), and the number of areas per class. The area page's playback and the wall's
   * (static/wall.js) both step through days with it. */
  GA.dayRows = function (d, i) {
    var values = d.values[i], classes = d.classes[i], colors = d.legend.colors;
    var rows = new Array(d.areas.length);
    var counts = colors.map(function () { return 0; });
    for (var j = 0; j < d.areas.length; j++) {
      rows[j] = {code: d.areas[j].code, value: values[j], 'class': classes[j], color: colors[classes[j]]};
      counts[classes[j]]++;
    }
    return {rows: rows, counts: counts};
  };

  /* Paints days on one GridAtlas.choropleth layer. Recolours only the polygons whose colour
   * changes: a day step at the grid level touches a fraction of 10,205 polygons. The first day,
   * and any geometry the map loads later (a finer zoom bucket), go through the layer's full
   * update; `onReload` runs when the layer has loaded new geometry. */
  GA.DayPainter = function (layer, onReload) {
    var self = this;
    this.layer = layer;
    this.index = null;
    layer.on('ga:loaded', function () {
      self.index = null;
      if (onReload) { onReload(); }
    });
  };

  /* Forget the polygons' colours (the layer was restyled by something else): next paint is full. */
  GA.DayPainter.prototype.reset = function () { this.index = null; };

  GA.DayPainter.prototype.paint = function (rows) {
    var self = this;
    if (!this.index) {
      this.layer.update(rows);
      this.index = {};
      this.layer.eachLayer(function (g) {
        if (!g.eachLayer) { return; }
        g.eachLayer(function (f) {
          var code = f.feature && f.feature.properties.code;
          if (code) { (self.index[code] = self.index[code] || []).push(f); }
        });
      });
      return;
    }
    for (var j = 0; j < rows.length; j++) {
      var r = rows[j], paths = this.index[r.code];
      if (!paths) { continue; }
      for (var k = 0; k < paths.length; k++) {
        var p = paths[k].feature.properties, recolour = p.color !== r.color;
        p.value = r.value; p['class'] = r['class']; p.color = r.color;
        if (recolour) { paths[k].setStyle({fillColor: r.color}); }
      }
    }
  };

  function Playback(section) {
    var self = this;
    var w = words();
    this.section = section;
    this.w = w;
    this.mode = 'total';
    this.day = -1;
    this.data = null;
    this.timer = null;
    this.lastRedrawMs = null;
    this.legend = document.querySelector('.ga-legend');
    this.savedLegend = this.legend ? Array.prototype.slice.call(this.legend.childNodes) : [];
    this.play = section.querySelector('.ga-play');
    this.changeBox = section.querySelector('.ga-change');
    this.button = section.querySelector('.ga-play-button');
    this.slider = section.querySelector('.ga-play-slider');
    this.output = section.querySelector('.ga-play-date');

    section.querySelector('.ga-time-title').textContent = w.title;
    section.querySelectorAll('.ga-time-mode').forEach(function (b) {
      b.textContent = w[b.getAttribute('data-mode')];
      b.addEventListener('click', function () { self.setMode(b.getAttribute('data-mode')); });
    });
    this.button.textContent = w.playBtn;
    this.button.setAttribute('aria-label', w.playLabel);
    this.slider.setAttribute('aria-label', w.day);
    section.querySelector('.ga-change-a').textContent = w.a;
    section.querySelector('.ga-change-b').textContent = w.b;
    section.querySelectorAll('select[name=basis] option').forEach(function (o) { o.textContent = w[o.value]; });
    section.querySelector('.ga-change-apply').textContent = w.apply;
    section.querySelector('.ga-trend-chart').setAttribute('alt', w.chart);

    this.button.addEventListener('click', function () { if (self.timer) { self.pause(); } else { self.start(); } });
    this.slider.addEventListener('input', function () { self.pause(); self.show(Number(self.slider.value)); });
    section.querySelector('.ga-change-apply').addEventListener('click', function () { self.loadChange(true); });
  }

  Playback.prototype.layer = function () {
    var layer = GA.choroplethLayer;
    if (!layer) { throw new Error('no choropleth on this page'); }
    return layer;
  };

  /* The values the page was served with, to come back to (the /values rows). */
  Playback.prototype.restore = function () {
    var self = this;
    return GA.getJSON(this.section.getAttribute('data-values-url')).then(function (d) {
      if (self.mode !== 'total') { return; }
      self.layer().update(d.values);
      if (self.legend) {
        self.legend.textContent = '';
        self.savedLegend.forEach(function (n) { self.legend.appendChild(n); });
      }
    });
  };

  Playback.prototype.setMode = function (mode) {
    var self = this;
    this.pause();
    this.mode = mode;
    if (this.painter) { this.painter.reset(); }
    this.section.querySelectorAll('.ga-time-mode').forEach(function (b) {
      b.classList.toggle('on', b.getAttribute('data-mode') === mode);
      b.setAttribute('aria-pressed', b.getAttribute('data-mode') === mode ? 'true' : 'false');
    });
    this.play.hidden = mode !== 'play';
    this.changeBox.hidden = mode !== 'change';
    var done;
    if (mode === 'play') {
      done = this.load().then(function () { self.show(self.day < 0 ? 0 : self.day); });
    } else if (mode === 'change') {
      done = this.loadChange(false);
    } else {
      done = this.restore();
    }
    return done.catch(function (err) { GA.status.errors.push(String(err.message || err)); throw err; });
  };

  /* Every day's values in one request. */
  Playback.prototype.load = function () {
    var self = this;
    if (this.data) { return Promise.resolve(this.data); }
    return GA.getJSON(this.section.getAttribute('data-daily-url')).then(function (d) {
      self.data = d;
      self.slider.max = String(d.days.length - 1);
      return d;
    });
  };

  /* Show day i: restyle the polygons already on the map, then the legend and the date. */
  Playback.prototype.show = function (i) {
    var d = this.data;
    if (!d || this.mode !== 'play') { return Promise.resolve(null); }
    i = Math.max(0, Math.min(i, d.days.length - 1));
    var t0 = window.performance.now();
    var frame = GA.dayRows(d, i);
    this.paint(frame.rows);
    this.day = i;
    this.slider.value = String(i);
    this.output.textContent = d.days[i];
    this.section.setAttribute('data-day', d.days[i]);
    this.dayLegend(d, i, frame.counts);
    var self = this;
    // Leaflet's canvas redraws on the next animation frame; ours runs right after it.
    return new Promise(function (resolve) {
      window.requestAnimationFrame(function () {
        self.lastRedrawMs = window.performance.now() - t0;
        resolve(self.lastRedrawMs);
      });
    });
  };

  /* Restyle the polygons already on the map (GA.DayPainter: only those whose colour changes). */
  Playback.prototype.paint = function (rows) {
    var self = this;
    if (!this.painter) {
      this.painter = new GA.DayPainter(this.layer(), function () {
        if (self.mode === 'play' && self.day >= 0) { self.show(self.day); }
      });
    }
    this.painter.paint(rows);
  };

  Playback.prototype.dayLegend = function (d, i, counts) {
    if (!this.legend) { return; }
    var w = this.w;
    var name = (document.documentElement.lang || 'zh').indexOf('zh') === 0 ? d.metric.name_zh : d.metric.name_en;
    drawLegend(this.legend, name + ' · ' + d.days[i], [
      {text: fmt(d.totals[i])},
      {cls: 'ga-legend-fixed', text: w.fixed.replace('%s', d.period.from + ' – ' + d.period.to)}
    ], d.legend.labels.map(function (label, k) {
      return {color: d.legend.colors[k], label: label, count: counts[k] + ' ' + w.areas};
    }).reverse());
  };

  Playback.prototype.start = function () {
    var self = this;
    if (this.timer) { return; }
    if (this.mode !== 'play') { this.setMode('play'); }
    this.button.textContent = this.w.pauseBtn;
    this.button.setAttribute('aria-label', this.w.pauseLabel);
    this.button.setAttribute('aria-pressed', 'true');
    this.load().then(function (d) {
      if (self.day >= d.days.length - 1) { self.day = -1; }
      self.timer = window.setInterval(function () {
        if (self.day >= d.days.length - 1) { self.pause(); return; }
        self.show(self.day + 1);
      }, Number(self.section.getAttribute('data-interval') || 700));
    });
  };

  Playback.prototype.pause = function () {
    if (this.timer) { window.clearInterval(this.timer); }
    this.timer = null;
    this.button.textContent = this.w.playBtn;
    this.button.setAttribute('aria-label', this.w.playLabel);
    this.button.setAttribute('aria-pressed', 'false');
  };

  /* The change map: the periods in the inputs (empty on first use: the server's defaults). */
  Playback.prototype.loadChange = function (fromInputs) {
    var self = this;
    var url = new URL(this.section.getAttribute('data-change-url'), window.location.href);
    var box = this.changeBox;
    ['a_from', 'a_to', 'b_from', 'b_to'].forEach(function (n) {
      var v = box.querySelector('input[name=' + n + ']').value;
      if (fromInputs && v) { url.searchParams.set(n, v); }
    });
    url.searchParams.set('basis', box.querySelector('select[name=basis]').value);
    return GA.getJSON(url.pathname + url.search).then(function (d) {
      if (self.mode !== 'change') { return d; }
      [['a_from', d.a.from], ['a_to', d.a.to], ['b_from', d.b.from], ['b_to', d.b.to]].forEach(function (kv) {
        box.querySelector('input[name=' + kv[0] + ']').value = kv[1];
      });
      self.layer().update(d.values);
      self.changeData = d;
      self.section.setAttribute('data-change', d.a.from + '..' + d.a.to + '/' + d.b.from + '..' + d.b.to);
      self.changeLegend(d);
      return d;
    }).catch(function (err) {
      var toast = document.querySelector('.ga-toast') || el('div', 'ga-toast');
      toast.setAttribute('role', 'alert');
      toast.textContent = String(err.message || err);
      (document.querySelector('.ga-map') || document.body).appendChild(toast);
      throw err;
    });
  };

  Playback.prototype.changeLegend = function (d) {
    if (!this.legend) { return; }
    var w = this.w;
    var zh = (document.documentElement.lang || 'zh').indexOf('zh') === 0;
    var counts = d.legend.colors.map(function () { return 0; });
    var none = 0;
    d.values.forEach(function (r) { if (r['class'] === null) { none++; } else { counts[r['class']]++; } });
    var classes = d.legend.labels.map(function (label, k) {
      return {color: d.legend.colors[k], label: label, count: counts[k] + ' ' + w.areas};
    }).reverse();
    if (none) { classes.push({color: '#bababa', label: w.noData, count: none + ' ' + w.areas}); }
    var notes = [
      {text: w.changeTitle.replace('%a', d.a.from + '–' + d.a.to).replace('%b', d.b.from + '–' + d.b.to)},
      {text: w[d.basis] + ' · ' + fmt(d.total.a) + ' → ' + fmt(d.total.b) +
        (d.total.pct === null ? '' : ' (' + (d.total.pct > 0 ? '+' : '') + d.total.pct + '%)')}
    ];
    if (d.per_day) { notes.push({cls: 'ga-legend-fixed', text: w.perDay}); }
    drawLegend(this.legend, zh ? d.metric.name_zh : d.metric.name_en, notes, classes);
  };

  document.addEventListener('DOMContentLoaded', function () {
    var section = document.getElementById('ga-time');
    if (section) { GA.playback = new Playback(section); }
  });
})(window, document);
