// The live feed: poll /feed for events newer than the newest shown and put them on top.
// A page with data-reload="1" (a request's page) reloads instead, to show its new state.
(function () {
  "use strict";
  const feed = document.getElementById("feed");
  if (!feed) return;
  const reload = feed.dataset.reload === "1";
  async function poll() {
    try {
      const query = (feed.dataset.query || "").replace(/&amp;/g, "&");
      const response = await fetch("/feed?after=" + feed.dataset.after + query);
      if (response.ok) {
        const html = (await response.text()).trim();
        if (html) {
          if (reload) { window.location.reload(); return; }
          feed.insertAdjacentHTML("afterbegin", html);
          feed.dataset.after = feed.firstElementChild.dataset.seq;
          const empty = document.getElementById("feed-empty");
          if (empty) empty.remove();
          while (feed.children.length > 200) feed.lastElementChild.remove();
        }
      }
    } catch (err) { /* the dashboard is restarting: try again */ }
    window.setTimeout(poll, 1000);
  }
  window.setTimeout(poll, 1000);
})();
