// Load the search index when the reader first reaches for search, not with every page.
// Material's bundle fetches search/search_index.json with XMLHttpRequest as soon as a page opens;
// this holds that one request back until an element of the search box gets focus (a click on
// the search icon, or the "s", "f" and "/" hotkeys, all focus the search input).
(() => {
  const open = XMLHttpRequest.prototype.open;
  const send = XMLHttpRequest.prototype.send;
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
  document.addEventListener("focusin", (event) => {
    if (!wanted && event.target.closest && event.target.closest(".md-search")) {
      wanted = true;
      held.splice(0).forEach((release) => release());
    }
  });
})();
