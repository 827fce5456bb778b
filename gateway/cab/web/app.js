// tankguard cab display. Talks only to the gateway that served it:
// GET /api/events (Server-Sent Events), POST /api/ack.
'use strict';
(() => {
  const $ = (id) => document.getElementById(id);
  window.cspViolations = 0;
  document.addEventListener('securitypolicyviolation', () => { window.cspViolations++; });
  const RANK = { none: 0, info: 1, warning: 2, critical: 3 };
  const LEVEL = { critical: 'STOP SAFELY NOW', warning: 'WARNING — CHECK SOON', info: 'FOR YOUR INFORMATION' };
  const TONE = { critical: ['square', 2900, 0.35], warning: ['square', 1800, 0.3], info: ['sine', 880, 0.4] };
  const UNIT = { degC: '°C', 'km/h': 'km/h' };

  let st = null;               // last full state (static parts)
  let status = null;           // latest readings, bands, uplink
  const alerts = new Map();    // key -> alert
  let sound = 'none';          // what the gateway says should sound
  let skew = 0;                // gateway clock - this clock, ms
  let lastMsg = 0;
  let es = null;
  let pending = null;          // key of an acknowledgement being sent
  let ackError = '';

  const serverNow = () => Date.now() + skew;
  const pad = (n) => String(n).padStart(2, '0');
  const hhmm = (ms) => { const d = new Date(ms); return pad(d.getHours()) + ':' + pad(d.getMinutes()); };
  const hhmmss = (ms) => { const d = new Date(ms); return hhmm(ms) + ':' + pad(d.getSeconds()); };
  const unit = (u) => UNIT[u] || u;
  const fmt = (v, digits = 0) => (v === null || v === undefined || !isFinite(v)) ? '—' : Number(v).toFixed(digits).replace(/^-/, '\u2212');
  const grouped = (n) => Number(n).toLocaleString('en-GB').replace(/,/g, '\u202f');

  function duration(ms) {
    const s = Math.max(0, Math.floor(ms / 1000));
    if (s < 60) return s + ' s';
    const m = Math.floor(s / 60);
    if (m < 60) return m + ' min ' + pad(s % 60) + ' s';
    return Math.floor(m / 60) + ' h ' + pad(m % 60) + ' min';
  }

  // ---- connection ----
  function connect() {
    if (es) es.close();
    es = new EventSource('/api/events');
    const on = (name, f) => es.addEventListener(name, (e) => { lastMsg = Date.now(); setConn('up'); f(JSON.parse(e.data)); });
    on('state', applyState);
    on('status', (s) => { status = s; skew = s.now - Date.now(); renderNormal(); recheckLimit(); });
    on('alert', applyAlert);
    on('ping', (now) => { skew = now - Date.now(); });
    es.onerror = () => setConn('down');
  }

  let downSince = 0;
  function setConn(c) {
    if (c === 'down' && document.body.dataset.conn !== 'down') downSince = Date.now();
    document.body.dataset.conn = c;
  }

  // A half-open connection never errors: if even the heartbeat stops,
  // reconnect by hand. EventSource retries by itself otherwise.
  setInterval(() => {
    const hb = st ? st.heartbeatMs : 15000;
    if (st && Date.now() - lastMsg > 2.5 * hb) { setConn('down'); lastMsg = Date.now(); connect(); }
    $('offline').classList.toggle('hidden', !(document.body.dataset.conn === 'down' && Date.now() - downSince > 2000));
    $('clock').textContent = hhmm(serverNow());
    renderSince();
    renderNormal();
  }, 1000);

  function applyState(s) {
    st = s;
    status = s.status;
    skew = s.status.now - Date.now();
    alerts.clear();
    for (const a of s.alerts) alerts.set(a.key, a);
    $('truck').textContent = s.truck;
    setSound(s.sound);
    renderNormal();
    renderAlert();
  }

  function applyAlert(ev) {
    skew = ev.now - Date.now();
    const a = ev.alert;
    if (a.phase === 'cleared') alerts.delete(a.key); else alerts.set(a.key, a);
    // The reading that caused the transition is newer than the last status.
    if (status && a.value !== null && a.phase !== 'cleared') status.values[a.signal] = { v: a.value, at: ev.now };
    if (pending === a.key && a.driverAck) pending = null;
    setSound(ev.sound);
    renderAlert();
  }

  // ---- normal view ----
  function value(sig) {
    const v = status && status.values[sig];
    if (!v || v.v === null || serverNow() - v.at > (st ? st.staleAfterMs : 10000)) return null;
    return v.v;
  }

  function renderTemp(tile) {
    const sig = tile.dataset.signal;
    const v = value(sig);
    const b = status && status.bands[sig];
    tile.querySelector('.num').textContent = fmt(v);
    tile.classList.toggle('stale', v === null);
    const state = tile.querySelector('.state');
    const learned = b && b.low !== undefined && b.high !== undefined;
    const over = v !== null && b && b.limit && v > b.limit;
    const [cls, word] = v === null ? ['none', 'no data'] : over ? ['high', 'OVER LIMIT'] : !learned ? ['none', '']
      : v > b.high ? ['high', 'HIGH'] : v < b.low ? ['low', 'LOW'] : ['ok', 'normal'];
    tile.classList.toggle('high', over || (learned && v !== null && v > b.high));
    tile.classList.toggle('low', learned && v !== null && v < b.low);
    state.className = 'state ' + cls;
    state.textContent = word;
    const band = tile.querySelector('.band');
    // Until the gateway has learned this truck's normal range there is
    // none to draw: say so, and give the limit.
    band.classList.toggle('unlearned', !learned);
    if (!learned) {
      let text = v === null ? 'no data · ' : '';
      text += 'learning the normal range';
      if (b && b.limit) text += ' · limit ' + fmt(b.limit) + ' °C';
      tile.querySelector('.bandtext').textContent = text;
      return;
    }
    const span = b.high - b.low;
    const lo = b.low - span * 0.4;
    const hi = Math.max(b.high, b.limit || b.high) + span * 0.2;
    const pos = (x) => (100 * (Math.min(hi, Math.max(lo, x)) - lo) / (hi - lo)) + '%';
    const n = band.querySelector('.normal');
    n.style.left = pos(b.low);
    n.style.width = (100 * span / (hi - lo)) + '%';
    const lim = band.querySelector('.limit');
    lim.classList.toggle('hidden', !b.limit);
    if (b.limit) lim.style.left = pos(b.limit);
    const m = band.querySelector('.marker');
    m.classList.toggle('hidden', v === null);
    if (v !== null) m.style.left = pos(v);
    let text = v === null ? 'no data · ' : '';
    text += 'normal ' + fmt(b.low) + ' to ' + fmt(b.high) + ' °C';
    if (b.limit) text += ' · limit ' + fmt(b.limit) + ' °C';
    tile.querySelector('.bandtext').textContent = text;
  }

  function badge(el, cls, text, title) {
    el.className = 'badge ' + cls;
    el.textContent = text;
    el.title = title || '';
  }

  function renderNormal() {
    $('clock').textContent = hhmm(serverNow());
    if (!status) return;
    document.querySelectorAll('.tile.temp').forEach(renderTemp);
    let speed = value('wheel_speed');
    if (speed === null) speed = value('gnss_speed');
    $('tile-speed').querySelector('.num').textContent = fmt(speed);
    $('tile-speed').classList.toggle('stale', speed === null);

    const lat = value('gnss_latitude') ?? value('vp_latitude');
    const lon = value('gnss_longitude') ?? value('vp_longitude');
    $('position').textContent = (lat === null || lon === null) ? 'position unknown'
      : Math.abs(lat).toFixed(4) + '° ' + (lat >= 0 ? 'N' : 'S') + '  ' + Math.abs(lon).toFixed(4) + '° ' + (lon >= 0 ? 'E' : 'W');

    const fix = value('gnss_fix_quality');
    const sats = value('gnss_satellites');
    if (fix === null) badge($('gps'), 'warn', 'GPS: no data');
    else if (fix > 0) badge($('gps'), 'ok', 'GPS fix' + (sats !== null ? ' · ' + fmt(sats) + ' sat' : ''));
    else badge($('gps'), 'warn', 'No GPS fix');

    // In words a driver needs: is the fleet team told, and is anything
    // kept for later. The record count is for the fleet team (tooltip).
    const u = status.uplink;
    const kept = u.backlog > 0 ? grouped(u.backlog) + ' records not yet sent' : 'all sent';
    const last = u.lastSent ? 'last sent ' + hhmmss(u.lastSent) : 'nothing sent yet';
    if (u.online) badge($('uplink'), 'ok', 'Fleet link online' + (u.backlog > 0 ? ' · catching up' : ''), kept + ' · ' + last);
    else badge($('uplink'), 'warn', 'No fleet link · sends when back in coverage', kept + ' · ' + last);

    renderFaults(status.faults);

    const g = status.gpio;
    const bad = g && g !== 'off' && g !== 'ok';
    $('gpio').classList.toggle('hidden', !bad);
    if (bad) badge($('gpio'), 'bad', 'Buzzer fault', g);
  }

  // Active trouble codes from the truck's ECUs (J1939 DM1): shown only
  // while there are some.
  function renderFaults(f) {
    const codes = (f && f.codes) || [];
    $('tile-faults').classList.toggle('hidden', codes.length === 0);
    const st = $('tile-faults').querySelector('.state');
    st.className = 'state ' + (f && f.redStop ? 'high' : 'none');
    st.textContent = f && f.redStop ? 'STOP LAMP' : (f && f.amber ? 'warning lamp' : '');
    const ul = $('faults');
    ul.replaceChildren(...codes.map((c) => {
      const li = document.createElement('li');
      li.dataset.spn = c.spn;
      li.dataset.fmi = c.fmi;
      li.textContent = c.name + ': ' + c.failure + ' (SPN ' + c.spn + ' / FMI ' + c.fmi +
        (c.oc < 127 ? ', ' + c.oc + '×' : '') + ')';
      return li;
    }));
  }

  // ---- alert view ----
  const acked = (a) => a.driverAck && RANK[a.driverAck.severity] >= RANK[a.severity];

  // overLimit: the reading is above the signal's critical limit while the
  // detector still says less (it waits its sustain period): the page then
  // shows the critical banner and text, so the two never disagree.
  let shownOver = false;
  function recheckLimit() {
    const a = mainAlert()[0];
    if (a && overLimit(a) !== shownOver) renderAlert();
  }
  function overLimit(a) {
    const b = status && status.bands[a.signal];
    const v = value(a.signal);
    return !!(a.critical && b && b.limit && v !== null && v > b.limit);
  }

  function mainAlert() {
    const list = [...alerts.values()];
    list.sort((x, y) => (acked(x) - acked(y)) || (RANK[y.severity] - RANK[x.severity]) || (x.start - y.start));
    return list;
  }

  function renderAlert() {
    const list = mainAlert();
    const view = $('alert');
    document.body.dataset.alert = list.length ? list[0].severity : 'none';
    if (!list.length) { view.classList.add('hidden'); view.dataset.key = ''; return; }
    const a = list[0];
    const isAcked = acked(a);
    const over = overLimit(a);
    const sev = over ? 'critical' : a.severity;
    const text = over ? a.critical : a;
    view.className = sev + (isAcked ? ' acked' : '');
    shownOver = over;
    view.dataset.key = a.key;
    view.dataset.shown = sev;
    $('a-level').textContent = LEVEL[sev] || sev.toUpperCase();
    $('a-title').textContent = text.title;
    let ref = '';
    const st0 = a.signal;
    const band = status && status.bands[st0];
    if ((a.kind === 'limit' || over) && band && band.limit) ref = 'limit ' + fmt(band.limit) + ' ' + unit(a.unit);
    else if (a.baseline !== null) ref = 'normal about ' + fmt(a.baseline) + ' ' + unit(a.unit);
    else if (band && band.low !== undefined) ref = 'normal ' + fmt(band.low) + ' to ' + fmt(band.high) + ' ' + unit(a.unit);
    const now = value(a.signal);
    const shown = now !== null ? now : a.value;
    $('a-reading').innerHTML = '';
    $('a-reading').append(fmt(shown) + ' ' + unit(a.unit));
    if (ref) { const s = document.createElement('small'); s.textContent = '  (' + ref + ')'; $('a-reading').append(s); }
    $('a-what').textContent = text.what;
    $('a-do').textContent = text.do;
    const u = status && status.uplink;
    $('a-link').textContent = !u ? '' : u.online ? 'Fleet link online: the fleet team gets this alert.'
      : 'No fleet link: the alert is kept and sent when back in coverage.';
    const r = a.remoteAck;
    $('a-remote').classList.toggle('hidden', !r);
    if (r) $('a-remote').textContent = 'Acknowledged by ' + r.by + ' (fleet team) at ' + hhmm(r.at);
    $('ack').classList.toggle('hidden', isAcked);
    $('ack').disabled = pending === a.key;
    $('ack').textContent = pending === a.key ? 'SENDING…' : (ackError || 'ACKNOWLEDGE');
    $('a-acked').classList.toggle('hidden', !isAcked);
    if (isAcked) {
      $('a-acked').innerHTML = '';
      $('a-acked').append('✓ Acknowledged at ' + hhmm(a.driverAck.at) + ' — alarm off');
      const s = document.createElement('small');
      s.textContent = 'It will sound again if this gets worse.';
      $('a-acked').append(s);
    }
    const others = list.slice(1);
    $('a-others').classList.toggle('hidden', !others.length);
    $('a-others').textContent = others.length ? 'Also: ' + others.map((o) => o.title + ' (' + o.severity + (acked(o) ? ', acknowledged' : '') + ')').join(' · ') : '';
    renderSince();
    fit();
  }

  // Shrink the alert text until it fits above the button.
  function fit() {
    const body = $('a-body');
    let scale = 1;
    body.style.setProperty('--s', '1');
    while (body.scrollHeight > body.clientHeight + 1 && scale > 0.45) {
      scale -= 0.05;
      body.style.setProperty('--s', scale.toFixed(2));
    }
  }
  window.addEventListener('resize', () => { if (!$('alert').classList.contains('hidden')) fit(); });

  function renderSince() {
    const key = $('alert').dataset.key;
    const a = key && alerts.get(key);
    if (!a) return;
    $('a-since').textContent = 'Since ' + hhmmss(a.start) + ' — for ' + duration(serverNow() - a.start);
  }

  $('ack').addEventListener('click', async () => {
    unlockAudio();
    const key = $('alert').dataset.key;
    const a = alerts.get(key);
    if (!a || pending) return;
    pending = key;
    ackError = '';
    renderAlert();
    try {
      const res = await fetch('/api/ack', {
        method: 'POST', headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ key: a.key, severity: a.severity }),
      });
      if (!res.ok) throw new Error(await res.text());
      // The gateway's "alert" event shows the result; a duplicate has none.
      const body = await res.json();
      if (body.duplicate) pending = null;
    } catch (e) {
      pending = null;
      ackError = 'NOT SENT — PRESS AGAIN';
    }
    renderAlert();
  });

  // ---- sound ----
  let actx = null; let gain = null; let osc = null; let timer = 0; let playing = 'none';

  function audioInit() {
    if (actx) return;
    const AC = window.AudioContext || window.webkitAudioContext;
    if (!AC) return;
    actx = new AC();
    osc = actx.createOscillator();
    gain = actx.createGain();
    gain.gain.value = 0;
    osc.connect(gain).connect(actx.destination);
    osc.start();
    actx.onstatechange = () => { updateAudio(); if (actx.state === 'running') { const s = playing; playing = ''; play(s); } };
  }

  function unlockAudio() {
    audioInit();
    if (actx && actx.state !== 'running') actx.resume().catch(() => {});
  }

  // The "turn on the sound" bar is part of the alert view's layout, above
  // the text, so it never covers ACKNOWLEDGE; the text shrinks to fit.
  function updateAudio() {
    document.body.dataset.audio = actx ? actx.state : 'off';
    const off = $('sound-off');
    const was = off.classList.contains('hidden');
    off.classList.toggle('hidden', sound === 'none' || (actx && actx.state === 'running'));
    if (was !== off.classList.contains('hidden') && !$('alert').classList.contains('hidden')) fit();
  }

  function setSound(s) {
    sound = s;
    document.body.dataset.sound = s;
    play(s);
    updateAudio();
  }

  function play(s) {
    if (s === playing) return;
    playing = s;
    clearTimeout(timer);
    if (!actx) return;
    gain.gain.cancelScheduledValues(0);
    gain.gain.setValueAtTime(0, actx.currentTime);
    const pat = st && st.patterns[s];
    if (s === 'none' || !pat || !pat.length) return;
    const [type, freq, vol] = TONE[s];
    osc.type = type;
    osc.frequency.setValueAtTime(freq, actx.currentTime);
    const cycle = () => {
      let t = actx.currentTime + 0.01; let total = 0;
      pat.forEach((ms, i) => { gain.gain.setValueAtTime(i % 2 === 0 ? vol : 0, t); t += ms / 1000; total += ms; });
      gain.gain.setValueAtTime(0, t);
      timer = setTimeout(cycle, total);
    };
    cycle();
  }

  document.addEventListener('pointerdown', unlockAudio, { capture: true });
  unlockAudio(); // plays at once where the kiosk allows autoplay
  updateAudio();
  connect();
})();
