// Load search when the reader first reaches for it, not with every page.
// Material's bundle starts its search worker (assets/javascripts/workers/search.*.js) and fetches
// search/search_index.json with XMLHttpRequest as soon as a page opens. This holds both back
// until an element of the search box gets focus (a click on the search icon, or the "s", "f" and
// "/" hotkeys, all focus the search input): the worker is a stand-in that queues messages until
// then, and the index request waits. Search works as before; it arrives when it is wanted.
(() => {
  const open = XMLHttpRequest.prototype.open;
  const send = XMLHttpRequest.prototype.send;
  const RealWorker = window.Worker;
  const held = [];
  let wanted = false;
  XMLHttpRequest.prototype.open = function (method, url, ...rest) {
    this.searchIndex = /\/search\/search_index\.json$/.test(String(url));
    return open.call(this, method, url, ...rest);
  };
  XMLHttpRequest.prototype.send = function (...args) {
    if (this.searchIndex && !wanted) held.push(() => send.apply(this, args));
    else send.apply(this, args);
  };
  class SearchWorker extends EventTarget {
    constructor(url, options) {
      super();
      this.queue = [];
      this.real = null;
      this.start = () => {
        if (this.real) return;
        this.real = new RealWorker(url, options);
        for (const type of ["message", "messageerror", "error"]) {
          this.real.addEventListener(type, (event) => {
            const copy = type === "error"
              ? new ErrorEvent("error", { message: event.message })
              : new MessageEvent(type, { data: event.data });
            this.dispatchEvent(copy);
          });
        }
        this.queue.splice(0).forEach((message) => this.real.postMessage(message));
      };
      if (wanted) this.start();
      else held.push(this.start);
    }
    postMessage(message) {
      if (this.real) this.real.postMessage(message);
      else this.queue.push(message);
    }
    terminate() {
      if (this.real) this.real.terminate();
    }
  }
  window.Worker = function (url, options) {
    return /\/workers\/search\.[\w.]+\.js/.test(String(url))
      ? new SearchWorker(url, options)
      : new RealWorker(url, options);
  };
  document.addEventListener("focusin", (event) => {
    if (!wanted && event.target.closest && event.target.closest(".md-search")) {
      wanted = true;
      held.splice(0).forEach((release) => release());
    }
  });
})();
