// cat2 web client: enhancements only. Every page works without this file (plain GET forms);
// with it, the path list follows the form as you type, sliders swap the image without
// reloading the page (the URL kept current), j/k step slices, Play runs through a stack, and
// a click on an image shows the value under it.
(function () {
  'use strict';
  const $ = (s, r) => (r || document).querySelector(s);
  const fragment = { headers: { 'HX-Request': 'true' } };

  // Home: the path list follows the roots chosen and the search typed (300 ms debounce).
  const home = $('#home-form');
  if (home) {
    let timer = null;
    let ctl = null;
    const refresh = () => {
      const qs = new URLSearchParams(new FormData(home)).toString();
      if (ctl) ctl.abort();
      ctl = new AbortController();
      fetch('/htmx/path-list/?' + qs, Object.assign({ signal: ctl.signal }, fragment))
        .then((r) => r.text().then((t) => [r.headers.get('HX-Push-Url'), t]))
        .then(([url, html]) => {
          $('#path-list').innerHTML = html; // our own server-rendered, escaped markup
          if (url && url !== location.pathname + location.search) history.pushState(null, '', url);
        })
        .catch(() => {});
    };
    home.addEventListener('change', (e) => { if (e.target.name === 'roots') refresh(); });
    home.addEventListener('input', (e) => {
      if (e.target.name !== 'search') return;
      clearTimeout(timer);
      timer = setTimeout(refresh, 300);
    });
    home.addEventListener('submit', (e) => { e.preventDefault(); clearTimeout(timer); refresh(); });
    window.addEventListener('popstate', () => location.reload());
  }

  const form = $('#view-form');
  if (!form) return;
  const img = $('#view-img');
  const sliders = Array.from(form.querySelectorAll('input.slider[data-dim]'));
  const numberOf = (s) => $('#n' + s.dataset.dim, form);
  let last = sliders[0] || null;

  // The form as a query: what both the page URL and the image URL take.
  const query = () => {
    const p = new URLSearchParams();
    for (const [k, v] of new FormData(form)) if (v !== '') p.append(k, v);
    return p.toString();
  };

  // Image views: the slider sets the image directly (fetched as a blob, so the colour domain
  // can be read from its headers); a step requested while one is loading replaces it.
  let loading = false;
  let again = false;
  const status = $('#slice-status');
  // The slice downloads follow the view shown.
  const follow = (qs) => {
    for (const a of document.querySelectorAll('a.dl[data-fmt]')) {
      a.href = '/web/export/' + form.dataset.path + '?' + qs + '&format=' + a.dataset.fmt;
    }
    const code = $('#slice-text');
    if (code && img) {
      const axes = img.dataset.axes.split(',').map(Number);
      const dims = img.dataset.shape.split(',').map((_, d) => {
        if (axes.includes(d)) return code.dataset.keep ? code.dataset.keep.split(',')[axes.indexOf(d)] : ':';
        const n = $('#n' + d, form);
        return n ? n.value : '0';
      });
      code.textContent = '[' + dims.join(',') + ']';
    }
  };
  const show = () => {
    const qs = query();
    history.replaceState(null, '', location.pathname + '?' + qs);
    follow(qs);
    if (!img) return;
    if (loading) { again = true; return; }
    loading = true;
    const src = '/web/img/' + form.dataset.path + '?' + qs;
    fetch(src)
      .then((r) => {
        if (!r.ok) return r.text().then((t) => { throw new Error(t); });
        const dom = (r.headers.get('X-Cat2-Domain') || '').split(',');
        return r.blob().then((b) => [b, dom]);
      })
      .then(([b, dom]) => {
        const url = URL.createObjectURL(b);
        img.addEventListener('load', () => URL.revokeObjectURL(url), { once: true });
        img.src = url;
        img.dataset.src = src;
        if (dom.length === 2) {
          // As the page writes them: whole numbers with a ".0", as NumPy prints floats.
          const text = (v) => (/^-?\d+$/.test(v) ? v + '.0' : v);
          $('#dom-lo').textContent = text(dom[0]);
          $('#dom-hi').textContent = text(dom[1]);
        }
        if (status && last) {
          status.textContent = 'slice ' + (Number(last.value) + 1) + ' of ' + (Number(last.max) + 1);
        }
      })
      .catch((e) => { const p = $('#probe'); if (p) p.textContent = String(e.message || e); })
      .finally(() => {
        loading = false;
        if (again) { again = false; show(); }
      });
  };

  const live = img && (form.dataset.kind === 'image' || form.dataset.kind === 'stack');
  for (const s of sliders) {
    const n = numberOf(s);
    s.addEventListener('input', () => {
      last = s;
      if (n) n.value = s.value;
      if (live) show();
    });
    s.addEventListener('focus', () => { last = s; });
    if (n) {
      n.addEventListener('change', () => {
        last = s;
        s.value = n.value;
        if (live) show();
      });
    }
    // Without the live image, a slider change submits the form (a new page).
    if (!live) s.addEventListener('change', () => form.requestSubmit());
  }

  const step = (by) => {
    if (!last) return;
    const max = Number(last.max);
    let v = Number(last.value) + by;
    if (v > max) v = 0;
    if (v < 0) v = max;
    last.value = String(v);
    last.dispatchEvent(new Event('input'));
  };
  document.addEventListener('keydown', (e) => {
    const t = e.target;
    if (t && (t.tagName === 'INPUT' && t.type !== 'range' || t.tagName === 'SELECT' || t.tagName === 'TEXTAREA')) return;
    if (e.key === 'j') step(1);
    else if (e.key === 'k') step(-1);
  });

  // Play: one frame per tick, skipped while the previous one is still loading.
  const play = $('#play');
  if (play) {
    let timer = null;
    play.addEventListener('click', () => {
      if (timer) {
        clearInterval(timer);
        timer = null;
        play.setAttribute('aria-pressed', 'false');
        play.textContent = 'Play';
        return;
      }
      const fps = Math.min(30, Math.max(1, Number($('#fps').value) || 5));
      timer = setInterval(() => { if (!loading) step(1); }, 1000 / fps);
      play.setAttribute('aria-pressed', 'true');
      play.textContent = 'Pause';
    });
  }

  // Value probe: the item under the pointer, asked of the server.
  if (img) {
    img.addEventListener('click', (e) => {
      const shape = img.dataset.shape.split(',').map(Number);
      const axes = img.dataset.axes.split(',').map(Number);
      const [r0, rs] = img.dataset.rows.split(',').map(Number);
      const [c0, cs] = img.dataset.cols.split(',').map(Number);
      const box = img.getBoundingClientRect();
      const h = img.naturalHeight || 1;
      const w = img.naturalWidth || 1;
      const at = shape.map((_, d) => {
        const n = $('#n' + d, form);
        return n ? Number(n.value) : 0;
      });
      at[axes[0]] = Math.min(shape[axes[0]] - 1, r0 + Math.floor((e.clientY - box.top) / box.height * h) * rs);
      at[axes[1]] = Math.min(shape[axes[1]] - 1, c0 + Math.floor((e.clientX - box.left) / box.width * w) * cs);
      fetch('/web/value/' + form.dataset.path + '?at=' + at.join(','))
        .then((r) => r.text())
        .then((t) => { $('#probe').textContent = '[' + at.join(', ') + '] = ' + t; });
    });
  }
})();
