// The sampler playground: runs the samplers' step graphs (exported from snippets/ by
// snippets/onnx_export.py) with ONNX Runtime Web. This file only loops over the steps of the
// table in steps.json, draws Gaussian noise and paints pixels; every formula of a sampler is in
// the graphs. A model trained at 8x8 (steps.json's upsample_to) is painted upsampled, as its
// Python samples are.
// ONNX Runtime and the graph load when the reader presses Run, from the site itself.
(function () {
  "use strict";
  // -- pictures: what is painted for the model's images ------------------------------------
  // snippets.fast_digits.upsample_digits: clamp to [-1, 1], then bilinear with
  // align_corners=False (PyTorch's half-pixel centres): output pixel d of m reads the input of
  // n pixels at s = (d + 0.5) * n / m - 0.5, clamped to [0, n - 1]. `data` holds B images of
  // n x n, one after the other; the result B images of m x m.
  function upsample(data, B, n, m) {
    const taps = []; // per output row or column: the two input ones and their weights
    for (let d = 0; d < m; d++) {
      const s = Math.min(Math.max((d + 0.5) * (n / m) - 0.5, 0), n - 1);
      const i0 = Math.floor(s), w1 = s - i0;
      taps.push([i0, Math.min(i0 + 1, n - 1), 1 - w1, w1]);
    }
    const clamp = (v) => Math.max(-1, Math.min(1, v));
    const out = new Float32Array(B * m * m);
    for (let b = 0; b < B; b++) {
      const at = (y, x) => clamp(data[b * n * n + y * n + x]);
      for (let y = 0; y < m; y++) {
        const [y0, y1, hy0, hy1] = taps[y];
        for (let x = 0; x < m; x++) {
          const [x0, x1, wx0, wx1] = taps[x];
          const top = wx0 * at(y0, x0) + wx1 * at(y0, x1);
          const bottom = wx0 * at(y1, x0) + wx1 * at(y1, x1);
          out[b * m * m + y * m + x] = hy0 * top + hy1 * bottom;
        }
      }
    }
    return out;
  }
  // The images to paint and their side, for the manifest `m`: the model's own (`m.shape`)
  // when `m.upsample_to` is null or absent, else upsampled to it as the Python samples are
  // (`snippets.checkpoint.generate`). x_t, x0_hat and the samples all go through here, so an 8x8
  // model's x_t (8x8 noise) is upsampled too and the three pictures have the same size.
  function picture(data, B, m) {
    const side = m.shape[m.shape.length - 1];
    if (!m.upsample_to) return { data: data, side: side };
    return { data: upsample(data, B, side, m.upsample_to), side: m.upsample_to };
  }
  // for tests: the pure functions, also on a page without the playground
  window.feastPlayground = Object.assign(window.feastPlayground || {}, {
    upsample: upsample,
    picture: picture,
  });

  const root = document.querySelector("[data-playground]");
  if (!root || root.dataset.ready) return;
  root.dataset.ready = "1";
  const here = (rel) => new URL(rel, window.location.href).href;
  const modelsUrl = here(root.dataset.models);
  const ortUrl = here(root.dataset.ort);
  const $ = (name) => root.querySelector(`[name="${name}"]`);
  const status = root.querySelector("[data-status]");
  const cache = { manifest: null, sessions: {} };

  // -- randomness: a seeded PRNG (mulberry32) and Box-Muller --------------------------------
  function mulberry32(seed) {
    let a = seed >>> 0;
    return function () {
      a = (a + 0x6d2b79f5) >>> 0;
      let t = a;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }
  function gaussian(rand, n) {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i += 2) {
      const u = 1 - rand(), v = rand();
      const r = Math.sqrt(-2 * Math.log(u));
      out[i] = r * Math.cos(2 * Math.PI * v);
      if (i + 1 < n) out[i + 1] = r * Math.sin(2 * Math.PI * v);
    }
    return out;
  }

  // -- loading: the runtime and one graph, on first use -------------------------------------
  function loadScript(src) {
    return new Promise((resolve, reject) => {
      const el = document.createElement("script");
      el.src = src;
      el.onload = resolve;
      el.onerror = () => reject(new Error(`could not load ${src}`));
      document.head.appendChild(el);
    });
  }
  async function runtime() {
    if (!window.ort) await loadScript(ortUrl + "ort.wasm.min.js");
    window.ort.env.wasm.numThreads = 1; // no SharedArrayBuffer: no cross-origin isolation
    window.ort.env.wasm.wasmPaths = ortUrl; // the site's own copy, never a CDN
    return window.ort;
  }
  async function manifest() {
    if (!cache.manifest) {
      const response = await fetch(modelsUrl + "steps.json");
      if (!response.ok) throw new Error(`steps.json: HTTP ${response.status}`);
      cache.manifest = await response.json();
    }
    return cache.manifest;
  }
  async function session(sampler) {
    const ort = await runtime();
    const m = await manifest();
    if (!cache.sessions[sampler]) {
      const response = await fetch(modelsUrl + m.graphs[sampler].file);
      if (!response.ok) throw new Error(`${sampler} graph: HTTP ${response.status}`);
      const bytes = new Uint8Array(await response.arrayBuffer());
      cache.sessions[sampler] = await ort.InferenceSession.create(bytes, {
        executionProviders: ["wasm"],
      });
    }
    return cache.sessions[sampler];
  }

  // -- the loop ----------------------------------------------------------------------------
  // opts: sampler, steps, eta, guidance, labels (ints), seed; optional xT (flat array) and
  // noises (one flat array per step, or null) to replay given inputs exactly.
  async function sample(opts, onStep) {
    const ort = await runtime();
    const m = await manifest();
    const table = m.schedules[opts.sampler][String(opts.steps)];
    if (!table) throw new Error(`no table for ${opts.sampler} with ${opts.steps} steps`);
    const sess = await session(opts.sampler);
    const B = opts.labels.length;
    const size = m.shape[0] * m.shape[1] * m.shape[2];
    const dims = [B, ...m.shape];
    const rand = mulberry32(opts.seed || 0);
    const xT = opts.xT ? Float32Array.from(opts.xT) : gaussian(rand, B * size);
    let x = xT.map((v) => v * table.x_scale);
    let x0 = new Float32Array(B * size);
    const labels = new ort.Tensor("int64", BigInt64Array.from(opts.labels.map(BigInt)), [B]);
    const scalar = (v) => new ort.Tensor("float32", Float32Array.of(Number(v)), []);
    const frames = [];
    for (let i = 0; i < table.steps.length; i++) {
      const step = table.steps[i];
      const draw = step.noise === true || (step.noise === "eta" && opts.eta > 0);
      let noise;
      if (opts.noises) noise = Float32Array.from(opts.noises[i] || new Float32Array(B * size));
      else noise = draw ? gaussian(rand, B * size) : new Float32Array(B * size);
      const feed = {
        x: new ort.Tensor("float32", x, dims),
        class_labels: labels,
        guidance_scale: scalar(opts.guidance),
      };
      for (const name of m.inputs[opts.sampler]) {
        if (name === "noise") feed[name] = new ort.Tensor("float32", noise, dims);
        else if (name === "x0_prev") feed[name] = new ort.Tensor("float32", x0, dims);
        else if (name === "eta") feed[name] = scalar(opts.eta);
        else if (name === "t" && opts.sampler === "euler") feed[name] = scalar(step.t);
        else if (name === "t" || name === "t_prev")
          feed[name] = new ort.Tensor("int64", BigInt64Array.of(BigInt(step[name])), []);
        else feed[name] = scalar(step[name]);
      }
      const out = await sess.run(feed);
      x = out.x_next.data;
      x0 = out.x0_hat.data;
      frames.push({ x: x, x0: x0 });
      if (onStep) await onStep(i + 1, table.steps.length);
    }
    return { x: x, frames: frames, B: B };
  }

  // -- painting ----------------------------------------------------------------------------
  function paint(canvas, images, B, m) {
    const { data, side } = picture(images, B, m);
    const cols = Math.ceil(Math.sqrt(B)), rows = Math.ceil(B / cols);
    canvas.width = cols * side;
    canvas.height = rows * side;
    const ctx = canvas.getContext("2d");
    const img = ctx.createImageData(canvas.width, canvas.height);
    for (let b = 0; b < B; b++) {
      const ox = (b % cols) * side, oy = Math.floor(b / cols) * side;
      for (let y = 0; y < side; y++)
        for (let xx = 0; xx < side; xx++) {
          const v = data[b * side * side + y * side + xx];
          const g = Math.max(0, Math.min(255, Math.round(((v + 1) / 2) * 255)));
          const p = 4 * ((oy + y) * canvas.width + ox + xx);
          img.data[p] = img.data[p + 1] = img.data[p + 2] = g;
          img.data[p + 3] = 255;
        }
    }
    ctx.putImageData(img, 0, 0);
  }

  // -- the form ----------------------------------------------------------------------------
  const run = root.querySelector("[data-run]");
  const scrub = $("step");
  const show = {
    samples: root.querySelector("[data-canvas=samples]"),
    xt: root.querySelector("[data-canvas=xt]"),
    x0: root.querySelector("[data-canvas=x0]"),
  };
  const stepLabel = root.querySelector("[data-step-label]");
  let last = null;
  function showStep() {
    if (!last) return;
    const k = Number(scrub.value);
    const frame = last.frames[k - 1];
    paint(show.xt, frame.x, last.B, last.m);
    paint(show.x0, frame.x0, last.B, last.m);
    stepLabel.textContent = `step ${k} of ${last.frames.length}`;
  }
  function syncEta() {
    $("eta").closest("label").hidden = $("sampler").value !== "ddim";
  }
  $("sampler").addEventListener("change", syncEta);
  syncEta();
  scrub.addEventListener("input", showStep);
  run.addEventListener("click", async () => {
    run.disabled = true;
    const n = 16;
    const digit = $("digit").value;
    const labels = Array.from({ length: n }, (_, i) => (digit === "all" ? i % 10 : Number(digit)));
    const opts = {
      sampler: $("sampler").value,
      steps: Number($("steps").value),
      eta: Number($("eta").value),
      guidance: Number($("guidance").value),
      seed: Number($("seed").value),
      labels: labels,
    };
    try {
      status.textContent = "Loading ONNX Runtime and the sampler's graph...";
      const start = performance.now();
      const result = await sample(opts, (i, N) => {
        status.textContent = `Step ${i} of ${N}`;
        return new Promise((r) => setTimeout(r, 0)); // let the page repaint
      });
      const seconds = (performance.now() - start) / 1000;
      last = { ...result, m: await manifest() };
      paint(show.samples, result.x, result.B, last.m);
      scrub.max = String(result.frames.length);
      scrub.value = String(result.frames.length);
      scrub.disabled = false;
      showStep();
      status.textContent = `${n} samples in ${seconds.toFixed(1)} s.`;
    } catch (error) {
      status.textContent = `Failed: ${error.message}`;
    } finally {
      run.disabled = false;
    }
  });
  // for tests and benchmarks: the same loop, given inputs
  Object.assign(window.feastPlayground, { sample: sample, runtime: runtime, manifest: manifest });
})();
