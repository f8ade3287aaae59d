// The dashboard's stylesheet and script, compiled into the binary (no CDN: the pages work
// offline) and served from /assets so the pages' Content-Security-Policy can forbid inline code.
#include "handlers.hpp"

namespace devin_orch::app::dashboard {

std::string_view stylesheet() {
  return R"css(:root{color-scheme:light dark;--fg:#1b1f24;--bg:#fff;--muted:#667;--line:#d8dde3;--accent:#0a58ca}
@media (prefers-color-scheme:dark){:root{--fg:#e6e8eb;--bg:#15181c;--muted:#9aa;--line:#333a42;--accent:#6ea8fe}}
*{box-sizing:border-box}body{margin:0;font:15px/1.45 system-ui,sans-serif;color:var(--fg);background:var(--bg)}
header{display:flex;flex-wrap:wrap;gap:.5em 1em;align-items:center;justify-content:space-between;padding:.6em 1em;border-bottom:1px solid var(--line)}
nav a{margin-right:.8em}a{color:var(--accent)}.brand{font-weight:700}
main{padding:0 1em 2em;max-width:1200px}h1{font-size:1.4em;word-break:break-all}h2{font-size:1.1em;margin-top:1.4em}
table{border-collapse:collapse;width:100%;font-size:.9em}th,td{text-align:left;padding:.3em .5em;border-bottom:1px solid var(--line);vertical-align:top}
td.n{text-align:right}td.zero{color:var(--muted)}.scroll{overflow-x:auto}
.state{display:inline-block;padding:0 .4em;border-radius:.6em;font-size:.85em;background:var(--line)}
.s-finished{background:#cfe9d6;color:#13391f}.s-running,.s-creating{background:#cfe0fb;color:#0b2a5c}
.s-failed,.s-dead,.s-lost,.s-invalid,.s-timed_out,.s-stalled{background:#f8d3d3;color:#5c0b0b}.s-queued{background:#fbefc8;color:#4a3a05}
.cards{display:flex;flex-wrap:wrap;gap:1em}.card{flex:1 1 14em;border:1px solid var(--line);border-radius:.5em;padding:0 1em}
.big{font-size:2em;margin:.2em 0}.reason,.message{color:var(--muted)}
dl{display:grid;grid-template-columns:minmax(7em,max-content) 1fr;gap:.3em 1em}dt{color:var(--muted)}dd{margin:0;min-width:0}
pre{white-space:pre-wrap;word-break:break-word;margin:0;font-size:.9em}
form.inline label,form.inline button{display:inline-block;margin:.2em .4em .2em 0}
input,select,button{font:inherit;padding:.25em .4em}.actions form,.action{display:inline-block;margin-right:.5em}
.timeline{padding-left:1.2em}.timeline li{margin:.3em 0}#problem{font-weight:600}
@media (max-width:600px){dl{grid-template-columns:1fr}dt{margin-top:.4em}}
)css";
}

std::string_view script() {
  // Every few seconds, while the tab is visible and nobody is typing, fetch this page again
  // and swap in its <main>: the server renders (and escapes) it; nothing here builds markup.
  return R"js("use strict";
(function () {
  var main = document.getElementById("live");
  if (!main) return;
  var seconds = parseInt(main.getAttribute("data-refresh"), 10) || 5;
  function busy() {
    var a = document.activeElement;
    return a && (a.tagName === "INPUT" || a.tagName === "SELECT" || a.tagName === "TEXTAREA");
  }
  function refresh() {
    if (document.visibilityState !== "visible" || busy()) return;
    fetch(window.location.href, {credentials: "same-origin", headers: {"Accept": "text/html"}})
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (text) {
        if (text === null || busy()) return;
        var next = new DOMParser().parseFromString(text, "text/html").getElementById("live");
        if (next) main.replaceChildren.apply(main, Array.prototype.slice.call(next.childNodes));
      })
      .catch(function () {});
  }
  setInterval(refresh, seconds * 1000);
})();
)js";
}

}  // namespace devin_orch::app::dashboard
