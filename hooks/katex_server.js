// Typesets TeX with KaTeX for hooks/katex.py: one long-lived process per build.
//
// Protocol: one JSON request per line on stdin, one JSON answer per line on stdout.
//   request: [[tex, display], ...]      (all the math of one page)
//   answer:  [{"html": "..."} | {"error": "..."}, ...]   (same order)
// KaTeX's strict-mode warnings (e.g. a Unicode letter in math mode) count as errors, so every
// equation of the site is plain LaTeX that KaTeX typesets exactly as written.
"use strict";
const katex = require("katex");
const readline = require("readline");

function render([tex, display]) {
  try {
    const html = katex.renderToString(tex, {
      displayMode: display,
      throwOnError: true,
      output: "htmlAndMathml",
      strict: "error",
      trust: false,
    });
    return { html };
  } catch (error) {
    return { error: String(error.message || error) };
  }
}

const lines = readline.createInterface({ input: process.stdin, terminal: false });
lines.on("line", (line) => {
  if (!line.trim()) return;
  let answer;
  try {
    answer = JSON.parse(line).map(render);
  } catch (error) {
    answer = { error: `bad request: ${error.message}` };
  }
  process.stdout.write(JSON.stringify(answer) + "\n");
});
