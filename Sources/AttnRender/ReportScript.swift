/// The style and script of `attninspect report`'s page (`ReportPage`): plain JavaScript and CSS, no library, every
/// string from the file put in the page as text (`textContent`), never as markup.
///
/// Views, all showing the selection (a layer, a head or the mean of the heads, a query token):
/// - overview: the `stats` table (sortable by any column, numbers as `stats` prints them) and the entropy grid
///   (layers × heads); a click on a row or a cell selects that layer and head;
/// - head view (bertviz's): the tokens in two columns, a line from each query to each key weighted by attention,
///   a colour per head, heads toggled; hovering a query shows only its lines, and its values;
/// - model view: every layer × head as a thumbnail on one colour scale; a click selects it;
/// - matrix view: the attention of the layer and head (or mean) with token labels, the value under the pointer.
/// Keys: ↑ ↓ layer, ← → head, Shift ← → query token. Colour scales: the 1st to 99th percentile by default
/// (`--range p1:p99`), or min–max.
enum ReportScript {
    static let style = #"""
        :root { color-scheme: light; --fg: #1a1a1a; --muted: #555; --line: #ccc; --accent: #0b57d0; }
        body { font: 14px/1.4 system-ui, sans-serif; color: var(--fg); background: #fff; margin: 0; }
        header { padding: 8px 16px; border-bottom: 1px solid var(--line); display: flex; flex-wrap: wrap; gap: 12px;
          align-items: center; position: sticky; top: 0; background: #fff; z-index: 2; }
        header h1 { font-size: 16px; margin: 0; word-break: break-all; }
        header label { color: var(--muted); }
        nav button { font: inherit; padding: 4px 10px; border: 1px solid var(--line); background: #f4f4f4;
          border-radius: 4px; cursor: pointer; color: var(--fg); }
        nav button[aria-selected="true"] { background: var(--accent); color: #fff; border-color: var(--accent); }
        main { padding: 12px 16px; }
        section[hidden] { display: none; }
        #selection { font-weight: 600; }
        table.stats { border-collapse: collapse; font-variant-numeric: tabular-nums; }
        table.stats th, table.stats td { padding: 2px 8px; border-bottom: 1px solid #eee; text-align: right; }
        table.stats th button { font: inherit; font-weight: 600; background: none; border: 0; cursor: pointer;
          color: var(--fg); padding: 0; }
        table.stats tr.selected td { background: #dce8fb; }
        table.stats tbody tr { cursor: pointer; }
        .scroll { max-height: 60vh; overflow: auto; border: 1px solid var(--line); }
        .grid { border-collapse: collapse; }
        .grid td { width: 22px; height: 22px; border: 1px solid #fff; cursor: pointer; padding: 0; }
        .grid td.selected { outline: 2px solid #000; outline-offset: -2px; }
        .grid th { font-weight: normal; color: var(--muted); font-size: 12px; padding: 0 4px; }
        .row { display: flex; flex-wrap: wrap; gap: 24px; align-items: flex-start; }
        .tokens { display: flex; gap: 0; position: relative; }
        .tokens .column { display: flex; flex-direction: column; }
        .tok { white-space: pre; padding: 0 6px; height: 18px; line-height: 18px; cursor: default; font-size: 13px;
          max-width: 16em; overflow: hidden; text-overflow: ellipsis; }
        .tok.active { background: #ffe9a8; }
        .column.queries .tok { text-align: right; }
        #hv-values { font-variant-numeric: tabular-nums; min-width: 14em; }
        #hv-values li { white-space: pre; }
        .heads { display: flex; flex-wrap: wrap; gap: 6px; margin: 6px 0; }
        .heads label { display: inline-flex; align-items: center; gap: 3px; padding: 1px 6px; border-radius: 3px;
          color: #fff; font-size: 12px; }
        #model-grid { display: grid; gap: 3px; }
        #model-grid canvas { width: 64px; height: 64px; image-rendering: pixelated; cursor: pointer;
          border: 2px solid transparent; }
        #model-grid canvas.selected { border-color: #000; }
        #matrix-canvas { image-rendering: pixelated; border: 1px solid var(--line); }
        #matrix-box { justify-content: start; }
        #matrix-queries .tok { text-align: right; }
        .wide { max-width: 100%; overflow: auto; }
        #matrix-readout { font-variant-numeric: tabular-nums; min-height: 1.4em; white-space: pre; }
        .muted { color: var(--muted); }
        :focus-visible { outline: 3px solid var(--accent); outline-offset: 1px; }
        .tok:focus-visible { outline-offset: -2px; }
        @media (max-width: 700px) { main { padding: 8px; } header { padding: 6px 8px; } .tok { max-width: 8em; } }
        """#

    static let script = #"""
        (function () {
        'use strict';
        const D = JSON.parse(document.getElementById('attninspect-data').textContent);
        const el = (tag, attrs, text) => {
          const e = document.createElement(tag);
          for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
          if (text !== undefined) e.textContent = text;
          return e;
        };
        function bytes(b64) {
          const bin = atob(b64), out = new Uint8Array(bin.length);
          for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
          return out;
        }
        function half(h) {
          const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 31, f = h & 1023;
          if (e === 0) return s * f * Math.pow(2, -24);
          if (e === 31) return f ? NaN : s * Infinity;
          return s * (1 + f / 1024) * Math.pow(2, e - 15);
        }
        function float16(b64) {
          const b = bytes(b64), out = new Float32Array(b.length / 2);
          for (let i = 0; i < out.length; i++) out[i] = half(b[2 * i] | (b[2 * i + 1] << 8));
          return out;
        }
        const att = D.arrays.attention, [NL, NH, Q, K] = att.shape, A = float16(att.base64);
        function float32(b64) {
          const b = bytes(b64);
          return new Float32Array(b.buffer, b.byteOffset, b.length / 4);
        }
        const R = D.arrays.rollout ? float32(D.arrays.rollout.base64) : null;
        const depths = D.arrays.rollout ? D.arrays.rollout.shape[0] : 0;
        const G = D.patch_grid;
        // Pooled matrices (report over --max-report-size): each row and column is a cell of P tokens, named by
        // the range of tokens it holds.
        const P = att.pool || 1;
        const cells = (n, labels) => Array.from({length: Math.ceil(n / P)}, (_, i) => {
          const first = i * P, last = Math.min(n, first + P) - 1;
          return P === 1 ? (labels ? labels[i] : String(i)) : first + '–' + last;
        });
        const tokens = cells(D.queries, D.tokens);
        const keyTokens = cells(D.keys, D.key_tokens || (D.queries === D.keys ? D.tokens : null));
        const state = {layer: 0, head: 0, token: 0, range: 'robust', colormap: 'viridis', hover: -1,
                       depth: Math.max(0, (D.arrays.rollout ? D.arrays.rollout.shape[0] : 1) - 1),
                       vision: 'attention'};
        const headNames = D.heads.map(String);
        // The map of layer index li and head index hi (-1, -2, -3: the mean, maximum and minimum over the embedded
        // heads, as --head mean|max|min), Q × K.
        const cache = new Map();
        function map(li, hi) {
          const key = li + ':' + hi;
          if (cache.has(key)) return cache.get(key);
          const size = Q * K;
          let m;
          if (hi >= 0) {
            m = A.subarray((li * NH + hi) * size, (li * NH + hi + 1) * size);
          } else if (hi === -1) {
            m = new Float32Array(size);
            for (let h = 0; h < NH; h++) {
              const part = A.subarray((li * NH + h) * size, (li * NH + h + 1) * size);
              for (let i = 0; i < size; i++) m[i] += part[i];
            }
            for (let i = 0; i < size; i++) m[i] /= NH;
          } else {
            const pick = hi === -2 ? Math.max : Math.min;
            m = Float32Array.from(A.subarray(li * NH * size, (li * NH + 1) * size));
            for (let h = 1; h < NH; h++) {
              const part = A.subarray((li * NH + h) * size, (li * NH + h + 1) * size);
              for (let i = 0; i < size; i++) m[i] = pick(m[i], part[i]);
            }
          }
          cache.set(key, m);
          return m;
        }
        // numpy.percentile's default: linear interpolation between the closest ranks, finite values only.
        function percentile(sorted, p) {
          const h = (sorted.length - 1) * p / 100, lo = Math.floor(h), hi = Math.min(lo + 1, sorted.length - 1);
          return sorted[lo] + (h - lo) * (sorted[hi] - sorted[lo]);
        }
        function range(values) {
          // A typed array sorts as numbers, without a comparison function: a second for 10 million values.
          const finite = Float32Array.from(values).filter(Number.isFinite);
          if (!finite.length) return [0, 1];
          finite.sort();
          let lo = finite[0], hi = finite[finite.length - 1];
          if (state.range === 'robust') {
            const a = percentile(finite, 1), b = percentile(finite, 99);
            if (b > a) { lo = a; hi = b; }
          }
          return [lo, hi];
        }
        function colour(v, r) {
          const table = D.colormaps[state.colormap];
          let t = r[1] > r[0] ? (v - r[0]) / (r[1] - r[0]) : 0;
          t = Number.isFinite(t) ? Math.min(1, Math.max(0, t)) : 0;
          const i = Math.round(t * 255) * 3;
          return [table[i], table[i + 1], table[i + 2]];
        }
        function draw(canvas, values, rows, columns, r) {
          canvas.width = columns; canvas.height = rows;
          const ctx = canvas.getContext('2d'), img = ctx.createImageData(columns, rows);
          for (let i = 0; i < rows * columns; i++) {
            const [cr, cg, cb] = colour(values[i], r);
            img.data[4 * i] = cr; img.data[4 * i + 1] = cg; img.data[4 * i + 2] = cb; img.data[4 * i + 3] = 255;
          }
          ctx.putImageData(img, 0, 0);
        }
        const fmt = v => Number.isFinite(v) ? v.toFixed(4) : String(v);
        // A float32 about as `attninspect` prints one (8 significant digits at most).
        const short = v => String(Number(Number(v).toPrecision(8)));
        const headLabel = hi => hi >= 0 ? 'head ' + headNames[hi] : ['mean', 'max', 'min'][-1 - hi];

        // ---- page structure
        const header = el('header');
        header.append(el('h1', {}, 'attninspect: ' + D.file));
        const nav = el('nav', {role: 'tablist'});
        const views = [['overview', 'Overview'], ['head-view', 'Head view'], ['model-view', 'Model view'],
                       ['matrix-view', 'Matrix']];
        if (G) views.push(['vision-view', 'Vision']);
        if (R) views.push(['rollout-view', 'Rollout']);
        const sections = {};
        const main = el('main');
        for (const [id, name] of views) {
          const b = el('button', {role: 'tab', id: 'tab-' + id, 'aria-controls': id}, name);
          b.addEventListener('click', () => show(id));
          nav.append(b);
          const s = el('section', {id: id, role: 'tabpanel', 'aria-labelledby': 'tab-' + id});
          s.hidden = true;
          sections[id] = s;
          main.append(s);
        }
        header.append(nav);
        const selection = el('span', {id: 'selection', 'aria-live': 'polite'});
        header.append(selection);
        const rangeSelect = el('select', {id: 'range', 'aria-label': 'colour range'});
        rangeSelect.append(el('option', {value: 'robust'}, 'range p1:p99'),
                           el('option', {value: 'minmax'}, 'range min–max'));
        const mapSelect = el('select', {id: 'colormap', 'aria-label': 'colormap'});
        for (const name of Object.keys(D.colormaps)) mapSelect.append(el('option', {value: name}, name));
        header.append(rangeSelect, mapSelect);
        rangeSelect.addEventListener('change', () => { state.range = rangeSelect.value; render(true); });
        mapSelect.addEventListener('change', () => { state.colormap = mapSelect.value; render(true); });
        document.body.append(header, main);
        function show(id) {
          for (const [v] of views) {
            sections[v].hidden = v !== id;
            document.getElementById('tab-' + v).setAttribute('aria-selected', String(v === id));
          }
          document.body.dataset.view = id;
          refresh();
        }

        // ---- overview: the stats table and the entropy grid
        const ov = sections['overview'];
        ov.append(el('h2', {}, 'Statistics per layer and head'),
                  el('p', {class: 'muted'},
                     'As attninspect stats prints them; click a column to sort, a row to select.'));
        const table = el('table', {class: 'stats', id: 'stats-table'});
        const thead = el('thead'), tbody = el('tbody'), hr = el('tr');
        let sortKey = -1, sortDown = false;
        D.stats.headers.forEach((h, c) => {
          const th = el('th', {scope: 'col'}), b = el('button', {'data-column': String(c)}, h);
          b.addEventListener('click', () => {
            sortDown = sortKey === c ? !sortDown : false; sortKey = c; fillTable();
          });
          th.append(b); hr.append(th);
        });
        thead.append(hr); table.append(thead, tbody);
        const scroll = el('div', {class: 'scroll'}); scroll.append(table); ov.append(scroll);
        function fillTable() {
          const rows = D.stats.rows.slice();
          if (sortKey >= 0) rows.sort((a, b) => {
            const x = a.values[sortKey], y = b.values[sortKey];
            const d = (x === null) - (y === null) || (x < y ? -1 : x > y ? 1 : 0);
            return sortDown ? -d : d;
          });
          tbody.replaceChildren();
          for (const r of rows) {
            const tr = el('tr', {'data-layer': String(r.layer), 'data-head': String(r.head)});
            for (const t of r.text) tr.append(el('td', {}, t));
            tr.addEventListener('click', () => selectByNumber(r.layer, r.head));
            tbody.append(tr);
          }
          markTable();
        }
        ov.append(el('h2', {}, 'Mean row entropy (nats), layers × heads'));
        const grid = el('table', {class: 'grid', id: 'entropy-grid'});
        ov.append(grid);
        const entropyColumn = D.stats.keys.indexOf('entropy');
        function entropyOf(layer, head) {
          const r = D.stats.rows.find(r => r.layer === layer && r.head === head);
          return r ? r.values[entropyColumn] : null;
        }
        function fillGrid() {
          grid.replaceChildren();
          const top = el('tr'); top.append(el('th'));
          for (let h = 0; h < D.head_count; h++) top.append(el('th', {scope: 'col'}, String(h)));
          grid.append(top);
          const all = D.stats.rows.map(r => r.values[entropyColumn]).filter(v => v !== null);
          const r = range(all);
          for (let l = 0; l < D.layer_count; l++) {
            const tr = el('tr'); tr.append(el('th', {scope: 'row'}, String(l)));
            for (let h = 0; h < D.head_count; h++) {
              const v = entropyOf(l, h), td = el('td', {'data-layer': String(l), 'data-head': String(h),
                title: 'layer ' + l + ', head ' + h + ': ' + (v === null ? '-' : v.toFixed(4))});
              if (v !== null) { const [cr, cg, cb] = colour(v, r); td.style.background = `rgb(${cr},${cg},${cb})`; }
              td.addEventListener('click', () => selectByNumber(l, h));
              tr.append(td);
            }
            grid.append(tr);
          }
          markTable();
        }
        function markTable() {
          const l = D.layers[state.layer], h = state.head >= 0 ? D.heads[state.head] : null;
          const chosen = e => +e.dataset.layer === l && +e.dataset.head === h;
          for (const tr of tbody.children) tr.classList.toggle('selected', chosen(tr));
          for (const td of grid.querySelectorAll('td')) td.classList.toggle('selected', chosen(td));
        }
        function selectByNumber(layer, head) {
          const li = D.layers.indexOf(layer), hi = D.heads.indexOf(head);
          if (li < 0 || hi < 0) {
            selection.textContent = 'layer ' + layer + ' head ' + head +
              ' is not in this report (attninspect report --layer/--head)';
            return;
          }
          select(li, hi);
        }

        // ---- head view
        const hv = sections['head-view'];
        hv.append(el('p', {class: 'muted', id: 'hv-note'}, P > 1
          ? 'The matrices are pooled ' + P + '×' + P + ' to fit the page: the head view needs tokens. Write the ' +
            'report with --layer N or --head H, or a larger --max-report-size.'
          : 'Queries on the left, keys on the right: a line for each, as strong as its attention. Hover a query to ' +
            'see its row.'));
        const headBoxes = el('div', {class: 'heads', id: 'hv-heads'});
        const palette = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f',
                         '#bcbd22', '#17becf'];
        const headColour = hi => palette[hi % palette.length];
        const enabled = new Set([0]);
        D.heads.forEach((h, hi) => {
          // Black or white text, whichever reads better on the head's colour.
          const [r, g, b] = [1, 3, 5].map(i => parseInt(headColour(hi).slice(i, i + 2), 16));
          const label = el('label', {style: 'background:' + headColour(hi) + ';color:' +
                                     (0.299 * r + 0.587 * g + 0.114 * b > 150 ? '#000' : '#fff')});
          const box = el('input', {type: 'checkbox', 'data-head': String(h)});
          box.checked = enabled.has(hi);
          box.addEventListener('change', () => {
            if (box.checked) enabled.add(hi); else enabled.delete(hi);
            drawLines();
          });
          label.append(box, document.createTextNode(String(h)));
          headBoxes.append(label);
        });
        const hvRow = el('div', {class: 'row'}), pane = el('div', {class: 'tokens wide', id: 'hv-tokens'});
        const left = el('div', {class: 'column queries'}), right = el('div', {class: 'column keys'});
        const svgNS = 'http://www.w3.org/2000/svg', svg = document.createElementNS(svgNS, 'svg');
        svg.setAttribute('width', '160'); svg.setAttribute('height', String(18 * Math.max(Q, K)));
        tokens.forEach((t, i) => {
          const d = el('div', {class: 'tok hv-query', 'data-index': String(i), tabindex: '0'}, t);
          d.addEventListener('mouseenter', () => { state.hover = i; state.token = i; drawLines(); });
          d.addEventListener('focus', () => { state.hover = i; state.token = i; drawLines(); });
          left.append(d);
        });
        keyTokens.forEach((t, j) => right.append(el('div', {class: 'tok hv-key', 'data-index': String(j)}, t)));
        pane.addEventListener('mouseleave', () => { state.hover = -1; drawLines(); });
        pane.append(left, svg, right);
        const values = el('div', {id: 'hv-values'});
        hvRow.append(pane, values);
        const hvLayer = el('select', {id: 'hv-layer', 'aria-label': 'layer'});
        D.layers.forEach((l, li) => hvLayer.append(el('option', {value: String(li)}, 'layer ' + l)));
        hvLayer.addEventListener('change', () => select(+hvLayer.value, state.head));
        if (P === 1) hv.append(hvLayer, headBoxes, hvRow);
        function drawLines() {
          if (P > 1) return;
          hvLayer.value = String(state.layer);
          while (svg.firstChild) svg.removeChild(svg.firstChild);
          const rows = state.hover >= 0 ? [state.hover] : Array.from({length: Q}, (_, i) => i);
          for (const hi of enabled) {
            const m = map(state.layer, hi);
            for (const i of rows) for (let j = 0; j < K; j++) {
              const a = m[i * K + j];
              if (!(a > 0.01)) continue;
              const line = document.createElementNS(svgNS, 'line');
              line.setAttribute('x1', '0'); line.setAttribute('y1', String(18 * i + 9));
              line.setAttribute('x2', '160'); line.setAttribute('y2', String(18 * j + 9));
              line.setAttribute('stroke', headColour(hi)); line.setAttribute('stroke-opacity', String(Math.min(1, a)));
              line.setAttribute('stroke-width', '2');
              svg.append(line);
            }
          }
          for (const d of left.children) d.classList.toggle('active', +d.dataset.index === state.hover);
          values.replaceChildren();
          if (state.hover < 0) { values.append(el('p', {class: 'muted'}, 'Hover a query token.')); return; }
          const hi = state.head;
          const m = map(state.layer, hi);
          values.append(el('p', {}, 'layer ' + D.layers[state.layer] + ', ' + headLabel(hi) + ', query ' +
                           state.hover + ' (' + tokens[state.hover] + ')'));
          const list = el('ol', {start: '0'});
          for (let j = 0; j < K; j++)
            list.append(el('li', {'data-key': String(j)}, keyTokens[j] + ' (' + fmt(m[state.hover * K + j]) + ')'));
          values.append(list);
        }

        // ---- model view
        const mv = sections['model-view'];
        mv.append(el('p', {class: 'muted'},
                     'Every layer (rows) and head (columns) on one colour scale; click one to select it.'));
        const modelGrid = el('div', {id: 'model-grid'});
        modelGrid.style.gridTemplateColumns = `repeat(${NH}, 68px)`;
        const modelBox = el('div', {class: 'wide'});
        modelBox.append(modelGrid);
        mv.append(modelBox);
        let modelRange = null;  // one scale for every thumbnail: computed once per choice of range
        function fillModel() {
          modelGrid.replaceChildren();
          const r = modelRange || (modelRange = range(A));
          for (let li = 0; li < NL; li++) for (let hi = 0; hi < NH; hi++) {
            const c = el('canvas', {'data-layer': String(D.layers[li]), 'data-head': String(D.heads[hi]),
              title: 'layer ' + D.layers[li] + ', head ' + D.heads[hi], role: 'button', tabindex: '0'});
            draw(c, map(li, hi), Q, K, r);
            c.addEventListener('click', () => { select(li, hi); show('matrix-view'); });
            modelGrid.append(c);
          }
          markModel();
        }
        function markModel() {
          for (const c of modelGrid.children)
            c.classList.toggle('selected', +c.dataset.layer === D.layers[state.layer] && state.head >= 0 &&
                               +c.dataset.head === D.heads[state.head]);
        }

        // ---- matrix view
        const xv = sections['matrix-view'];
        const headSelect = el('select', {id: 'matrix-head', 'aria-label': 'head'});
        headSelect.append(el('option', {value: '-1'}, 'mean of heads'), el('option', {value: '-2'}, 'max of heads'),
                          el('option', {value: '-3'}, 'min of heads'));
        D.heads.forEach((h, hi) => headSelect.append(el('option', {value: String(hi)}, 'head ' + h)));
        headSelect.addEventListener('change', () => select(state.layer, +headSelect.value));
        const layerSelect = el('select', {id: 'matrix-layer', 'aria-label': 'layer'});
        D.layers.forEach((l, li) => layerSelect.append(el('option', {value: String(li)}, 'layer ' + l)));
        layerSelect.addEventListener('change', () => select(+layerSelect.value, state.head));
        const canvas = el('canvas', {id: 'matrix-canvas'});
        const readout = el('div', {id: 'matrix-readout', 'aria-live': 'polite'});
        const rangeNote = el('div', {id: 'matrix-range', class: 'muted'});
        // Token labels on both axes when a cell is tall enough for a line of text: keys above, queries on the left.
        const matrixBox = el('div', {id: 'matrix-box', class: 'wide'});
        matrixBox.style.display = 'grid';
        const keyAxis = el('div', {id: 'matrix-keys'}), queryAxis = el('div', {id: 'matrix-queries'});
        matrixBox.append(el('div'), keyAxis, queryAxis, canvas);
        xv.append(layerSelect, headSelect, readout, matrixBox, rangeNote);
        function axis(box, labels, scale, vertical) {
          box.replaceChildren();
          if (scale < 12) return;
          box.style.display = 'flex'; box.style.flexDirection = vertical ? 'column' : 'row';
          labels.forEach((t, i) => {
            const d = el('div', {class: 'tok axis', title: i + ': ' + t}, t);
            d.style.height = vertical ? scale + 'px' : 'auto'; d.style.lineHeight = vertical ? scale + 'px' : '1.2';
            d.style.width = vertical ? 'auto' : scale + 'px';
            if (!vertical) {
              d.style.writingMode = 'vertical-rl'; d.style.transform = 'rotate(180deg)';
              d.style.maxHeight = '8em'; d.style.padding = '2px 0';
            }
            box.append(d);
          });
        }
        function fillMatrix() {
          const m = map(state.layer, state.head), r = range(m);
          draw(canvas, m, Q, K, r);
          const scale = Math.max(1, Math.floor(Math.min(720, window.innerWidth - 40) / Math.max(Q, K)));
          canvas.style.width = K * scale + 'px'; canvas.style.height = Q * scale + 'px';
          matrixBox.style.gridTemplateColumns = 'max-content ' + K * scale + 'px';
          axis(keyAxis, keyTokens, scale, false); axis(queryAxis, tokens, scale, true);
          rangeNote.textContent = 'range ' + short(r[0]) + '...' + short(r[1]) +
            (state.range === 'robust' ? ' (1st to 99th percentile)' : ' (min–max)');
          layerSelect.value = String(state.layer); headSelect.value = String(state.head);
        }
        canvas.addEventListener('mousemove', ev => {
          const box = canvas.getBoundingClientRect();
          const j = Math.floor((ev.clientX - box.left) / box.width * K);
          const i = Math.floor((ev.clientY - box.top) / box.height * Q);
          if (i < 0 || j < 0 || i >= Q || j >= K) return;
          const v = map(state.layer, state.head)[i * K + j];
          readout.textContent =
            'query ' + i + ' (' + tokens[i] + ') → key ' + j + ' (' + keyTokens[j] + '): ' + fmt(v);
        });

        // ---- vision: the picture, and over it the patch grid of the chosen query's attention or rollout
        let visionCanvas = null, visionReadout = null, visionBox = null, depthLabel = [];
        function depthSlider(id) {
          const wrap = el('label', {class: 'muted'}), input = el('input', {type: 'range', id: id, min: '0',
            max: String(Math.max(0, depths - 1)), value: String(state.depth), 'aria-label': 'rollout depth'});
          const text = el('span');
          depthLabel.push(text);
          input.addEventListener('input', () => { state.depth = +input.value; render(); });
          wrap.append('rollout through layers 0…', text, ' ', input);
          return wrap;
        }
        if (G) {
          const vv = sections['vision-view'];
          const kind = el('select', {id: 'vision-kind', 'aria-label': 'what to overlay'});
          kind.append(el('option', {value: 'attention'}, 'attention of the layer and head'));
          if (R) kind.append(el('option', {value: 'rollout'}, 'rollout'));
          kind.addEventListener('change', () => { state.vision = kind.value; render(); });
          const alpha = el('input', {type: 'range', id: 'vision-alpha', min: '0', max: '1', step: '0.05', value: '0.5',
            'aria-label': 'opacity of the map'});
          visionReadout = el('div', {id: 'vision-readout', 'aria-live': 'polite'});
          visionBox = el('div', {id: 'vision-box'});
          visionBox.style.position = 'relative'; visionBox.style.display = 'inline-block';
          visionBox.style.cursor = 'crosshair';
          visionCanvas = el('canvas', {id: 'vision-overlay'});
          visionCanvas.style.imageRendering = 'auto';
          if (D.image) {
            const img = el('img', {id: 'vision-image', alt: 'the input picture',
              src: 'data:' + D.image.mime + ';base64,' + D.image.base64});
            const side = Math.min(448, window.innerWidth - 40);
            img.style.width = side + 'px'; img.style.height = Math.round(side * D.image.height / D.image.width) + 'px';
            img.style.display = 'block';
            visionCanvas.style.position = 'absolute'; visionCanvas.style.left = '0'; visionCanvas.style.top = '0';
            visionCanvas.style.width = img.style.width; visionCanvas.style.height = img.style.height;
            visionCanvas.style.opacity = alpha.value;
            visionBox.append(img, visionCanvas);
          } else {
            const side = Math.min(448, window.innerWidth - 40);
            visionCanvas.style.width = side + 'px';
            visionCanvas.style.height = Math.round(side * G.rows / G.columns) + 'px';
            visionBox.append(visionCanvas);
          }
          alpha.addEventListener('input', () => { visionCanvas.style.opacity = alpha.value; });
          visionBox.addEventListener('click', ev => {
            const box = visionBox.getBoundingClientRect();
            const c = Math.floor((ev.clientX - box.left) / box.width * G.columns);
            const r = Math.floor((ev.clientY - box.top) / box.height * G.rows);
            if (r < 0 || c < 0 || r >= G.rows || c >= G.columns) return;
            state.token = G.prefix + r * G.columns + c;
            render();
          });
          vv.append(el('p', {class: 'muted'}, 'The query\u2019s attention over the patches (default the first token, ' +
                    'CLS); click a patch to make it the query.'), kind, ' ', (R ? depthSlider('vision-depth') : ''),
                    el('label', {class: 'muted'}, ' opacity '), alpha, visionReadout, visionBox);
        }
        // The chosen query's row over the keys: of the layer and head, or of the rollout at its depth.
        function row(kind) {
          const at = state.depth * Q + state.token;
          if (kind === 'rollout') return R.subarray(at * K, (at + 1) * K);
          return map(state.layer, state.head).subarray(state.token * K, (state.token + 1) * K);
        }
        function fillVision() {
          if (!G) return;
          const full = row(state.vision), n = G.rows * G.columns;
          const cells = full.subarray(G.prefix, G.prefix + n), r = range(cells);
          draw(visionCanvas, cells, G.rows, G.columns, r);
          let best = 0;
          for (let i = 1; i < n; i++) if (cells[i] > cells[best]) best = i;
          visionCanvas.dataset.argmax = String(G.prefix + best);
          visionReadout.textContent = (state.vision === 'rollout' ? 'rollout through layers 0…' + state.depth :
            'layer ' + D.layers[state.layer] + ', ' + headLabel(state.head)) + ', query token ' + state.token +
            ' (' + tokens[state.token] + '): brightest token ' + (G.prefix + best) + ' (patch row ' +
            Math.floor(best / G.columns) + ', column ' + (best % G.columns) + ') ' + fmt(cells[best]) +
            '; range ' + short(r[0]) + '...' + short(r[1]);
        }

        // ---- rollout over the tokens: the chosen query's row of the rollout, each key coloured by its value
        let rolloutTokens = null;
        if (R) {
          const rv = sections['rollout-view'];
          rolloutTokens = el('div', {id: 'rollout-tokens'});
          rolloutTokens.style.display = 'flex'; rolloutTokens.style.flexWrap = 'wrap'; rolloutTokens.style.gap = '2px';
          rv.append(el('p', {class: 'muted'}, 'The rollout row of the query token (Shift ← → or click a token to ' +
                    'choose it), each key coloured by the attention it gets.'), depthSlider('rollout-depth'),
                    el('div', {id: 'rollout-readout'}), rolloutTokens);
          keyTokens.forEach((t, j) => {
            const d = el('span', {class: 'tok rollout-key', 'data-index': String(j)}, t);
            d.addEventListener('click', () => { if (j < Q) { state.token = j; render(); } });
            rolloutTokens.append(d);
          });
        }
        function fillRollout() {
          for (const t of depthLabel) t.textContent = String(state.depth);
          for (const s of document.querySelectorAll('input[type=range][id$=depth]')) s.value = String(state.depth);
          if (!R) return;
          const values = row('rollout'), r = range(values);
          document.getElementById('rollout-readout').textContent = 'query token ' + state.token + ' (' +
            tokens[state.token] + '), rollout through layers 0…' + state.depth + '; range ' + short(r[0]) + '...' +
            short(r[1]);
          rolloutTokens.childNodes.forEach((d, j) => {
            const [cr, cg, cb] = colour(values[j], r);
            d.style.background = `rgb(${cr},${cg},${cb})`;
            d.style.color = (0.299 * cr + 0.587 * cg + 0.114 * cb) > 140 ? '#000' : '#fff';
            d.dataset.value = String(values[j]);
            d.title = 'key ' + j + ': ' + fmt(values[j]);
            d.classList.toggle('active', j === state.token);
          });
        }

        // ---- selection and keys
        function select(li, hi) {
          state.layer = Math.max(0, Math.min(NL - 1, li));
          state.head = Math.max(-3, Math.min(NH - 1, hi));
          render();
        }
        function render(repaint) {
          const l = D.layers[state.layer];
          document.body.dataset.layer = String(l);
          document.body.dataset.head = state.head >= 0 ? String(D.heads[state.head]) : headLabel(state.head);
          selection.textContent = 'layer ' + l + ', ' + headLabel(state.head) + ', token ' +
            (P === 1 ? state.token : tokens[state.token]);
          if (state.head >= 0 && !enabled.has(state.head)) {
            enabled.clear(); enabled.add(state.head);
            for (const b of headBoxes.querySelectorAll('input')) b.checked = +b.dataset.head === D.heads[state.head];
          }
          if (repaint) { stale.grid = stale.model = true; modelRange = null; }
          if (stale.grid) { fillGrid(); stale.grid = false; }
          markTable();
          refresh();
        }
        // Only the view on screen is drawn (the others when shown): a selection in a page of 144 maps of 256 × 256
        // cells stays quick. The grid and the thumbnails are drawn again only when the colours change.
        const stale = {grid: true, model: true};
        function refresh() {
          const on = id => sections[id] && !sections[id].hidden;
          if (on('model-view')) {
            if (stale.model) { fillModel(); stale.model = false; }
            markModel();
          }
          if (on('matrix-view')) fillMatrix();
          if (on('head-view')) drawLines();
          if (on('vision-view')) fillVision();
          if (on('rollout-view')) fillRollout();
        }
        document.addEventListener('keydown', ev => {
          if (ev.target.tagName === 'SELECT' || ev.target.tagName === 'INPUT') return;
          if (ev.key === 'ArrowUp') select(state.layer - 1, state.head);
          else if (ev.key === 'ArrowDown') select(state.layer + 1, state.head);
          else if ((ev.key === 'ArrowLeft' || ev.key === 'ArrowRight') && ev.shiftKey) {
            state.token = Math.max(0, Math.min(Q - 1, state.token + (ev.key === 'ArrowLeft' ? -1 : 1)));
            state.hover = state.token;
            render();
          }
          else if (ev.key === 'ArrowLeft') select(state.layer, state.head - 1);
          else if (ev.key === 'ArrowRight') select(state.layer, state.head + 1);
          else return;
          ev.preventDefault();
        });
        fillTable();
        render(true);
        show('overview');
        })();
        """#
}
