// Scrubbable figures: a slider over the frames of sprite sheets made by
// docs/figures/make_scrub_figures.py. Each sheet is one row of frames; CSS shows frame
// var(--frame) of var(--frames). Without JavaScript the figure shows the frame its HTML names.
(function () {
  "use strict";
  function setUp(root) {
    if (root.dataset.ready) return;
    root.dataset.ready = "1";
    const slider = root.querySelector("input[type=range]");
    const readouts = root.querySelectorAll("[data-readout]");
    let values = null;
    function show() {
      const k = Number(slider.value);
      root.style.setProperty("--frame", String(k));
      for (const label of root.querySelectorAll("[data-frame-label]")) {
        label.textContent = `${k + 1} of ${Number(slider.max) + 1}`;
      }
      if (!values) return;
      for (const out of readouts) {
        let v = values;
        for (const key of out.dataset.readout.split(".")) v = v[key];
        out.textContent = String(v[k]);
      }
    }
    for (const el of root.querySelectorAll("[data-js-only]")) el.hidden = false;
    slider.addEventListener("input", show);
    if (root.dataset.values) {
      fetch(new URL(root.dataset.values, window.location.href))
        .then((r) => r.json())
        .then((json) => {
          values = json;
          show();
        });
    }
    show();
  }
  function all() {
    document.querySelectorAll("[data-scrub]").forEach(setUp);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", all);
  else all();
})();
