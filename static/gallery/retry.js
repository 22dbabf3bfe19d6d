// Error pages that carry Retry-After: reload once that many seconds have passed (the page says
// so, and its "Try again" link works without JavaScript).
(function () {
  "use strict";
  var retry = document.querySelector("[data-retry-after]");
  if (!retry) return;
  var seconds = parseInt(retry.getAttribute("data-retry-after"), 10);
  if (!(seconds >= 0)) return;
  var status = retry.querySelector(".error-retry-status");
  if (status) status.textContent = " (retrying automatically)";
  window.setTimeout(function () { window.location.reload(); }, Math.min(seconds, 3600) * 1000);
})();
